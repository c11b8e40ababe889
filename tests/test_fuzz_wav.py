"""The WAV parser fuzzed: valid files with header fields set to extreme values, truncated, extended, given odd
chunks or flipped bytes, each decode to a bounded clip or are refused in one line naming the file, with this
process's memory capped, so a field that sized a buffer before it was checked fails here. (Before the checks, the
4 GHz rate below asked TensorFlow for gigabytes and the capped process aborted: a failure, if a loud one.)"""

import contextlib
import functools
import re
import resource
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import tone, write_wav
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tuner_app.data import audio
from tuner_app.errors import TunerAppError

HEADROOM = 512 * 2**20  # what decoding one small file may add to the process's data segment
LONGEST = 3600 * 16000  # samples of the longest recording a file may decode to: an hour at 16 kHz
# Header field -> (offset in a canonical 44-byte header, struct format)
FIELDS = {"riff_size": (4, "<I"), "fmt_size": (16, "<I"), "code": (20, "<H"), "channels": (22, "<H"),
          "rate": (24, "<I"), "byte_rate": (28, "<I"), "block_align": (32, "<H"), "bits": (34, "<H"),
          "data_size": (40, "<I")}
EXTREMES = (0, 1, 2, 3, 7, 8, 24, 255, 999, 1000, 0x7FFF, 0xFFFF, 384_000, 384_001, 2**31 - 1, 2**32 - 1)


# The valid files mutated: (seconds, channels, rate, bits, float samples): every sample format, 8 to 44.1 kHz.
LAYOUTS = ((0.02, 1, 16000, 16, False), (0.02, 2, 16000, 8, False), (0.02, 1, 8000, 24, False),
           (0.01, 1, 44100, 32, False), (0.02, 1, 16000, 32, True), (0.01, 2, 16000, 64, True))


@functools.cache
def valid_wavs() -> tuple[bytes, ...]:
    with tempfile.TemporaryDirectory() as folder:
        return tuple(write_wav(Path(folder) / f"{index}.wav", np.stack([tone(seconds, rate)] * channels, 1), rate,
                               bits, float_format).read_bytes()
                     for index, (seconds, channels, rate, bits, float_format) in enumerate(LAYOUTS))


def _set_field(data: bytes, name: str, value: int) -> bytes:
    offset, layout = FIELDS[name]
    changed = bytearray(data.ljust(offset + struct.calcsize(layout), b"\0"))
    struct.pack_into(layout, changed, offset, value % 256 ** struct.calcsize(layout))
    return bytes(changed)


def _mutated(data: bytes, mutation: tuple) -> bytes:
    kind, *args = mutation
    if kind == "set":
        return _set_field(data, *args)
    if kind == "truncate":
        return data[: args[0]]
    if kind == "extend":
        return data + args[0]
    if kind == "chunk":  # an unknown chunk, its size possibly lying, before the fmt chunk
        chunk_id, size, payload = args
        return data[:12] + chunk_id + struct.pack("<I", size) + payload + data[12:]
    position, byte = args
    return data[:position] + bytes([byte]) + data[position + 1:]


MUTATIONS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(sorted(FIELDS)),
              st.one_of(st.sampled_from(EXTREMES), st.integers(0, 2**32 - 1))),
    st.tuples(st.just("truncate"), st.integers(0, 700)),
    st.tuples(st.just("extend"), st.binary(max_size=64)),
    st.tuples(st.just("chunk"), st.binary(min_size=4, max_size=4), st.sampled_from(EXTREMES), st.binary(max_size=9)),
    st.tuples(st.just("flip"), st.integers(0, 60), st.integers(0, 255)),
)


def _vm_data() -> int:
    with open("/proc/self/status") as status:
        return int(re.search(r"VmData:\s+(\d+) kB", status.read())[1]) * 1024


@contextlib.contextmanager
def data_segment_capped(headroom: int):
    """This process's data segment (heap and private mappings: every tensor) capped at its size now plus
    `headroom` by RLIMIT_DATA's soft limit, put back after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = _vm_data() + headroom
    resource.setrlimit(resource.RLIMIT_DATA, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _decoded_or_refused(read, path: Path):
    """What `read` returns for the file, or None when it refuses it in one line naming the file."""
    try:
        return read(path)
    except TunerAppError as err:
        message = str(err)
        assert "\n" not in message and message.startswith(f"{path}: "), message
        assert "{{" not in message and "[Op:" not in message, message  # TensorFlow's words, not ours
        # Running out of the capped memory is not refusing a file: a header field sized a buffer.
        assert not isinstance(err.__context__, tf.errors.ResourceExhaustedError), message
        return None


@pytest.fixture(scope="module", autouse=True)
def _traced():
    """Trace the decoders before memory is capped: tracing is not what is measured."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "valid.wav"
        path.write_bytes(valid_wavs()[0])
        audio.read(path), audio.read_recording(path)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the data segment's size from /proc")
@settings(max_examples=200, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(base=st.integers(0, len(LAYOUTS) - 1), mutations=st.lists(MUTATIONS, max_size=4))
@example(base=0, mutations=[("set", "rate", 2**32 - 1)])  # a 4 GHz rate: the resampler's FFT took tens of GB
@example(base=1, mutations=[("set", "rate", 1)])  # 1 Hz: every sample resampled to 16,000
@example(base=0, mutations=[("set", "channels", 0xFFFF)])
@example(base=2, mutations=[("set", "block_align", 0), ("set", "bits", 0)])
@example(base=0, mutations=[("set", "data_size", 2**32 - 1), ("truncate", 60)])
def test_any_wav_decodes_bounded_or_is_refused_in_one_line(tmp_path, base, mutations):
    data = functools.reduce(_mutated, mutations, valid_wavs()[base])
    path = tmp_path / "fuzzed.wav"
    path.write_bytes(data)
    with data_segment_capped(HEADROOM):
        clip = _decoded_or_refused(audio.read, path)
        # A whole recording goes through the same header checks, then resampling it all: once they passed.
        recording = _decoded_or_refused(audio.read_recording, path) if clip is not None else None
    if clip is not None:
        assert clip.shape == (16000,) and clip.dtype == np.float32 and np.isfinite(clip).all()
    if recording is not None:
        assert recording.ndim == 1 and recording.size <= LONGEST
    if not mutations:
        assert clip is not None and recording is not None  # a valid file decodes
