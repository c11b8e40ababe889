"""What a search reports as it goes: the observer hooks and how a trial ended. Progress display and
MLflow tracking implement the hooks; the search calls them."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping, Sequence

from tuner_app.search import interrupts

log = logging.getLogger(__name__)


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

    def trial_lost(self, tuner, trial, reason: str, retried: bool) -> None:
        """Distributed search (the chief): the trial's worker stopped answering; it is retried elsewhere, or
        FAILED after repeated losses (a trial_end follows then)."""

    def search_end(self, tuner, status: str) -> None:
        """FINISHED, KILLED (interrupted) or FAILED (an error ended the whole search)."""


class ObserverList:
    """A search's observers, called in order. One that raises costs no training: it is reported once and
    left out. One that can `reconnect(tuner)` (the MLflow tracker) is only paused: it is asked again before
    each trial and at the end, and once it answers it logs what it missed. A stop request waits for each call
    to finish; the caller's next safe point acts on it."""

    def __init__(self, observers: Sequence[SearchObserver]):
        self.active, self.paused = list(observers), []

    def notify(self, tuner, event: str, *args) -> None:
        for observer in list(self.active):
            try:
                with interrupts.signals_to(interrupts.note_stop):  # never stop in the middle of an MLflow write
                    getattr(observer, event)(tuner, *args)
            except Exception as error:  # noqa: BLE001 -- tracking must never cost training; Ctrl-C still stops
                # Left out rather than retried at once: MLflow's client retries each call itself, which would
                # stall every epoch while its store is down.
                self.active.remove(observer)
                reconnects = callable(getattr(observer, "reconnect", None))
                if reconnects:
                    self.paused.append(observer)
                log.warning(_observer_failed(observer, event, error, tuner.project_dir, reconnects))

    def resume(self, tuner) -> None:
        """Ask each paused observer to reconnect; those that do are called again from the next event."""
        for observer in list(self.paused):
            try:
                with interrupts.signals_to(interrupts.note_stop):
                    observer.reconnect(tuner)
            except Exception:  # noqa: BLE001 -- still unreachable: asked again later
                continue
            self.paused.remove(observer)
            self.active.append(observer)
            log.warning(f"{type(observer).__name__} answers again and has caught up with the trials it missed")


def _observer_failed(observer, event: str, error: Exception, project_dir: str, reconnects: bool) -> str:
    """The one line that reports a failing observer."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    cause = f"{type(error).__name__}: {lines[0].strip()}" if lines else type(error).__name__
    then = ("is paused until it answers again, then logs what it missed" if reconnects
            else "is off for the rest of this search")
    return (f"{type(observer).__name__} failed in {event} ({cause}) and {then}; training goes on and the "
            f"trials' results are kept in {project_dir}")
