"""The features-in int8 model under TensorFlow Lite Micro, as a microcontroller runs it: TFLM's own interpreter
and reference kernels (the `tflite-micro` package's host build), the arena it needs, and its scores."""

from __future__ import annotations

import re
import tempfile

import numpy as np

from tuner_app.errors import TunerAppError
from tuner_app.device.tflite import native_output_hidden, native_output_redirected

ARENA_LIMIT = 64 << 20  # what the interpreter is given; it records what it actually used of it
ARENA_TOTAL = re.compile(rb"Arena allocation total (\d+) bytes")


def _interpreter(blob: bytes, arena_bytes: int = ARENA_LIMIT):
    from tflite_micro import runtime

    try:
        with native_output_hidden(1, 2):  # TFLM prints each allocation that fails
            return runtime.Interpreter.from_bytes(blob, arena_size=arena_bytes)
    except RuntimeError:
        raise TunerAppError(f"TFLite Micro cannot allocate this model in {ARENA_LIMIT >> 20} MB "
                            "(an op it has no kernel for, or a float or string tensor?)") from None


def arena_bytes(blob: bytes) -> int:
    """The tensor arena TFLM allocates the model in, as its recording allocator counts it (head: the planned
    activations; tail: persistent tensors, op data, quantization): what a device must give it. Read from its
    own report: probing smaller arenas instead can crash the host build."""
    interpreter = _interpreter(blob)
    with tempfile.TemporaryFile() as report:
        with native_output_redirected(report, 1, 2):
            interpreter.print_allocations()
        report.seek(0)
        found = ARENA_TOTAL.search(report.read())
    if not found:
        raise TunerAppError("TFLite Micro did not report its arena (tflite-micro's print_allocations changed?)")
    return int(found.group(1))


def scores(blob: bytes, quantized_features: np.ndarray) -> np.ndarray:
    """TFLM's int8 scores [n, n_classes] for int8 features [n, ...] (quantized as tuner_app.json says)."""
    interpreter = _interpreter(blob)
    rows = []
    for row in np.asarray(quantized_features, np.int8):
        interpreter.set_input(row[np.newaxis], 0)
        interpreter.invoke()
        rows.append(np.array(interpreter.get_output(0))[0])
    return np.stack(rows) if rows else np.zeros([0, 0], np.int8)
