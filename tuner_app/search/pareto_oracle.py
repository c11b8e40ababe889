"""`--tuner pareto`: a keras-tuner oracle for the whole front of accuracy against size, not one best model.

Keras Tuner optimises one number. This oracle asks Optuna's multi-objective sampler (TPE, or NSGA-II) for each
configuration through its ask-and-tell interface, with two objectives: validation accuracy (maximised) and the
size (`objective.size`: params_total, macs, model_bytes, or on a device flash_bytes, ram_bytes, latency_ms;
minimised), while keras-tuner still runs the trials, so tracking, resume and the budget keep working. The
accuracy is the float model's or its int8 conversion's (`objective.accuracy`). The size of a configuration is
known before it trains (the architecture walk, or its int8 model converted untrained): one over the budget, or
infeasible, is told to the study as failed and another is asked for, without spending a trial.

The space's initial configurations come first, one per trial: each is enqueued in the study (Optuna's
`enqueue_trial`), so the asked trial carries its values and the sampler learns from its result as from any other's;
no gap preference passes it over.

No Optuna state is saved: on every start the study is rebuilt from keras-tuner's finished trials (their values
and scores), so a killed and restarted search goes on where it stood and never proposes a configuration twice.
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Mapping
from typing import Any

import keras_tuner
import optuna

from tuner_app.device import costs
from tuner_app.device.budget import Budget, misfit
from tuner_app.errors import TunerAppError
from tuner_app.model.architecture.configured import sizes
from tuner_app.model.space import hyperparameters as hps
from tuner_app.model.space.configurations import configurations, is_grid
from tuner_app.model.space.search_space import SearchSpace, accuracy_metric
from tuner_app.search.oracles import MAX_CONSECUTIVE_REJECTIONS, BudgetMixin
from tuner_app.search.pareto_geometry import front_points, gap_width
from tuner_app.search.record import trial_point, trial_points

REDRAW_AFTER_REPEATS = 20  # proposals in a row of configurations tried already, before a random draw
# The gap preference measures sizes before training: with the walk (model_bytes grows as params_total does), or
# on a device axis the int8 model converted untrained (device/costs.py).
WALK_SIZES = {"params_total": "params_total", "macs": "macs", "model_bytes": "params_total"}


def distribution(spec: Mapping[str, Any]):
    """The Optuna distribution of a hyperparameter spec (None for a fixed one: it is not sampled)."""
    kind = spec["type"]
    if kind == "fixed":
        return None
    if kind in ("choice", "boolean"):
        return optuna.distributions.CategoricalDistribution(hps.candidate_values(spec))
    log = spec.get("sampling", "linear") == "log"
    step = None if log else spec.get("step")
    if kind == "int":
        return optuna.distributions.IntDistribution(spec["min_value"], spec["max_value"], log=log, step=step or 1)
    return optuna.distributions.FloatDistribution(spec["min_value"], spec["max_value"], log=log, step=step)


def _suggest(asked: optuna.trial.Trial, name: str, dist) -> Any:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return asked.suggest_categorical(name, dist.choices)
    suggest = asked.suggest_int if isinstance(dist, optuna.distributions.IntDistribution) else asked.suggest_float
    return suggest(name, dist.low, dist.high, step=dist.step, log=dist.log)


def _sampler(name: str, seed: int | None):
    with warnings.catch_warnings():  # Optuna flags multivariate TPE as experimental; it is what conditional spaces need
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def _key(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), sort_keys=True)


# As keras-tuner's RandomSearch and BayesianOptimization: a space that leaves max_trials out still ends (a
# continuous one would never be spent).
DEFAULT_MAX_TRIALS = 10


class ParetoOracle(BudgetMixin, keras_tuner.Oracle):
    """Proposes configurations for the front of validation accuracy against size (see the module)."""

    def __init__(self, space: SearchSpace, budget: Budget | None, n_classes: int, *, sampler: str = "tpe",
                 gap_candidates: int = 1, max_trials: int = DEFAULT_MAX_TRIALS, seed: int | None = None, **options):
        super().__init__(space, budget, n_classes, max_trials=max_trials, seed=seed, **options)
        self.sampler_name, self.size = sampler, space.objective.get("size", "params_total")
        self.gap_candidates = gap_candidates
        self._study: optuna.Study | None = None
        self._asked: dict[str, optuna.trial.Trial] = {}  # keras-tuner trial id -> its Optuna trial, this process

    @property
    def study(self) -> optuna.Study:
        """The Optuna study, built on first use from keras-tuner's finished trials."""
        if self._study is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self._study = optuna.create_study(directions=["maximize", "minimize"],
                                              sampler=_sampler(self.sampler_name, self.seed))
            for trial in self.trials.values():
                self._replay(trial)
        return self._study

    def _replay(self, trial) -> None:
        values = self._objectives(trial)
        if values is None:
            return
        params = self._search_values(trial)
        distributions = {name: distribution(self.space.hyperparameters[name]) for name in params}
        self._study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, values=values))

    def _objectives(self, trial) -> list[float] | None:
        """[validation accuracy, size] of a completed trial; None for any other."""
        point = trial_point(trial, self.size, accuracy_metric(self.space))
        return None if point is None else [point[1], point[0]]

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if self.max_trials is not None and len(self.trials) >= self.max_trials:
            return {"status": "STOPPED", "values": None}
        candidates = self._listed() or self._candidates(trial_id)
        if not candidates:
            return {"status": "STOPPED", "values": None}  # a spent space stops as keras-tuner's own oracles do
        chosen = self._widest_gap(candidates)
        for asked, _ in candidates:
            if asked is not chosen[0]:
                self.study.tell(asked, state=optuna.trial.TrialState.FAIL)  # passed over: not learned from
        self._asked[trial_id] = chosen[0]
        return {"status": "RUNNING", "values": chosen[1]}

    def _listed(self) -> list[tuple[optuna.trial.Trial, dict[str, Any]]]:
        """The next initial configuration (BudgetMixin._initial_values) as the only candidate, asked of the study
        as enqueued; [] once every one is held or turned away."""
        values = self._initial_values()
        if values is None:
            return []
        self.study.enqueue_trial(self._sampled(values))
        asked = self.study.ask()
        return [(asked, self._values(asked))]  # suggested from the enqueued params: the trial holds them

    def _candidates(self, trial_id: str) -> list[tuple[optuna.trial.Trial, dict[str, Any]]]:
        """Up to gap_candidates (asked trial, values) that can be trained and were never tried; each other
        proposal is told as failed and another asked for. A sampler that keeps proposing what was tried (TPE
        settles on its favourites in a small space) is handed an untried configuration drawn at random."""
        tried = {_key(trial.hyperparameters.values) for trial in self.trials.values() if trial.trial_id != trial_id}
        candidates, repeats = [], 0
        for _ in range(MAX_CONSECUTIVE_REJECTIONS):
            if repeats == REDRAW_AFTER_REPEATS:
                drawn = self._random_values() or self._untried()
                if drawn is None:
                    return candidates  # spent; or nothing fits, and BudgetMixin said why
                self.study.enqueue_trial(self._sampled(drawn))
                repeats = 0
            asked = self.study.ask()
            values = self._values(asked)
            repeat = _key(values) in tried or _key(values) in self._rejected
            if repeat or not self.fits(values):
                repeats += repeat
                self.study.tell(asked, state=optuna.trial.TrialState.FAIL)  # not learned from; asked again
                continue
            candidates.append((asked, values))
            tried.add(_key(values))
            repeats = 0
            if len(candidates) == self.gap_candidates:
                return candidates
        if not candidates:  # turned away again and again, not a spent space: say why
            self.gave_up = (f"{self.space.source}: {MAX_CONSECUTIVE_REJECTIONS} proposals in a row were over the "
                            f"budget, infeasible or tried already; loosen {self.budget.describe() or 'the budget'} "
                            "or widen the space")
        return candidates

    def _untried(self) -> dict[str, Any] | None:
        """A fitting configuration no trial holds, picked at random from a finite space's enumeration: for the
        last few, which keras-tuner's random draw gives up on after 20 collisions. None if there is none."""
        if not is_grid(self.space):
            return None
        tried = {_key(self._search_values(trial)) for trial in self.trials.values()}
        remaining = [values for values in configurations(self.space) if _key(self._sampled(values)) not in tried]
        random.Random(self.seed + len(self.trials)).shuffle(remaining)
        return next((values for values in remaining
                     if misfit(self.space, values, self.budget, self.n_classes)[1] is None), None)

    def _widest_gap(self, candidates: list[tuple]) -> tuple:
        """The candidate whose size falls in the widest gap of the current front; the first (the sampler's own
        order) among equals, and always while the front has under two points."""
        axis = WALK_SIZES.get(self.size, self.size)
        front = front_points(list(trial_points(self, axis, accuracy_metric(self.space)).values()))
        if len(candidates) == 1 or len(front) < 2:
            return candidates[0]
        widths = [self._gap(values, axis, front) for _, values in candidates]
        return candidates[widths.index(max(widths))]

    def _gap(self, values: Mapping[str, Any], axis: str, front) -> float:
        """gap_width of the candidate's size before training; -1 (last choice) where it has no int8 model."""
        values = self._space_values(values)
        if axis not in costs.DEVICE_COSTS:
            return gap_width(sizes(self.space, values, self.n_classes)[axis], front)
        try:
            return gap_width(costs.untrained(self.space, values, self.n_classes)[axis], front)
        except TunerAppError:
            return -1.0

    def _values(self, asked: optuna.trial.Trial) -> dict[str, Any]:
        """A configuration drawn on the Optuna trial: each active hyperparameter in order, parents first."""
        values: dict[str, Any] = {}
        for name, spec in self.space.hyperparameters.items():
            if not hps.is_active(self.space.hyperparameters, name, values):
                continue
            dist = distribution(spec)
            values[name] = spec["value"] if dist is None else _suggest(asked, name, dist)
        return values

    def end_trial(self, trial) -> None:
        super().end_trial(trial)
        asked = self._asked.pop(trial.trial_id, None)
        values = self._objectives(self.trials[trial.trial_id])
        if asked is not None:
            self.study.tell(asked, values) if values else self.study.tell(asked, state=optuna.trial.TrialState.FAIL)
        elif values and self._study is not None:
            self._replay(self.trials[trial.trial_id])  # a trial retried after a resume: asked by an earlier process

    def front(self) -> list[str]:
        """The keras-tuner trial ids on the current front of accuracy against size (Optuna's non-dominated sort)."""
        by_values = {_key(self._search_values(trial)): trial.trial_id for trial in self.trials.values()
                     if self._objectives(trial)}
        return [by_values[_key(best.params)] for best in self.study.best_trials if _key(best.params) in by_values]

    def _search_values(self, trial) -> dict[str, Any]:
        """The trial's values of the sampled (not fixed) hyperparameters: its Optuna params."""
        return self._sampled(trial.hyperparameters.values)

    def _sampled(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in values.items()
                if name in self.space.hyperparameters and distribution(self.space.hyperparameters[name])}
