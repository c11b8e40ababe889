"""Architecture families: each maps its hyperparameters' values to a spec of blocks (`spec.walk` sizes it,
`spec.build` builds it). A space searches one family (`model: cnn2d`, `dscnn`, ...) or several (`model: family`
with a `family` hyperparameter), each family's hyperparameters then in the conditional scope of its value.

`seed`: the seed study's plain stacks, 1D on the waveform (`cnn1d`) and 2D on a spectrogram (`cnn2d`): the
walk reproduces the seed's published parameter counts. `dscnn`, `tcresnet`, `bcresnet`: kws_families.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner_app.model.architecture import kws_families
from tuner_app.model.architecture.blocks import (
    Block,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePool,
    Pool,
)

HEADS = ("flatten", "gap")
FC_UNITS = re.compile(r"fc_units_([1-9][0-9]*)$")
# Parents of the seed's FC hyperparameters: fc_units_K and dropout exist only in configurations with FC layers
# to use them (fc_layers=0 would otherwise make 12 aliases of one model in cnn2d).
Condition = tuple[str, Callable[[Any], bool]]


@dataclass(frozen=True)
class Family:
    """A family's hyperparameters (name -> default; the value's type is the hp's), the allowed values of its
    string hps, and its spec: (values of its active hps, n_classes) -> blocks (the walk appends a softmax
    classifier unless the spec ends in one). `fc_stack`: the family has the seed's FC stack, so it also owns
    fc_units_K for any K, and fc_units_K and dropout are active only for the fc_layers values that use them."""

    name: str
    hyperparameters: Mapping[str, Any]
    spec: Callable[[Mapping[str, Any], int], list[Block]]
    strings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fc_stack: bool = False

    def owns(self, name: str) -> bool:
        return name in self.hyperparameters or (self.fc_stack and bool(FC_UNITS.match(name)))

    def value_type(self, name: str) -> type:
        return type(self.hyperparameters.get(name, 1))

    def condition(self, name: str) -> Condition | None:
        """(parent, which of its values activate `name`), or None if `name` is always active in the family."""
        if not self.fc_stack:
            return None
        match = FC_UNITS.match(name)
        if match:
            depth = int(match.group(1))
            return "fc_layers", lambda layers: layers >= depth
        return ("fc_layers", lambda layers: layers >= 1) if name == "dropout" else None


SEED_HYPERPARAMETERS: dict[str, Any] = {
    "conv_layers": 2, "filters": 8, "filter_growth": 2, "kernel_size": 5, "pool_size": 2, "batch_norm": False,
    "head": "flatten", "fc_layers": 1, "fc_units_1": 1024, "fc_units_2": 512, "dropout": 0.5,
}
SEED_1D_DEFAULTS = {"kernel_size": 25, "pool_size": 4}  # the seed's 1D stacks on the raw waveform


def seed_spec(values: Mapping[str, Any], n_classes: int | None = None) -> list[Block]:
    """The seed stack of one configuration, without its classifier (the walk and build append the softmax).

    Per conv layer i: Conv(filters * filter_growth**i, kernel_size, 'valid'), keeping its bias under batch
    norm, -> [BN] -> ReLU -> MaxPool(pool_size, 'same'); then flatten or GAP; then fc_layers x (Dense(relu),
    Dropout). The kernel and pool are square: one size serves the 1D and the 2D input alike.
    """
    return [*_conv_stack(values), _head(values["head"]), *_fc_stack(values)]


def _conv_stack(values: Mapping[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    for layer in range(values["conv_layers"]):
        blocks.append(Conv(values["filters"] * values["filter_growth"] ** layer, kernel=values["kernel_size"],
                           padding="valid", use_bias=True, batch_norm=bool(values["batch_norm"]),
                           activation="relu"))
        blocks.append(Pool("max", size=values["pool_size"], padding="same"))
    return blocks


def _head(head: str) -> Block:
    return Flatten() if head == "flatten" else GlobalAveragePool()


def _fc_stack(values: Mapping[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    for layer in range(1, values["fc_layers"] + 1):
        blocks += [Dense(values[f"fc_units_{layer}"], activation="relu"), Dropout(values["dropout"])]
    return blocks


FAMILIES: dict[str, Family] = {
    "seed": Family("seed", SEED_HYPERPARAMETERS, seed_spec, {"head": HEADS}, fc_stack=True),
    "dscnn": Family("dscnn", kws_families.DSCNN_HYPERPARAMETERS, kws_families.dscnn_spec),
    "tcresnet": Family("tcresnet", kws_families.TCRESNET_HYPERPARAMETERS, kws_families.tcresnet_spec),
    "bcresnet": Family("bcresnet", kws_families.BCRESNET_HYPERPARAMETERS, kws_families.bcresnet_spec),
}
# What `model:` in a space names: one family (cnn1d/cnn2d are the seed's on the waveform/spectrogram).
MODEL_FAMILY = {"cnn1d": "seed", "cnn2d": "seed", "dscnn": "dscnn", "tcresnet": "tcresnet", "bcresnet": "bcresnet"}


def family_defaults(family: str, model: str) -> dict[str, Any]:
    """Every hyperparameter of the family with its default (the seed's 1D stacks take longer kernels)."""
    defaults = dict(FAMILIES[family].hyperparameters)
    return {**defaults, **SEED_1D_DEFAULTS} if model == "cnn1d" else defaults


def family_spec(family: str, values: Mapping[str, Any], n_classes: int) -> list[Block]:
    """The spec of a configuration of `family` (values of its active hyperparameters)."""
    return FAMILIES[family].spec(values, n_classes)
