"""What a search reports as it goes: the observer hooks and how a trial ended. Progress display and
MLflow tracking implement the hooks; the search calls them."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping


@dataclasses.dataclass
class TrialOutcome:
    """How a trial ended. status: COMPLETED, FAILED (raised) or KILLED (interrupted); `scores` holds the
    metrics run_trial returned. (A configuration over the budget or infeasible never becomes a trial: see
    SearchObserver.configuration_rejected.)"""

    status: str
    reason: str = ""
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    model: Any = None
    trial_dir: str = ""


class SearchObserver:
    """What the search reports as it goes; progress display and MLflow tracking implement it.

    Every trial gets trial_begin then trial_end, interrupted ones included. A configuration the oracle turns
    away (over the budget, or infeasible) never becomes a trial: it gets configuration_rejected instead.
    """

    def search_begin(self, tuner) -> None:
        """Before the first trial (also when resuming)."""

    def trial_begin(self, tuner, trial) -> None:
        """A trial was created; trial.hyperparameters.values holds its configuration."""

    def epoch_end(self, tuner, trial, epoch: int, logs: Mapping[str, float]) -> None:
        """One training epoch ended (epoch counts from 0); logs: loss, accuracy, val_loss, val_accuracy."""

    def trial_end(self, tuner, trial, outcome: TrialOutcome) -> None:
        """The trial ended, whatever the way."""

    def configuration_rejected(self, tuner, values: Mapping[str, Any], reason: str, params: int | None) -> None:
        """The oracle turned a configuration away, untrained: over the budget (its params) or infeasible (None)."""

    def search_end(self, tuner, status: str) -> None:
        """FINISHED, KILLED (interrupted) or FAILED (an error ended the whole search)."""
