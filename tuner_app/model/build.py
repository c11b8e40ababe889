"""The Keras model of a configuration, and the keras_tuner.HyperModel over a search space.

The model takes the raw 16 kHz waveform: its first layer is the front-end (`features.layers.Frontend`, the one
`features` function), then SpecAugment while training, then the family's spec of blocks. So one cached
waveform dataset feeds every trial whatever its front-end, and an export carries its front-end inside.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras_tuner

from tuner_app.constants import CLIP_SAMPLES
from tuner_app.features.augment_config import AugmentConfig
from tuner_app.model import spec
from tuner_app.model.architecture import N_CLASSES, blocks, frontend_config, model_name, walk
from tuner_app.model.recipe import compile_model
from tuner_app.model.spaces import SearchSpace, declare


def build_model(space: SearchSpace, values: Mapping[str, Any], n_classes: int = N_CLASSES, *,
                steps_per_epoch: int = 1, augment: AugmentConfig | None = None):
    """Build and compile the model of one configuration (raises InfeasibleConfig first). `augment` adds its
    SpecAugment masks (the space's by default); `steps_per_epoch` sizes the learning-rate schedule."""
    import keras

    from tuner_app.features.layers import frontend_layers

    walk(space, values, n_classes)
    augment = space.augment if augment is None else augment
    x = inputs = keras.Input((CLIP_SAMPLES,), name="waveform")
    for layer in frontend_layers(frontend_config(space, values), augment.freq_mask, augment.time_mask):
        x = layer(x)
    outputs = spec.apply(blocks(space, values, n_classes), x, n_classes)
    model = keras.Model(inputs, outputs, name=model_name(space, values))
    compile_model(model, values, steps_per_epoch=steps_per_epoch, epochs=epochs(space, values))
    return model


def epochs(space: SearchSpace, values: Mapping[str, Any]) -> int:
    """The configuration's training epochs: its `epochs` hyperparameter, else the space's `training.epochs`."""
    return values.get("epochs", space.training["epochs"])


def active_values(space: SearchSpace, hp) -> dict[str, Any]:
    """The values of the space's hyperparameters that are active on keras-tuner's `hp`."""
    return {name: hp.values[name] for name in space.hyperparameters if name in hp.values and hp.is_active(name)}


class CnnHyperModel(keras_tuner.HyperModel):
    """keras_tuner.HyperModel for a SearchSpace: every hp is declared before any value is read."""

    def __init__(self, space: SearchSpace, n_classes: int = N_CLASSES, steps_per_epoch: int = 1, **kwargs):
        super().__init__(name=space.model, **kwargs)
        self.space = space
        self.n_classes = n_classes
        self.steps_per_epoch = steps_per_epoch

    def declare_hyperparameters(self, hp) -> None:
        declare(hp, self.space)

    def build(self, hp):
        declare(hp, self.space)
        return build_model(self.space, active_values(self.space, hp), self.n_classes,
                           steps_per_epoch=self.steps_per_epoch)
