"""Which of an export's models `predict` and `evaluate` run (`--runtime`): the SavedModel, a .tflite in LiteRT,
or the features-in int8 network in LiteRT or in TFLite Micro, its features from the front-end tuner_app.json
names (features.frontend, the function training used)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from tuner_app.errors import TunerAppError

FILES = {"tflite": "model.tflite", "tflite-int8": "model_int8.tflite",
         "int8-features": "model_int8_features.tflite", "tflm": "model_int8_features.tflite"}
RUNTIMES = ("saved_model", *FILES)


def scorer(path: Path, metadata: dict[str, Any], runtime: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """float32 waveforms [n, 16000] -> probabilities [n, n_classes] on `runtime`; None for the SavedModel."""
    if runtime == "saved_model":
        return None
    if runtime not in FILES:
        raise TunerAppError(f"--runtime: expected one of {', '.join(RUNTIMES)}, got {runtime!r}")
    model_file = path / FILES[runtime]
    if not model_file.is_file():
        flag = "--tflite" if runtime == "tflite" else "--quantize int8"
        raise TunerAppError(f"{model_file}: not in this export (export it with {flag})")
    blob = model_file.read_bytes()
    if runtime in ("tflite", "tflite-int8"):
        from tuner_app.device.tflite import tflite_probabilities

        return lambda waveforms: tflite_probabilities(blob, waveforms)
    return _features_in(blob, metadata, model_file, on_micro=runtime == "tflm")


def _features_in(blob: bytes, metadata: dict[str, Any], model_file: Path, on_micro: bool):
    from tuner_app.features.frontend import FrontendConfig, features
    from tuner_app.device import micro
    from tuner_app.device import features_in

    try:
        config = FrontendConfig.from_dict(metadata["tflite"]["int8_features"]["frontend"])
    except (KeyError, TypeError) as err:
        raise TunerAppError(f"{model_file}: tuner_app.json has no tflite.int8_features.frontend ({err})") from None

    def probabilities(waveforms: np.ndarray) -> np.ndarray:
        computed = np.asarray(features(np.asarray(waveforms, np.float32), config))
        if not on_micro:
            return features_in.probabilities(blob, computed)
        tensors = features_in.tensors(blob)
        scores = micro.scores(blob, features_in.quantized(computed, tensors["input"]))
        return features_in.dequantized(scores, tensors["output"])

    return probabilities
