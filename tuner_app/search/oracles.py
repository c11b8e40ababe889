"""keras-tuner oracles that only propose configurations the search can train.

A configuration over the size budget (--max-params, --max-flash, --max-ram: device/budget.py), or one whose
feature map collapses (InfeasibleConfig), is turned away as the oracle proposes it, and a fitting one is drawn instead: it never becomes a keras-tuner
trial, so it spends no trial and no invented score reaches Bayesian optimisation's Gaussian process. The
oracle keeps what it turned away in `rejections` (saved with its state, so a resumed search still shows
them); the tuner reports them to the search's observers.

The space's `initial_configurations` come before any draw: each oracle proposes the next listed one that no
trial holds yet (one that does not fit is turned away as above). Which are held is read from the trials alone,
so a resumed search, or a chief serving workers, proposes exactly the untried ones, with no state of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import keras_tuner

from tuner_app.device.budget import Budget, misfit
from tuner_app.files import write_json
from tuner_app.model.space import hyperparameters as hps
from tuner_app.model.space.search_space import SearchSpace
from tuner_app.search import interrupts, keras_tuner_internals
from tuner_app.search.checkpoints import runs_dir_write

# Sizing a configuration is cheap arithmetic, but a space where almost nothing fits must still end.
MAX_CONSECUTIVE_REJECTIONS = 500
REJECTIONS_STATE = "tuner_app_rejections"  # the key of the rejections in oracle.json
RETRIED_STATUSES = ("RUNNING", "INVALID")  # a trial a kill interrupted, or one keras-tuner queued for retry
# keras-tuner reads seed 0 as no seed at all (`seed or random.randint(1, 10000)`), so a search at seed 0, every
# space's default, drew other configurations on every run. 0 goes to keras-tuner as this seed, outside that range.
SEED_ZERO = 10_007
log = logging.getLogger(__name__)


def _key(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), sort_keys=True)


class BudgetMixin:
    """Turns away configurations that cannot be trained, for any keras-tuner oracle.

    Every random draw of keras-tuner's oracles goes through `_random_values`, which proposes the space's
    initial configurations first (`_initial_values`), then redraws here until a configuration fits;
    `_duplicate` counts a turned-away configuration as already tried, so keras-tuner's own collision limit
    ends a search whose fitting configurations are all spent. Both are private to keras-tuner:
    tests/test_keras_tuner_contract.py pins what this relies on.
    """

    def __init__(self, space: SearchSpace, budget: Budget | None, n_classes: int, **options):
        self.space, self.budget, self.n_classes = space, budget or Budget(), n_classes
        self.rejections: list[dict[str, Any]] = []
        self._rejected: set[str] = set()
        self._consecutive_rejections = 0
        self.gave_up: str | None = None  # why the oracle stopped proposing, if nothing fitted for too long
        self.reclaimable: dict[str, str] = {}  # tuner id -> the unfinished trial it trained when last saved
        if options.get("seed") == 0:
            options["seed"] = SEED_ZERO
        super().__init__(**options)

    def fits(self, values: Mapping[str, Any], name: str | None = None) -> bool:
        """True if `values` can be trained; otherwise record it (once) among the rejections, its reason led by
        `name` (an initial configuration's)."""
        params, reason = misfit(self.space, values, self.budget, self.n_classes)
        if reason is None:
            self._consecutive_rejections = 0
            return True
        reason = f"{name}: {reason}" if name else reason
        if _key(values) not in self._rejected:
            self._rejected.add(_key(values))
            self.rejections.append({"hyperparameters": dict(values), "params": params, "reason": reason,
                                    "before_trial": len(self.trials)})
        self._consecutive_rejections += 1
        return False

    def create_trial(self, tuner_id):
        # keras-tuner saves oracle.json here: a Ctrl-C or `kill` mid-write would leave one no resume can read
        # (seen: an empty oracle.json). The stop is acted on at the next safe point, a batch later.
        with interrupts.signals_to(interrupts.note_stop):
            return super().create_trial(tuner_id)

    def update_trial(self, trial_id, metrics, step=0):
        with interrupts.signals_to(interrupts.note_stop):  # it writes the trial's trial.json
            return super().update_trial(trial_id, metrics, step=step)

    def _initial_values(self) -> dict[str, Any] | None:
        """The first of the space's initial configurations that no trial holds, not turned away, and fitting;
        None once there is none. One that does not fit is recorded among the rejections and passed over."""
        held = {_key(self._space_values(trial.hyperparameters.values)) for trial in self.trials.values()}
        for listed in self.space.initial_configurations:
            key = _key(listed.values)
            if key not in held and key not in self._rejected and self.fits(listed.values, listed.name):
                log.info("%s: proposing initial configuration %s", self.space.source, listed.name)
                return dict(listed.values)
        return None

    def _space_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` without keras-tuner's own entries (Hyperband's tuner/epochs, ...)."""
        return {name: value for name, value in values.items() if name in self.space.hyperparameters}

    def _random_values(self):
        listed = self._initial_values()
        if listed is not None:
            return listed
        while self._consecutive_rejections < MAX_CONSECUTIVE_REJECTIONS:
            values = keras_tuner_internals.random_values(super())
            if values is None or self.fits(values):
                return values
        self.gave_up = (f"{self.space.source}: {self._consecutive_rejections} configurations in a row were "
                        f"turned away (the last: {self.rejections[-1]['reason']}); loosen "
                        f"{self.budget.describe() or 'the budget'} or narrow the space")
        return None  # keras-tuner's own answer when it runs out of values: the search stops

    def _duplicate(self, values) -> bool:
        return keras_tuner_internals.is_duplicate(super(), values) or _key(values) in self._rejected

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), REJECTIONS_STATE: self.rejections}

    def save(self) -> None:
        # keras-tuner writes oracle.json and trial.json in place; a `kill -9` mid-write would leave a file no
        # resume (or worker) could read. Written whole or not at all instead.
        with runs_dir_write(path := keras_tuner_internals.oracle_file(self)):
            write_json(path, self.get_state())

    def _save_trial(self, trial) -> None:
        with runs_dir_write(path := keras_tuner_internals.trial_file(self, trial.trial_id)):
            write_json(path, trial.get_state())

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(self._requeued(state))
        self.rejections = list(state.get(REJECTIONS_STATE, []))
        # Under a raised budget (or an edited space) an earlier rejection may fit now: it may be drawn again.
        self._rejected = {_key(entry["hyperparameters"]) for entry in self.rejections
                          if self._still_misfits(entry["hyperparameters"])}

    def _still_misfits(self, values: Mapping[str, Any]) -> bool:
        try:
            return misfit(self.space, values, self.budget, self.n_classes)[1] is not None
        except KeyError:  # the space has gained a hyperparameter since
            return False

    def _requeued(self, state: dict[str, Any]) -> dict[str, Any]:
        """The saved state, with exactly the unfinished trials queued for retry.

        keras-tuner's reload queues every trial the state lists as ongoing. It saves a just-ended trial as
        still ongoing until the next one starts (a kill in between would retrain a finished trial), and a
        kill between saving a new trial and saving the oracle leaves a RUNNING trial no list holds.
        """
        status = {trial_id: trial.status for trial_id, trial in self.trials.items()}
        candidates = [*state["retry_queue"], *state["ongoing_trials"].values(),
                      *(trial_id for trial_id, trial_status in status.items() if trial_status == "RUNNING")]
        retry = [trial_id for trial_id in dict.fromkeys(candidates) if status.get(trial_id) in RETRIED_STATUSES]
        # A restarted chief (search/chief.py) lets each worker still training its trial finish it.
        self.reclaimable = {tuner_id: trial_id for tuner_id, trial_id in state["ongoing_trials"].items()
                            if status.get(trial_id) in RETRIED_STATUSES}
        return {**state, "retry_queue": retry, "ongoing_trials": {}}


class RandomSearchOracle(BudgetMixin, keras_tuner.oracles.RandomSearchOracle):
    """keras-tuner's random search over the configurations that fit."""


class HyperbandOracle(BudgetMixin, keras_tuner.oracles.HyperbandOracle):
    """keras-tuner's Hyperband: each bracket's first round draws fitting configurations; later rounds
    continue trials that were trained, so they fit."""


class BayesianOptimizationOracle(BudgetMixin, keras_tuner.oracles.BayesianOptimizationOracle):
    """keras-tuner's Bayesian optimisation, fitted only on trained trials.

    The initial configurations are proposed first, whatever `num_initial_points` says; once completed they are
    ordinary trials: the Gaussian process learns from them, and keras-tuner, which counts completed trials,
    counts them among its initial points (so its random phase draws that many fewer)."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        listed = self._initial_values()
        if listed is not None:  # keras-tuner's Gaussian-process phase draws no random values to take their place
            return {"status": "RUNNING", "values": listed}
        response = super().populate_space(trial_id)  # its initial random points already fit
        if response["status"] != "RUNNING" or self.fits(response["values"]):
            return response
        # The Gaussian process proposed a configuration that cannot be trained. It learns nothing from a
        # rejection (a made-up score would mislead it), so asked again it would propose the same optimum
        # forever; keras-tuner keeps only the best of its acquisition restarts, so there is no runner-up
        # to take. A fitting random draw, as in the initial phase, gives it a real score to learn from.
        values = self._random_values()
        return {"status": "RUNNING" if values is not None else "STOPPED", "values": values}

    def _vectorize_trials(self):
        # keras-tuner has no branch for a STOPPED trial: it would score it with the previous trial's score (or
        # raise UnboundLocalError). Ours never stop so, but a project from an older tuner-app holds rejected
        # configurations as STOPPED trials; the Gaussian process must not learn made-up scores from them.
        trials = self.trials
        self.trials = {trial_id: trial for trial_id, trial in trials.items() if trial.status != "STOPPED"}
        try:
            return keras_tuner_internals.gaussian_process_data(super())
        finally:
            self.trials = trials


class GridSearchOracle(BudgetMixin, keras_tuner.oracles.GridSearchOracle):
    """The initial configurations, then the grid in keras-tuner's order (first hyperparameter outermost, each
    one's default first), skipping what was tried and what cannot be trained.

    keras-tuner's own walk steps from the values of existing trials, so it cannot step past a rejected
    point that never became a trial; this walk starts from the beginning each time and skips tried points.
    """

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        listed = self._initial_values()
        if listed is not None:
            return {"status": "RUNNING", "values": listed}
        tried = {_key(trial.hyperparameters.values) for trial in self.trials.values()}
        for values in self._grid():
            if _key(values) not in tried and _key(values) not in self._rejected and self.fits(values):
                return {"status": "RUNNING", "values": values}
        return {"status": "IDLE" if self.ongoing_trials else "STOPPED", "values": None}

    def _grid(self):
        space = self.get_space().space
        axes = {hp.name: [hp.default, *(value for value in hp.values if value != hp.default)] for hp in space}
        return hps.active_configurations(self.space.hyperparameters, axes)
