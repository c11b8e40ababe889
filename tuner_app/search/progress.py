"""Progress a person can follow: one header per trial (number of total, searched hyperparameters,
parameter count), one line per epoch, how the trial ended (stopped at chance, if so) with an ETA for the rest,
and the front of accuracy against size as it grows; one line per configuration the oracle turned away untrained."""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping, TextIO

from tuner_app.errors import InfeasibleConfig
from tuner_app.model.space.search_space import accuracy_metric
from tuner_app.search import chance
from tuner_app.search.observers import SearchObserver, TrialOutcome
from tuner_app.search.record import search_front

ACCURACY_SHOWN = {"val_accuracy": "val_acc", "val_accuracy_int8": "int8 val_acc"}
FRONT_SHOWN = 8  # points of the front on its progress line; a longer front shows its ends


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class ProgressReporter(SearchObserver):
    """Writes the search's progress to `stream` (stderr by default), one line per event."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.trained_seconds: list[float] = []
        self.finished = 0
        self.planned: int | None = None
        self._trial_started: dict[str, float] = {}  # trial id -> when it began (a chief sees several at once)
        self._epoch_started = 0.0

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def search_begin(self, tuner) -> None:
        self.planned = tuner.planned_trials()
        self.finished = sum(1 for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED")
        resumed = f", {self.finished} already done (resuming)" if self.finished else ""
        self._say(f"Search {tuner.project_name}: {type(tuner).__name__}, "
                  f"{self.planned if self.planned is not None else '?'} trials{resumed}")

    def trial_begin(self, tuner, trial) -> None:
        self._trial_started[trial.trial_id] = self._epoch_started = time.perf_counter()
        values = trial.hyperparameters.values
        self._say(f"[{self._number()}] trial {trial.trial_id}: {_settings(tuner, values)}, "
                  f"{_params_text(tuner, values)}")

    def configuration_rejected(self, tuner, values: Mapping[str, Any], reason: str, params: int | None) -> None:
        self._say(f"    rejected, not trained: {reason} ({_settings(tuner, values)})")

    def _number(self) -> str:
        total = self.planned if self.planned is not None else "?"
        return f"{self.finished + len(self._trial_started)}/{total}"  # a chief sees several trials running

    def epoch_end(self, tuner, trial, epoch: int, logs: Mapping[str, float]) -> None:
        now = time.perf_counter()
        values = trial.hyperparameters.values
        epochs = values.get("tuner/epochs", values.get("epochs", tuner.space.training["epochs"]))
        self._say(f"    epoch {epoch + 1}/{epochs}  loss {logs.get('loss', float('nan')):.4f} "
                  f"acc {logs.get('accuracy', float('nan')):.4f}  val_loss {logs.get('val_loss', float('nan')):.4f} "
                  f"val_acc {logs.get('val_accuracy', float('nan')):.4f}  ({now - self._epoch_started:.1f} s)")
        self._epoch_started = now

    def trial_end(self, tuner, trial, outcome: TrialOutcome) -> None:
        seconds = time.perf_counter() - self._trial_started.pop(trial.trial_id, time.perf_counter())
        if outcome.status != "COMPLETED":
            return self._say(f"    {outcome.status}: {outcome.reason}")
        self.finished += 1
        self.trained_seconds.append(seconds)
        scores = outcome.scores
        runs = f" ({scores['executions']:.0f} runs)" if "executions" in scores else ""  # executions_per_trial > 1
        test = f", test_acc {_score(scores, 'test_accuracy')}" if "test_accuracy" in scores else ""
        self._say(f"    done in {_duration(seconds)}: val_acc {_score(scores, 'val_accuracy')}{runs}{test}"
                  f"{_int8_text(scores)}{_chance_text(scores)}{self._eta()}")
        self._say(front_line(tuner))

    def trial_lost(self, tuner, trial, reason: str, retried: bool) -> None:
        self._trial_started.pop(trial.trial_id, None)
        self._say(f"    trial {trial.trial_id} lost: {reason}; " + ("it will be retried" if retried else "FAILED"))

    def _eta(self) -> str:
        if self.planned is None or not self.trained_seconds:
            return ""
        remaining = max(self.planned - self.finished, 0)
        mean = sum(self.trained_seconds) / len(self.trained_seconds)
        return f"; {remaining} to go, ETA {_duration(remaining * mean)}" if remaining else ""

    def search_end(self, tuner, status: str) -> None:
        if status == "KILLED":
            self._say(f"Interrupted: {self.finished} finished trial(s) kept in {tuner.project_dir}; "
                      "run the same command again to resume.")


def front_line(tuner) -> str:
    """The completed trials' front of validation accuracy against the space's size axis, and its hypervolume
    against the space's fixed reference point: "front: 3 of 5 trials, hypervolume 6.1234: 1.6K 0.812 | ..."."""
    found = search_front(tuner)
    front = found.front
    shown = front if len(front) <= FRONT_SHOWN else [*front[:FRONT_SHOWN // 2], None, *front[-FRONT_SHOWN // 2:]]
    cells = " | ".join("..." if point is None else f"{_compact(point[0])} {point[1]:.3f}" for point in shown)
    return (f"    front: {len(front)} of {len(found.points)} trials, hypervolume {found.hypervolume:.4f} "
            f"({found.size}, {ACCURACY_SHOWN[accuracy_metric(tuner.space)]}): {cells}")


def _compact(size: float) -> str:
    """1552 -> 1.6K, 8579978 -> 8.6M."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if size >= scale:
            return f"{size / scale:.{1 if size < 10 * scale else 0}f}{unit}"
    return f"{size:.0f}"


def _score(scores: Mapping[str, float], name: str) -> str:
    """A score, with its spread over the trial's executions when it has several: 0.8125 ± 0.0312."""
    spread = f" ± {scores[name + '_std']:.4f}" if name + "_std" in scores else ""
    return f"{scores.get(name, float('nan')):.4f}{spread}"


def _chance_text(scores: Mapping[str, float]) -> str:
    """", stopped at chance after epoch 5" for a trial search/chance.py stopped (a completed trial all the same)."""
    if not scores.get(chance.STOPPED):
        return ""
    return f", stopped at chance after epoch {scores[chance.STOPPED_EPOCH]:.0f}"


def _settings(tuner, values: Mapping[str, Any]) -> str:
    """The searched (not fixed) hyperparameters' values, name=value."""
    searched = [name for name, spec in tuner.space.hyperparameters.items() if spec["type"] != "fixed"]
    settings = " ".join(f"{name}={_value(values[name])}" for name in searched if name in values)
    return settings or "(fixed configuration)"


def _params_text(tuner, values: Mapping[str, Any]) -> str:
    try:
        return f"{tuner.sizes(values)['params']:,} params{_device_text(tuner.device_costs(values))}"
    except InfeasibleConfig:  # the oracle turns infeasible configurations away; an old project may hold one
        return "infeasible"


def _device_text(scores: Mapping[str, float]) -> str:
    """", int8: flash 48.0 KB, RAM 23.7 KB, 0.18 ms" where the int8 model's device costs were measured."""
    if "flash_bytes" not in scores:
        return ""
    return (f", int8: flash {scores['flash_bytes'] / 1024:.1f} KB, RAM {scores['ram_bytes'] / 1024:.1f} KB"
            + (f", {scores['latency_ms']:.2g} ms" if "latency_ms" in scores else ""))


def _int8_text(scores: Mapping[str, float]) -> str:
    """", int8 val_acc 0.8100 test_acc 0.8000" for a trial scored in int8 (device/trial_int8.py)."""
    if "val_accuracy_int8" not in scores:
        return ""
    test = f" test_acc {scores['test_accuracy_int8']:.4f}" if "test_accuracy_int8" in scores else ""
    return f"; int8 val_acc {scores['val_accuracy_int8']:.4f}{test}"
