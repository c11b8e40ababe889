"""What a trial's MLflow run ends with: its final metrics, under the names the runs table shows, and the tags its
scores call for; and the sizes a rejected configuration's run carries."""

from __future__ import annotations

from typing import Any, Mapping

from tuner_app.device import costs, trial_int8
from tuner_app.errors import InfeasibleConfig
from tuner_app.search import chance

CHANCE_TAG = "tuner_app.stopped_at_chance"  # "true" on a trial search/chance.py stopped: FINISHED, not a failure
SIZE_METRICS = ("params_total", "params_trainable", "params_conv", "params_fc", "macs")
# child metric name -> TrialOutcome.scores key; val scores are those of the kept weights. With executions_per_trial
# K > 1 the scores are the mean over the executions, <name>_std their spread (search/scoring.py).
FINAL_METRICS = {"best_val_accuracy": "val_accuracy", "best_val_loss": "val_loss", "test_accuracy": "test_accuracy",
                 "best_val_accuracy_std": "val_accuracy_std", "best_val_loss_std": "val_loss_std",
                 **{name: name for name in (*SIZE_METRICS, "model_bytes", "train_seconds", "keras_latency_ms",
                                            *costs.DEVICE_COSTS,
                                            "test_accuracy_std", "executions", "kept_execution",
                                            *chance.SCORES, "executions_at_chance", *trial_int8.SCORES)}}


def final_values(scores: Mapping[str, float | None]) -> dict[str, float]:
    """A trial's scores (run_trial's, or its trial.json metrics) under their child run metric names."""
    return {name: scores[key] for name, key in FINAL_METRICS.items() if scores.get(key) is not None}


def score_tags(scores: Mapping[str, float | None]) -> dict[str, str]:
    """The tags a trial's scores call for: CHANCE_TAG where it stopped at chance."""
    return {CHANCE_TAG: "true"} if scores.get(chance.STOPPED) else {}


def rejected_sizes(tuner, values: Mapping[str, Any]) -> dict[str, float]:
    # A rejected configuration was never built, but its size is what the budget judged.
    try:
        sizes = tuner.sizes(values)
    except InfeasibleConfig:
        return {}
    return {name: sizes[name] for name in SIZE_METRICS if name in sizes}
