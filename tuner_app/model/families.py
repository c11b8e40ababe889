"""Architecture families as specs of blocks (`spec.walk` sizes them, `spec.build` builds them).

`seed`: the seed study's plain stacks, `cnn1d` on the waveform and `cnn2d` on the spectrogram. Block for
block they are what `build.build_model` builds and `architecture` counts today, so the search can move to the
walk without changing a single count: the seed grids keep their published parameter counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner_app.errors import TunerAppError
from tuner_app.model.blocks import (
    Block,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePool,
    Pool,
)
from tuner_app.model.spaces import SearchSpace

SEED_MODELS = ("cnn1d", "cnn2d")


def seed_spec(space: SearchSpace, values: Mapping[str, Any]) -> list[Block]:
    """The seed stack of one configuration, without its classifier (the walk and build append the softmax).

    Per conv layer i: Conv(filters * filter_growth**i, kernel_size, 'valid'), keeping its bias under batch
    norm, -> [BN] -> ReLU -> MaxPool(pool_size, 'same'); then flatten or GAP; then fc_layers x (Dense(relu),
    Dropout). The kernel and pool are square: one size serves the 1D and the 2D input alike.
    """
    if space.model not in SEED_MODELS:
        raise TunerAppError(f"{space.source}: model: {space.model!r} is not a seed model "
                            f"({', '.join(SEED_MODELS)})")
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
