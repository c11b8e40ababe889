"""The CNN alone as an int8 TFLite model, int8 features in and int8 scores out (model_int8_features.tflite):
how keyword spotters run on microcontrollers, where the front-end is DSP code and the model only the network.
tuner_app.json describes the front-end it expects and the input and output quantization (`describe`); where the
network takes the feature rows as channels (TC-ResNet), the input has a scale per row too (row_scale.py), which
the file carries and `quantized` applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tuner_app.device import calibration as calibration_ranges
from tuner_app.device import micro, row_scale, tflite

TFLITE_INT8_FEATURES = "model_int8_features.tflite"


def network(model):
    """The Keras model past its front-end layer: features [batch, *output_shape] in, probabilities out (the
    SpecAugment after it, if any, is identity outside training)."""
    import keras

    return keras.Model(model.get_layer("frontend").output, model.output, name=f"{model.name}_features_in")


FEATURES_BATCH = 256  # clips per front-end call: a large split at once would hold all its STFTs


def features_of(model, waveforms: np.ndarray) -> np.ndarray:
    """The model's own front-end on float32 waveforms [n, 16000]: the features the network is calibrated on."""
    frontend = model.get_layer("frontend")
    waveforms = np.asarray(waveforms, np.float32)
    parts = [np.asarray(frontend(tf.constant(waveforms[start:start + FEATURES_BATCH]), training=False))
             for start in range(0, len(waveforms), FEATURES_BATCH)]
    return np.concatenate(parts) if parts else np.zeros([0, *frontend.output.shape[1:]], np.float32)


class _FeaturesIn(tf.Module):
    def __init__(self, cnn):
        super().__init__(name="tuner_app_features_in")
        self.cnn = cnn
        shape = [1, *cnn.inputs[0].shape[1:]]
        self.serve_features = tf.function(lambda features: {"scores": self.cnn(features, training=False)},
                                          input_signature=[tf.TensorSpec(shape, tf.float32, name="features")])


def convert(model, calibration_waveforms: np.ndarray) -> bytes:
    """int8 TFLite of the network alone, every op int8 (TFLITE_BUILTINS_INT8: a model that needs a float op
    fails here, named), activations calibrated on the front-end's features of `calibration_waveforms`. Where the
    first conv takes the rows as channels, its input is the features divided by row scales (row_scale.py), and
    the file carries them. Its tensor names are stripped: a device reads tensors by index."""
    calibration = features_of(model, calibration_waveforms)
    rows = row_scale.scales(model, calibration)
    module = _FeaturesIn(network(model) if rows is None else row_scale.scaled_network(model, rows))
    run = fully_int8(row_scale.divided(calibration, rows))
    blob = tflite.stripped(tflite.convert_function(module.serve_features.get_concrete_function(), run))
    return blob if rows is None else row_scale.attached(blob, rows)


def fully_int8(calibration: np.ndarray):
    """The converter set-up (tflite.convert_function's `run`) of a model whose every op, input and output is
    int8, its activations calibrated on `calibration`, one example per row, to median ranges (calibration.py)."""
    def run(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        return calibration_ranges.int8_model(converter, calibration, int8_io=True)

    return run


def write(model, directory: Path, calibration_waveforms: np.ndarray) -> dict[str, Any]:
    """Write model_int8_features.tflite; its entry as write_tflite's, plus `description` for tuner_app.json."""
    blob = convert(model, calibration_waveforms)
    path = directory / TFLITE_INT8_FEATURES
    path.write_bytes(blob)
    return {"path": path, "bytes": len(blob), "ops": tflite.tflite_ops(blob),
            "description": describe(blob, model.get_layer("frontend").config.to_dict())}


def describe(blob: bytes, frontend: dict[str, Any]) -> dict[str, Any]:
    """The front-end to run before the model (features [bins, frames, 1], as features.frontend computes them),
    how to quantize its features (q = round(x[b] / row_scale[b] / scale) + zero_point, row_scale None: 1) and
    read its scores (x = (q - zero_point) * scale), and the tensor arena TFLite Micro needs for it."""
    return {"frontend": frontend, **tensors(blob), "tflm_arena_bytes": micro.arena_bytes(blob)}


def accuracy(model, blob: bytes, waveforms: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy of the features-in model on labelled waveforms, in LiteRT and in TFLite Micro (to the bit)."""
    features = features_of(model, waveforms)
    litert = probabilities(blob, features).argmax(axis=1)
    tflm = micro.scores(blob, quantized(features, tensors(blob)["input"])).argmax(axis=1)
    return {"tflite_int8_features": float(np.mean(litert == labels)),
            "tflm_int8_features": float(np.mean(tflm == labels))}


def tensors(blob: bytes) -> dict[str, Any]:
    interpreter = tf.lite.Interpreter(model_content=blob)
    (given,), (returned,) = interpreter.get_input_details(), interpreter.get_output_details()
    return {"input": {**_tensor(given), "row_scale": row_scale.stored(blob)}, "output": _tensor(returned)}


def _tensor(detail: dict[str, Any]) -> dict[str, Any]:
    scale, zero_point = detail["quantization"]
    return {"shape": [int(size) for size in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
            "scale": float(scale), "zero_point": int(zero_point)}


def probabilities(blob: bytes, features: np.ndarray) -> np.ndarray:
    """Run model_int8_features.tflite on float features [n, ...], quantized and dequantized as tuner_app.json
    says: [n, n_classes] float scores."""
    interpreter = tf.lite.Interpreter(model_content=blob)
    interpreter.allocate_tensors()
    (given,), (returned,) = interpreter.get_input_details(), interpreter.get_output_details()
    described = tensors(blob)
    rows = []
    for row in np.asarray(features, np.float32):
        interpreter.set_tensor(given["index"], quantized(row[np.newaxis], described["input"]))
        interpreter.invoke()
        rows.append(dequantized(interpreter.get_tensor(returned["index"])[0], described["output"]))
    return np.stack(rows) if rows else np.zeros([0, 0], np.float32)


def quantized(values: np.ndarray, tensor: dict[str, Any]) -> np.ndarray:
    """int8 of float features [..., bins, frames, 1] as the tensor entry says: row b divided by its row_scale
    (where it has one), then by scale, plus zero_point."""
    steps = np.round(row_scale.divided(values, tensor.get("row_scale")) / tensor["scale"]) + tensor["zero_point"]
    return np.clip(steps, -128, 127).astype(np.int8)


def dequantized(values: np.ndarray, tensor: dict[str, Any]) -> np.ndarray:
    return (values.astype(np.float32) - tensor["zero_point"]) * tensor["scale"]
