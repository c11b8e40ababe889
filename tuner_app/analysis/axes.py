"""The Pareto analysis's axes: the size metrics x may be, and the accuracy metrics that choose the front and show on y.

Sizes are a trial run's MLflow metrics: its float model's (params_total, macs, model_bytes) and, where the search
measured its int8 conversion, the device costs (flash_bytes, ram_bytes, latency_ms). Accuracy is the float
model's (accuracy="float") or the int8 model's (accuracy="int8"); its validation metric chooses the front.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

SIZE_AXES = {"params_total": "parameters", "macs": "MACs per clip", "model_bytes": "float32 weight bytes",
             "flash_bytes": "int8 flash bytes", "ram_bytes": "peak RAM bytes (TFLM arena)",
             "latency_ms": "host int8 latency, ms"}
SIZE_HEADERS = {"params_total": "Params", "macs": "MACs", "model_bytes": "Bytes", "flash_bytes": "Flash",
                "ram_bytes": "RAM", "latency_ms": "Latency ms"}
DEVICE_SIZES = ("flash_bytes", "ram_bytes", "latency_ms")  # measured on the int8 model, where the search asked
FRACTIONAL_SIZES = frozenset({"latency_ms"})  # every other size is a whole count
ACCURACY_METRICS = {"val": "best_val_accuracy", "test": "test_accuracy"}  # the float model's
INT8_ACCURACY_METRICS = {"val": "val_accuracy_int8", "test": "test_accuracy_int8"}
METRICS_BY_ACCURACY = {"float": ACCURACY_METRICS, "int8": INT8_ACCURACY_METRICS}
ACCURACY_LABELS = {"val": "validation accuracy", "test": "test accuracy"}
CSV_SIZES = ("params_total", "params_conv", "params_fc", "macs", "model_bytes", *DEVICE_SIZES)
CSV_ACCURACIES = (*ACCURACY_METRICS.values(), *INT8_ACCURACY_METRICS.values())


def row_metric(row: Mapping[str, Any], name: str) -> float | None:
    """A trial row's metric `name` as a finite float; None where the run lacks it or it is not finite."""
    value = (row.get("metrics") or {}).get(name)
    return float(value) if value is not None and math.isfinite(float(value)) else None


def accuracy_metric(accuracy: str, y: str = "val") -> str:
    """The metric of `accuracy` ("float" or "int8") on split `y` ("val": the one that chooses the front)."""
    return METRICS_BY_ACCURACY[accuracy][y]


def accuracy_label(accuracy: str, y: str = "val") -> str:
    """How plots and tables name that metric: "validation accuracy", "int8 test accuracy", ..."""
    label = ACCURACY_LABELS[y]
    return label if accuracy == "float" else f"{accuracy} {label}"


def size_value(name: str, value: float | None) -> float | int | None:
    """A size as the CSV holds it: a whole count, or the latency in ms as measured; None stays None."""
    if value is None or name in FRACTIONAL_SIZES:
        return value
    return int(value)


def size_text(name: str, value: float | None) -> str:
    """A size as a table shows it: 66,016 or 0.125 (ms); "-" where the run lacks it."""
    if value is None:
        return "-"
    return f"{value:,.3f}" if name in FRACTIONAL_SIZES else f"{int(value):,}"
