"""The audio front-end: one function from a batch of 16 kHz waveforms to model features.

The same `features` call runs inside the tf.data pipeline (training) and inside the exported
SavedModel (serving), so the two can never drift apart. Training may also pass it a per-clip warp of the
frequency axis (VTLP, `features.vtlp`); without one it computes what serving does.

`normalize` standardises each clip's features: `clip` over the whole clip (mean 0, variance 1), `coefficient`
each frequency row (STFT bin, mel band or MFCC) over time within the clip (CMVN: mean 0, variance 1 per row), and
`coefficient_mean` each row's mean only (CMN), which removes a fixed channel gain and keeps the row's dynamics.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from tuner_app.config import checked_fields
from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.errors import TunerAppError

KINDS = ("stft", "mel", "mfcc", "waveform")
NORMALIZE = ("none", "clip", "coefficient", "coefficient_mean")
# Bounds on what sizes the STFT and the mel matrix: an FFT longer than the clip's next power of two (16,384) only
# interpolates, and mel bins beyond the FFT's own add nothing; unbounded, one batch could take gigabytes.
MAX_FFT_LENGTH = 16_384
MAX_MEL_BINS = 1024
MIN_STD = 1e-4  # a silent clip's features stay near 0 instead of amplified rounding noise
VTLP_BOUNDARY_HZ = 4800.0  # Jaitly & Hinton's (2013) boundary frequency at 16 kHz


@dataclasses.dataclass(frozen=True)
class FrontendConfig:
    """Every front-end parameter; the YAML `frontend:` mapping uses these exact keys."""

    kind: str = "stft"
    frame_length: int = 256
    frame_step: int = 160
    fft_length: int = 512
    log_offset: float = 1e-6
    num_mel_bins: int = 64
    lower_edge_hertz: float = 20.0
    upper_edge_hertz: float = 8000.0
    num_mfccs: int = 13
    normalize: str = "none"  # one of NORMALIZE: see the module's docstring

    def __post_init__(self):
        problem = _config_problem(self)
        if problem:
            raise TunerAppError(f"frontend: {problem}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, where: str = "frontend") -> "FrontendConfig":
        values = checked_fields(cls, values, where)
        try:
            return cls(**values)
        except TunerAppError as err:
            raise TunerAppError(f"{where}: {str(err).split(': ', 1)[1]}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _config_problem(cfg: FrontendConfig) -> str | None:
    if cfg.kind not in KINDS:
        return f"kind {cfg.kind!r} is not one of {list(KINDS)}"
    if cfg.normalize not in NORMALIZE:
        return f"normalize {cfg.normalize!r} is not one of {list(NORMALIZE)}"
    if cfg.kind == "waveform":
        return None
    if min(cfg.frame_length, cfg.frame_step, cfg.fft_length) <= 0:
        return "frame_length, frame_step and fft_length must be positive"
    if cfg.frame_length > CLIP_SAMPLES:
        return f"frame_length {cfg.frame_length} is longer than the {CLIP_SAMPLES}-sample clip"
    if cfg.fft_length > MAX_FFT_LENGTH:  # its STFT and mel matrix are sized from it: bounded before anything is
        return f"fft_length {cfg.fft_length} is over {MAX_FFT_LENGTH}"
    if cfg.kind != "stft" and not 0 < cfg.num_mel_bins <= MAX_MEL_BINS:
        return f"num_mel_bins {cfg.num_mel_bins} is not from 1 to {MAX_MEL_BINS}"
    if cfg.fft_length < cfg.frame_length:
        return f"fft_length {cfg.fft_length} is shorter than frame_length {cfg.frame_length}"
    if cfg.kind != "stft" and not 0 <= cfg.lower_edge_hertz < cfg.upper_edge_hertz <= SAMPLE_RATE / 2:
        return "need 0 <= lower_edge_hertz < upper_edge_hertz <= 8000"
    if cfg.kind == "mfcc" and not 0 < cfg.num_mfccs <= cfg.num_mel_bins:
        return "num_mfccs must be between 1 and num_mel_bins"
    return None


def output_shape(cfg: FrontendConfig) -> tuple[int, ...]:
    """Shape of one clip's features: (samples, 1) for waveforms, (bins, frames, 1) otherwise."""
    if cfg.kind == "waveform":
        return (CLIP_SAMPLES, 1)
    frames = 1 + (CLIP_SAMPLES - cfg.frame_length) // cfg.frame_step
    bins = {"stft": cfg.fft_length // 2 + 1, "mel": cfg.num_mel_bins, "mfcc": cfg.num_mfccs}[cfg.kind]
    return (bins, frames, 1)


def features(waveforms, cfg: FrontendConfig, warp=None, warp_boundary_hz: float = VTLP_BOUNDARY_HZ):
    """Map float32 waveforms [batch, 16000] to features [batch, *output_shape(cfg)].

    Spectral features are laid out frequency x time, as in the seed study (257 x 99). `warp` (training only):
    per clip a VTLP factor ([batch]) that warps the linear STFT magnitudes' frequency axis before any mel
    filterbank or log (`features.vtlp.warped`, boundary `warp_boundary_hz`); a waveform has none to warp.
    """
    import tensorflow as tf

    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    if cfg.kind == "waveform":
        # TFLite has no builtin for [..., tf.newaxis] (a StridedSlice): expand_dims instead.
        return _normalized(tf.expand_dims(waveforms, -1), cfg)
    magnitude = tf.abs(
        tf.signal.stft(waveforms, cfg.frame_length, cfg.frame_step, cfg.fft_length, pad_end=False)
    )
    if warp is not None:
        from tuner_app.features.vtlp import warped  # here: this module is read with no TensorFlow imported

        magnitude = warped(magnitude, warp, warp_boundary_hz)
    if cfg.kind == "stft":
        spectral = tf.math.log(magnitude + cfg.log_offset)
    else:
        spectral = _log_mel(magnitude, cfg)
        if cfg.kind == "mfcc":
            spectral = tf.tensordot(spectral, _mfcc_matrix(cfg), 1)
    return _normalized(tf.expand_dims(tf.transpose(spectral, [0, 2, 1]), -1), cfg)


def _normalized(batch, cfg: FrontendConfig):
    """Per-clip standardisation. A raw log spectrogram sits near log(log_offset) = -13.8 in silence, and
    small CNNs started there often never leave chance (measured: conv4/8 filters/fc32 stuck at 0.0625
    for 6 epochs; standardised, 0.65)."""
    import tensorflow as tf

    if cfg.normalize == "none":
        return batch
    # Features are [batch, freq, time, 1] or a waveform's [batch, time, 1]: time is the second-last axis.
    time_axis = batch.shape.rank - 2
    axes = list(range(1, batch.shape.rank)) if cfg.normalize == "clip" else [time_axis]
    mean, variance = tf.nn.moments(batch, axes=axes, keepdims=True)
    if cfg.normalize == "coefficient_mean":
        return batch - mean
    return (batch - mean) / tf.maximum(tf.sqrt(variance), MIN_STD)


def _mfcc_matrix(cfg: FrontendConfig):
    """[num_mel_bins, num_mfccs]: the first num_mfccs rows of tf.signal.mfccs_from_log_mel_spectrograms's DCT-II
    (scaled by 1 / sqrt(2 * num_mel_bins)) as one matrix. Equal to it within 1e-6, and TFLite converts a matmul
    to builtins, not tf.signal.dct's slice of a complex tensor."""
    import numpy as np
    import tensorflow as tf

    bins = cfg.num_mel_bins
    order, band = np.arange(cfg.num_mfccs)[:, None], np.arange(bins)[None, :]
    dct = 2 * np.cos(np.pi * order * (2 * band + 1) / (2 * bins)) / np.sqrt(2 * bins)
    return tf.constant(dct.T, tf.float32)


def _log_mel(magnitude, cfg: FrontendConfig):
    import tensorflow as tf

    matrix = tf.signal.linear_to_mel_weight_matrix(
        cfg.num_mel_bins, cfg.fft_length // 2 + 1, SAMPLE_RATE, cfg.lower_edge_hertz, cfg.upper_edge_hertz
    )
    return tf.math.log(tf.tensordot(magnitude, matrix, 1) + cfg.log_offset)


@dataclasses.dataclass(frozen=True)
class FeatureAxes:
    """What the features' axes mean: each frame's centre in seconds, and each frequency row's centre in Hz
    (`frequencies` None for a waveform; for MFCCs the coefficient index, `frequency_label` says which)."""

    times: Any
    frequencies: Any
    frequency_label: str


def feature_axes(cfg: FrontendConfig) -> FeatureAxes:
    """The seconds and Hz of `features(…, cfg)`'s time and frequency axes, for figures labelled in them."""
    import numpy as np

    if cfg.kind == "waveform":
        return FeatureAxes(np.arange(CLIP_SAMPLES) / SAMPLE_RATE, None, "")
    frames = output_shape(cfg)[1]
    times = (np.arange(frames) * cfg.frame_step + cfg.frame_length / 2) / SAMPLE_RATE
    if cfg.kind == "stft":
        return FeatureAxes(times, np.arange(cfg.fft_length // 2 + 1) * SAMPLE_RATE / cfg.fft_length, "frequency (Hz)")
    if cfg.kind == "mfcc":
        return FeatureAxes(times, np.arange(cfg.num_mfccs, dtype=float), "MFCC coefficient")
    return FeatureAxes(times, _mel_centres(cfg), "frequency (Hz)")


def _mel_centres(cfg: FrontendConfig):
    """Centre of each of tf.signal.linear_to_mel_weight_matrix's triangles: bands evenly spaced in HTK mels."""
    import numpy as np

    low, high = (1127.0 * np.log1p(np.array([cfg.lower_edge_hertz, cfg.upper_edge_hertz]) / 700.0))
    edges = np.linspace(low, high, cfg.num_mel_bins + 2)
    return 700.0 * np.expm1(edges[1:-1] / 1127.0)
