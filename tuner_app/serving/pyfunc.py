"""The loader module of the export's MLflow pyfunc flavor (`loader_module` in its MLmodel, written by
tracking/mlflow_model.py): `mlflow.pyfunc.load_model` and `mlflow models serve` import this module and call
`_load_pyfunc(model root)`. It needs no mlflow: the object it returns only has to have `predict`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tuner_app.constants import CLIP_SAMPLES
from tuner_app.errors import TunerAppError
from tuner_app.serving import inference


class WaveformClassifier:
    """The export's main SavedModel behind MLflow's pyfunc `predict`."""

    def __init__(self, loaded: inference.Loaded):
        self.loaded = loaded

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        """Float32 16 kHz waveforms [n, 16000] (an array, a pandas DataFrame or nested lists) -> the
        class probabilities [n, n_classes], float32, columns in the order of the export's class names."""
        return self.loaded.probabilities(waveforms(model_input)).astype(np.float32)


def waveforms(model_input: Any) -> np.ndarray:
    """What the scoring server or a caller hands over, as float32 [n, 16000]: an array as it is, a
    DataFrame as its values (one clip a row, or one column holding a clip per cell), a list as an array."""
    if hasattr(model_input, "to_numpy"):  # a pandas DataFrame or Series; checked this way so pandas is not imported
        model_input = model_input.to_numpy()
    array = np.asarray(model_input)
    if array.dtype == object:  # one column whose cells are whole clips
        array = np.stack([np.asarray(cell, np.float32) for cell in array.reshape(-1)])
    array = np.atleast_2d(array.astype(np.float32, copy=False))
    if array.ndim != 2 or array.shape[1] != CLIP_SAMPLES:
        raise TunerAppError(f"model input: expected float32 waveforms [n, {CLIP_SAMPLES}], got shape "
                            f"{list(array.shape)}")
    return array


def _load_pyfunc(path: str | os.PathLike) -> WaveformClassifier:
    """MLflow's pyfunc entry point: `path` is the model root (the MLmodel names no `data`), i.e. the export."""
    return WaveformClassifier(inference.load(path))
