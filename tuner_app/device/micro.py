"""The features-in int8 model under TensorFlow Lite Micro, as a microcontroller runs it: TFLM's own interpreter
and reference kernels (the `tflite-micro` package's host build), the arena it needs, and its scores.

TFLM aborts the whole process on some models it cannot prepare (seen: a softmax whose input scale is below
2^-26, which a network with vanishing activations gets), so each model is first prepared in a child process:
an abort there is one line, and a model that prepares there prepares here too."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile

import numpy as np

from tuner_app.errors import TunerAppError
from tuner_app.device.tflite import native_output_hidden

ARENA_LIMIT = 64 << 20  # what the interpreter is given; it records what it actually used of it
ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
PREPARE_SECONDS = 300
# The child: prepare the model, print TFLM's own account of its arena (from C++).
PREPARE = ("import sys; from tflite_micro import runtime; "
           "runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=int(sys.argv[2]))"
           ".print_allocations()")
_prepared: dict[bytes, int] = {}  # sha256 of a model -> its arena, once a child prepared it


def arena_bytes(blob: bytes) -> int:
    """The tensor arena TFLM allocates the model in, as its recording allocator counts it (head: the planned
    activations; tail: persistent tensors, op data, quantization): what a device must give it. Read from its
    own report: probing smaller arenas instead can crash the host build."""
    key = hashlib.sha256(blob).digest()
    if key not in _prepared:
        _prepared[key] = _prepare_apart(blob)
    return _prepared[key]


def _prepare_apart(blob: bytes) -> int:
    with tempfile.NamedTemporaryFile(suffix=".tflite") as model:
        model.write(blob)
        model.flush()
        child = subprocess.run([sys.executable, "-c", PREPARE, model.name, str(ARENA_LIMIT)], capture_output=True,
                               text=True, timeout=PREPARE_SECONDS)
    found = ARENA_TOTAL.search(child.stdout + child.stderr)  # its report goes to either, by build
    if child.returncode < 0 or child.returncode == 134:
        raise TunerAppError("TFLite Micro aborts preparing this model (a kernel's check failed, e.g. a softmax "
                            "input range too small for its int8 kernel)")
    if child.returncode or not found:
        raise TunerAppError(f"TFLite Micro cannot allocate this model in {ARENA_LIMIT >> 20} MB (an op it has no "
                            f"kernel for, or a float or string tensor?): {_last_line(child.stderr)}")
    return int(found.group(1))


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _interpreter(blob: bytes, arena_size: int = ARENA_LIMIT):
    from tflite_micro import runtime

    arena_bytes(blob)  # prepared apart first: an abort here would end this process
    with native_output_hidden(1, 2):  # TFLM prints each allocation that fails
        return runtime.Interpreter.from_bytes(blob, arena_size=arena_size)


def scores(blob: bytes, quantized_features: np.ndarray) -> np.ndarray:
    """TFLM's int8 scores [n, n_classes] for int8 features [n, ...] (quantized as tuner_app.json says)."""
    interpreter = _interpreter(blob)
    rows = []
    for row in np.asarray(quantized_features, np.int8):
        interpreter.set_input(row[np.newaxis], 0)
        interpreter.invoke()
        rows.append(np.array(interpreter.get_output(0))[0])
    return np.stack(rows) if rows else np.zeros([0, 0], np.int8)
