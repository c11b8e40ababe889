"""Class saliency over the features a model reads: which spectrogram cells (or waveform samples) move the
probability of one class.

Both methods differentiate the class's softmax probability with respect to the features, through the
features model (`probe.features_model`) in inference mode:
- gradient_x_input: the gradient times the features, one backward pass;
- integrated_gradients: (features - baseline) times the gradient averaged along the straight path from the
  baseline to the features (trapezoid rule over STEPS intervals). Its values add up to p(features) -
  p(baseline), so the map says how the clip differs from the baseline: by default the front-end of a silent
  clip, what the model sees when nothing is said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tuner_app.constants import CLIP_SAMPLES
from tuner_app.errors import TunerAppError

if TYPE_CHECKING:  # the source and probe modules load TensorFlow: imported where a model is run
    from tuner_app.inspection.source import Inspected

METHODS = ("gradient_x_input", "integrated_gradients")
METHOD_LABELS = {"gradient_x_input": "gradient × input", "integrated_gradients": "integrated gradients"}
STEPS = 32
PATH_BATCH = 64  # path points per gradient call: 33 points of one clip's features fit easily


def check_method(method: str) -> str:
    if method not in METHODS:
        raise TunerAppError(f"--saliency: {method!r} is not one of {', '.join(METHODS)}")
    return method


def saliency_map(features_model, features: np.ndarray, class_index: int, method: str = "gradient_x_input",
                 baseline: np.ndarray | None = None, steps: int = STEPS) -> np.ndarray:
    """float32 [*shape]: the saliency of class `class_index` over one clip's features [*shape]. `baseline`
    (integrated gradients only; zeros if None) has the features' shape."""
    check_method(method)
    features = np.asarray(features, np.float32)
    if method == "gradient_x_input":
        return (_gradients(features_model, features[None], class_index)[0] * features).astype(np.float32)
    baseline = np.zeros_like(features) if baseline is None else np.asarray(baseline, np.float32).reshape(features.shape)
    return _integrated_gradients(features_model, features, baseline, class_index, steps)


def _integrated_gradients(features_model, features: np.ndarray, baseline: np.ndarray, class_index: int,
                          steps: int) -> np.ndarray:
    fractions = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32).reshape(-1, *([1] * features.ndim))
    path = baseline[None] + fractions * (features - baseline)[None]
    gradients = np.concatenate([_gradients(features_model, path[start:start + PATH_BATCH], class_index)
                                for start in range(0, len(path), PATH_BATCH)])
    trapezoid = (gradients[:-1] + gradients[1:]).mean(axis=0) / 2
    return ((features - baseline) * trapezoid).astype(np.float32)


def _gradients(features_model, batch: np.ndarray, class_index: int) -> np.ndarray:
    """d p(class) / d features for each item of the batch."""
    import tensorflow as tf

    inputs = tf.convert_to_tensor(batch, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        probabilities = features_model(inputs, training=False)
        chosen = tf.reduce_sum(probabilities[:, class_index])
    return tape.gradient(chosen, inputs).numpy()


def silence_baseline(inspected: Inspected) -> np.ndarray:
    """The features [*shape] of a silent clip: integrated gradients' default starting point."""
    from tuner_app.inspection import probe

    return probe.frontend_features(inspected, np.zeros((1, CLIP_SAMPLES), np.float32))[0]


def class_saliency(inspected: Inspected, features_model, waveform: np.ndarray, class_index: int,
                   method: str = "gradient_x_input") -> np.ndarray:
    """float32 [*frontend output shape]: class `class_index`'s saliency over the features of a clip [16000]."""
    from tuner_app.inspection import probe

    features = probe.frontend_features(inspected, np.asarray(waveform, np.float32).reshape(1, -1))[0]
    return saliency_map(features_model, features, class_index, method, silence_baseline(inspected))
