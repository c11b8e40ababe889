"""Residual block types for keyword spotting, on the interface of `blocks`: TC-ResNet's temporal block,
BC-ResNet's broadcast block (with SubSpectralNorm), and the two pieces around them that `blocks` lacks.

MACs count as in `blocks` (one per kernel weight per output position of every conv, depthwise included);
batch normalisation, SubSpectralNorm, activations, the frequency mean, dropout and additions are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from tuner_app.errors import InfeasibleConfig
from tuner_app.model.architecture.blocks import (
    Block,
    Shape,
    Sizes,
    batch_norm_sizes,
    format_shape,
    per_axis,
)
from tuner_app.model.architecture.depthwise import depthwise_2d

Spatial2D = tuple[int, int]


def _check_rank(input_shape: Shape, rank: int, kind: str, layout: str, hint: str = "") -> None:
    if len(input_shape) != rank:
        raise InfeasibleConfig(f"{kind} needs a {layout} input, got {format_shape(input_shape)}{hint}")


def _check_positive(kind: str, **settings: int) -> None:
    for field, value in settings.items():
        if value < 1:
            raise InfeasibleConfig(f"{kind} {field} must be at least 1, not {value}")


def _check_fits(kind: str, span: int, length: int, axis: str) -> None:
    # 'same' padding would still build, but a kernel longer than the map reads mostly padding: a spec
    # with too many strides ends up here.
    if span > length:
        raise InfeasibleConfig(f"{kind} kernel spans {span} {axis} steps, the feature map has {length}")


def _keras_layers():
    import keras

    return keras.layers


@dataclass(frozen=True)
class FrequencyAsChannels(Block):
    """(freq, time, channels) -> (time, freq * channels): TC-ResNet's view of MFCCs as a 1D signal over time."""

    kind: ClassVar[str] = "frequency_as_channels"

    def output_shape(self, input_shape: Shape) -> Shape:
        _check_rank(input_shape, 3, self.kind, "(freq, time, channels)")
        freq, time, channels = input_shape
        return (time, freq * channels)

    def sizes(self, input_shape: Shape) -> Sizes:
        self.output_shape(input_shape)
        return Sizes()

    def build(self, x: Any, name: str) -> Any:
        layers = _keras_layers()
        time, features = self.output_shape(tuple(x.shape[1:]))
        x = layers.Permute((2, 1, 3), name=f"{name}_transpose")(x)
        return layers.Reshape((time, features), name=name)(x)


@dataclass(frozen=True)
class TemporalResidual(Block):
    """TC-ResNet's block on (time, channels): Conv1D(kernel, stride) -> BN -> ReLU -> Conv1D(kernel) -> BN,
    added to the input and passed through ReLU. Convs are 'same' and bias-free. When the width or the length
    changes the shortcut is a 1x1 Conv1D with the stride -> BN -> ReLU (the reference's slim defaults put
    BN and ReLU on it too), else the identity."""

    kind: ClassVar[str] = "temporal_residual"
    filters: int
    kernel: int = 9
    stride: int = 1

    def _plan(self, input_shape: Shape) -> tuple[int, int, bool]:
        """(input channels, output length, whether the shortcut is a projection)."""
        _check_rank(input_shape, 2, self.kind, "(time, channels)", "; put frequency_as_channels before it")
        _check_positive(self.kind, filters=self.filters, kernel=self.kernel, stride=self.stride)
        length, channels = input_shape
        strided = math.ceil(length / self.stride)
        _check_fits(self.kind, self.kernel, length, "time")
        _check_fits(self.kind, self.kernel, strided, "time (after the stride)")
        return channels, strided, channels != self.filters or self.stride != 1

    def output_shape(self, input_shape: Shape) -> Shape:
        _, length, _ = self._plan(input_shape)
        return (length, self.filters)

    def sizes(self, input_shape: Shape) -> Sizes:
        channels, length, projection = self._plan(input_shape)
        first = self.kernel * channels * self.filters
        second = self.kernel * self.filters * self.filters
        sizes = Sizes(trainable=first + second, macs=length * (first + second))
        sizes += batch_norm_sizes(self.filters) + batch_norm_sizes(self.filters)
        if projection:
            shortcut = channels * self.filters
            sizes += Sizes(trainable=shortcut, macs=length * shortcut) + batch_norm_sizes(self.filters)
        return sizes

    def build(self, x: Any, name: str) -> Any:
        layers = _keras_layers()
        _, _, projection = self._plan(tuple(x.shape[1:]))
        shortcut = x
        if projection:
            shortcut = layers.Conv1D(self.filters, 1, strides=self.stride, use_bias=False,
                                     name=f"{name}_shortcut")(x)
            shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
            shortcut = layers.Activation("relu", name=f"{name}_shortcut_act")(shortcut)
        x = layers.Conv1D(self.filters, self.kernel, strides=self.stride, padding="same", use_bias=False,
                          name=name)(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        x = layers.Activation("relu", name=f"{name}_act")(x)
        x = layers.Conv1D(self.filters, self.kernel, padding="same", use_bias=False, name=f"{name}_conv2")(x)
        x = layers.BatchNormalization(name=f"{name}_conv2_bn")(x)
        x = layers.Add(name=f"{name}_add")([x, shortcut])
        return layers.Activation("relu", name=f"{name}_out")(x)


@dataclass(frozen=True)
class BroadcastResidual(Block):
    """BC-ResNet's block on (freq, time, channels), `kernel` freq x time.

    2D part: [1x1 conv -> BN -> ReLU when the width changes] -> frequency-depthwise conv (kernel x 1, the
    frequency stride here) -> SubSpectralNorm (BN per channel and per each of `sub_bands` equal frequency
    bands). 1D part, on its mean over frequency: temporal depthwise conv (1 x kernel, `dilation`) -> BN ->
    Swish -> 1x1 conv -> channel dropout. The 1D output is broadcast over frequency and added to the 2D
    part's output; the normal variant (same width, no stride) also adds the block's input; then ReLU.
    The transition variant (width or stride changes) has no identity shortcut. Convs are 'same', bias-free.
    """

    kind: ClassVar[str] = "broadcast_residual"
    filters: int
    kernel: int | Spatial2D = 3
    stride: int = 1
    dilation: int = 1
    sub_bands: int = 5
    dropout: float = 0.1

    def _plan(self, input_shape: Shape) -> tuple[Spatial2D, int, bool]:
        """((freq kernel, time kernel), output frequency rows, whether the block is a transition)."""
        _check_rank(input_shape, 3, self.kind, "(freq, time, channels)")
        kernel = per_axis(self.kernel, 2, f"{self.kind} kernel")
        _check_positive(self.kind, filters=self.filters, kernel=min(kernel), stride=self.stride,
                        dilation=self.dilation, sub_bands=self.sub_bands)
        if not 0 <= self.dropout < 1:
            raise InfeasibleConfig(f"{self.kind} dropout must be in [0, 1), not {self.dropout}")
        freq, time, channels = input_shape
        rows = math.ceil(freq / self.stride)
        _check_fits(self.kind, kernel[0], freq, "frequency")
        _check_fits(self.kind, self.dilation * (kernel[1] - 1) + 1, time, "time")
        if rows % self.sub_bands:
            raise InfeasibleConfig(f"{self.kind} sub_bands {self.sub_bands} do not divide its {rows} frequency rows")
        return kernel, rows, channels != self.filters or self.stride != 1

    def output_shape(self, input_shape: Shape) -> Shape:
        _, rows, _ = self._plan(input_shape)
        return (rows, input_shape[1], self.filters)

    def sizes(self, input_shape: Shape) -> Sizes:
        (freq_kernel, time_kernel), rows, _ = self._plan(input_shape)
        freq, time, channels = input_shape
        width = self.filters
        sizes = Sizes()
        if channels != width:
            sizes += Sizes(trainable=channels * width, macs=freq * time * channels * width)
            sizes += batch_norm_sizes(width)
        sizes += Sizes(trainable=freq_kernel * width, macs=rows * time * freq_kernel * width)
        sizes += batch_norm_sizes(self.sub_bands * width)
        sizes += Sizes(trainable=time_kernel * width, macs=time * time_kernel * width)
        sizes += batch_norm_sizes(width)
        return sizes + Sizes(trainable=width * width, macs=time * width * width)

    def build(self, x: Any, name: str) -> Any:
        layers = _keras_layers()
        (freq_kernel, time_kernel), rows, transition = self._plan(tuple(x.shape[1:]))
        shortcut = x
        if x.shape[-1] != self.filters:
            x = layers.Conv2D(self.filters, 1, use_bias=False, name=f"{name}_expand")(x)
            x = layers.BatchNormalization(name=f"{name}_expand_bn")(x)
            x = layers.Activation("relu", name=f"{name}_expand_act")(x)
        x = depthwise_2d(x, (freq_kernel, 1), (self.stride, 1), "same", use_bias=False, name=name)
        two_d = sub_spectral_norm(x, self.sub_bands, f"{name}_ssn")
        x = layers.AveragePooling2D((rows, 1), name=f"{name}_freq_mean")(two_d)
        x = layers.DepthwiseConv2D((1, time_kernel), dilation_rate=(1, self.dilation), padding="same",
                                   use_bias=False, name=f"{name}_temporal")(x)
        x = layers.BatchNormalization(name=f"{name}_temporal_bn")(x)
        x = layers.Activation("swish", name=f"{name}_temporal_act")(x)
        x = layers.Conv2D(self.filters, 1, use_bias=False, name=f"{name}_pointwise")(x)
        # Dropout2d in the reference: whole channels of the (1, time) map.
        x = layers.SpatialDropout2D(self.dropout, name=f"{name}_dropout")(x)
        x = layers.Add(name=f"{name}_broadcast")([x, two_d])
        if not transition:
            x = layers.Add(name=f"{name}_identity")([x, shortcut])
        return layers.Activation("relu", name=f"{name}_out")(x)


def sub_spectral_norm(x: Any, sub_bands: int, name: str) -> Any:
    """SubSpectralNorm of a (freq, time, channels) map from stock layers: the frequency axis split into
    `sub_bands` contiguous bands, each band's channels batch-normalised on their own (BN over
    sub_bands x channels features, as the reference's view to c * S channels does). Stock layers keep the
    model loadable without custom objects."""
    layers = _keras_layers()
    freq, time, channels = x.shape[1:]
    band = freq // sub_bands
    x = layers.Reshape((sub_bands, band, time, channels), name=f"{name}_split")(x)
    x = layers.Permute((2, 3, 1, 4), name=f"{name}_bands_last")(x)
    x = layers.Reshape((band, time, sub_bands * channels), name=f"{name}_merge")(x)
    x = layers.BatchNormalization(name=name)(x)
    x = layers.Reshape((band, time, sub_bands, channels), name=f"{name}_unmerge")(x)
    x = layers.Permute((3, 1, 2, 4), name=f"{name}_bands_first")(x)
    return layers.Reshape((freq, time, channels), name=f"{name}_join")(x)


@dataclass(frozen=True)
class FrequencyCollapse(Block):
    """A bias-free depthwise conv, 'valid' over frequency and 'same' over time (BC-ResNet's classifier: its
    5x5 kernel takes the last 5 frequency rows to 1). `kernel` is freq x time."""

    kind: ClassVar[str] = "frequency_collapse"
    kernel: int | Spatial2D = 5

    def _kernel(self, input_shape: Shape) -> Spatial2D:
        _check_rank(input_shape, 3, self.kind, "(freq, time, channels)")
        kernel = per_axis(self.kernel, 2, f"{self.kind} kernel")
        _check_positive(self.kind, kernel=min(kernel))
        _check_fits(self.kind, kernel[0], input_shape[0], "frequency")
        _check_fits(self.kind, kernel[1], input_shape[1], "time")
        return kernel

    def output_shape(self, input_shape: Shape) -> Shape:
        freq_kernel, _ = self._kernel(input_shape)
        freq, time, channels = input_shape
        return (freq - freq_kernel + 1, time, channels)

    def sizes(self, input_shape: Shape) -> Sizes:
        weights = math.prod(self._kernel(input_shape)) * input_shape[-1]
        rows, time, _ = self.output_shape(input_shape)
        return Sizes(trainable=weights, macs=rows * time * weights)

    def build(self, x: Any, name: str) -> Any:
        layers = _keras_layers()
        freq_kernel, time_kernel = self._kernel(tuple(x.shape[1:]))
        # Keras's 'same' split: the extra column of an even kernel goes on the right.
        padding = ((0, 0), ((time_kernel - 1) // 2, time_kernel // 2))
        x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
        return layers.DepthwiseConv2D((freq_kernel, time_kernel), use_bias=False, name=name)(x)
