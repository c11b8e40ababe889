"""A depthwise convolution that runs on every CPU.

TensorFlow's own CPU kernel for DepthwiseConv2dNative refuses strides that differ between rows and columns
("Current implementation only supports equal length strides"); only oneDNN's accepts them, and TensorFlow turns
oneDNN on for some x86 CPUs and not others (seen: on an AMD EPYC with AVX-512, BC-ResNet's frequency-strided
depthwise conv failed in training and inference alike). Such a stride is computed here as the same convolution at
stride 1 on the input padded as 'same' pads it for the stride, subsampled by a 1x1 max pool (which has no such
limit): the same numbers and weights, on every machine, and in TFLite (PAD, DEPTHWISE_CONV_2D, MAX_POOL_2D).
"""

from __future__ import annotations

import math
from typing import Any


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after): what TensorFlow's 'same' padding adds along one axis for this kernel and stride."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def depthwise_2d(x: Any, kernel: tuple[int, int], strides: tuple[int, int], padding: str, use_bias: bool,
                 name: str) -> Any:
    """keras.layers.DepthwiseConv2D(kernel, strides, padding, use_bias, name=name)(x), portable (see the module);
    the weights are the one layer's, named `name`, either way."""
    import keras

    layers = keras.layers
    if strides[0] == strides[1]:
        return layers.DepthwiseConv2D(kernel, strides=strides, padding=padding, use_bias=use_bias, name=name)(x)
    if padding == "same":
        pads = [_same_padding(x.shape[axis + 1], kernel[axis], strides[axis]) for axis in (0, 1)]
        x = layers.ZeroPadding2D(tuple(pads), name=f"{name}_pad")(x)
    x = layers.DepthwiseConv2D(kernel, padding="valid", use_bias=use_bias, name=name)(x)
    return layers.MaxPooling2D(1, strides=strides, name=f"{name}_stride")(x)
