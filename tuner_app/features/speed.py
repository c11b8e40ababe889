"""Speed perturbation (Ko et al., 2015): per clip a factor, tempo and pitch together, as a faster or
slower, higher or lower speaker says the word.

A clip sped up by `factor` is the clip read as if recorded at 16000 * factor Hz and resampled to 16 kHz by the
project's own resampler (`data.resample`: the same windowed-sinc filter and frequency-domain interpolation that
decode every corpus), so a tone at f Hz comes out at f * factor Hz, 1 / factor as long; it is then centre-cropped
or zero-padded back to 16000 samples.

Cost: the clips of a batch that share a rate go through the resampler together (sorted by rate, one gather
puts them back), and each FFT call cost about 0.7 ms however few clips it had (2 cores), so the rates lie on a
grid: factors in steps of RATE_STEP_HZ / 16000 = 0.025 (0.85-1.15: 13 rates; on a 160 Hz grid, 31 rates, a
batch of 64 took twice the CPU). Per rate the resampler's lengths and filter response are computed once, when
the augmentation is built (`SpeedPerturbation`), not per batch. The FFT lengths, multiples of
rate / gcd(rate, 16000), may hold primes up to 43: such lengths measured within 2.5x of a power of two's.
benchmarks/augment_ablation.py --throughput measures the clips/s.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.data import resample

RATE_STEP_HZ = 400


def grid_rates(low: float, high: float) -> list[int]:
    """The grid's rates (Hz) for factors from `low` to `high`, each end rounded to the grid."""
    first, last = round(low * SAMPLE_RATE / RATE_STEP_HZ), round(high * SAMPLE_RATE / RATE_STEP_HZ)
    return [step * RATE_STEP_HZ for step in range(first, last + 1)]


class SpeedPerturbation:
    """Speed perturbation of batches [clips, 16000] over the grid's rates between factors `low` and `high`.

    Built eagerly (it computes each rate's filter response then): construct it outside tf.function."""

    def __init__(self, low: float, high: float):
        self.rates = grid_rates(low, high)
        plans = [_plan(rate) for rate in self.rates]
        self.sizes = tf.constant([plan[:4] for plan in plans], tf.int64)  # padded, resampled, frames, identity
        widest = max(int(plan[4].shape[0]) for plan in plans)
        responses = tf.stack([tf.pad(plan[4], [[0, widest - plan[4].shape[0]]]) for plan in plans])
        self.responses = tf.complex(responses, 0.0)

    def __call__(self, waveforms):
        """Each clip at a rate drawn uniformly from the grid's."""
        levels = tf.random.uniform(tf.shape(waveforms)[:1], 0, len(self.rates), tf.int64)
        return self.at_levels(waveforms, levels)

    def at_levels(self, waveforms, levels):
        """Clip i read at self.rates[levels[i]] Hz, resampled to 16 kHz, centred in 16000 samples."""
        waveforms = tf.convert_to_tensor(waveforms, tf.float32)
        levels = tf.cast(levels, tf.int64)  # sliced together with the int64 sizes
        # The clips sorted by rate, so each rate's are one run; one gather puts them back in order at the end
        # (a scatter into the whole batch per rate copied it each time).
        order = tf.argsort(levels, stable=True)
        runs = tf.unique_with_counts(tf.gather(levels, order))
        ends = tf.cumsum(runs.count)
        pieces = tf.TensorArray(tf.float32, size=tf.size(runs.y), infer_shape=False, element_shape=[None, CLIP_SAMPLES])

        def resample_one_rate(index, pieces):
            rows = order[ends[index] - runs.count[index] : ends[index]]
            return index + 1, pieces.write(index, self._resampled(tf.gather(waveforms, rows), runs.y[index]))

        _, pieces = tf.while_loop(lambda index, _: index < tf.size(runs.y), resample_one_rate, (0, pieces))
        return tf.gather(pieces.concat(), tf.math.invert_permutation(order))

    def _resampled(self, clips, level):
        padded, resampled, frames, identity = tf.unstack(self.sizes[level])
        return tf.cond(tf.cast(identity, tf.bool), lambda: clips,
                       lambda: _centred(self._to_16k(clips, level, padded, resampled)[:, :frames]))

    def _to_16k(self, clips, level, padded, resampled):
        """`resample._resample` of whole clips at one rate, a batch at a time, its response looked up."""
        spectrum = tf.signal.rfft(tf.pad(clips, [[0, 0], [0, padded - CLIP_SAMPLES]]))
        spectrum *= self.responses[level, : padded // 2 + 1]  # scaled by up / down: irfft divides by the new length
        bins = resampled // 2 + 1  # fewer bins than the input's when sped up, zeros added when slowed down
        spectrum = spectrum[:, :bins]
        spectrum = tf.pad(spectrum, [[0, 0], [0, bins - tf.shape(spectrum, out_type=tf.int64)[1]]])
        return tf.signal.irfft(spectrum, fft_length=tf.cast([resampled], tf.int32))


def _plan(rate: int) -> tuple:
    """(padded, resampled, frames, identity, response) of `resample._resample` for a whole clip at `rate`: its
    lengths, and its filter's frequency response times up / down, computed once."""
    step = math.gcd(rate, SAMPLE_RATE)
    up, down = SAMPLE_RATE // step, rate // step
    cutoff, half_length, side = (value.numpy() for value in resample._filter_shape(tf.constant(rate, tf.int64)))
    padded = (CLIP_SAMPLES + 2 * int(side) + down) // down * down  # zeros past the filter, a multiple of `down`
    frames = int(resample.output_length(CLIP_SAMPLES, rate))
    response = resample._response(float(cutoff), float(half_length), int(side), padded) * (up / down)
    return padded, padded // down * up, frames, int(rate == SAMPLE_RATE), response


def _centred(clips):
    """Clips [n, length] centred in CLIP_SAMPLES: the middle kept of a longer one, zeros either side of a shorter."""
    length = tf.shape(clips)[1]
    before = tf.maximum(CLIP_SAMPLES - length, 0) // 2
    after = tf.maximum(CLIP_SAMPLES - length, 0) - before
    start = tf.maximum(length - CLIP_SAMPLES, 0) // 2
    return tf.pad(clips, [[0, 0], [before, after]])[:, start : start + CLIP_SAMPLES]
