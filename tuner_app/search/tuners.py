"""The search loop: keras-tuner tuners whose trials train with early stopping, score on test data and
skip configurations over a parameter budget without spending a trial.

Resume is keras-tuner's own: the same directory and project name with overwrite=False reloads the oracle,
so finished trials are kept and only the remaining ones run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import keras_tuner
import numpy as np

from tuner_app.data.cache import DecodedClips
from tuner_app.errors import InfeasibleConfig, TunerAppError
from tuner_app.features.dataset import make_dataset
from tuner_app.model.architecture import N_CLASSES, count_macs, count_params
from tuner_app.model.build import CnnHyperModel
from tuner_app.model.configurations import check_budget, configurations, is_grid
from tuner_app.model.spaces import TUNER_OPTIONS, SearchSpace
from tuner_app.search import interrupts
from tuner_app.search.observers import SearchObserver, TrialOutcome
from tuner_app.search.record import (
    REJECTED,
    metric,
    rejected_trials,
    write_search_record,
)

# Rejections cost no training, but a space where almost nothing fits the budget must still end.
MAX_CONSECUTIVE_REJECTIONS = 500
LATENCY_REPEATS = 10


class _EpochRelay(keras.callbacks.Callback):
    def __init__(self, tuner, trial):
        super().__init__()
        self.tuner, self.trial = tuner, trial

    def on_epoch_end(self, epoch, logs=None):
        self.tuner.notify("epoch_end", self.trial, epoch, dict(logs or {}))
        interrupts.check_stop()

    def on_train_batch_end(self, batch, logs=None):
        interrupts.check_stop()


class _Rejection(Exception):
    """A configuration over the parameter budget (or one that cannot be built): never trained."""


class TrialMixin:
    """run_trial for every tuner class: budget check, fit with early stopping on val_loss, test score."""

    def _setup(self, space: SearchSpace, max_params: int | None, observers: Sequence[SearchObserver] = ()) -> None:
        self.space = space
        self.max_params = max_params
        self.observers = list(observers)
        self.rejected: list[dict[str, Any]] = []
        self._consecutive_rejections = 0
        self._last_model = None
        # Trials rejected before a resume must not count against max_trials either.
        for _ in rejected_trials(self.oracle):
            self._spare_trial()
        self._requeue_unfinished()

    def _requeue_unfinished(self) -> None:
        """After a kill, retry exactly the trials that did not finish.

        keras-tuner saves a just-ended trial as still ongoing until the next one starts, and reload queues
        ongoing trials for retry: a kill in between would retrain a finished trial. A kill between saving a
        new trial and saving the oracle leaves a RUNNING trial that nothing would ever retry.
        """
        oracle = self.oracle
        unfinished = [trial_id for trial_id, trial in oracle.trials.items() if trial.status == "RUNNING"]
        queued = [trial_id for trial_id in oracle._retry_queue
                  if oracle.trials[trial_id].status not in ("COMPLETED", "STOPPED")]
        oracle._retry_queue = queued + [trial_id for trial_id in unfinished if trial_id not in queued]

    @property
    def n_classes(self) -> int:
        return self.hypermodel.n_classes

    def notify(self, event: str, *args) -> None:
        """Call `event` on every observer, in order."""
        for observer in self.observers:
            getattr(observer, event)(self, *args)

    def on_search_begin(self) -> None:
        super().on_search_begin()
        self.save()  # keras-tuner only reloads a project whose tuner file exists; it first writes it after a trial
        self.notify("search_begin")

    def on_trial_end(self, trial) -> None:
        with interrupts.signals_to(interrupts.note_stop):  # a half-written oracle.json could not be resumed
            super().on_trial_end(trial)
        interrupts.check_stop()

    def run_trial(self, trial, train_ds, val_ds, test_ds=None, **fit_kwargs) -> dict[str, float]:
        """Train one configuration; return the scores of the kept (minimum val_loss) weights and its sizes."""
        hp = trial.hyperparameters
        sizes = self.sizes(hp.values)
        model = self._try_build(hp)  # Hyperband's override loads the weights of the trial it continues
        self._last_model = model
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.space.training["patience"],
                                             restore_best_weights=True)
        started = time.perf_counter()
        model.fit(train_ds, validation_data=val_ds, callbacks=[stop, _EpochRelay(self, trial)],
                  epochs=hp.values.get("tuner/epochs", self.space.training["epochs"]),
                  initial_epoch=hp.values.get("tuner/initial_epoch", 0), shuffle=False,  # the dataset shuffles
                  verbose=fit_kwargs.get("verbose", 0))
        sizes["train_seconds"] = time.perf_counter() - started
        self.save_model(trial.trial_id, model)
        sizes["model_bytes"] = os.path.getsize(self._get_checkpoint_fname(trial.trial_id))
        sizes["latency_ms"] = _latency_ms(model, val_ds)
        return {**_scores(model, val_ds, test_ds), **{key: float(value) for key, value in sizes.items()}}

    def sizes(self, values: Mapping[str, Any]) -> dict[str, float]:
        """params (= params_total), params_trainable/conv/fc and macs of a configuration, without building it."""
        space_values = {name: values[name] for name in self.space.hyperparameters}
        counts = count_params(self.space, space_values, self.n_classes)
        return {"params": counts["params_total"], **counts,
                "macs": count_macs(self.space, space_values, self.n_classes)}

    def save_model(self, trial_id: str, model, step: int = 0) -> None:
        """Keep the trial's weights where keras-tuner (and Hyperband's continued trials) look for them."""
        model.save_weights(self._get_checkpoint_fname(trial_id))
        # keras-tuner's load_model and Hyperband rebuild from this file before loading the weights.
        with open(self._get_build_config_fname(trial_id), "w", encoding="utf-8") as stream:
            json.dump(model.get_build_config(), stream)

    def _check_budget(self, values: Mapping[str, Any]) -> int:
        space_values = {name: values[name] for name in self.space.hyperparameters}
        try:
            params = count_params(self.space, space_values, self.n_classes)["params_total"]
        except InfeasibleConfig as err:
            raise self._reject(space_values, None, str(err)) from None
        if self.max_params is not None and params > self.max_params:
            raise self._reject(space_values, params, f"{params} params > budget {self.max_params}")
        return params

    def _reject(self, values: dict[str, Any], params: int | None, reason: str) -> _Rejection:
        self.rejected.append({"hyperparameters": values, "params": params, "reason": reason})
        return _Rejection(f"{REJECTED}: {reason}")

    def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs) -> None:
        self.notify("trial_begin", trial)
        # Rejections end as STOPPED, not FAILED: they must not trip max_consecutive_failed_trials, and
        # keras-tuner would print a traceback for each failed trial.
        try:
            self._check_budget(trial.hyperparameters.values)
        except _Rejection as rejection:
            trial.status, trial.message = "STOPPED", str(rejection)  # keras_tuner TrialStatus values
            self._spare_trial()
            self._consecutive_rejections += 1
            return self._end(trial, "REJECTED", str(rejection).removeprefix(f"{REJECTED}: "))
        self._consecutive_rejections = 0
        self._last_model = None
        try:
            super()._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
        except BaseException as interruption:  # KeyboardInterrupt, SystemExit, or keras-tuner's FatalError
            self._end(trial, "KILLED" if not isinstance(interruption, Exception) else "FAILED",
                      _reason(interruption))
            raise
        if trial.status == "COMPLETED":
            return self._end(trial, "COMPLETED", "")
        self._end(trial, "FAILED", _last_line(trial.message))

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
        planned = None if oracle.max_trials is None else oracle.max_trials - len(rejected_trials(oracle))
        if isinstance(oracle, keras_tuner.oracles.GridSearchOracle):
            grid = len(configurations(self.space)) if is_grid(self.space) else None
            planned = grid if planned is None else min(filter(None, (planned, grid)), default=planned)
        return planned

    def pre_create_trial(self) -> None:
        """Stop a search where (almost) nothing fits the budget, after the last rejection was recorded."""
        super().pre_create_trial()
        interrupts.check_stop()
        if self._consecutive_rejections >= MAX_CONSECUTIVE_REJECTIONS:
            raise TunerAppError(f"{self.space.source}: {self._consecutive_rejections} configurations in a row "
                                f"exceed the budget of {self.max_params} params; raise --max-params")

    def _spare_trial(self) -> None:
        if self.oracle.max_trials is not None:
            self.oracle.max_trials += 1


def _reason(error: BaseException) -> str:
    return "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"


def _last_line(message: str | None) -> str:
    lines = [line for line in str(message or "").splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


def _hyperband_trials(oracle) -> int:
    # keras-tuner's own bracket arithmetic: every round of every bracket, per iteration.
    brackets = range(oracle._get_num_brackets())
    per_iteration = sum(oracle._get_size(bracket, round_) for bracket in brackets
                        for round_ in range(oracle._get_num_rounds(bracket)))
    return per_iteration * oracle.hyperband_iterations


def _latency_ms(model, val_ds) -> float:
    """Median wall time of one single-clip forward pass (features in, probabilities out)."""
    features = next(iter(val_ds))[0][:1]
    model(features, training=False)  # the first call traces
    times = []
    for _ in range(LATENCY_REPEATS):
        started = time.perf_counter()
        model(features, training=False)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def _scores(model, val_ds, test_ds) -> dict[str, float]:
    val_loss, val_accuracy = model.evaluate(val_ds, verbose=0)
    scores = {"val_accuracy": float(val_accuracy), "val_loss": float(val_loss)}
    if test_ds is not None:
        scores["test_accuracy"] = float(model.evaluate(test_ds, verbose=0)[1])
    return scores


class RandomSearch(TrialMixin, keras_tuner.RandomSearch):
    """keras_tuner.RandomSearch with the app's trials."""


class BayesianOptimization(TrialMixin, keras_tuner.BayesianOptimization):
    """keras_tuner.BayesianOptimization with the app's trials."""


class Hyperband(TrialMixin, keras_tuner.Hyperband):
    """keras_tuner.Hyperband with the app's trials."""


class GridSearch(TrialMixin, keras_tuner.GridSearch):
    """keras_tuner.GridSearch with the app's trials."""


TUNERS = {"random": RandomSearch, "bayesian": BayesianOptimization, "hyperband": Hyperband, "grid": GridSearch}


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
    tuner = TUNERS[name](hypermodel, objective=objective, directory=str(directory), project_name=project,
                         overwrite=overwrite, **options)
    tuner._setup(space, max_params, observers)
    return tuner


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
    tuner = make_tuner(space, CnnHyperModel(space, len(class_names)), Path(directory),
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
    train = make_dataset(splits["train"], space.frontend, batch_size, training=True,
                         augment=space.augment, noise=noise, seed=seed)
    val = make_dataset(splits["validation"], space.frontend, batch_size)
    test = make_dataset(splits["test"], space.frontend, batch_size) if len(splits.get("test", ())) else None
    return train, val, test


def _check_some_completed(tuner) -> None:
    completed = [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]
    if tuner.rejected and not completed:
        raise TunerAppError(f"{tuner.space.source}: no configuration of the space fits the budget of "
                            f"{tuner.max_params} params ({len(tuner.rejected)} rejected)")


