"""The augmentation settings (the YAML `augment:` mapping), kept apart from the TensorFlow ops that apply
them so that reading a search space never imports TensorFlow."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from tuner_app.config import checked_fields
from tuner_app.constants import SAMPLE_RATE
from tuner_app.errors import TunerAppError


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

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, where: str = "augment") -> "AugmentConfig":
        cfg = cls(**checked_fields(cls, values, where))
        if not 0 <= cfg.noise_probability <= 1 or cfg.snr_db_min > cfg.snr_db_max:
            raise TunerAppError(f"{where}: need 0 <= noise_probability <= 1 and snr_db_min <= snr_db_max")
        if not 0 <= cfg.lowpass_probability <= 1 or not 0 < cfg.lowpass_min_hz <= SAMPLE_RATE / 2:
            raise TunerAppError(f"{where}: need 0 <= lowpass_probability <= 1 and 0 < lowpass_min_hz <= 8000")
        return cfg

    @property
    def waveform_active(self) -> bool:
        return self.time_shift_ms > 0 or self.noise_probability > 0 or self.lowpass_probability > 0

    @property
    def spectrogram_active(self) -> bool:
        return self.freq_mask > 0 or self.time_mask > 0
