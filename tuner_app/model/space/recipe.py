"""The training recipe as hyperparameters: optimizer, learning rate and its schedule, weight decay, label
smoothing and batch-norm momentum. Their names are the YAML keys, the keras-tuner hp names and the MLflow
params; a configuration that leaves one out trains with its default (`RECIPE_HYPERPARAMETERS`).

- optimizer: adam | adamw | sgd (SGD with momentum 0.9, Nesterov). Keras 3 gives every optimizer the same
  decoupled weight decay, so `adam` and `adamw` train alike once weight_decay > 0: a space needs only one.
- lr_schedule: constant | cosine (cosine decay to 0 at the last training step). Either starts with a linear
  warm-up from 0 to learning_rate over `warmup_epochs` epochs, which must be fewer than the training epochs.
- weight_decay: decoupled, scaled by the current learning rate each step (as PyTorch's AdamW), and not
  applied to biases, nor to normalisation scales and offsets (batch norm, and SubSpectralNorm, which is a
  BatchNormalization layer in `residual_blocks`).
- label_smoothing: cross-entropy against smoothed one-hot targets built from the integer labels (Keras's
  SparseCategoricalCrossentropy has none); labels stay sparse integers either way.
- mixup (`augment.mixup_alpha` > 0, not a recipe hp: the training batches carry it): the training labels are
  soft targets [batch, classes] (features.augment.mixed), validation's stay integers. The model is then compiled
  with a loss and an accuracy that take both (`mixed_labels`): cross-entropy against the soft targets, which is
  the mix of the two clips' cross-entropies, and accuracy against the dominant label.
- batch_norm_momentum: every BatchNormalization layer's. 0.9 by default, not Keras's 0.99: that assumes
  thousands of steps, and on FSDD's ~38 steps an epoch models with batch norm sat at chance. 0.9 is
  PyTorch's default and BC-ResNet's.

Keras is imported inside functions only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from tuner_app.errors import TunerAppError

RECIPE_HYPERPARAMETERS: dict[str, Any] = {
    "optimizer": "adam",
    "learning_rate": 0.001,
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
    "batch_norm_momentum": 0.9,
}
RECIPE_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "adamw", "sgd"),
    "lr_schedule": ("constant", "cosine"),
}
# [low, high) of the numeric hps (high None: unbounded), except that learning_rate must also be above 0.
RECIPE_DOMAINS: dict[str, tuple[float, float | None]] = {
    "learning_rate": (0.0, None),
    "warmup_epochs": (0, None),
    "weight_decay": (0.0, None),
    "label_smoothing": (0.0, 1.0),
    "batch_norm_momentum": (0.0, 1.0),
}
EXCLUSIVE_LOW = frozenset({"learning_rate"})
INTEGER_HYPERPARAMETERS = frozenset({"warmup_epochs"})
SGD_MOMENTUM = 0.9
# Matched against the variable's last path part: the TF backend checks tf.Variable names ("blk_bn/gamma:0"),
# and a bare substring would also exempt the kernel of a layer whose name holds "bias" or "beta".
NO_DECAY_NAMES = [rf"(?:^|/){name}(?::\d+)?$" for name in ("bias", "gamma", "beta")]


def compile_model(model, values: Mapping[str, Any], *, steps_per_epoch: int, epochs: int,
                  mixed_labels: bool = False) -> None:
    """Set the batch-norm momentum of `model` and compile it with the recipe in `values` (which may hold
    other hps: only the recipe's keys are read, missing ones take their defaults). Labels are sparse
    integers, or also mixup's soft targets with `mixed_labels`; the metric is accuracy named "accuracy" (so
    "val_accuracy" in the history)."""
    import keras

    recipe = recipe_values(values)
    set_batch_norm_momentum(model, recipe["batch_norm_momentum"])
    accuracy = mixed_label_accuracy() if mixed_labels else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=build_optimizer(recipe, steps_per_epoch=steps_per_epoch, epochs=epochs),
                  loss=build_loss(recipe["label_smoothing"], mixed_labels), metrics=[accuracy])


def recipe_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe's hps from `values`, defaults filled in; raises TunerAppError naming an invalid one."""
    recipe = {name: values.get(name, default) for name, default in RECIPE_HYPERPARAMETERS.items()}
    for name, value in recipe.items():
        if name in RECIPE_CHOICES:
            _check_choice(name, value)
        else:
            _check_number(name, value)
    return recipe


def _check_choice(name: str, value: Any) -> None:
    choices = RECIPE_CHOICES[name]
    if value not in choices or not isinstance(value, str):
        raise TunerAppError(f"{name}: expected one of {list(choices)}, got {value!r}")


def _check_number(name: str, value: Any) -> None:
    kind = Integral if name in INTEGER_HYPERPARAMETERS else Real
    low, high = RECIPE_DOMAINS[name]
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        raise TunerAppError(f"{name}: expected {_domain_text(name)}, got {value!r}")
    above_low = value > low if name in EXCLUSIVE_LOW else value >= low
    if not above_low or (high is not None and value >= high):
        raise TunerAppError(f"{name}: expected {_domain_text(name)}, got {value!r}")


def _domain_text(name: str) -> str:
    noun = "an int" if name in INTEGER_HYPERPARAMETERS else "a number"
    low, high = RECIPE_DOMAINS[name]
    if high is not None:
        return f"{noun} in [{low}, {high})"
    return f"{noun} {'>' if name in EXCLUSIVE_LOW else '>='} {low}"


def set_batch_norm_momentum(model, momentum: float) -> None:
    """Set the momentum of every BatchNormalization layer in `model`, nested models included."""
    import keras

    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def _all_layers(layer):
    yield layer
    for inner in getattr(layer, "layers", ()):
        yield from _all_layers(inner)


def learning_rate_schedule(recipe: Mapping[str, Any], *, steps_per_epoch: int, epochs: int):
    """The learning rate: a float, or a Keras schedule of the optimizer step (warm-up, cosine)."""
    import keras

    _check_steps(steps_per_epoch, epochs)
    peak, warmup_epochs = recipe["learning_rate"], recipe["warmup_epochs"]
    if warmup_epochs >= epochs:
        raise TunerAppError(f"warmup_epochs: expected fewer than the {epochs} training epochs, got {warmup_epochs}")
    if recipe["lr_schedule"] == "constant" and warmup_epochs == 0:
        return float(peak)
    warmup_steps = warmup_epochs * steps_per_epoch
    decay_steps = (epochs - warmup_epochs) * steps_per_epoch
    # alpha=1 keeps the rate at its peak after the warm-up: the stock schedule with no decay, for constant.
    alpha = 1.0 if recipe["lr_schedule"] == "constant" else 0.0
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(float(peak), decay_steps, alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps, alpha=alpha, warmup_target=float(peak),
                                                  warmup_steps=warmup_steps)


def _check_steps(steps_per_epoch: int, epochs: int) -> None:
    for name, value in (("steps_per_epoch", steps_per_epoch), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise TunerAppError(f"{name}: expected an int >= 1, got {value!r}")


def build_optimizer(recipe: Mapping[str, Any], *, steps_per_epoch: int, epochs: int):
    """The recipe's Keras optimizer, its learning-rate schedule and weight decay (biases and norm params
    exempt). `recipe` holds every recipe hp (see `recipe_values`)."""
    import keras

    learning_rate = learning_rate_schedule(recipe, steps_per_epoch=steps_per_epoch, epochs=epochs)
    decay = float(recipe["weight_decay"])
    name = recipe["optimizer"]
    if name == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=decay)
    elif name == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate, momentum=SGD_MOMENTUM, nesterov=True,
                                         weight_decay=decay or None)
    else:
        optimizer = keras.optimizers.Adam(learning_rate, weight_decay=decay or None)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY_NAMES)
    return optimizer


def build_loss(label_smoothing: float, mixed_labels: bool = False):
    """Cross-entropy of sparse integer labels against softmax probabilities, with labels smoothed if > 0;
    with `mixed_labels`, of integer labels or soft targets alike (`mixed_target_crossentropy`)."""
    import keras

    if mixed_labels:
        return mixed_target_crossentropy(label_smoothing)
    if label_smoothing == 0:
        return keras.losses.SparseCategoricalCrossentropy()
    return smoothed_sparse_crossentropy(label_smoothing)


def smoothed_sparse_crossentropy(label_smoothing: float):
    """A loss function of (integer labels, probabilities): categorical cross-entropy against the labels'
    one-hot vectors smoothed by `label_smoothing` (Keras's own smoothing, which needs one-hot labels)."""

    def sparse_categorical_crossentropy_smoothed(y_true, y_pred):
        import keras
        from keras import ops

        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        one_hot = ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=label_smoothing)

    return sparse_categorical_crossentropy_smoothed


def _is_soft(y_true, y_pred) -> bool:
    """Whether `y_true` holds soft targets [batch, classes], not integer labels ([batch] or [batch, 1]): the
    static shapes say, as training's and validation's steps are traced apart."""
    classes = y_pred.shape[-1]
    return len(y_true.shape) == 2 and y_true.shape[-1] == classes and classes != 1


def _targets(y_true, y_pred):
    """The probabilities to fit: soft targets as they are, integer labels as one-hot vectors."""
    from keras import ops

    if _is_soft(y_true, y_pred):
        return ops.cast(y_true, y_pred.dtype)
    return ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), y_pred.shape[-1], dtype=y_pred.dtype)


def mixed_target_crossentropy(label_smoothing: float):
    """A loss of (integer labels or soft targets, probabilities): categorical cross-entropy against the targets,
    smoothed by `label_smoothing`. Linear in the targets, so mixup's w * a + (1 - w) * b gives w * CE(a) +
    (1 - w) * CE(b)."""

    def crossentropy_of_mixed_targets(y_true, y_pred):
        import keras

        return keras.losses.categorical_crossentropy(_targets(y_true, y_pred), y_pred, label_smoothing=label_smoothing)

    return crossentropy_of_mixed_targets


def mixed_label_accuracy():
    """Accuracy named "accuracy" of integer labels (validation: exactly sparse accuracy) or soft targets (mixup's
    training batches: against the clip's dominant label)."""
    import keras

    def accuracy_of_mixed_targets(y_true, y_pred):
        if _is_soft(y_true, y_pred):
            return keras.metrics.categorical_accuracy(y_true, y_pred)
        return keras.metrics.sparse_categorical_accuracy(y_true, y_pred)

    return keras.metrics.MeanMetricWrapper(accuracy_of_mixed_targets, name="accuracy")
