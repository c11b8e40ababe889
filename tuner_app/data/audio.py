"""Decoding: encoded audio bytes -> one 16 kHz mono float32 clip of exactly 16000 samples.

`decode` is built from TensorFlow graph ops only, so the same code runs inside tf.data (training)
and inside the exported SavedModels' `serve_bytes` signatures (serving).

WAV is parsed with core TensorFlow ops (wav.py), and every rate is brought to 16 kHz by `resample.to_16k`,
also core ops: `decode(..., wav_only=True)` is what a SavedModel that loads without tensorflow-io holds.
(tfio's WAV decoder needs the sample type up front, does not return the sample rate from bytes, and
reinterprets 32-bit integer PCM as float32.) FLAC, Ogg Vorbis and MP3 (tfio's built-in minimp3) are
decoded by tensorflow-io ops, which a graph holding them needs registered before it loads.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_io as tfio

from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.data import resample, wav
from tuner_app.errors import TunerAppError

# Part of the decoded cache's key: bump it whenever decoding changes what a file decodes to.
# 2: resampling by resample.to_16k (zero delay) instead of tensorflow-io's resampler.
# 3: every WAV header field checked (a file with an impossible header is refused, no longer decoded).
DECODER_VERSION = 3
NOT_FINITE = "NaN or infinite samples"  # also why data.cache skips such a clip
HEADER_ONLY = "no audio samples (header only)"  # a recorder's WAV header, never filled in
NOT_WAV = ("not WAV audio: only WAV decodes with core TensorFlow ops (FLAC, Ogg Vorbis and MP3 need "
           "tensorflow-io: the any_format SavedModel of an export)")


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What a file holds before decoding to the model's 16 kHz mono clip."""

    format: str
    rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def _decode_flac(contents):
    # STREAMINFO sits right after the 4-byte marker and 4-byte block header.
    # Its fields are big-endian bit fields: 20 bits of rate, 3 of channels, 5 of bits per sample.
    b18, b19, b20, b21 = (wav.uint(contents, offset, 1) for offset in (18, 19, 20, 21))
    rate = b18 * 4096 + b19 * 16 + b20 // 16
    bits = (b20 % 2) * 16 + b21 // 16 + 1
    supported = tf.debugging.assert_equal(
        tf.logical_or(bits == 16, bits == 24), True, message="only 16- and 24-bit FLAC is supported")
    with tf.control_dependencies([supported, *wav.in_order([lambda: wav.rate_check(rate, "FLAC header: ")])]):
        samples = tf.cond(
            bits == 24,  # tfio returns 24-bit samples unscaled in int32
            lambda: tf.cast(tfio.audio.decode_flac(contents, dtype=tf.int32), tf.float32) / 2.0**23,
            lambda: tf.cast(tfio.audio.decode_flac(contents, dtype=tf.int16), tf.float32) / 32768.0,
        )
    return samples, rate


def _decode_vorbis(contents):
    # The identification header follows the first page's 27-byte header and its lacing table.
    rate = wav.uint(contents, 27 + wav.uint(contents, 26, 1) + 12, 4)
    with tf.control_dependencies(wav.in_order([lambda: wav.rate_check(rate, "Ogg Vorbis header: ")])):
        return tfio.audio.decode_vorbis(contents), tf.identity(rate)


def _mp3_frame_offset(contents):
    # An ID3v2 tag (10-byte header, "syncsafe" 7-bit size) may precede the first frame.
    size = tf.add_n([wav.uint(contents, 6 + i, 1) * 128 ** (3 - i) for i in range(4)])
    return tf.where(tf.strings.substr(contents, 0, 3) == "ID3", 10 + size, tf.constant(0, tf.int64))


def _decode_mp3(contents):
    offset = _mp3_frame_offset(contents)
    version = (wav.uint(contents, offset + 1, 1) // 8) % 4  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    rate_index = tf.minimum((wav.uint(contents, offset + 2, 1) // 4) % 4, 2)
    divisor = tf.where(version == 3, 1, tf.where(version == 2, 2, 4))
    rate = tf.gather(tf.constant([44100, 48000, 32000], tf.int64), rate_index) // tf.cast(divisor, tf.int64)
    return tfio.audio.decode_mp3(contents), rate


def _is_mp3(contents):
    first = wav.uint(contents, 0, 1)
    frame_sync = tf.logical_and(first == 255, wav.uint(contents, 1, 1) >= 224)
    return tf.logical_or(tf.strings.substr(contents, 0, 3) == "ID3", frame_sync)


def _unsupported(contents, message="not WAV, FLAC, Ogg Vorbis or MP3 audio"):
    # A data-dependent condition, so the assert fires when the branch runs, not when it is traced.
    tf.debugging.assert_equal(tf.strings.length(contents), -1, message=message)
    return tf.zeros([0, 1], tf.float32), tf.constant(SAMPLE_RATE, tf.int64)


def decode_any(contents):
    """Encoded bytes -> (samples float32 [frames, channels] in [-1, 1], sample rate int64)."""
    magic = tf.strings.substr(contents, 0, 4)
    index = tf.where(magic == "RIFF", 0, tf.where(magic == "fLaC", 1, tf.where(magic == "OggS", 2, 4)))
    index = tf.where(tf.logical_and(index == 4, _is_mp3(contents)), 3, index)
    decoders = (wav.decode, _decode_flac, _decode_vorbis, _decode_mp3, _unsupported)
    return tf.switch_case(index, [lambda f=f: f(contents) for f in decoders])


def decode_wav(contents):
    """Like decode_any, for WAV only and in core TensorFlow ops only; other bytes fail with NOT_WAV."""
    is_wav = tf.strings.substr(contents, 0, 4) == "RIFF"
    return tf.cond(is_wav, lambda: wav.decode(contents), lambda: _unsupported(contents, NOT_WAV))


def to_mono_16k(samples, rate, limit=None):
    """Mix [frames, channels] down to mono and resample it to 16 kHz (any length; the first `limit`
    samples only, if given)."""
    return resample.to_16k(tf.reduce_mean(samples, axis=-1), rate, limit)


def to_clip(samples, rate):
    """Mono, 16 kHz, padded or cropped to exactly CLIP_SAMPLES."""
    mono = to_mono_16k(samples, rate, limit=CLIP_SAMPLES)
    return tf.pad(mono, [[0, CLIP_SAMPLES - tf.shape(mono)[0]]])


def decode(contents, wav_only: bool = False):
    """Encoded bytes -> (clip float32 [16000], number of decoded frames before padding).

    wav_only: decode with core TensorFlow ops only (decode_wav), for graphs that must load without
    tensorflow-io."""
    samples, rate = decode_wav(contents) if wav_only else decode_any(contents)
    clip = to_clip(samples, rate)
    clip.set_shape([CLIP_SAMPLES])
    return clip, tf.shape(samples)[0]


# Traced once on first use: eager op-by-op dispatch of the WAV parser is ~10x slower.
_decode_graph = tf.function(decode, input_signature=[tf.TensorSpec([], tf.string)])
_decode_any_graph = tf.function(decode_any, input_signature=[tf.TensorSpec([], tf.string)])
_recording_graph = tf.function(lambda contents: to_mono_16k(*decode_any(contents)),
                               input_signature=[tf.TensorSpec([], tf.string)])


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise TunerAppError(f"{path}: cannot read ({err.strerror or err})") from None


def _op_message(err: tf.errors.OpError) -> str:
    """The assertion text of a decoding failure, without TensorFlow's graph-node noise."""
    # In a graph: "assertion failed: [MESSAGE.  ] [Condition ...]"; run eagerly: "MESSAGE.  \nCondition ...".
    found = re.search(r"assertion failed: \[([^\]]+)\]", err.message) or re.match(r"(.+?)\s*\nCondition ", err.message)
    if found:
        return found.group(1).strip(" .")
    lines = [line.strip() for line in err.message.splitlines() if line.strip()]
    return lines[-1].split("}}")[-1].strip(" .") if lines else type(err).__name__


def _decode_file(decoder, path: str | Path):
    """(file bytes, decoder output); any decoding failure becomes a TunerAppError naming the file."""
    contents = _read_bytes(Path(path))
    try:
        return contents, decoder(tf.constant(contents))
    except tf.errors.OpError as err:
        if wav.header_only(contents):  # its format fields are often still zero: that is not the news
            raise TunerAppError(f"{path}: {HEADER_ONLY}") from None
        raise TunerAppError(f"{path}: unreadable audio ({_op_message(err)})") from None


def read(path: str | Path) -> np.ndarray:
    """Decode one file eagerly to a float32 [16000] clip: its first second, padded with silence when shorter.
    TunerAppError names the file when it is unreadable, empty, or holds NaN or infinite samples."""
    _, (clip, frames) = _decode_file(_decode_graph, path)
    if int(frames) == 0:
        raise TunerAppError(f"{path}: empty audio (no samples)")
    clip = clip.numpy()
    if not np.isfinite(clip).all():  # a float WAV can hold them; one would turn every output into NaN
        raise TunerAppError(f"{path}: {NOT_FINITE}")
    return clip


def read_recording(path: str | Path) -> np.ndarray:
    """Decode one file eagerly to mono float32 at 16 kHz, whole (a long noise recording, not a 1 s clip)."""
    _, recording = _decode_file(_recording_graph, path)
    return recording.numpy()


def describe(path: str | Path) -> AudioInfo:
    """Format, rate, channels and length of one file, decoding it to be sure it is readable."""
    contents, (samples, rate) = _decode_file(_decode_any_graph, path)
    kind = {b"RIFF": "wav", b"fLaC": "flac", b"OggS": "ogg"}.get(contents[:4], "mp3")
    return AudioInfo(kind, int(rate), int(samples.shape[1]), int(samples.shape[0]))
