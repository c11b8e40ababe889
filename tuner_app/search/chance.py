"""Stopping a trial that is still at chance, and the scores that say so.

"At chance": every epoch so far had both training and validation accuracy below chance_threshold(n_classes),
1.5 x chance (1/n_classes) but at most 5 points above it. A trial whose first `training.chance_epochs` epochs
after its learning-rate warm-up were all at chance stops there, if epochs are left; it completes with its real
scores, marked by `stopped_at_chance` (1.0, else 0.0) and `stopped_epoch` (1-based, as the progress counts).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

# A guesser's accuracy seldom reaches 1.5 x chance by luck (on 320 validation clips of 16 classes it is 2.3
# standard deviations above 1/16), and luck only delays a stop; a model that learned anything is above it.
CHANCE_FACTOR = 1.5
MAX_MARGIN = 0.05  # with few classes 1.5 x chance is far above chance (0.75 of 2): a binary model at 0.7 learns
STOPPED = "stopped_at_chance"
STOPPED_EPOCH = "stopped_epoch"
SCORES = (STOPPED, STOPPED_EPOCH)


def chance_threshold(n_classes: int) -> float:
    """The accuracy below which a model of n_classes is at chance."""
    chance = 1 / n_classes
    return min(CHANCE_FACTOR * chance, chance + MAX_MARGIN)


class ChanceStop(keras.callbacks.Callback):
    """Stops training at the end of epoch warmup_epochs + chance_epochs (or the first after it: a Hyperband
    round that continues a trial starts later) if no epoch of this fit has left chance yet; chance_epochs 0 never
    stops. A single epoch with either accuracy at or above the threshold (or NaN) keeps the trial going, so
    noise can delay a stop but never cause one. EarlyStopping still restores its best weights: it holds them
    from the first epoch on and restores them at the end of training, whoever stopped it."""

    def __init__(self, n_classes: int, chance_epochs: int, warmup_epochs: int = 0):
        super().__init__()
        self.threshold = chance_threshold(n_classes)
        self.first_check = warmup_epochs + chance_epochs if chance_epochs else None
        self.left_chance, self.stopped_epoch = False, None

    def on_train_begin(self, logs=None):
        self.left_chance, self.stopped_epoch = False, None

    def on_epoch_end(self, epoch, logs=None):
        self.left_chance = self.left_chance or not self._at_chance(logs or {})
        if self.first_check is None or self.left_chance or epoch + 1 < self.first_check:
            return
        if epoch + 1 < (self.params or {}).get("epochs", epoch + 2):  # the last epoch ends it anyway: no mark
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True

    def _at_chance(self, logs) -> bool:
        # A missing accuracy counts as above chance: nothing is stopped on what was not measured.
        return all(logs.get(name, float("inf")) < self.threshold for name in ("accuracy", "val_accuracy"))

    def scores(self) -> dict[str, float]:
        """This training's marker: stopped_at_chance, and stopped_epoch where it stopped."""
        if self.stopped_epoch is None:
            return {STOPPED: 0.0}
        return {STOPPED: 1.0, STOPPED_EPOCH: float(self.stopped_epoch)}


def combined(executions: Sequence[dict[str, float]]) -> dict[str, float]:
    """A trial's marker from its executions': stopped at chance only if every one was (one that learned shows
    the configuration can), at the latest epoch any stopped; and how many were."""
    stopped = [result for result in executions if result.get(STOPPED)]
    marker = {STOPPED: float(len(stopped) == len(executions)), "executions_at_chance": float(len(stopped))}
    if len(stopped) == len(executions):
        marker[STOPPED_EPOCH] = max(result[STOPPED_EPOCH] for result in stopped)
    return marker
