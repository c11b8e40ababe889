"""Vocal-tract-length perturbation (VTLP; Jaitly & Hinton, 2013): a training-time warp of each clip's frequency
axis, as a speaker with a longer or shorter vocal tract would shift the formants.

The warp maps frequency f to f * factor up to a boundary, then runs linearly to Nyquist, which maps to itself
(so nothing leaves or enters the band):

    f' = f * factor                                   for f <= F_hi * min(factor, 1) / factor
    f' = N - (N - F_hi * min(factor, 1)) / (N - F_hi * min(factor, 1) / factor) * (N - f)   above it,

N = 8000 Hz, F_hi the boundary (4800 Hz in the paper). It is applied to the linear STFT magnitudes, before the
mel filterbank and the log, so it serves the stft, mel and mfcc front-ends alike: output bin g takes the
magnitude at the input frequency the warp sends to g, interpolated linearly between the two nearest bins.
A factor of exactly 1 reads every bin from itself (weight 0 on its neighbour): the features are unchanged.
"""

from __future__ import annotations

import tensorflow as tf

from tuner_app.constants import SAMPLE_RATE


def source_bins(factors, boundary_hz: float, bins: int):
    """[clips, bins] float32: for each clip's output bin, the fractional input bin its magnitude comes from."""
    nyquist = float(bins - 1)  # in bins: the last of fft_length // 2 + 1
    factors = tf.reshape(tf.cast(factors, tf.float32), [-1, 1])
    image = boundary_hz / (SAMPLE_RATE / 2) * nyquist * tf.minimum(factors, 1.0)  # where the boundary lands
    boundary = image / factors
    output = tf.range(bins, dtype=tf.float32)[tf.newaxis, :]
    below = output / factors
    above = nyquist - (nyquist - output) * (nyquist - boundary) / (nyquist - image)
    return tf.clip_by_value(tf.where(output <= image, below, above), 0.0, nyquist)


def warped(magnitude, factors, boundary_hz: float):
    """STFT magnitudes [clips, frames, bins] with each clip's frequency axis warped by its factor ([clips])."""
    clips, frames, bins = tf.shape(magnitude)[0], tf.shape(magnitude)[1], magnitude.shape[-1]
    sources = source_bins(factors, boundary_hz, bins)
    lower = tf.floor(sources)
    weight = (sources - lower)[:, :, tf.newaxis]  # [clips, bins, 1]: the same for every frame
    # Whole rows of frames are gathered, a bin's frames contiguous after the transpose: an element gather
    # (tf.gather's batch_dims) took 3x as long on 2 cores.
    rows = tf.reshape(tf.transpose(magnitude, [0, 2, 1]), [-1, frames])  # [clips * bins, frames]
    first_row = tf.range(clips)[:, tf.newaxis] * bins
    lower = tf.cast(lower, tf.int32)
    upper = tf.minimum(lower + 1, bins - 1)
    mixed = tf.gather(rows, first_row + lower) * (1.0 - weight) + tf.gather(rows, first_row + upper) * weight
    return tf.transpose(mixed, [0, 2, 1])
