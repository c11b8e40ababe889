"""Run clips through a rebuilt model and read its layers.

The model splits at its front-end: `frontend.features`, the very function training and serving call, makes
the features, and the `features model` (the spec built on features, `spec.build`, with the trained weights
copied layer by layer) does the rest. Saliency then differentiates with respect to the features the model
sees, and every block's output is one Keras tensor of that model.

Layers are named as the walk names its blocks (`b00_conv`, `b01_pool`, ...), plus `frontend` for the
features; a block's output is the output of the last Keras layer it built. Any Keras layer of the features
model may be named too (`b02_dsconv_dw_bn`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tuner_app.errors import TunerAppError
from tuner_app.features import frontend
from tuner_app.features.frontend import output_shape
from tuner_app.inspection.source import Inspected
from tuner_app.model.architecture import configured, spec

FRONTEND = "frontend"
BATCH_SIZE = 32
SKIPPED_KINDS = ("dropout",)  # identity at inference: the block before it holds the same values


def features_model(inspected: Inspected):
    """keras.Model: features [batch, *output_shape(frontend)] -> probabilities, with the trained weights."""
    blocks = configured.blocks(inspected.space, inspected.values, len(inspected.class_names))
    model = spec.build(blocks, output_shape(inspected.frontend), len(inspected.class_names), name=inspected.name)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(inspected.model.get_layer(layer.name).get_weights())
    return model


def default_layers(inspected: Inspected) -> list[str]:
    """`frontend`, then every block but dropout, in the order the clip flows through them."""
    return [FRONTEND, *(row.name for row in inspected.walk.rows if row.kind not in SKIPPED_KINDS)]


def output_layer(model, name: str, blocks: Sequence[str]):
    """The Keras layer whose output is `name`'s: for a block, the last layer it built; else the layer itself."""
    if name in blocks:
        return [layer for layer in model.layers if layer.name == name or layer.name.startswith(f"{name}_")][-1]
    try:
        return model.get_layer(name)
    except ValueError:
        raise TunerAppError(f"--layers: no layer {name!r} in {model.name} (blocks: {', '.join(blocks)}; "
                            f"or {FRONTEND}, or any Keras layer name)") from None


def probe_model(features, names: Sequence[str], blocks: Sequence[str]):
    """keras.Model: features -> {name: that layer's output} for the non-front-end `names`."""
    import keras

    outputs = {name: output_layer(features, name, blocks).output for name in names if name != FRONTEND}
    return keras.Model(features.input, outputs, name=f"{features.name}_probe")


def layer_outputs(inspected: Inspected, waveforms: np.ndarray, names: Sequence[str] | None = None,
                  features=None) -> dict[str, np.ndarray]:
    """{layer name: float32 [n_clips, *its output shape]} for clips [n, 16000], in `names` order."""
    names = list(names or default_layers(inspected))
    features = features if features is not None else features_model(inspected)
    probe = probe_model(features, names, [row.name for row in inspected.walk.rows])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, len(waveforms), BATCH_SIZE):
        inputs = frontend_features(inspected, waveforms[start:start + BATCH_SIZE])
        outputs = probe(inputs, training=False) if len(probe.outputs) else {}
        for name in names:
            parts[name].append(np.asarray(inputs if name == FRONTEND else outputs[name], np.float32))
    return {name: _joined(chunks, len(waveforms)) for name, chunks in parts.items()}


def frontend_features(inspected: Inspected, waveforms: np.ndarray) -> Any:
    """features [n, *output_shape] of clips [n, 16000]: the training pipeline's front-end function."""
    return np.asarray(frontend.features(np.asarray(waveforms, np.float32), inspected.frontend), np.float32)


def _joined(chunks: list[np.ndarray], count: int) -> np.ndarray:
    if not count:
        raise TunerAppError("no clips to run through the model")
    return np.concatenate(chunks)
