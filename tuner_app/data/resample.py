"""Band-limited resampling of mono audio to 16 kHz, in core TensorFlow ops only.

Core ops, so that an exported SavedModel that resamples in its graph loads in any TensorFlow program
(TF Serving, a plain `tf.saved_model.load`) without tensorflow-io; training decodes through the same
function, so training and serving resample alike.

The recording is low-pass filtered by a Kaiser-windowed sinc whose cutoff sits just below the lower of
the two Nyquist frequencies (so downsampling removes what 16 kHz cannot hold), then interpolated
band-limited, both in one pass in the frequency domain: zero-pad, FFT, multiply by the filter's
response, keep or zero-extend the bins up to the new Nyquist frequency, inverse FFT. The padding makes
the length a multiple of rate / gcd(rate, 16000), so output sample k lands exactly on input time
k * rate / 16000, and is longer than the filter, so the FFT's wrap-around only meets zeros. Output sample
k thus equals sum_n x[n] h(k * rate / 16000 - n) with the windowed sinc h, to within the filter's
stopband (about -100 dB): no delay, at any integer rate, at the cost of a few FFTs per recording.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tuner_app.constants import SAMPLE_RATE

# Filter half-length in zero crossings of its sinc, Kaiser window beta, and the cutoff as a fraction of
# the lower Nyquist frequency: flat (0.01 dB) to 87% of it, -100 dB from the Nyquist frequency up.
ZERO_CROSSINGS = 64
KAISER_BETA = 9.5
ROLLOFF = 0.93


def output_length(frames, rate):
    """ceil(frames * 16000 / rate): the output instants k * rate / 16000 that fall before the input ends."""
    frames, rate = tf.cast(frames, tf.int64), tf.cast(rate, tf.int64)
    return (frames * SAMPLE_RATE + rate - 1) // rate


def to_16k(mono, rate, limit=None):
    """float32 [frames] at `rate` Hz (any positive integer) -> float32 [output_length] at 16 kHz.

    `limit` caps the output at its first `limit` samples; only the input they need is resampled.
    """
    mono = tf.convert_to_tensor(mono, tf.float32)
    rate = tf.cast(rate, tf.int64)
    positive = tf.debugging.assert_positive(rate, message="sample rate must be a positive number of Hz")
    with tf.control_dependencies([positive]):
        frames = output_length(tf.size(mono, out_type=tf.int64), rate)
    if limit is not None:
        frames = tf.minimum(frames, tf.cast(limit, tf.int64))
    return tf.cond(
        tf.logical_or(rate == SAMPLE_RATE, frames == 0),
        lambda: mono[:frames],
        lambda: _resample(mono, rate, frames),
    )


def _gcd(a, b):
    return tf.while_loop(lambda x, y: y > 0, lambda x, y: (y, x % y), (a, b))[0]


def _filter_shape(rate):
    """(cutoff in cycles per input sample, half-length in input samples, that rounded up), float64/int64."""
    ratio = tf.minimum(tf.constant(1.0, tf.float64), SAMPLE_RATE / tf.cast(rate, tf.float64))
    cutoff = 0.5 * ROLLOFF * ratio
    half_length = ZERO_CROSSINGS / (2.0 * cutoff)
    return cutoff, half_length, tf.cast(tf.math.ceil(half_length), tf.int64)


def _response(cutoff, half_length, side, length):
    """Frequency response (float32, length // 2 + 1 bins) of the zero-phase windowed-sinc low-pass."""
    offsets = tf.cast(tf.range(-side, side + 1), tf.float64)
    where = tf.clip_by_value(offsets / half_length, -1.0, 1.0)
    # Kaiser window I0(beta * sqrt(1 - x^2)) / I0(beta), through the exponentially scaled I0e to stay finite.
    argument = KAISER_BETA * tf.sqrt(1.0 - where**2)
    beta = tf.constant(KAISER_BETA, tf.float64)
    window = tf.math.bessel_i0e(argument) / tf.math.bessel_i0e(beta) * tf.exp(argument - beta)
    taps = 2.0 * cutoff * _sinc(2.0 * cutoff * offsets) * window
    taps /= tf.reduce_sum(taps)  # unit gain at 0 Hz
    # Offset 0 goes to index 0 and negative offsets wrap to the end: a zero-phase filter, real response.
    circular = tf.concat([taps[side:], tf.zeros([length - 2 * side - 1], tf.float64), taps[:side]], 0)
    return tf.cast(tf.math.real(tf.signal.rfft(circular)), tf.float32)


def _sinc(x):
    safe = tf.where(tf.equal(x, 0.0), tf.ones_like(x), x)
    return tf.where(tf.equal(x, 0.0), tf.ones_like(x), tf.sin(math.pi * safe) / (math.pi * safe))


def _resample(mono, rate, frames):
    step = _gcd(rate, tf.constant(SAMPLE_RATE, tf.int64))
    up, down = SAMPLE_RATE // step, rate // step
    cutoff, half_length, side = _filter_shape(rate)
    # Only the input that the kept outputs reach through the filter...
    used = tf.minimum(tf.size(mono, out_type=tf.int64), (frames * rate + SAMPLE_RATE - 1) // SAMPLE_RATE + side)
    # ...then zeros, at least the filter's length, up to a multiple of `down`.
    padded = (used + 2 * side + down) // down * down
    resampled = padded // down * up
    spectrum = tf.signal.rfft(tf.pad(mono[:used], [[0, padded - used]]))
    spectrum *= tf.complex(_response(cutoff, half_length, side, padded), 0.0)
    bins = resampled // 2 + 1  # fewer bins than the input's when downsampling, zeros added when upsampling
    spectrum = spectrum[:bins]
    spectrum = tf.pad(spectrum, [[0, bins - tf.shape(spectrum, out_type=tf.int64)[0]]])
    spectrum *= tf.complex(tf.cast(up / down, tf.float32), 0.0)  # irfft divides by the new length
    return tf.signal.irfft(spectrum, fft_length=tf.cast([resampled], tf.int32))[:frames]
