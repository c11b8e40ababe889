"""Architecture arithmetic of the seed CNN family: feature-map shapes, exact parameter counts and MACs,
computed without building anything (reproduces the seed study's counts with batch_norm off).

For each conv layer i: Conv(filters * filter_growth**i, kernel_size, 'valid') -> [BatchNormalization] ->
ReLU -> MaxPooling(pool_size, 'same'); then Flatten or GlobalAveragePooling; then fc_layers x
(Dense(fc_units_k, relu), Dropout(dropout)); then Dense(n_classes, softmax).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from tuner_app.errors import InfeasibleConfig
from tuner_app.features.frontend import output_shape
from tuner_app.model.spaces import SearchSpace

N_CLASSES = 16


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
