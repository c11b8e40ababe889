"""RIFF/WAV in core TensorFlow ops (audio.py says why): the chunk walk, every fmt field checked against sane
limits before anything is sized from it, and the samples as float32."""

from __future__ import annotations

import tensorflow as tf

# What a header may claim. Wide enough for any recorder; narrow enough that no field sizes a buffer beyond a
# small multiple of the file: the resampler's FFT grows with the rate, and upsampling with 16 kHz / rate.
MAX_CHANNELS = 64
MIN_RATE, MAX_RATE = 1000, 384_000  # Hz
MAX_SECONDS = 3600  # of audio in one file
UNSUPPORTED = "unsupported WAV sample format"

PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
# (format code, bits per sample) -> branch index of _DECODERS
_KINDS = {(PCM, 8): 0, (PCM, 16): 1, (PCM, 24): 2, (PCM, 32): 3, (FLOAT, 32): 4, (FLOAT, 64): 5}
# fmt field -> (byte offset in the chunk, width); WAVE_FORMAT_EXTENSIBLE keeps the real code at 24
_FMT_FIELDS = {"code": (0, 2), "channels": (2, 2), "rate": (4, 4), "byte_rate": (8, 4), "block_align": (12, 2),
               "bits": (14, 2), "subformat": (24, 2)}
_FMT_SIZE, _EXTENSIBLE_SIZE = 16, 40


def uint(contents, offset, width: int):
    """Little-endian unsigned integer of `width` bytes (1, 2 or 4) at `offset`, as int64."""
    # Clamped, so a short file fails on our own assertions rather than on substr's range check.
    offset = tf.minimum(tf.cast(offset, tf.int64), tf.cast(tf.strings.length(contents), tf.int64))
    raw = tf.io.decode_raw(tf.strings.substr(contents, offset, width), tf.uint8)
    raw = tf.cast(tf.pad(raw, [[0, width - tf.shape(raw)[0]]]), tf.int64)
    return tf.reduce_sum(raw * tf.constant([256**i for i in range(width)], tf.int64))


def find_chunk(contents, chunk_id: str):
    """Offset and size of a RIFF chunk's payload, walking the chunk list from byte 12. The size is what the
    file holds: a chunk claiming more than is left is cut at the end of the file."""
    length = tf.cast(tf.strings.length(contents), tf.int64)

    def not_found(pos):
        # Both operands run (no short circuit in a graph): a position past a short file's end is clamped.
        chunk = tf.strings.substr(contents, tf.minimum(pos, length), 4)
        return tf.logical_and(pos + 8 <= length, chunk != chunk_id)

    def next_chunk(pos):
        size = uint(contents, pos + 4, 4)
        return (pos + 8 + size + size % 2,)

    (pos,) = tf.while_loop(not_found, next_chunk, (tf.constant(12, tf.int64),))
    found = tf.debugging.assert_less_equal(pos + 8, length, message=f"WAV has no {chunk_id.strip()} chunk")
    with tf.control_dependencies([found]):  # in a graph, nothing downstream may run before the check
        return pos + 8, tf.minimum(uint(contents, pos + 4, 4), length - pos - 8)


def _int24(data):
    bytes3 = tf.reshape(tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int32), [-1, 3])
    value = bytes3[:, 0] + bytes3[:, 1] * 256 + bytes3[:, 2] * 65536
    return tf.cast(tf.where(value >= 2**23, value - 2**24, value), tf.float32) / 2.0**23


_DECODERS = (
    lambda d: (tf.cast(tf.io.decode_raw(d, tf.uint8), tf.float32) - 128.0) / 128.0,
    lambda d: tf.cast(tf.io.decode_raw(d, tf.int16), tf.float32) / 32768.0,
    _int24,
    lambda d: tf.cast(tf.io.decode_raw(d, tf.int32), tf.float32) / 2.0**31,
    lambda d: tf.io.decode_raw(d, tf.float32),
    lambda d: tf.cast(tf.io.decode_raw(d, tf.float64), tf.float32),
)


def _fmt(contents, offset) -> dict:
    """The fmt chunk's fields (int64 tensors), with `extensible` and `kind` (-1: no decoder for it)."""
    fields = {name: uint(contents, offset + at, width) for name, (at, width) in _FMT_FIELDS.items()}
    fields["extensible"] = fields["code"] == EXTENSIBLE
    code = tf.where(fields["extensible"], fields["subformat"], fields["code"])
    kind = tf.constant(-1, tf.int64)
    for (fmt, width), index in _KINDS.items():
        kind = tf.where(tf.logical_and(code == fmt, fields["bits"] == width), tf.constant(index, tf.int64), kind)
    return {**fields, "kind": kind}


def _within(value, low: int, high: int):
    return tf.logical_and(value >= low, value <= high)


def _said(template: str, *values):
    return tf.strings.format("WAV header: " + template, values)


def rate_check(rate, prefix: str = ""):
    """(rate within MIN_RATE..MAX_RATE, the message saying it is not), for `in_order`."""
    return _within(rate, MIN_RATE, MAX_RATE), tf.strings.format(
        f"{prefix}sample rate {{}} Hz, not {MIN_RATE} to {MAX_RATE}", [rate])


def _header_checks(fields, fmt_size) -> list:
    """Each fmt field's check, in the order they run: functions -> (condition, message)."""
    channels, rate, bits, align = fields["channels"], fields["rate"], fields["bits"], fields["block_align"]
    needed = tf.where(fields["extensible"], tf.constant(_EXTENSIBLE_SIZE, tf.int64), _FMT_SIZE)
    return [
        lambda: (fmt_size >= needed, _said("fmt chunk of {} bytes, fewer than the {} its fields take", fmt_size,
                                           needed)),
        lambda: (_within(channels, 1, MAX_CHANNELS), _said(f"channels {{}}, not 1 to {MAX_CHANNELS}", channels)),
        lambda: rate_check(rate, "WAV header: "),
        lambda: (fields["kind"] >= 0, tf.constant(UNSUPPORTED)),
        lambda: (align == channels * bits // 8,
                 _said("block_align {} does not match {} channels of {} bits", align, channels, bits)),
        lambda: (fields["byte_rate"] == rate * align,
                 _said("byte_rate {} does not match {} Hz of {}-byte frames", fields["byte_rate"], rate, align)),
    ]


def _length_check(frames, rate):
    seconds = frames // tf.maximum(rate, 1)
    return frames <= MAX_SECONDS * rate, tf.strings.format(
        f"WAV data chunk: {{}} s of audio, more than the {MAX_SECONDS} s one file may hold", [seconds])


def in_order(checks) -> list:
    """Assert each of `checks` (functions -> (condition, message)) once those before it held, so the first that
    fails is the error; the last assertion, for control dependencies."""
    done = []
    for check in checks:
        with tf.control_dependencies(done):
            condition, message = check()
            done = [tf.debugging.Assert(condition, [message])]
    return done


def decode(contents):
    """RIFF/WAV bytes -> (samples float32 [frames, channels] in [-1, 1], sample rate int64). Only what the file
    holds is decoded: a data chunk claiming more is cut at the end of the file."""
    fmt_offset, fmt_size = find_chunk(contents, "fmt ")
    fields = _fmt(contents, fmt_offset)
    with tf.control_dependencies(in_order(_header_checks(fields, fmt_size))):
        data_offset, data_size = find_chunk(contents, "data")
        align = tf.maximum(fields["block_align"], 1)  # checked; the maximum keeps a graph from dividing by 0
    frames = data_size // align
    with tf.control_dependencies(in_order([lambda: _length_check(frames, fields["rate"])])):
        data = tf.strings.substr(contents, data_offset, frames * align)
    samples = tf.switch_case(tf.cast(fields["kind"], tf.int32), [lambda d=d: d(data) for d in _DECODERS])
    return tf.reshape(samples, [-1, fields["channels"]]), fields["rate"]


def header_only(contents: bytes) -> bool:
    """Whether RIFF/WAV bytes end right after their data chunk's header."""
    if contents[:4] != b"RIFF" or contents[8:12] != b"WAVE":
        return False
    offset = 12
    while offset + 8 <= len(contents):
        size = int.from_bytes(contents[offset + 4:offset + 8], "little")
        if contents[offset:offset + 4] == b"data":
            return offset + 8 == len(contents)
        offset += 8 + size + size % 2
    return False
