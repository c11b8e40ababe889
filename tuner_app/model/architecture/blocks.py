"""Block types of an architecture spec: each holds its settings and gives its output shape, its exact sizes
(trainable and non-trainable parameters, MACs) and its Keras build, in one place.

Shapes leave out the batch dimension and put channels last: `(time, channels)` in 1D, `(freq, time,
channels)` in 2D; a conv or pooling block is 1D or 2D by the rank of its input. A block that cannot apply
raises InfeasibleConfig with the reason; the walk (`spec.walk`) names the block. `build(x, name)` names its
main Keras layer `name` and any other layer `name_<part>`, so a built layer maps back to its block.

MACs count the multiply-accumulates per clip of convolutions (depthwise included) and Dense layers, one
per kernel weight per output position; biases, batch normalisation, activations, pooling, dropout and
additions are left out. Keras is imported inside `build` only, so the arithmetic never loads TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from tuner_app.errors import InfeasibleConfig
from tuner_app.model.architecture.depthwise import depthwise_2d

Shape = tuple[int, ...]
PADDINGS = ("same", "valid")
POOL_MODES = ("max", "avg")


@dataclass(frozen=True)
class Sizes:
    """A block's (or a spec's) parameters, trainable and not (BN's moving mean and variance), and MACs."""

    trainable: int = 0
    non_trainable: int = 0
    macs: int = 0

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    def __add__(self, other: Sizes) -> Sizes:
        return Sizes(self.trainable + other.trainable, self.non_trainable + other.non_trainable,
                     self.macs + other.macs)


class Block:
    """The interface every block type implements; `kind` is its name in a spec (and in YAML)."""

    kind: ClassVar[str]

    def output_shape(self, input_shape: Shape) -> Shape:
        raise NotImplementedError

    def sizes(self, input_shape: Shape) -> Sizes:
        """Sizes of a block without weights (override for others); checks it applies to the input."""
        self.output_shape(input_shape)
        return Sizes()

    def build(self, x: Any, name: str) -> Any:
        raise NotImplementedError


def spatial_rank(input_shape: Shape, kind: str) -> int:
    """1 or 2: the spatial dimensions of a (time, channels) or (freq, time, channels) input."""
    if len(input_shape) not in (2, 3):
        raise InfeasibleConfig(f"{kind} needs a (time, channels) or (freq, time, channels) input, "
                               f"got {format_shape(input_shape)}")
    return len(input_shape) - 1


def per_axis(value: int | Sequence[int], rank: int, field: str) -> tuple[int, ...]:
    """An int, or one int per spatial axis, as one int per axis."""
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank:
        raise InfeasibleConfig(f"{field} {list(values)} has {len(values)} axes, the input has {rank}")
    positive(min(values), field)
    return values


def positive(value: int, field: str) -> None:
    if value < 1:
        raise InfeasibleConfig(f"{field} must be at least 1, not {value}")


def output_length(size: int, window: int, stride: int, padding: str) -> int:
    """Keras's output length along one axis: ceil(size / stride) with 'same', else the full windows."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1 if size >= window else 0


def sliding_window(input_shape: Shape, window: int | Sequence[int], stride: int | Sequence[int] | None,
                   padding: str, kind: str, window_field: str = "kernel") -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(window per axis, spatial output shape) of a conv or pool; raises InfeasibleConfig if an axis
    collapses to 0. A stride of None is the window, as in Keras's pooling."""
    rank = spatial_rank(input_shape, kind)
    check_choice(padding, PADDINGS, f"{kind} padding")
    window = per_axis(window, rank, f"{kind} {window_field}")
    stride = window if stride is None else per_axis(stride, rank, f"{kind} stride")
    spatial = input_shape[:-1]
    lengths = tuple(output_length(*axis, padding) for axis in zip(spatial, window, stride))
    if min(lengths) < 1:
        raise InfeasibleConfig(f"{kind} {format_shape(window)} with stride {format_shape(stride)} and {padding!r} "
                               f"padding does not fit the {format_shape(spatial)} feature map")
    return window, lengths


def batch_norm_sizes(channels: int) -> Sizes:
    """BatchNormalization over the channels: gamma and beta train, the moving mean and variance do not."""
    return Sizes(trainable=2 * channels, non_trainable=2 * channels)


def format_shape(shape: Sequence[int]) -> str:
    return "x".join(str(size) for size in shape)


def check_choice(value: str, choices: Sequence[str], field: str) -> None:
    if value not in choices:
        raise InfeasibleConfig(f"{field} must be one of {', '.join(choices)}, not {value!r}")


def keras_layers():
    """keras.layers, imported on the first build so that the arithmetic never loads TensorFlow."""
    import keras

    return keras.layers


def norm_and_activation(x: Any, name: str, batch_norm: bool, activation: str | None) -> Any:
    """[BatchNormalization `name_bn`] -> [Activation `name_act`] on x."""
    layers = keras_layers()
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_act")(x)
    return x


class _SlidingFilters(Block):
    """What Conv and DepthwiseSeparable share: `filters` output channels over a kernel's sliding window."""

    filters: int
    kernel: int | tuple[int, ...]
    stride: int | tuple[int, ...]
    padding: str

    def output_shape(self, input_shape: Shape) -> Shape:
        positive(self.filters, f"{self.kind} filters")
        _, spatial = sliding_window(input_shape, self.kernel, self.stride, self.padding, self.kind)
        return (*spatial, self.filters)


@dataclass(frozen=True)
class Conv(_SlidingFilters):
    """Conv1D or Conv2D -> [BatchNormalization] -> [activation]; BN does not drop the conv's bias."""

    kind: ClassVar[str] = "conv"
    filters: int
    kernel: int | tuple[int, ...] = 3
    stride: int | tuple[int, ...] = 1
    padding: str = "same"
    use_bias: bool = True
    batch_norm: bool = False
    activation: str | None = "relu"

    def sizes(self, input_shape: Shape) -> Sizes:
        kernel, spatial = sliding_window(input_shape, self.kernel, self.stride, self.padding, self.kind)
        weights = math.prod(kernel) * input_shape[-1] * self.filters
        conv = Sizes(trainable=weights + (self.filters if self.use_bias else 0), macs=math.prod(spatial) * weights)
        return conv + batch_norm_sizes(self.filters) if self.batch_norm else conv

    def build(self, x: Any, name: str) -> Any:
        layers = keras_layers()
        conv = layers.Conv2D if len(x.shape) == 4 else layers.Conv1D
        x = conv(self.filters, self.kernel, strides=self.stride, padding=self.padding, use_bias=self.use_bias,
                 name=name)(x)
        return norm_and_activation(x, name, self.batch_norm, self.activation)


@dataclass(frozen=True)
class DepthwiseSeparable(_SlidingFilters):
    """The DS-CNN block: depthwise conv (the stride is here) -> BN -> ReLU -> 1x1 conv -> BN -> ReLU."""

    kind: ClassVar[str] = "depthwise_separable"
    filters: int
    kernel: int | tuple[int, ...] = 3
    stride: int | tuple[int, ...] = 1
    padding: str = "same"
    use_bias: bool = True
    batch_norm: bool = True
    activation: str | None = "relu"

    def sizes(self, input_shape: Shape) -> Sizes:
        kernel, spatial = sliding_window(input_shape, self.kernel, self.stride, self.padding, self.kind)
        channels, positions, taps = input_shape[-1], math.prod(spatial), math.prod(kernel)
        bias = 1 if self.use_bias else 0
        depthwise = Sizes(trainable=(taps + bias) * channels, macs=positions * taps * channels)
        pointwise = Sizes(trainable=(channels + bias) * self.filters, macs=positions * channels * self.filters)
        if self.batch_norm:
            depthwise += batch_norm_sizes(channels)
            pointwise += batch_norm_sizes(self.filters)
        return depthwise + pointwise

    def build(self, x: Any, name: str) -> Any:
        layers = keras_layers()
        two_d = len(x.shape) == 4
        if two_d:
            x = depthwise_2d(x, per_axis(self.kernel, 2, f"{self.kind} kernel"),
                             per_axis(self.stride, 2, f"{self.kind} stride"), self.padding, self.use_bias, name)
        else:
            x = layers.DepthwiseConv1D(self.kernel, strides=self.stride, padding=self.padding,
                                       use_bias=self.use_bias, name=name)(x)
        x = norm_and_activation(x, f"{name}_dw", self.batch_norm, self.activation)
        pointwise = layers.Conv2D if two_d else layers.Conv1D
        x = pointwise(self.filters, 1, use_bias=self.use_bias, name=f"{name}_pw")(x)
        return norm_and_activation(x, f"{name}_pw", self.batch_norm, self.activation)


@dataclass(frozen=True)
class Pool(Block):
    """MaxPooling or AveragePooling, 1D or 2D; the stride defaults to the size, as in Keras."""

    kind: ClassVar[str] = "pool"
    mode: str = "max"
    size: int | tuple[int, ...] = 2
    stride: int | tuple[int, ...] | None = None
    padding: str = "valid"

    def output_shape(self, input_shape: Shape) -> Shape:
        check_choice(self.mode, POOL_MODES, "pool mode")
        _, spatial = sliding_window(input_shape, self.size, self.stride, self.padding, self.kind, "size")
        return (*spatial, input_shape[-1])

    def build(self, x: Any, name: str) -> Any:
        layers = keras_layers()
        pools = {("max", 3): layers.MaxPooling2D, ("max", 2): layers.MaxPooling1D,
                 ("avg", 3): layers.AveragePooling2D, ("avg", 2): layers.AveragePooling1D}
        pool = pools[self.mode, len(x.shape) - 1]
        return pool(self.size, strides=self.stride, padding=self.padding, name=name)(x)


@dataclass(frozen=True)
class GlobalAveragePool(Block):
    """The mean over every spatial axis: one value per channel."""

    kind: ClassVar[str] = "global_average_pool"

    def output_shape(self, input_shape: Shape) -> Shape:
        spatial_rank(input_shape, self.kind)
        return (input_shape[-1],)

    def build(self, x: Any, name: str) -> Any:
        layers = keras_layers()
        pool = layers.GlobalAveragePooling2D if len(x.shape) == 4 else layers.GlobalAveragePooling1D
        return pool(name=name)(x)


@dataclass(frozen=True)
class Flatten(Block):
    kind: ClassVar[str] = "flatten"

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def build(self, x: Any, name: str) -> Any:
        return keras_layers().Flatten(name=name)(x)


@dataclass(frozen=True)
class Dense(Block):
    """Dense over the last axis (Keras applies it at every position of a larger input)."""

    kind: ClassVar[str] = "dense"
    units: int
    activation: str | None = "relu"
    use_bias: bool = True

    def output_shape(self, input_shape: Shape) -> Shape:
        positive(self.units, "dense units")
        return (*input_shape[:-1], self.units)

    def sizes(self, input_shape: Shape) -> Sizes:
        weights = input_shape[-1] * self.units
        return Sizes(trainable=weights + (self.units if self.use_bias else 0),
                     macs=math.prod(input_shape[:-1]) * weights)

    def build(self, x: Any, name: str) -> Any:
        return keras_layers().Dense(self.units, activation=self.activation, use_bias=self.use_bias, name=name)(x)


@dataclass(frozen=True)
class Dropout(Block):
    kind: ClassVar[str] = "dropout"
    rate: float = 0.5

    def output_shape(self, input_shape: Shape) -> Shape:
        if not 0 <= self.rate < 1:
            raise InfeasibleConfig(f"dropout rate must be in [0, 1), not {self.rate}")
        return input_shape

    def build(self, x: Any, name: str) -> Any:
        return keras_layers().Dropout(self.rate, name=name)(x)


BLOCK_TYPES: dict[str, type[Block]] = {block.kind: block for block in (
    Conv, DepthwiseSeparable, Pool, GlobalAveragePool, Flatten, Dense, Dropout)}
