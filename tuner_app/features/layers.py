"""The audio front-end as Keras layers, so the search builds models from raw 16 kHz waveforms.

`Frontend` calls `frontend.features` (one function for training, serving and now the model itself), with
a per-clip VTLP warp (`features.vtlp`) in training where `vtlp_alpha` > 0; `SpecAugment` is the training-time
masking of `augment._spec_augment` written in core TensorFlow ops only (no tensorflow-io), so a model holding it
saves to a SavedModel that plain TensorFlow loads and TFLite converts with builtin ops. Neither layer has
weights (a seed generator's state, where they draw, is no weight).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tuner_app.constants import CLIP_SAMPLES
from tuner_app.errors import TunerAppError
from tuner_app.features.frontend import VTLP_BOUNDARY_HZ, FrontendConfig, features, output_shape


@keras.saving.register_keras_serializable(package="tuner_app")
class Frontend(keras.layers.Layer):
    """Waveforms [batch, 16000] float32 to `features(waveforms, config)`, [batch, *output_shape(config)].

    In training with `vtlp_alpha` > 0, each clip's frequency axis is warped by a factor drawn uniformly from
    [1 - vtlp_alpha, 1 + vtlp_alpha]; otherwise (inference, export) it is exactly `features(waveforms, config)`.
    """

    def __init__(self, config: FrontendConfig, vtlp_alpha: float = 0.0,
                 vtlp_boundary_hz: float = VTLP_BOUNDARY_HZ, seed: int | None = None, **kwargs):
        # The STFT and logs need float32 even where a mixed-precision policy is set globally.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.config = config
        self.vtlp_alpha, self.vtlp_boundary_hz, self.seed = float(vtlp_alpha), float(vtlp_boundary_hz), seed
        # Only a warping front-end draws: the others keep no seed state, as before VTLP.
        self.seed_generator = keras.random.SeedGenerator(seed) if self.warps else None

    @property
    def warps(self) -> bool:
        return self.vtlp_alpha > 0 and self.config.kind != "waveform"

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] not in (None, CLIP_SAMPLES):
            raise TunerAppError(
                f"frontend: expects waveforms of shape [batch, {CLIP_SAMPLES}], got {tuple(input_shape)}"
            )

    def call(self, waveforms, training=None):
        if not training or not self.warps:
            return features(waveforms, self.config)
        draws = keras.random.uniform(tf.shape(waveforms)[:1], seed=self.seed_generator, dtype="float32")
        factors = 1.0 + self.vtlp_alpha * (2.0 * draws - 1.0)
        return features(waveforms, self.config, warp=factors, warp_boundary_hz=self.vtlp_boundary_hz)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *output_shape(self.config))

    def get_config(self) -> dict[str, Any]:
        # VTLP's keys only where it warps, so a front-end without it keeps the config it always had.
        vtlp = {"vtlp_alpha": self.vtlp_alpha, "vtlp_boundary_hz": self.vtlp_boundary_hz,
                "seed": self.seed} if self.vtlp_alpha > 0 else {}
        return {**super().get_config(), "config": self.config.to_dict(), **vtlp}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Frontend:
        config = dict(config)
        frontend_config = FrontendConfig.from_dict(config.pop("config"))
        return cls(frontend_config, **config)


@keras.saving.register_keras_serializable(package="tuner_app")
class SpecAugment(keras.layers.Layer):
    """Training-only masks on features [batch, freq, time, 1]: per clip, one frequency band of width uniform
    in [0, freq_mask) and one time band of width uniform in [0, time_mask), each at a uniform position.

    Masked cells take the clip's mean: on a log scale zero is a loud band, not silence.
    Identity when `training` is False or None.
    """

    def __init__(self, freq_mask: int, time_mask: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        for key, value in (("freq_mask", freq_mask), ("time_mask", time_mask)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TunerAppError(f"{key}: expected an int >= 0, got {value!r}")
        self.freq_mask = freq_mask
        self.time_mask = time_mask
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise TunerAppError(f"spec_augment: expects features [batch, freq, time, 1], got {tuple(input_shape)}")

    def call(self, inputs, training=None):
        if not training or (self.freq_mask == 0 and self.time_mask == 0):
            return inputs
        shape = tf.shape(inputs)
        batch, freq, time = shape[0], shape[1], shape[2]
        freq_band = self._band(batch, freq, self.freq_mask)[:, :, tf.newaxis, tf.newaxis]
        time_band = self._band(batch, time, self.time_mask)[:, tf.newaxis, :, tf.newaxis]
        mean = tf.reduce_mean(inputs, axis=[1, 2, 3], keepdims=True)
        return tf.where(tf.logical_or(freq_band, time_band), mean, inputs)

    def _band(self, batch, size, max_width: int):
        """[batch, size] booleans: per clip, True on one band of width uniform in [0, max_width) starting
        uniformly in [0, size - width) (tfio's draw), so a band never covers the whole axis."""
        size_float = tf.cast(size, tf.float32)
        # min(...) keeps at least one cell unmasked where max_width exceeds the axis.
        width = tf.floor(self._uniform(batch) * tf.minimum(float(max_width), size_float))
        start = tf.floor(self._uniform(batch) * (size_float - width))
        positions = tf.cast(tf.range(size), tf.float32)[tf.newaxis, :]
        return tf.logical_and(positions >= start[:, tf.newaxis], positions < (start + width)[:, tf.newaxis])

    def _uniform(self, batch):
        return keras.random.uniform(tf.reshape(batch, [1]), seed=self.seed_generator, dtype="float32")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        masks = {"freq_mask": self.freq_mask, "time_mask": self.time_mask, "seed": self.seed}
        return {**super().get_config(), **masks}


def frontend_layers(config: FrontendConfig, freq_mask: int = 0, time_mask: int = 0, vtlp_alpha: float = 0.0,
                    vtlp_boundary_hz: float = VTLP_BOUNDARY_HZ) -> list[keras.layers.Layer]:
    """The layers that turn a model's waveform input into features: [Frontend] (warping in training where
    `vtlp_alpha` > 0), plus SpecAugment where a mask is asked for and the features are spectral (a waveform has
    no frequency axis to mask)."""
    layers: list[keras.layers.Layer] = [Frontend(config, vtlp_alpha, vtlp_boundary_hz, name="frontend")]
    if (freq_mask > 0 or time_mask > 0) and config.kind != "waveform":
        layers.append(SpecAugment(freq_mask, time_mask, name="spec_augment"))
    return layers
