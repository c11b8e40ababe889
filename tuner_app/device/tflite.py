"""TFLite copies of an exported model: float32, and int8 with the front-end kept in float32; their sizes and
accuracy against the SavedModel.

They take float32 waveforms [1, 16000] at 16 kHz (serving_default; decoding stays on the client). With no
TF Select ("flex") ops, which `tflite_ops` lists, they run in the standalone LiteRT interpreter
(`ai_edge_litert.interpreter.Interpreter`, no TensorFlow needed) as in `tf.lite.Interpreter`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from tuner_app.device import calibration as calibration_ranges
from tuner_app.errors import ConversionError, TunerAppError

TFLITE_FLOAT = "model.tflite"
TFLITE_INT8 = "model_int8.tflite"
REPRESENTATIVE_CLIPS = 100  # int8 calibration sample (training clips)
CHECK_CLIPS = 500  # float vs TFLite accuracy sample (test clips, else validation)


def _save_frozen(function, directory: str) -> None:
    """A concrete function, frozen, as the serving_default of a SavedModel of its own. Frozen: Keras 3 variable
    reads abort TF 2.17's TFLite converter ("missing attribute 'value'"). Saved here: converting the frozen
    function directly, the converter saves it with custom gradients, swish's (BC-ResNet) captures a constant
    there, that save fails silently, and the .tflite came out with no signature at all ("0 Signatures")."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(function)
    tf.saved_model.save(tf.Module(), directory, signatures={"serving_default": frozen},
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))


def convert_function(function, run) -> bytes:
    """TFLite bytes of a concrete function; `run(converter)` sets the converter up and converts. Raises
    ConversionError: the ops TFLite lacks, else the converter's first line."""
    try:
        with native_output_hidden(), tempfile.TemporaryDirectory(prefix="tflite-") as saved:
            _save_frozen(function, saved)
            return run(tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=["serving_default"]))
    except Exception as err:  # the converter raises its own ConverterError types
        raise ConversionError(f"TFLite conversion failed: {conversion_cause(str(err))}") from None


# The converter's words for an op with no TFLite kernel, inside a long MLIR location.
UNSUPPORTED_OP = re.compile(r"'(tf\.\w+)' op is neither a custom op nor a flex op")


def conversion_cause(message: str) -> str:
    """The converter's error in a few words: the ops TFLite has no kernel for, or its first line."""
    ops = sorted(set(UNSUPPORTED_OP.findall(message)))
    if ops:
        return f"TFLite has no kernel for {', '.join(ops)} (an op the model uses)"
    return message.splitlines()[0] if message else "no reason given"


def stripped(blob: bytes) -> bytes:
    """The .tflite without its tensor and subgraph names and signatures, which a device never reads: BC-ResNet-1's
    features-in file 91,856 -> 67,288 bytes (names were 21 KB), the same ops, arena and outputs."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# The front-end is the Keras layer named "frontend" (features/layers.py), and where the int8 network takes row
# scales, the layer "frontend_rows" dividing its features by them (row_scale.py); in the frozen graph their ops
# are named "<model>/frontend_1/<op>", and an op fused from several is named by all of them, joined by ";". A
# part can be empty: TF 2.17's converter names a GATHER "<scope>/GatherV2;".
FRONTEND_SCOPE = re.compile(r"(^|/)frontend(_rows)?(_\d+)?/")


def frontend_nodes(float_model: bytes) -> list[str]:
    """The output tensors of the ops of a float .tflite that belong to the front-end layer, by location: every
    name an op was fused from lies in the layer's scope. The CNN's ops (its residual ADDs and pooling MEAN
    included) never do."""
    interpreter = tf.lite.Interpreter(model_content=float_model)
    names = {detail["index"]: detail["name"] for detail in interpreter.get_tensor_details()}
    outputs = (names[index] for op in interpreter._get_ops_details() for index in op["outputs"])
    return sorted({name for name in outputs if in_frontend(name)})


def in_frontend(name: str) -> bool:
    """Whether a tensor name lies in the front-end's scope. Empty parts are skipped: counted as outside, they
    left the STFT's framing GATHER off the deny list, so the converter quantized the waveform itself to int8
    (steps of 1/163) before the FFT, and BC-ResNet-1 on FSDD by speaker fell 0.834 -> 0.664."""
    parts = [part for part in name.split(";") if part]
    return bool(parts) and all(FRONTEND_SCOPE.search(part) for part in parts)


def _convert(module, calibration: np.ndarray | None = None, optimize: bool = False,
             frontend: list[str] = ()) -> bytes:
    """TFLite bytes of serving_default. optimize: int8 weights; int8 activations too when calibrated on
    `calibration` clips. TF Select is on, but the converter uses a TF kernel only where TFLite has none."""
    def run(converter):
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter.optimizations = [tf.lite.Optimize.DEFAULT] if optimize else []
        return _run_converter(converter, calibration, frontend)

    return convert_function(module.serve_waveform.get_concrete_function(), run)


@contextlib.contextmanager
def native_output_hidden(*fds: int):
    """C++ logging (the converter's absl, TFLM's) ignores TF_CPP_MIN_LOG_LEVEL: hide what it writes to `fds`
    (default stderr) unless TF logging is on."""
    if int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0) < 2:
        yield
        return
    with open(os.devnull, "wb") as devnull, native_output_redirected(devnull, *(fds or (2,))):
        yield


@contextlib.contextmanager
def native_output_redirected(target, *fds: int):
    """What C++ code writes to the file descriptors `fds` goes to the open file `target` meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    for fd in fds:
        os.dup2(target.fileno(), fd)
    try:
        yield
    finally:
        for fd, kept in zip(fds, saved):
            os.dup2(kept, fd)
            os.close(kept)


def _run_converter(converter, calibration: np.ndarray | None, frontend: list[str] = ()) -> bytes:
    if calibration is None:
        return converter.convert()
    # The front-end stays float by location (a node denylist, as TFLite's quantization debugger keeps nodes
    # float), the CNN is int8 as a whole. Keeping it float by op type instead also left the CNN's ADD, MUL, PAD
    # and MEAN in float, and cost DS-CNN-S on FSDD by speaker 0.69 -> 0.30; by location 0.71 (issue 25's note).
    return calibration_ranges.int8_model(converter, calibration, int8_io=False, denylisted_nodes=frontend)


def write_tflite(module, directory: Path, quantize: str | None, representative: np.ndarray | None,
                 int8_module=None) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Write model.tflite (and model_int8.tflite, of `int8_module` where given: the same outputs, its network's
    rows scaled, row_scale.waveform_model); returns ({kind: {path, bytes, ops}}, quantization note).

    ops: {output dtype or "flex": op names}; "flex" ops need the TF Select runtime."""
    float_model = _convert(module)
    written = {"float": _write_blob(directory / TFLITE_FLOAT, float_model)}
    if quantize != "int8":
        return written, None
    calibration = np.asarray(representative, np.float32)
    try:
        int8_module = module if int8_module is None else int8_module
        # Its own float graph names its front-end: the row division is there, not in model.tflite.
        frontend = frontend_nodes(float_model if int8_module is module else _convert(int8_module))
        blob = _convert(int8_module, calibration, optimize=True, frontend=frontend)
        rows = "" if int8_module is module else ", its feature rows divided by per-row scales"
        how = (f"post-training int8 of the CNN, activations calibrated on {len(calibration)} training clips; "
               f"the front-end layer stays float32{rows}")
    except TunerAppError:
        blob = _convert(module, None, optimize=True)
        how = "dynamic-range fallback (full int8 failed): int8 weights, float32 activations"
    written["int8"] = _write_blob(directory / TFLITE_INT8, blob)
    ops = written["int8"]["ops"]
    in_float = sorted({*ops.get("float32", []), *ops.get("complex64", [])})
    return written, (f"{how}; int8 ops: {', '.join(ops.get('int8', [])) or 'none'}; float ops ("
                     f"front-end or no int8 kernel): {', '.join(in_float) or 'none'}; float32 input and output")


def _write_blob(path: Path, blob: bytes) -> dict[str, Any]:
    path.write_bytes(blob)
    return {"path": path, "bytes": len(blob), "ops": tflite_ops(blob)}


def compare_accuracy(module, written: Mapping[str, Mapping[str, Any]],
                     check: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Accuracy of the SavedModel module and of each .tflite on the labelled check sample."""
    waveforms, labels = np.asarray(check[0], np.float32), np.asarray(check[1])
    if not len(labels):
        return {"clips": 0}
    scores = {"clips": len(labels),
              "saved_model": float(np.mean(module.serve_waveform(waveforms)["class_id"].numpy() == labels))}
    for kind, entry in written.items():
        if kind not in ("float", "int8"):
            continue  # the features-in model takes features: features_in.accuracy
        predicted = tflite_probabilities(Path(entry["path"]).read_bytes(), waveforms).argmax(axis=1)
        scores["tflite" if kind == "float" else "tflite_int8"] = float(np.mean(predicted == labels))
    return scores


def samples(splits: Mapping[str, Any], corpus_classes, model_classes) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(training clips to calibrate int8, (test waveforms, model label ids) to compare float and TFLite).

    `splits` are decoded clips ({split: DecodedClips}); corpus labels map to the model's classes by name.
    """
    check = splits["test"] if len(splits["test"]) else splits["validation"]
    model_ids = {name: index for index, name in enumerate(model_classes)}
    labels = np.array([model_ids.get(name, -1) for name in corpus_classes])[check.labels]
    known = np.flatnonzero(labels >= 0)[:CHECK_CLIPS]
    return calibration_clips(splits["train"]), (check.batch(known), labels[known])


def calibration_clips(train) -> np.ndarray:
    """REPRESENTATIVE_CLIPS training clips (DecodedClips), drawn with a fixed seed, as they are: not augmented."""
    picked = np.random.default_rng(0).choice(len(train), min(REPRESENTATIVE_CLIPS, len(train)), replace=False)
    return train.batch(picked)


def tflite_probabilities(model: bytes, waveforms: np.ndarray) -> np.ndarray:
    """Run a .tflite exported by export.py (serving_default, one clip at a time): [n, n_classes]."""
    runner = tf.lite.Interpreter(model_content=model).get_signature_runner()
    rows = []
    for clip in np.asarray(waveforms, np.float32):
        outputs = runner(waveform=clip[np.newaxis])
        # Freezing the graph renames the outputs to output_0...; the probabilities are the float one.
        rows.append(next(value for value in outputs.values() if value.dtype == np.float32)[0])
    return np.stack(rows) if rows else np.zeros([0, 0], np.float32)


def tflite_ops(model: bytes) -> dict[str, list[str]]:
    """Op names of a .tflite by the type they compute in ("int8", "float32", ...), plus "flex": the TF
    Select ops, which need TensorFlow's kernels at run time. Quantize/dequantize steps are left out."""
    interpreter = tf.lite.Interpreter(model_content=model)
    dtypes = {detail["index"]: np.dtype(detail["dtype"]).name for detail in interpreter.get_tensor_details()}
    groups: dict[str, set[str]] = {}
    # No public API lists the ops (tf.lite.experimental.Analyzer only prints text): the private call is
    # guarded by tests/test_export_portable.py.
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        if name in ("QUANTIZE", "DEQUANTIZE", "DELEGATE"):
            continue
        kind = "flex" if name.startswith("Flex") else dtypes.get(op["outputs"][0], "?") if len(op["outputs"]) else "?"
        groups.setdefault(kind, set()).add(name)
    return {kind: sorted(names) for kind, names in sorted(groups.items())}
