"""A trial's scores: one execution's (validation and test scores, latency), the size of its weights, and the
trial's from its executions (mean and spread)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from tuner_app.search import chance

LATENCY_REPEATS = 10
SPREAD_SCORES = ("val_accuracy", "val_loss", "test_accuracy")  # each also reported as <name>_std when K > 1


def scores(model, val_ds, test_ds) -> dict[str, float]:
    """val_accuracy, val_loss and (with test data) test_accuracy of the model's current weights."""
    val_loss, val_accuracy = model.evaluate(val_ds, verbose=0)
    result = {"val_accuracy": float(val_accuracy), "val_loss": float(val_loss)}
    if test_ds is not None:
        result["test_accuracy"] = float(model.evaluate(test_ds, verbose=0)[1])
    return result


def latency_ms(model, val_ds) -> float:
    """Median wall time of one single-clip forward pass (waveform in, front-end included, probabilities out)."""
    features = next(iter(val_ds))[0][:1]
    model(features, training=False)  # the first call traces
    times = []
    for _ in range(LATENCY_REPEATS):
        started = time.perf_counter()
        model(features, training=False)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def weights_bytes(model) -> int:
    """The bytes of the model's weights as it holds them (float32: 4 x params_total): what an exported float
    model carries. The training checkpoint is larger: it also holds the optimizer's state."""
    return sum(math.prod(variable.shape) * np.dtype(variable.dtype).itemsize for variable in model.weights)


def better(result: dict[str, float], than: dict[str, float], monitor: str) -> bool:
    """Whether one execution's kept weights beat another's on `monitor` (val_loss lower, val_accuracy higher)."""
    if monitor == "val_loss":
        return result[monitor] < than[monitor]
    return result[monitor] > than[monitor]


def combine(executions: Sequence[dict[str, float]], kept: int) -> dict[str, float]:
    """The trial's scores from its executions' (each with train_seconds): one execution's as they are; for
    several, the mean of each score, its sample standard deviation as <name>_std, the total train_seconds,
    the number of executions and which one's weights the trial keeps, and whether they stopped at chance
    (chance.combined)."""
    if len(executions) == 1:
        return dict(executions[0])
    averaged = [name for name in executions[0] if name not in chance.SCORES]
    combined = {name: float(np.mean([result[name] for result in executions])) for name in averaged}
    combined["train_seconds"] = float(sum(result["train_seconds"] for result in executions))
    for name in SPREAD_SCORES:
        if name in executions[0]:
            combined[f"{name}_std"] = float(np.std([result[name] for result in executions], ddof=1))
    return {**combined, **chance.combined(executions), "executions": float(len(executions)),
            "kept_execution": float(kept)}
