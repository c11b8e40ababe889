"""An architecture spec: an ordered list of blocks (`blocks`). One walk over it gives every block's shapes and
sizes before anything is built, and refuses an infeasible spec naming the block; the build walks the same list.

The classifier: a spec that does not end in a softmax Dense gets one over `n_classes`, appended by both the
walk and the build (`with_head`), so a spec holds the features and the data decides the classes. Block i is
named `b<ii>_<kind>` (`block_name`); the Keras layers it builds are that name or start with it and `_`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuner_app.errors import InfeasibleConfig
from tuner_app.model.architecture.blocks import Block, Dense, Shape, format_shape


@dataclass(frozen=True)
class Row:
    """One block of the walk: its name, kind, shapes (no batch dimension) and sizes."""

    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    trainable: int
    non_trainable: int
    macs: int

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


@dataclass(frozen=True)
class Walk:
    """The walk of a spec: one row per block, then the totals."""

    rows: tuple[Row, ...]

    @property
    def output_shape(self) -> Shape:
        return self.rows[-1].output_shape

    @property
    def params_trainable(self) -> int:
        return sum(row.trainable for row in self.rows)

    @property
    def params_non_trainable(self) -> int:
        return sum(row.non_trainable for row in self.rows)

    @property
    def params_total(self) -> int:
        return self.params_trainable + self.params_non_trainable

    @property
    def macs(self) -> int:
        return sum(row.macs for row in self.rows)


def block_name(index: int, block: Block) -> str:
    return f"b{index:02d}_{block.kind}"


def with_head(blocks: Sequence[Block], n_classes: int | None) -> list[Block]:
    """The spec with its classifier: a softmax Dense over n_classes, unless the spec ends in one already."""
    if n_classes is None:
        return list(blocks)
    last = blocks[-1] if blocks else None
    if isinstance(last, Dense) and last.activation == "softmax":
        if last.units != n_classes:
            raise InfeasibleConfig(f"the spec ends in a softmax over {last.units} classes, the data has {n_classes}")
        return list(blocks)
    return [*blocks, Dense(n_classes, activation="softmax")]


def walk(blocks: Sequence[Block], input_shape: Sequence[int], n_classes: int | None = None) -> Walk:
    """Shapes and sizes of every block (and the classifier, given n_classes) without building anything."""
    if not blocks and n_classes is None:
        raise InfeasibleConfig("the spec has no blocks")
    shape, rows = tuple(input_shape), []
    for index, block in enumerate(with_head(blocks, n_classes)):
        name = block_name(index, block)
        try:
            output, sizes = block.output_shape(shape), block.sizes(shape)
        except InfeasibleConfig as error:
            raise InfeasibleConfig(f"{name}: {error}") from None
        rows.append(Row(name, block.kind, shape, output, sizes.trainable, sizes.non_trainable, sizes.macs))
        shape = output
    if n_classes is not None and len(rows[-1].input_shape) != 1:
        raise InfeasibleConfig(f"{rows[-1].name}: the classifier gets a {format_shape(rows[-1].input_shape)} map, "
                               "not a vector: end the spec with global_average_pool or flatten")
    return Walk(tuple(rows))


def build(blocks: Sequence[Block], input_shape: Sequence[int], n_classes: int, name: str = "spec") -> Any:
    """The uncompiled keras.Model of the spec (InfeasibleConfig, from the walk, before any layer is made)."""
    import keras

    walk(blocks, input_shape, n_classes)
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    return keras.Model(inputs, apply(blocks, inputs, n_classes), name=name)


def apply(blocks: Sequence[Block], x: Any, n_classes: int) -> Any:
    """The spec's layers, classifier included, called on the Keras tensor x (walk the spec first)."""
    for index, block in enumerate(with_head(blocks, n_classes)):
        x = block.build(x, block_name(index, block))
    return x
