"""Published keyword-spotting architectures as specs of blocks, each with its source, to check the arithmetic
against and to compare searched models with: DS-CNN-S (MLPerf Tiny), TC-ResNet8 and the BC-ResNet family. The
residual networks end in their own classifier (TC-ResNet's has no bias), so they are built for their
`n_classes`."""

from __future__ import annotations

from tuner_app.model.blocks import (
    Block,
    Conv,
    Dense,
    DepthwiseSeparable,
    Dropout,
    Flatten,
    GlobalAveragePool,
    Pool,
)
from tuner_app.model.residual_blocks import (
    BroadcastResidual,
    FrequencyAsChannels,
    FrequencyCollapse,
    TemporalResidual,
)

# Our 2D features are freq x time; MLPerf's input is 49 frames x 10 MFCCs (time x freq), transposed here.
DSCNN_S_INPUT_SHAPE = (10, 49, 1)
DSCNN_S_CLASSES = 12  # MLPerf's 10 words, silence and unknown


def dscnn_s() -> list[Block]:
    """DS-CNN-S, the MLPerf Tiny keyword-spotting reference: mlcommons/tiny,
    benchmark/training/keyword_spotting/keras_model.py, `get_model` for model_name 'ds_cnn'.

    Conv 64 10x4 stride 2 'same' + BN + ReLU, dropout 0.2, 4 DS blocks of 64 (depthwise 3x3 'same' + BN +
    ReLU + 1x1 conv + BN + ReLU), dropout 0.4, average pool over the remaining map, flatten; the softmax
    Dense is the classifier the walk and build append (12 classes in MLPerf: 23,756 trainable params).
    Kernels, strides and the pool are written freq x time for DSCNN_S_INPUT_SHAPE; the parameter counts do
    not depend on the layout. MLPerf's pool is (24, 5) time x freq, int(49/2) x int(10/2), which on the
    25x5 map after the stride-2 conv drops the last frame; so does this one. Its L2 weight decay is
    training, not architecture, and is left out.
    """
    return [
        Conv(64, kernel=(4, 10), stride=2, padding="same", batch_norm=True, activation="relu"),
        Dropout(0.2),
        *[DepthwiseSeparable(64, kernel=3, padding="same") for _ in range(4)],
        Dropout(0.4),
        Pool("avg", size=(DSCNN_S_INPUT_SHAPE[0] // 2, DSCNN_S_INPUT_SHAPE[1] // 2)),
        Flatten(),
    ]


# 40 MFCCs x 98 frames (30 ms window, 10 ms hop, no padding), freq x time as our 2D features are.
TC_RESNET_INPUT_SHAPE = (40, 98, 1)
# 40 log-mel bands x 101 frames (torchaudio's centred frames, 10 ms hop).
BC_RESNET_INPUT_SHAPE = (40, 101, 1)
REFERENCE_CLASSES = 12  # Speech Commands' 10 words, silence and unknown, as both papers report


def tc_resnet8(n_classes: int = REFERENCE_CLASSES, width_multiplier: float = 1.0) -> list[Block]:
    """TC-ResNet8 (Choi et al. 2019): hyperconnect/TC-ResNet, audio_nets/tc_resnet.py `TCResNet8` and
    `TCResNet_arg_scope`, commit 8ccbff3a45590247d8c54cc82129acb90eecf5c8.

    The MFCCs become channels of a signal over time; conv 3 to 16 channels, then 3 temporal blocks of 24,
    32 and 48 channels (kernel 9, stride 2, projection shortcut), average over time, dropout (keep 0.5),
    a bias-free 1x1 conv as the classifier. Every conv is bias-free, followed by BN (scale and centre) and
    ReLU, except the block's second conv (BN only). Trainable params at 12 classes: 65,168. The paper's
    66K counts every variable the code creates: also the BN moving statistics (656) and an unused
    2-output `fc2` head (96) beside the classifier, 65,920 in all; we leave the dead head out.
    """
    widths = [int(width * width_multiplier) for width in (16, 24, 32, 48)]
    return [
        FrequencyAsChannels(),
        Conv(widths[0], kernel=3, padding="same", use_bias=False, batch_norm=True, activation="relu"),
        *[TemporalResidual(width, kernel=9, stride=2) for width in widths[1:]],
        GlobalAveragePool(),
        Dropout(0.5),
        Dense(n_classes, activation="softmax", use_bias=False),
    ]


def bc_resnet(base_channels: int = 8, n_classes: int = REFERENCE_CLASSES) -> list[Block]:
    """BC-ResNet-tau (Kim et al. 2021) with base_channels = 8 * tau (8 is BC-ResNet-1):
    Qualcomm-AI-research/bcresnet, bcresnet.py `BCResNets` and subspectralnorm.py, commit
    656f947a2a757ab5f36f649ed303ea0191cf553e.

    Conv 5x5 stride 2 over frequency (bias-free, BN, ReLU); four stages of 2, 2, 4 and 4 broadcast blocks,
    the first of each a transition, the first of stages 1 and 2 with frequency stride 2, temporal dilation
    2**stage, SubSpectralNorm over 5 bands, dropout 0.1; the classifier: depthwise 5x5 ('valid' over the
    last 5 frequency rows), 1x1 conv + BN + ReLU, global average, a 1x1 conv with bias. Trainable params at
    12 classes, counted by running the code (PyTorch 2.13): 9,232 for BC-ResNet-1 (the paper: 9.2K).
    """
    base = base_channels
    widths = [base * 2, base, int(base * 1.5), base * 2, int(base * 2.5), base * 4]
    blocks: list[Block] = [Conv(widths[0], kernel=5, stride=(2, 1), padding="same", use_bias=False,
                                batch_norm=True, activation="relu")]
    for stage, repeats in enumerate((2, 2, 4, 4)):
        for index in range(repeats):
            stride = 2 if stage in (1, 2) and index == 0 else 1
            blocks.append(BroadcastResidual(widths[stage + 1], kernel=3, stride=stride, dilation=2**stage,
                                            sub_bands=5, dropout=0.1))
    return [
        *blocks,
        FrequencyCollapse(kernel=5),
        Conv(widths[-1], kernel=1, use_bias=False, batch_norm=True, activation="relu"),
        GlobalAveragePool(),
        Dense(n_classes, activation="softmax"),
    ]
