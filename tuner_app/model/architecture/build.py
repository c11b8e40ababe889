"""The Keras model of a configuration, and the keras_tuner.HyperModel over a search space.

The model takes the raw 16 kHz waveform: its first layer is the front-end (`features.layers.Frontend`, the one
`features` function, warped by VTLP while training), then SpecAugment while training, then the family's spec of
blocks. So one cached waveform dataset feeds every trial whatever its front-end, and an export carries its
front-end inside.

Each trial augments with the space's `augment:` settings overridden by the augment keys among its
hyperparameters (`trial_augment`): in its model (VTLP, SpecAugment, mixup's loss) and, where some augment key is
searched, in its own map of the shared un-augmented training batches (`CnnHyperModel.train_data`).
"""

from __future__ import annotations

from typing import Any, Mapping

import keras_tuner

from tuner_app.constants import CLIP_SAMPLES
from tuner_app.errors import TunerAppError
from tuner_app.features.augment_config import ORDERED_PAIRS, AugmentConfig
from tuner_app.model.architecture import spec
from tuner_app.model.architecture.configured import N_CLASSES, blocks, frontend_config, model_name, walk
from tuner_app.model.space import hyperparameters as hps
from tuner_app.model.space.known_hyperparameters import AUGMENT_FIELDS
from tuner_app.model.space.recipe import compile_model
from tuner_app.model.space.search_space import SearchSpace, declare


def build_model(space: SearchSpace, values: Mapping[str, Any], n_classes: int = N_CLASSES, *,
                steps_per_epoch: int = 1, augment: AugmentConfig | None = None):
    """Build and compile the model of one configuration (raises InfeasibleConfig first). `augment` adds its
    VTLP warp and SpecAugment masks, and mixup's loss (the configuration's, `trial_augment`, by default);
    `steps_per_epoch` sizes the learning-rate schedule."""
    import keras

    from tuner_app.features.layers import frontend_layers

    walk(space, values, n_classes)
    augment = trial_augment(space, values) if augment is None else augment
    x = inputs = keras.Input((CLIP_SAMPLES,), name="waveform")
    for layer in frontend_layers(frontend_config(space, values), augment.freq_mask, augment.time_mask,
                                 augment.vtlp_alpha, augment.vtlp_boundary_hz):
        x = layer(x)
    outputs = spec.apply(blocks(space, values, n_classes), x, n_classes)
    model = keras.Model(inputs, outputs, name=model_name(space, values))
    compile_model(model, values, steps_per_epoch=steps_per_epoch, epochs=epochs(space, values),
                  mixed_labels=augment.mixup_alpha > 0)
    return model


def epochs(space: SearchSpace, values: Mapping[str, Any]) -> int:
    """The configuration's training epochs: its `epochs` hyperparameter, else the space's `training.epochs`."""
    return values.get("epochs", space.training["epochs"])


def active_values(space: SearchSpace, hp) -> dict[str, Any]:
    """The values of the space's hyperparameters that are active on keras-tuner's `hp`."""
    return {name: hp.values[name] for name in space.hyperparameters if name in hp.values and hp.is_active(name)}


def trial_augment(space: SearchSpace, values: Mapping[str, Any]) -> AugmentConfig:
    """The configuration's augmentation: the space's `augment:`, with the augment keys it sets as hyperparameters."""
    return space.augment.overridden(values, where=f"{space.source}: augment with this trial's hyperparameters")


def augment_searched(space: SearchSpace) -> bool:
    """Whether some augment key is a hyperparameter: then each trial augments the training batches its own way."""
    return any(name in space.hyperparameters for name in AUGMENT_FIELDS)


def check_augment_bounds(space: SearchSpace) -> None:
    """TunerAppError, before any trial, where the augment hyperparameters could give a trial an unordered pair
    (speed_min above speed_max, say): each pair's low key at its largest value against its high key at its
    smallest, the space's `augment:` value where a key is not searched."""
    for low, high in ORDERED_PAIRS:
        largest, smallest = _augment_bound(space, low, max), _augment_bound(space, high, min)
        if largest > smallest:
            searched = low if low in space.hyperparameters else high
            raise TunerAppError(f"{space.source}: hyperparameters.{searched}: a trial could have {low} {largest} "
                                f"above {high} {smallest}")


def _augment_bound(space: SearchSpace, name: str, pick):
    spec = space.hyperparameters.get(name)
    return getattr(space.augment, name) if spec is None else hps.bound(spec, pick)


class CnnHyperModel(keras_tuner.HyperModel):
    """keras_tuner.HyperModel for a SearchSpace: every hp is declared before any value is read."""

    def __init__(self, space: SearchSpace, n_classes: int = N_CLASSES, steps_per_epoch: int = 1, noise=None,
                 **kwargs):
        super().__init__(name=space.model, **kwargs)
        check_augment_bounds(space)
        self.space = space
        self.n_classes = n_classes
        self.steps_per_epoch = steps_per_epoch
        self.noise = noise  # the background-noise bank that trials mixing noise draw from

    def declare_hyperparameters(self, hp) -> None:
        declare(hp, self.space)

    def build(self, hp):
        declare(hp, self.space)
        return build_model(self.space, active_values(self.space, hp), self.n_classes,
                           steps_per_epoch=self.steps_per_epoch)

    def train_data(self, dataset, values: Mapping[str, Any]):
        """The training batches of the configuration `values`: `dataset` as it is where no augment key is
        searched (make_dataset augmented it with the space's settings), else through the configuration's own."""
        if not augment_searched(self.space):
            return dataset
        from tuner_app.features.dataset import augmented

        return augmented(dataset, trial_augment(self.space, values), self.noise, self.n_classes)
