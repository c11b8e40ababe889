"""The search loop: keras-tuner tuners whose trials train with early stopping and score on test data. Their
oracles (search/oracles.py) turn away configurations over the size budget, or infeasible ones, before
they become trials; the tuner reports those rejections to its observers.

Resume is keras-tuner's own: the same directory and project name with overwrite=False reloads the oracle,
so finished trials are kept and only the remaining ones run.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import keras
import keras_tuner

from tuner_app.constants import SEED_MAX
from tuner_app.device import costs, trial_int8
from tuner_app.device.budget import Budget, measures_device
from tuner_app.errors import TunerAppError
from tuner_app.files import write_json
from tuner_app.model.architecture import configured
from tuner_app.model.architecture.build import epochs
from tuner_app.model.space.search_space import SearchSpace
from tuner_app.search import chance, checkpoints, chief, distribution, interrupts, oracles, planned, scoring
from tuner_app.search import keras_tuner_internals
from tuner_app.search.observers import ObserverList, SearchObserver, TrialOutcome
from tuner_app.search.worker import WorkerOracle
from tuner_app.search.pareto_oracle import ParetoOracle
from tuner_app.search.record import metric, rejected_trials


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
    observers' hooks, and run_trial (fit with early stopping on training.monitor or at chance, test score)."""

    worker_timeout = distribution.DEFAULT_WORKER_TIMEOUT  # a distributed search's chief (run_search sets it)
    execution = 0  # which of the running trial's executions is training (0 to executions_per_trial - 1)
    oracle_class: type = oracles.RandomSearchOracle

    def __init__(self, hypermodel, space: SearchSpace, budget: Budget | None = None,
                 observers: Sequence[SearchObserver] = (), *, directory: str, project_name: str,
                 overwrite: bool = False, executions_per_trial: int = 1, **oracle_options):
        self.space, self.budget, self.observers = space, budget or Budget(), ObserverList(observers)
        self._last_model = self._running = None
        self.int8_data = None  # run.py's, where the space asks for int8 scores (device/trial_int8.py)
        self.trained: list[str] = []  # ids of the trials this process trained (a worker's share of a search)
        oracle = self.oracle_class(space, self.budget, hypermodel.n_classes, **oracle_options)
        # keras-tuner's tuner classes only build their own oracle and hand it to keras_tuner.Tuner, so that is
        # called directly, also past keras_tuner.Hyperband (a base of ours for its continued trials' weights).
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, directory=directory,
                                   project_name=project_name, overwrite=overwrite,
                                   executions_per_trial=executions_per_trial)
        if isinstance(self.oracle, keras_tuner_internals.OracleClient):  # a worker (search/distribution.py)
            self.oracle = WorkerOracle(self.oracle)
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

    def report_rejections(self) -> None:
        rejected = self.rejected
        while self._reported < len(rejected):
            entry = rejected[self._reported]
            self._reported += 1
            self.notify("configuration_rejected", entry["hyperparameters"], entry["reason"], entry["params"])

    @property
    def n_classes(self) -> int:
        return self.hypermodel.n_classes

    def notify(self, event: str, *args) -> None:
        """Call `event` on every observer, in order (observers.ObserverList: one that fails costs no training)."""
        self.observers.notify(self, event, *args)

    def on_search_begin(self) -> None:
        super().on_search_begin()
        if distribution.role() == "worker":
            self.oracle.get_space()  # waits for the chief, which has made the MLflow parent run by then
        self.save()  # keras-tuner only reloads a project whose tuner file exists; it first writes it after a trial
        self.notify("search_begin")

    def search(self, *fit_args, **fit_kwargs) -> None:
        """keras-tuner's search. A trial an exception cuts short ends KILLED (an interrupt) or FAILED for the
        observers; an oracle that gave up (almost nothing fits) ends the search with a TunerAppError."""
        try:
            if distribution.role() == "chief":
                self.oracle.verbose = fit_kwargs.get("verbose", 0)  # keras-tuner sets it in the search it skips
                self._serve_workers()
            else:
                super().search(*fit_args, **fit_kwargs)
        except BaseException as interruption:  # KeyboardInterrupt, SystemExit, keras-tuner's FatalError, ...
            self.report_rejections()
            if self._running is not None:
                trial, self._running = self._running, None
                if isinstance(self.oracle, WorkerOracle):
                    self.oracle.give_back(trial)
                self.report_end(trial, "KILLED" if not isinstance(interruption, Exception) else "FAILED",
                                _reason(interruption))
            raise
        gave_up = getattr(self.oracle, "gave_up", None)
        if gave_up:
            raise TunerAppError(gave_up)

    def _serve_workers(self) -> None:
        """The chief's part: serve the oracle to the workers until the search is done (search/chief.py)."""
        self.on_search_begin()
        chief.serve(self.oracle, distribution.oracle_address(), self.worker_timeout, chief.Relay(self))
        self.on_search_end()

    def on_trial_begin(self, trial) -> None:
        self.observers.resume(self)  # a tracker whose store went down logs what it missed, once it answers
        self.report_rejections()  # what the oracle turned away before proposing this trial
        self._running, self._last_model = trial, None
        self.trained.append(trial.trial_id)
        super().on_trial_begin(trial)
        self.notify("trial_begin", trial)

    def on_trial_end(self, trial) -> None:
        self._running = None
        if isinstance(self.oracle, WorkerOracle):  # the scores went to the chief, not into this trial object
            trial.metrics = self.oracle.get_trial(trial.trial_id).metrics
        if trial.status == "COMPLETED":
            self.report_end(trial, "COMPLETED", "")
        else:  # INVALID (keras-tuner may retry it) or FAILED: run_trial raised
            self.report_end(trial, "FAILED", chief.last_line(trial.message))
        with interrupts.signals_to(interrupts.note_stop):  # a half-written oracle.json could not be resumed
            super().on_trial_end(trial)
        interrupts.check_stop()

    def on_search_end(self) -> None:
        self.report_rejections()  # the oracle may have turned some away before it stopped
        with interrupts.signals_to(interrupts.note_stop):  # keras-tuner saves the oracle only with a trial
            self.save()
        super().on_search_end()

    def run_trial(self, trial, train_ds, val_ds, test_ds=None, **fit_kwargs) -> dict[str, float]:
        """Train one configuration executions_per_trial times; return the scores of the kept (best on
        training.monitor) weights (for several executions their mean and spread: scoring.combine) and the
        configuration's sizes."""
        executions, kept = [], 0
        for execution in range(self.executions_per_trial):
            model, result = self._execute(trial, execution, train_ds, val_ds, test_ds, fit_kwargs.get("verbose", 0))
            executions.append(result)
            if execution == 0 or scoring.better(result, executions[kept], self.space.training["monitor"]):
                # The trial's checkpoint, so the exported model, is this execution's; its scores are the mean.
                kept, self._last_model = execution, model
                self.save_model(trial.trial_id, model)
        sizes = {**self.sizes(trial.hyperparameters.values), "model_bytes": scoring.weights_bytes(self._last_model),
                 "keras_latency_ms": scoring.latency_ms(self._last_model, val_ds),
                 **self.device_costs(trial.hyperparameters.values),
                 **(trial_int8.scores(self._last_model, self.int8_data) if self.int8_data else {})}
        return {**scoring.combine(executions, kept), **{key: float(value) for key, value in sizes.items()}}

    def _execute(self, trial, execution: int, train_ds, val_ds, test_ds, verbose: int) -> tuple:
        """One training of the trial's configuration: the model at its kept weights, and its scores."""
        values = trial.hyperparameters.values
        space_values = {name: value for name, value in values.items() if name in self.space.hyperparameters}
        if self.executions_per_trial > 1:  # one execution keeps the search's own random stream, as it always did
            # Every trial's execution k starts from the same seed: configurations meet the same initialisations.
            keras.utils.set_random_seed((self.oracle.seed + execution) % (SEED_MAX + 1))  # --seed may be SEED_MAX
        self.execution = execution
        train_ds = self.hypermodel.train_data(train_ds, space_values)  # the trial's own augment hyperparameters
        # Hyperband's override loads the weights of the trial it continues: every execution starts from them.
        model = keras_tuner_internals.build_model(self, trial.hyperparameters)
        _build_optimizer(model)
        monitor = self.space.training["monitor"]  # mode given: Keras cannot tell it for mixup's accuracy metric
        stop = keras.callbacks.EarlyStopping(monitor=monitor, mode="min" if monitor == "val_loss" else "max",
                                             patience=self.space.training["patience"], restore_best_weights=True)
        at_chance = chance.ChanceStop(self.n_classes, self.space.training["chance_epochs"],
                                      space_values.get("warmup_epochs", 0))
        started = time.perf_counter()
        model.fit(train_ds, validation_data=val_ds, callbacks=[stop, at_chance, _EpochRelay(self, trial)],
                  epochs=values.get("tuner/epochs", epochs(self.space, space_values)),
                  initial_epoch=values.get("tuner/initial_epoch", 0), shuffle=False,  # the dataset shuffles
                  verbose=verbose)
        seconds = time.perf_counter() - started
        return model, {**scoring.scores(model, val_ds, test_ds), "train_seconds": seconds, **at_chance.scores()}

    def sizes(self, values: Mapping[str, Any]) -> dict[str, float]:
        """params (= params_total), params_trainable/conv/fc and macs of a configuration, without building it."""
        space_values = {name: value for name, value in values.items() if name in self.space.hyperparameters}
        counts = configured.sizes(self.space, space_values, self.n_classes)
        return {"params": counts["params_total"], **counts}

    @property
    def measures_device(self) -> bool:
        return measures_device(self.space, self.budget)

    def device_costs(self, values: Mapping[str, Any]) -> dict[str, float]:
        """The int8 model's flash_bytes, ram_bytes and latency_ms, before training, where measures_device."""
        space_values = {name: value for name, value in values.items() if name in self.space.hyperparameters}
        return costs.untrained_or_none(self.space, space_values, self.n_classes) if self.measures_device else {}

    def save_model(self, trial_id: str, model, step: int = 0) -> None:
        """Keep the trial's weights where keras-tuner (and Hyperband's continued trials) look for them."""
        with interrupts.signals_to(interrupts.note_stop):  # a half-written checkpoint could not be loaded
            # keras-tuner's load_model and Hyperband rebuild from the build config before loading the weights.
            checkpoints.write_checkpoint(model, keras_tuner_internals.checkpoint_file(self, trial_id),
                                         keras_tuner_internals.build_config_file(self, trial_id))

    def save(self) -> None:
        # keras-tuner writes its state files in place: a kill mid-write left an empty tuner0.json no resume could
        # read (seen). Each is written whole or not at all instead.
        if distribution.role() != "worker":  # as keras-tuner's own save (BaseTuner._is_worker)
            self.oracle.save()
        with checkpoints.runs_dir_write(path := keras_tuner_internals.tuner_file(self)):
            write_json(path, self.get_state())

    def report_end(self, trial, status: str, reason: str) -> None:
        """Tell the observers how the trial ended (its model, if it COMPLETED in this process)."""
        scores = {name: metric(trial, name) for name in trial.metrics.metrics}
        outcome = TrialOutcome(status, reason, {k: v for k, v in scores.items() if v is not None},
                               self._last_model if status == "COMPLETED" else None,
                               self.get_trial_dir(trial.trial_id))
        self.notify("trial_end", trial, outcome)

    def planned_trials(self) -> int | None:
        """How many trials this search trains in all (None if the oracle cannot say)."""
        return planned.trials(self)

    def pre_create_trial(self) -> None:
        super().pre_create_trial()
        interrupts.check_stop()


def _build_optimizer(model) -> None:
    """The optimizer's variables as Keras's first train step makes them (same scope, zeros), but before fit: made
    while fit traces that step, they made TensorFlow trace it twice (10 s of a BC-ResNet trial). After Hyperband
    loads weights, which skips an unbuilt optimizer's state, so continued trials start it afresh as before."""
    optimizer = model.optimizer
    if not optimizer.built:
        with keras.name_scope(optimizer.name, caller=optimizer):
            optimizer.build(model.trainable_variables)


def _reason(error: BaseException) -> str:
    return "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"


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
