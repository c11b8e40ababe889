"""The seed CNN family as a keras_tuner.HyperModel, with analytic parameter counts and a dry run.

Architecture (reproduces the seed study's parameter counts with batch_norm off): for each conv layer i,
Conv(filters * filter_growth**i, kernel_size, 'valid') -> [BatchNormalization] -> ReLU ->
MaxPooling(pool_size, 'same'); then Flatten or GlobalAveragePooling; then fc_layers x (Dense(fc_units_k,
relu), Dropout(dropout)); then Dense(n_classes, softmax). Batch normalisation sits between the conv and
its activation (the usual placement); the conv keeps its bias so BN on only adds 4 params per channel.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, Mapping

import keras_tuner

from tuner_app.errors import TunerAppError
from tuner_app.frontend import output_shape
from tuner_app.spaces import SearchSpace, candidate_values, declare

N_CLASSES = 16
MAX_ENUMERATED = 1_000_000  # sizes are cheap arithmetic: a million configurations take a few seconds


class InfeasibleConfig(TunerAppError):
    """A configuration whose layers do not fit the input (e.g. a kernel larger than the feature map)."""


def _conv_channels(values: Mapping[str, Any], layer: int) -> int:
    return values["filters"] * values["filter_growth"] ** layer


def feature_shapes(space: SearchSpace, values: Mapping[str, Any]) -> list[tuple[int, ...]]:
    """Shape after each conv+pool block, starting with the input; raises InfeasibleConfig if one collapses."""
    shape = output_shape(space.frontend)
    shapes = [shape]
    kernel, pool = values["kernel_size"], values["pool_size"]
    for layer in range(values["conv_layers"]):
        spatial = shape[:-1]
        if any(size < kernel for size in spatial):
            raise InfeasibleConfig(_collapse_reason(layer, kernel, spatial))
        pooled = tuple(math.ceil((size - kernel + 1) / pool) for size in spatial)
        shape = (*pooled, _conv_channels(values, layer))
        shapes.append(shape)
    return shapes


def _collapse_reason(layer: int, kernel: int, spatial: tuple[int, ...]) -> str:
    kernel_text = "x".join([str(kernel)] * len(spatial))
    map_text = "x".join(str(size) for size in spatial)
    return f"conv layer {layer + 1}: {kernel_text} kernel does not fit the {map_text} feature map"


def count_params(space: SearchSpace, values: Mapping[str, Any], n_classes: int = N_CLASSES) -> dict[str, int]:
    """Exact parameter counts without building: params_total/trainable/conv (conv + BN)/fc (all Dense)."""
    shapes = feature_shapes(space, values)
    taps = values["kernel_size"] ** (len(shapes[0]) - 1)
    conv = batch_norm = 0
    for before, after in zip(shapes, shapes[1:]):
        conv += taps * before[-1] * after[-1] + after[-1]
        batch_norm += 4 * after[-1] if values["batch_norm"] else 0
    fc = sum(inputs * units + units for inputs, units in _dense_layers(values, shapes[-1], n_classes))
    total = conv + batch_norm + fc
    # BN's moving mean and variance (half its parameters) are not trainable.
    return {"params_total": total, "params_trainable": total - batch_norm // 2,
            "params_conv": conv + batch_norm, "params_fc": fc}


def count_macs(space: SearchSpace, values: Mapping[str, Any], n_classes: int = N_CLASSES) -> int:
    """Multiply-accumulates per clip of the convolutions and Dense layers (pooling, BN, ReLU left out)."""
    shapes = feature_shapes(space, values)
    taps = values["kernel_size"] ** (len(shapes[0]) - 1)
    macs = 0
    for before, after in zip(shapes, shapes[1:]):
        conv_outputs = math.prod(size - values["kernel_size"] + 1 for size in before[:-1])
        macs += conv_outputs * taps * before[-1] * after[-1]
    return macs + sum(inputs * units for inputs, units in _dense_layers(values, shapes[-1], n_classes))


def _dense_layers(values: Mapping[str, Any], last_shape: tuple[int, ...], n_classes: int) -> list[tuple[int, int]]:
    """(inputs, units) of every Dense layer after the head, the softmax included."""
    width = math.prod(last_shape) if values["head"] == "flatten" else last_shape[-1]
    layers = []
    for units in [*_fc_units(values), n_classes]:
        layers.append((width, units))
        width = units
    return layers


def _fc_units(values: Mapping[str, Any]) -> list[int]:
    return [values[f"fc_units_{layer}"] for layer in range(1, values["fc_layers"] + 1)]


def build_model(space: SearchSpace, values: Mapping[str, Any], n_classes: int = N_CLASSES):
    """Build and compile the Keras model for one configuration (raises InfeasibleConfig first)."""
    import keras

    feature_shapes(space, values)
    two_d = space.model == "cnn2d"
    conv, pool = (keras.layers.Conv2D, keras.layers.MaxPooling2D) if two_d else (
        keras.layers.Conv1D, keras.layers.MaxPooling1D)
    inputs = keras.Input(output_shape(space.frontend))
    x = inputs
    for layer in range(values["conv_layers"]):
        x = conv(_conv_channels(values, layer), values["kernel_size"], padding="valid")(x)
        if values["batch_norm"]:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = pool(values["pool_size"], padding="same")(x)
    x = _head(keras, values["head"], two_d)(x)
    for units in _fc_units(values):
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(values["dropout"])(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name=space.model)
    model.compile(optimizer=keras.optimizers.Adam(values["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _head(keras, head: str, two_d: bool):
    if head == "flatten":
        return keras.layers.Flatten()
    return keras.layers.GlobalAveragePooling2D() if two_d else keras.layers.GlobalAveragePooling1D()


class CnnHyperModel(keras_tuner.HyperModel):
    """keras_tuner.HyperModel for a SearchSpace: every hp is declared before any value is read."""

    def __init__(self, space: SearchSpace, n_classes: int = N_CLASSES, **kwargs):
        super().__init__(name=space.model, **kwargs)
        self.space = space
        self.n_classes = n_classes

    def declare_hyperparameters(self, hp) -> None:
        declare(hp, self.space)

    def build(self, hp):
        declare(hp, self.space)
        values = {name: hp.get(name) for name in self.space.hyperparameters}
        return build_model(self.space, values, self.n_classes)


def is_grid(space: SearchSpace) -> bool:
    """True if every hyperparameter has a finite list of values."""
    return all(candidate_values(spec) is not None for spec in space.hyperparameters.values())


def configurations(space: SearchSpace, trials: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The full grid in YAML key order (first key outermost), or `trials` seeded random samples."""
    if trials is None and is_grid(space):
        names = list(space.hyperparameters)
        grids = [candidate_values(space.hyperparameters[name]) for name in names]
        return [dict(zip(names, combo)) for combo in itertools.product(*grids)]
    trials = trials if trials is not None else space.tuner.get("max_trials")
    if trials is None:
        raise TunerAppError(f"{space.source}: the space has continuous hyperparameters; "
                            "give a number of trials to sample")
    return _sample(space, trials, seed)


def _sample(space: SearchSpace, trials: int, seed: int) -> list[dict[str, Any]]:
    hp = keras_tuner.HyperParameters()
    declare(hp, space)
    rng = random.Random(seed)
    return [{item.name: item.random_sample(rng.randrange(2**31)) for item in hp.space} for _ in range(trials)]


def _size_candidates(spec: Mapping[str, Any]) -> list:
    values = candidate_values(spec)
    if values is not None:
        return values
    if spec["type"] == "int":  # log-sampled ints still take every step
        return list(range(spec["min_value"], spec["max_value"] + 1, spec.get("step") or 1))
    return [spec["min_value"]]  # floats (dropout, learning rate) do not change the size


def smallest_configuration(space: SearchSpace, n_classes: int = N_CLASSES) -> tuple[int, dict] | None:
    """(params, values) of the smallest feasible configuration; None if none is feasible.

    Raises TunerAppError if the space is too large to enumerate (more than MAX_ENUMERATED sizes).
    """
    names = list(space.hyperparameters)
    grids = [_size_candidates(space.hyperparameters[name]) for name in names]
    if math.prod(len(grid) for grid in grids) > MAX_ENUMERATED:
        raise TunerAppError(f"{space.source}: too many configurations to find the smallest")
    best = None
    for combo in itertools.product(*grids):
        values = dict(zip(names, combo))
        try:
            params = count_params(space, values, n_classes)["params_total"]
        except InfeasibleConfig:
            continue
        if best is None or params < best[0]:
            best = (params, values)
    return best


def check_budget(space: SearchSpace, max_params: int | None, n_classes: int = N_CLASSES) -> None:
    """Raise TunerAppError, before any training, if no configuration of the space fits the budget."""
    try:
        smallest = smallest_configuration(space, n_classes)
    except TunerAppError:
        return  # too large to enumerate: the search itself reports a budget nothing meets
    if smallest is None:
        raise TunerAppError(f"{space.source}: every configuration of the space is infeasible")
    params, values = smallest
    if max_params is not None and params > max_params:
        searched = ", ".join(f"{name}={values[name]}" for name, spec in space.hyperparameters.items()
                             if spec["type"] not in ("fixed", "float"))
        raise TunerAppError(f"{space.source}: no configuration fits --max-params {max_params:,}; the smallest "
                            f"has {params:,} params ({searched})")


def dry_run(space: SearchSpace, trials: int | None = None, seed: int = 0,
            max_params: int | None = None) -> list[dict[str, Any]]:
    """One row per configuration: hyperparameters, params (None if infeasible), params_conv/fc, infeasible,
    and with a budget, over_budget."""
    rows = []
    for values in configurations(space, trials, seed):
        try:
            counts = count_params(space, values)
            rows.append({"hyperparameters": values, "params": counts["params_total"],
                         "params_conv": counts["params_conv"], "params_fc": counts["params_fc"],
                         "infeasible": None})
        except InfeasibleConfig as err:
            rows.append({"hyperparameters": values, "params": None, "params_conv": None,
                         "params_fc": None, "infeasible": str(err)})
    if max_params is not None:
        for row in rows:
            row["over_budget"] = row["params"] is not None and row["params"] > max_params
    return rows
