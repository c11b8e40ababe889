"""The search loop: keras-tuner tuners whose trials train with early stopping and score on test data. Their
oracles (search/oracles.py) turn away configurations over the parameter budget, or infeasible ones, before
they become trials; the tuner reports those rejections to its observers.

Resume is keras-tuner's own: the same directory and project name with overwrite=False reloads the oracle,
so finished trials are kept and only the remaining ones run.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import keras_tuner

from tuner_app.data.cache import DecodedClips
from tuner_app.errors import TunerAppError
from tuner_app.features.dataset import make_dataset
from tuner_app.model import architecture
from tuner_app.model.architecture import N_CLASSES
from tuner_app.model.build import CnnHyperModel, epochs
from tuner_app.model.configurations import check_budget, configurations, is_grid
from tuner_app.model.spaces import TUNER_OPTIONS, SearchSpace
from tuner_app.search import interrupts, oracles, scoring
from tuner_app.search.observers import SearchObserver, TrialOutcome
from tuner_app.search.pareto_oracle import ParetoOracle
from tuner_app.search.record import metric, rejected_trials, write_search_record

log = logging.getLogger(__name__)


class _EpochRelay(keras.callbacks.Callback):
    def __init__(self, tuner, trial):
        super().__init__()
        self.tuner, self.trial = tuner, trial

    def on_epoch_end(self, epoch, logs=None):
        self.tuner.notify("epoch_end", self.trial, epoch, dict(logs or {}))
        interrupts.check_stop()

    def on_train_batch_end(self, batch, logs=None):
        interrupts.check_stop()


class TrialMixin:
    """What every tuner class shares: its oracle (oracle_class, which turns away what does not fit), the
    observers' hooks, and run_trial (fit with early stopping on val_loss, test score)."""

    execution = 0  # which of the running trial's executions is training (0 to executions_per_trial - 1)
    oracle_class: type = oracles.RandomSearchOracle

    def __init__(self, hypermodel, space: SearchSpace, max_params: int | None = None,
                 observers: Sequence[SearchObserver] = (), *, directory: str, project_name: str,
                 overwrite: bool = False, executions_per_trial: int = 1, **oracle_options):
        self.space, self.max_params, self.observers = space, max_params, list(observers)
        self._last_model = self._running = None
        oracle = self.oracle_class(space, max_params, hypermodel.n_classes, **oracle_options)
        # keras-tuner's tuner classes only build their own oracle and hand it to keras_tuner.Tuner, so that is
        # called directly, also past keras_tuner.Hyperband (a base of ours for its continued trials' weights).
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, directory=directory,
                                   project_name=project_name, overwrite=overwrite,
                                   executions_per_trial=executions_per_trial)
        self._reported = len(self.rejected)  # a resumed search's earlier rejections were reported then

    def _populate_initial_space(self) -> None:
        # keras-tuner's hook for this (AutoKeras overrides it too). Its own builds a model per conditional scope
        # to discover the hyperparameters inside, at each one's defaults, which may be infeasible (TC-ResNet's
        # kernel on a short front-end); our hypermodel declares every one, conditional ones included, up front.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    @property
    def rejected(self) -> list[dict[str, Any]]:
        """What the oracle turned away: hyperparameters, params (None if infeasible), reason, before_trial."""
        return rejected_trials(self.oracle)

    def _report_rejections(self) -> None:
        rejected = self.rejected
        while self._reported < len(rejected):
            entry = rejected[self._reported]
            self._reported += 1
            self.notify("configuration_rejected", entry["hyperparameters"], entry["reason"], entry["params"])

    @property
    def n_classes(self) -> int:
        return self.hypermodel.n_classes

    def notify(self, event: str, *args) -> None:
        """Call `event` on every observer, in order. A stop request waits for each call to finish; the caller's
        next safe point acts on it. An observer that raises is reported once and dropped: training goes on."""
        for observer in list(self.observers):
            try:
                with interrupts.signals_to(interrupts.note_stop):  # never stop in the middle of an MLflow write
                    getattr(observer, event)(self, *args)
            except Exception as error:  # noqa: BLE001 -- tracking must never cost training; Ctrl-C still stops
                # Dropped rather than retried: a store that is down stays down, and MLflow's client retries
                # each call for minutes, which would stall every epoch. A resume logs the missed trials.
                self.observers.remove(observer)
                log.warning(_observer_failed(observer, event, error, self.project_dir))

    def on_search_begin(self) -> None:
        super().on_search_begin()
        self.save()  # keras-tuner only reloads a project whose tuner file exists; it first writes it after a trial
        self.notify("search_begin")

    def search(self, *fit_args, **fit_kwargs) -> None:
        """keras-tuner's search. A trial an exception cuts short ends KILLED (an interrupt) or FAILED for the
        observers; an oracle that gave up (almost nothing fits) ends the search with a TunerAppError."""
        try:
            super().search(*fit_args, **fit_kwargs)
        except BaseException as interruption:  # KeyboardInterrupt, SystemExit, keras-tuner's FatalError, ...
            self._report_rejections()
            if self._running is not None:
                trial, self._running = self._running, None
                self._end(trial, "KILLED" if not isinstance(interruption, Exception) else "FAILED",
                          _reason(interruption))
            raise
        gave_up = getattr(self.oracle, "gave_up", None)
        if gave_up:
            raise TunerAppError(gave_up)

    def on_trial_begin(self, trial) -> None:
        self._report_rejections()  # what the oracle turned away before proposing this trial
        self._running, self._last_model = trial, None
        super().on_trial_begin(trial)
        self.notify("trial_begin", trial)

    def on_trial_end(self, trial) -> None:
        self._running = None
        if trial.status == "COMPLETED":
            self._end(trial, "COMPLETED", "")
        else:  # INVALID (keras-tuner may retry it) or FAILED: run_trial raised
            self._end(trial, "FAILED", _last_line(trial.message))
        with interrupts.signals_to(interrupts.note_stop):  # a half-written oracle.json could not be resumed
            super().on_trial_end(trial)
        interrupts.check_stop()

    def on_search_end(self) -> None:
        self._report_rejections()  # the oracle may have turned some away before it stopped
        with interrupts.signals_to(interrupts.note_stop):  # keras-tuner saves the oracle only with a trial
            self.save()
        super().on_search_end()

    def run_trial(self, trial, train_ds, val_ds, test_ds=None, **fit_kwargs) -> dict[str, float]:
        """Train one configuration executions_per_trial times; return the scores of the kept (minimum val_loss)
        weights (for several executions their mean and spread: scoring.combine) and the configuration's sizes."""
        executions, kept = [], 0
        for execution in range(self.executions_per_trial):
            model, result = self._execute(trial, execution, train_ds, val_ds, test_ds, fit_kwargs.get("verbose", 0))
            executions.append(result)
            if execution == 0 or result["val_loss"] < executions[kept]["val_loss"]:
                # The trial's checkpoint, so the exported model, is this execution's; its scores are the mean.
                kept, self._last_model = execution, model
                self.save_model(trial.trial_id, model)
        sizes = {**self.sizes(trial.hyperparameters.values), "model_bytes": scoring.weights_bytes(self._last_model),
                 "latency_ms": scoring.latency_ms(self._last_model, val_ds)}
        return {**scoring.combine(executions, kept), **{key: float(value) for key, value in sizes.items()}}

    def _execute(self, trial, execution: int, train_ds, val_ds, test_ds, verbose: int) -> tuple:
        """One training of the trial's configuration: the model at its kept weights, and its scores."""
        values = trial.hyperparameters.values
        space_values = {name: value for name, value in values.items() if name in self.space.hyperparameters}
        if self.executions_per_trial > 1:  # one execution keeps the search's own random stream, as it always did
            # Every trial's execution k starts from the same seed: configurations meet the same initialisations.
            keras.utils.set_random_seed(self.oracle.seed + execution)
        self.execution = execution
        # Hyperband's override loads the weights of the trial it continues: every execution starts from them.
        model = self._try_build(trial.hyperparameters)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.space.training["patience"],
                                             restore_best_weights=True)
        started = time.perf_counter()
        model.fit(train_ds, validation_data=val_ds, callbacks=[stop, _EpochRelay(self, trial)],
                  epochs=values.get("tuner/epochs", epochs(self.space, space_values)),
                  initial_epoch=values.get("tuner/initial_epoch", 0), shuffle=False,  # the dataset shuffles
                  verbose=verbose)
        seconds = time.perf_counter() - started
        return model, {**scoring.scores(model, val_ds, test_ds), "train_seconds": seconds}

    def sizes(self, values: Mapping[str, Any]) -> dict[str, float]:
        """params (= params_total), params_trainable/conv/fc and macs of a configuration, without building it."""
        space_values = {name: value for name, value in values.items() if name in self.space.hyperparameters}
        counts = architecture.sizes(self.space, space_values, self.n_classes)
        return {"params": counts["params_total"], **counts}

    def save_model(self, trial_id: str, model, step: int = 0) -> None:
        """Keep the trial's weights where keras-tuner (and Hyperband's continued trials) look for them."""
        with interrupts.signals_to(interrupts.note_stop):  # a half-written checkpoint could not be loaded
            model.save_weights(self._get_checkpoint_fname(trial_id))
            # keras-tuner's load_model and Hyperband rebuild from this file before loading the weights.
            with open(self._get_build_config_fname(trial_id), "w", encoding="utf-8") as stream:
                json.dump(model.get_build_config(), stream)

    def _end(self, trial, status: str, reason: str) -> None:
        scores = {name: metric(trial, name) for name in trial.metrics.metrics}
        outcome = TrialOutcome(status, reason, {k: v for k, v in scores.items() if v is not None},
                               self._last_model if status == "COMPLETED" else None,
                               self.get_trial_dir(trial.trial_id))
        self.notify("trial_end", trial, outcome)

    def planned_trials(self) -> int | None:
        """How many trials this search trains in all (None if the oracle cannot say)."""
        oracle = self.oracle
        if isinstance(oracle, keras_tuner.oracles.HyperbandOracle):
            return _hyperband_trials(oracle)
        planned = oracle.max_trials
        if isinstance(oracle, keras_tuner.oracles.GridSearchOracle) and is_grid(self.space):
            fitting = sum(1 for values in configurations(self.space)
                          if oracles.misfit(self.space, values, self.max_params, self.n_classes)[1] is None)
            planned = fitting if planned is None else min(planned, fitting)
        return planned

    def pre_create_trial(self) -> None:
        super().pre_create_trial()
        interrupts.check_stop()


def _reason(error: BaseException) -> str:
    return "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"


def _last_line(message: str | None) -> str:
    lines = [line for line in str(message or "").splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


def _hyperband_trials(oracle) -> int:
    # keras-tuner's own bracket arithmetic (private; tests/test_keras_tuner_contract.py pins it): every round of
    # every bracket, per iteration.
    brackets = range(oracle._get_num_brackets())
    per_iteration = sum(oracle._get_size(bracket, round_) for bracket in brackets
                        for round_ in range(oracle._get_num_rounds(bracket)))
    return per_iteration * oracle.hyperband_iterations


def _observer_failed(observer, event: str, error: Exception, project_dir: str) -> str:
    """The one line that reports a failing observer."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    cause = f"{type(error).__name__}: {lines[0].strip()}" if lines else type(error).__name__
    return (f"{type(observer).__name__} failed in {event} ({cause}) and is off for the rest of this search; "
            f"training goes on and the trials' results are kept in {project_dir}")


class RandomSearch(TrialMixin, keras_tuner.Tuner):
    """keras_tuner.RandomSearch with the app's trials and oracle."""

    oracle_class = oracles.RandomSearchOracle


class BayesianOptimization(TrialMixin, keras_tuner.Tuner):
    """keras_tuner.BayesianOptimization with the app's trials and oracle."""

    oracle_class = oracles.BayesianOptimizationOracle


class Hyperband(TrialMixin, keras_tuner.Hyperband):
    """keras_tuner.Hyperband with the app's trials and oracle (its _build_hypermodel loads the weights of the
    trial a later round continues)."""

    oracle_class = oracles.HyperbandOracle


class GridSearch(TrialMixin, keras_tuner.Tuner):
    """keras_tuner.GridSearch with the app's trials and oracle."""

    oracle_class = oracles.GridSearchOracle


class ParetoSearch(TrialMixin, keras_tuner.Tuner):
    """The front of validation accuracy against size: Optuna's multi-objective sampler proposes, keras-tuner runs."""

    oracle_class = ParetoOracle


TUNERS = {"random": RandomSearch, "bayesian": BayesianOptimization, "hyperband": Hyperband, "grid": GridSearch,
          "pareto": ParetoSearch}


def make_tuner(space: SearchSpace, hypermodel, directory: Path, project: str, tuner_name: str | None = None,
               max_params: int | None = None, overwrite: bool = False, seed: int | None = None,
               observers: Sequence[SearchObserver] = ()):
    """The tuner named by the space (or `tuner_name`), with the YAML's options, in directory/project."""
    name = tuner_name or space.tuner["name"]
    if name not in TUNERS:
        raise TunerAppError(f"--tuner: expected one of {sorted(TUNERS)}, got {name!r}")
    options = {key: value for key, value in space.tuner.items() if key in TUNER_OPTIONS[name]}
    if name == "hyperband":  # e.g. --tuner hyperband on a space written for random search
        options.setdefault("max_epochs", space.training["epochs"])
    options["seed"] = seed if seed is not None else options.get("seed", space.training["seed"])
    objective = keras_tuner.Objective(space.objective["name"], space.objective["direction"])
    return TUNERS[name](hypermodel, space, max_params, observers, objective=objective, directory=str(directory),
                        project_name=project, overwrite=overwrite, **options)


def run_search(space: SearchSpace, splits: dict[str, DecodedClips], directory: Path, *,
               tuner_name: str | None = None, max_params: int | None = None, fresh: bool = False,
               seed: int | None = None, noise=None, verbose: int = 0, class_names: Sequence[str] | None = None,
               observers: Sequence[SearchObserver] = (), data: Mapping[str, Any] | None = None):
    """Run (or resume) the search on the train/validation/test splits; returns the tuner.

    `class_names` name the label ids (default: 16 anonymous classes); `data` describes the corpus for
    the search record. Observers hear every trial; on an interrupt they hear search_end("KILLED").
    """
    class_names = list(class_names or (f"class_{index}" for index in range(N_CLASSES)))
    check_budget(space, max_params, len(class_names))
    seed = seed if seed is not None else space.training["seed"]
    keras.utils.set_random_seed(seed)
    steps_per_epoch = max(1, math.ceil(len(splits.get("train", ())) / space.training["batch_size"]))
    tuner = make_tuner(space, CnnHyperModel(space, len(class_names), steps_per_epoch), Path(directory),
                       _project_name(space, tuner_name), tuner_name=tuner_name, max_params=max_params,
                       overwrite=fresh, seed=seed, observers=observers)
    write_search_record(tuner, class_names, data or {})
    train_ds, val_ds, test_ds = _datasets(space, splits, noise, seed)
    status = "FAILED"
    interrupts.stop_requested.clear()
    try:
        with interrupts.signals_to(interrupts.request_stop):
            tuner.search(train_ds, val_ds, test_ds, verbose=verbose)
        _check_some_completed(tuner)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tuner.notify("search_end", status)
    return tuner


def _project_name(space: SearchSpace, tuner_name: str | None) -> str:
    return f"{Path(space.source).stem}-{tuner_name or space.tuner['name']}"


def _datasets(space: SearchSpace, splits: dict[str, DecodedClips], noise, seed: int) -> tuple:
    batch_size = space.training["batch_size"]
    missing = [name for name in ("train", "validation") if not len(splits.get(name, ()))]
    if missing:
        raise TunerAppError(f"corpus: the {missing[0]} split is empty; a search needs train and validation clips")
    train = make_dataset(splits["train"], batch_size, training=True, augment=space.augment, noise=noise, seed=seed)
    val = make_dataset(splits["validation"], batch_size)
    test = make_dataset(splits["test"], batch_size) if len(splits.get("test", ())) else None
    return train, val, test


def _check_some_completed(tuner) -> None:
    completed = [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]
    if tuner.rejected and not completed:
        raise TunerAppError(f"{tuner.space.source}: no configuration of the space fits the budget of "
                            f"{tuner.max_params} params ({len(tuner.rejected)} rejected)")


