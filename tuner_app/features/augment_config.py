"""The augmentation settings (the YAML `augment:` mapping), kept apart from the TensorFlow ops that apply
them so that reading a search space never imports TensorFlow.

Every key may also be a hyperparameter of the same name, whose value overrides the mapping's for its trial
(`overridden`); `field_problem` checks one value of one key, so a hyperparameter's values are checked when the
space is read, and the pairs that must be ordered (`ORDERED_PAIRS`) once the trial's values are known.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from tuner_app.config import checked_fields
from tuner_app.constants import SAMPLE_RATE
from tuner_app.errors import TunerAppError
from tuner_app.features.frontend import VTLP_BOUNDARY_HZ

NYQUIST_HZ = SAMPLE_RATE / 2
# [low, high] of each key (None: unbounded; a key in OPEN_LOW excludes its low). Speed is kept within an
# octave and VTLP to +-50%: beyond, a word no longer sounds like a speaker of it.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "time_shift_ms": (0.0, 1000.0),
    "noise_probability": (0.0, 1.0),
    "snr_db_min": (None, None),
    "snr_db_max": (None, None),
    "freq_mask": (0, None),
    "time_mask": (0, None),
    "lowpass_probability": (0.0, 1.0),
    "lowpass_min_hz": (0.0, NYQUIST_HZ),
    "speed_min": (0.5, 2.0),
    "speed_max": (0.5, 2.0),
    "vtlp_alpha": (0.0, 0.5),
    "vtlp_boundary_hz": (0.0, NYQUIST_HZ - 1.0),
    "mixup_alpha": (0.0, 10.0),
}
OPEN_LOW = frozenset({"lowpass_min_hz", "vtlp_boundary_hz"})
ORDERED_PAIRS = (("snr_db_min", "snr_db_max"), ("speed_min", "speed_max"))


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation; the YAML `augment:` mapping uses these exact keys."""

    time_shift_ms: float = 0.0
    noise_probability: float = 0.0
    snr_db_min: float = 5.0
    snr_db_max: float = 30.0
    freq_mask: int = 0
    time_mask: int = 0
    lowpass_probability: float = 0.0  # band-limit a clip, as an 8 kHz or telephone recording is
    lowpass_min_hz: float = 3000.0  # cut-off drawn from [lowpass_min_hz, 8000]
    speed_min: float = 1.0  # speed (tempo and pitch) factor drawn from [speed_min, speed_max]; 1, 1: off
    speed_max: float = 1.0
    vtlp_alpha: float = 0.0  # vocal-tract-length warp factor drawn from [1 - alpha, 1 + alpha]; 0: off
    vtlp_boundary_hz: float = VTLP_BOUNDARY_HZ  # Jaitly & Hinton's F_hi: the warp is linear below, then meets Nyquist
    mixup_alpha: float = 0.0  # mixup weights drawn from Beta(alpha, alpha); 0: off

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, where: str = "augment") -> "AugmentConfig":
        cfg = cls(**checked_fields(cls, values, where))
        if field_problem("noise_probability", cfg.noise_probability) or cfg.snr_db_min > cfg.snr_db_max:
            raise TunerAppError(f"{where}: need 0 <= noise_probability <= 1 and snr_db_min <= snr_db_max")
        if any(field_problem(name, getattr(cfg, name)) for name in ("lowpass_probability", "lowpass_min_hz")):
            raise TunerAppError(f"{where}: need 0 <= lowpass_probability <= 1 and 0 < lowpass_min_hz <= 8000")
        for name in RANGES:
            problem = field_problem(name, getattr(cfg, name))
            if problem:
                raise TunerAppError(f"{where}.{name}: {problem}")
        if cfg.speed_min > cfg.speed_max:
            raise TunerAppError(f"{where}.speed_min: {cfg.speed_min} is above speed_max {cfg.speed_max}")
        return cfg

    def overridden(self, values: Mapping[str, Any], where: str = "augment") -> "AugmentConfig":
        """These settings with the keys of `values` that are augment keys (a trial's hyperparameters) replaced."""
        overrides = {name: values[name] for name in FIELDS if name in values}
        return AugmentConfig.from_dict({**dataclasses.asdict(self), **overrides}, where) if overrides else self

    @property
    def speed_active(self) -> bool:
        return self.speed_min != 1.0 or self.speed_max != 1.0

    @property
    def waveform_active(self) -> bool:
        """Whether the tf.data batch map has anything to do (mixup mixes the augmented waveforms too)."""
        return (self.time_shift_ms > 0 or self.noise_probability > 0 or self.lowpass_probability > 0
                or self.speed_active or self.mixup_alpha > 0)

    @property
    def spectrogram_active(self) -> bool:
        return self.freq_mask > 0 or self.time_mask > 0


FIELDS = tuple(field.name for field in dataclasses.fields(AugmentConfig))


def field_problem(name: str, value: float) -> str | None:
    """Why `value` cannot be the augment key `name`'s, in a few words; None if it can."""
    low, high = RANGES[name]
    if not math.isfinite(value):
        return f"expected a finite number, got {value!r}"
    too_low = low is not None and (value <= low if name in OPEN_LOW else value < low)
    if too_low or (high is not None and value > high):
        return f"expected a number in {_range_text(name)}, got {value!r}"
    return None


def _range_text(name: str) -> str:
    low, high = RANGES[name]
    opening = "(" if name in OPEN_LOW else "["
    return f"{opening}{low}, {'inf)' if high is None else f'{high}]'}"
