"""The keyword-spotting architecture families the search explores: DS-CNN, TC-ResNet and BC-ResNet, each a
function from its hyperparameters' values to a spec of blocks. A family's defaults are its published reference
model (search_spaces/dscnn_s.yaml, tcresnet8.yaml and bcresnet1.yaml fix them), so the search and the
references share one copy of each architecture.

Input is our 2D feature layout (freq, time, 1). `values` holds every hyperparameter of the family, read by
name; a value outside its domain raises InfeasibleConfig naming the hyperparameter. Shapes that do not fit the
input are left to the walk, which names the block.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from tuner_app.errors import InfeasibleConfig
from tuner_app.model.architecture.blocks import Block, Conv, Dense, DepthwiseSeparable, Dropout, GlobalAveragePool
from tuner_app.model.architecture.residual_blocks import (
    BroadcastResidual,
    FrequencyAsChannels,
    FrequencyCollapse,
    TemporalResidual,
)

# DS-CNN-S (MLPerf Tiny): 23,756 trainable params at 12 classes on 10x49x1 MFCCs.
DSCNN_HYPERPARAMETERS: dict[str, Any] = {
    "dscnn_filters": 64, "dscnn_blocks": 4, "dscnn_kernel_freq": 4, "dscnn_kernel_time": 10, "dscnn_stride": 2,
    "dscnn_dropout": 0.4,
}
# TC-ResNet8 (Choi et al. 2019): 65,168 trainable params at 12 classes on 40x98x1 MFCCs.
TCRESNET_HYPERPARAMETERS: dict[str, Any] = {
    "tcresnet_width": 1.0, "tcresnet_depth": 8, "tcresnet_kernel": 9, "tcresnet_dropout": 0.5,
}
# BC-ResNet-1 (Kim et al. 2021): 9,232 trainable params at 12 classes on 40x98x1 log-mel.
BCRESNET_HYPERPARAMETERS: dict[str, Any] = {
    "bcresnet_width": 8, "bcresnet_sub_bands": 5, "bcresnet_dropout": 0.1,
}

TCRESNET_STEM_WIDTH = 16
TCRESNET_STAGE_WIDTHS = (24, 32, 48)
TCRESNET_BLOCKS_PER_STAGE = {8: 1, 14: 2}  # TC-ResNet8 and TC-ResNet14
# The reference code strides where the width changes; below 1/8 two stage widths can truncate to the same
# int (e.g. 0.07: 16 and 24 -> 1 and 1), and its network would no longer be the paper's.
TCRESNET_MIN_WIDTH = 0.125
BCRESNET_STAGE_BLOCKS = (2, 2, 4, 4)
BCRESNET_STRIDED_STAGES = (1, 2)  # stages whose first block halves the frequency rows


def dscnn_spec(values: Mapping[str, Any], n_classes: int) -> list[Block]:
    """MLPerf Tiny's DS-CNN generalised (mlcommons/tiny, benchmark/training/keyword_spotting/keras_model.py,
    'ds_cnn'): Conv(filters, kernel_freq x kernel_time, stride, 'same') + BN + ReLU, dropout/2, `blocks`
    depthwise-separable blocks of `filters` (3x3 'same'), dropout, global average pool. MLPerf's average pool
    over the whole map + flatten has the same parameters; the global average fits any input size. The
    classifier is the softmax Dense that the walk and build append (n_classes is not needed here)."""
    filters = _integer(values, "dscnn_filters")
    kernel = (_integer(values, "dscnn_kernel_freq"), _integer(values, "dscnn_kernel_time"))
    stride = _integer(values, "dscnn_stride")
    blocks = _integer(values, "dscnn_blocks")
    dropout = _rate(values, "dscnn_dropout")
    return [
        Conv(filters, kernel=kernel, stride=stride, padding="same", batch_norm=True, activation="relu"),
        Dropout(dropout / 2),
        *[DepthwiseSeparable(filters, kernel=3, padding="same") for _ in range(blocks)],
        Dropout(dropout),
        GlobalAveragePool(),
    ]


def tcresnet_spec(values: Mapping[str, Any], n_classes: int) -> list[Block]:
    """TC-ResNet8/14 with a width multiplier (hyperconnect/TC-ResNet, audio_nets/tc_resnet.py `TCResNet8`,
    `TCResNet14`): the MFCCs become channels of a signal over time; a bias-free conv 3 + BN + ReLU to
    int(16 * width) channels; per stage of int(24, 32, 48 * width) channels, one temporal block (`kernel`,
    stride 2, projection shortcut), and for depth 14 a second one (stride 1, identity shortcut); average
    over time, dropout, and the code's classifier: a bias-free softmax Dense over n_classes."""
    width = _multiplier(values, "tcresnet_width", TCRESNET_MIN_WIDTH)
    depth = _choice(values, "tcresnet_depth", tuple(TCRESNET_BLOCKS_PER_STAGE))
    kernel = _integer(values, "tcresnet_kernel")
    dropout = _rate(values, "tcresnet_dropout")
    stem, *stages = [int(channels * width) for channels in (TCRESNET_STEM_WIDTH, *TCRESNET_STAGE_WIDTHS)]
    return [
        FrequencyAsChannels(),
        Conv(stem, kernel=3, padding="same", use_bias=False, batch_norm=True, activation="relu"),
        *_temporal_stages(stages, TCRESNET_BLOCKS_PER_STAGE[depth], kernel),
        GlobalAveragePool(),
        Dropout(dropout),
        Dense(n_classes, activation="softmax", use_bias=False),
    ]


def _temporal_stages(widths: Sequence[int], blocks_per_stage: int, kernel: int) -> list[Block]:
    return [TemporalResidual(width, kernel=kernel, stride=2 if index == 0 else 1)
            for width in widths for index in range(blocks_per_stage)]


def bcresnet_spec(values: Mapping[str, Any], n_classes: int) -> list[Block]:
    """BC-ResNet-tau, width = 8 * tau base channels (Qualcomm-AI-research/bcresnet, bcresnet.py `BCResNets`):
    a bias-free conv 5x5, stride 2 over frequency, + BN + ReLU to 2 * width channels; four stages of 2, 2, 4
    and 4 broadcast blocks of width, 1.5, 2 and 2.5 x width channels, the first of each a transition, the
    first of stages 1 and 2 with frequency stride 2, temporal dilation 2**stage, SubSpectralNorm over
    `sub_bands` bands, channel `dropout`; the classifier: depthwise 5x5 ('valid' over frequency), 1x1 conv
    to 4 * width + BN + ReLU, global average, and a softmax Dense over n_classes with bias."""
    base = _integer(values, "bcresnet_width")
    sub_bands = _integer(values, "bcresnet_sub_bands")
    dropout = _rate(values, "bcresnet_dropout")
    stem, *stages, head = [base * 2, base, int(base * 1.5), base * 2, int(base * 2.5), base * 4]
    return [
        Conv(stem, kernel=5, stride=(2, 1), padding="same", use_bias=False, batch_norm=True, activation="relu"),
        *_broadcast_stages(stages, sub_bands, dropout),
        FrequencyCollapse(kernel=5),
        Conv(head, kernel=1, use_bias=False, batch_norm=True, activation="relu"),
        GlobalAveragePool(),
        Dense(n_classes, activation="softmax"),
    ]


def _broadcast_stages(widths: Sequence[int], sub_bands: int, dropout: float) -> list[Block]:
    blocks: list[Block] = []
    for stage, (width, repeats) in enumerate(zip(widths, BCRESNET_STAGE_BLOCKS)):
        for index in range(repeats):
            stride = 2 if stage in BCRESNET_STRIDED_STAGES and index == 0 else 1
            blocks.append(BroadcastResidual(width, kernel=3, stride=stride, dilation=2**stage,
                                            sub_bands=sub_bands, dropout=dropout))
    return blocks


def _is_number(value: Any, kind: type) -> bool:
    # bool is an Integral, but True filters or a False depth is a mistake, not a value.
    return isinstance(value, kind) and not isinstance(value, bool)


def _integer(values: Mapping[str, Any], name: str, minimum: int = 1) -> int:
    value = values[name]
    if not _is_number(value, numbers.Integral) or value < minimum:
        raise InfeasibleConfig(f"{name} must be an integer of at least {minimum}, not {value!r}")
    return int(value)


def _rate(values: Mapping[str, Any], name: str) -> float:
    value = values[name]
    if not _is_number(value, numbers.Real) or not 0 <= value < 1:
        raise InfeasibleConfig(f"{name} must be a rate in [0, 1), not {value!r}")
    return float(value)


def _multiplier(values: Mapping[str, Any], name: str, minimum: float) -> float:
    value = values[name]
    if not _is_number(value, numbers.Real) or not minimum <= value < math.inf:
        raise InfeasibleConfig(f"{name} must be a number of at least {minimum}, not {value!r}")
    return float(value)


def _choice(values: Mapping[str, Any], name: str, choices: Sequence[int]) -> int:
    value = values[name]
    if not _is_number(value, numbers.Integral) or value not in choices:
        raise InfeasibleConfig(f"{name} must be {' or '.join(map(str, choices))}, not {value!r}")
    return int(value)
