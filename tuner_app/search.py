"""The search loop: keras-tuner tuners whose trials train with early stopping, score on test data and
skip configurations over a parameter budget without spending a trial.

Resume is keras-tuner's own: the same directory and project name with overwrite=False reloads the oracle,
so finished trials are kept and only the remaining ones run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import keras
import keras_tuner

from tuner_app.errors import TunerAppError
from tuner_app.hypermodel import InfeasibleConfig, count_params
from tuner_app.pipeline import DecodedClips, make_dataset
from tuner_app.spaces import TUNER_OPTIONS, SearchSpace

REJECTED = "rejected"  # prefix of a rejected trial's message; the oracle stores it with the trial
# Rejections cost no training, but a space where almost nothing fits the budget must still end.
MAX_CONSECUTIVE_REJECTIONS = 500
TRIAL_METRICS = ("val_accuracy", "val_loss", "test_accuracy", "params")


class _Rejection(Exception):
    """A configuration over the parameter budget (or one that cannot be built): never trained."""


class TrialMixin:
    """run_trial for every tuner class: budget check, fit with early stopping on val_loss, test score."""

    def _setup(self, space: SearchSpace, max_params: int | None) -> None:
        self.space = space
        self.max_params = max_params
        self.rejected: list[dict[str, Any]] = []
        self._consecutive_rejections = 0
        # Trials rejected before a resume must not count against max_trials either.
        for _ in _rejected_trials(self.oracle):
            self._spare_trial()

    def run_trial(self, trial, train_ds, val_ds, test_ds=None, **fit_kwargs) -> dict[str, float]:
        """Train one configuration; return val_accuracy, val_loss (at the kept weights), test_accuracy, params."""
        hp = trial.hyperparameters
        params = self._check_budget(hp.values)
        model = self._try_build(hp)  # Hyperband's override loads the weights of the trial it continues
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.space.training["patience"],
                                             restore_best_weights=True)
        model.fit(train_ds, validation_data=val_ds, callbacks=[stop],
                  epochs=hp.values.get("tuner/epochs", self.space.training["epochs"]),
                  initial_epoch=hp.values.get("tuner/initial_epoch", 0), shuffle=False,  # the dataset shuffles
                  verbose=fit_kwargs.get("verbose", 0))
        self.save_model(trial.trial_id, model)
        return _scores(model, val_ds, test_ds, params)

    def save_model(self, trial_id: str, model, step: int = 0) -> None:
        """Keep the trial's weights where keras-tuner (and Hyperband's continued trials) look for them."""
        model.save_weights(self._get_checkpoint_fname(trial_id))
        # keras-tuner's load_model and Hyperband rebuild from this file before loading the weights.
        with open(self._get_build_config_fname(trial_id), "w", encoding="utf-8") as stream:
            json.dump(model.get_build_config(), stream)

    def _check_budget(self, values: Mapping[str, Any]) -> int:
        space_values = {name: values[name] for name in self.space.hyperparameters}
        try:
            params = count_params(self.space, space_values)["params_total"]
        except InfeasibleConfig as err:
            raise self._reject(space_values, None, str(err)) from None
        if self.max_params is not None and params > self.max_params:
            raise self._reject(space_values, params, f"{params} params > budget {self.max_params}")
        return params

    def _reject(self, values: dict[str, Any], params: int | None, reason: str) -> _Rejection:
        self.rejected.append({"hyperparameters": values, "params": params, "reason": reason})
        return _Rejection(f"{REJECTED}: {reason}")

    def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs) -> None:
        # Rejections end as STOPPED, not FAILED: they must not trip max_consecutive_failed_trials, and
        # keras-tuner would print a traceback for each failed trial.
        try:
            self._check_budget(trial.hyperparameters.values)
        except _Rejection as rejection:
            trial.status, trial.message = "STOPPED", str(rejection)  # keras_tuner TrialStatus values
            self._spare_trial()
            self._consecutive_rejections += 1
            return
        self._consecutive_rejections = 0
        super()._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)

    def pre_create_trial(self) -> None:
        """Stop a search where (almost) nothing fits the budget, after the last rejection was recorded."""
        super().pre_create_trial()
        if self._consecutive_rejections >= MAX_CONSECUTIVE_REJECTIONS:
            raise TunerAppError(f"{self.space.source}: {self._consecutive_rejections} configurations in a row "
                                f"exceed the budget of {self.max_params} params; raise --max-params")

    def _spare_trial(self) -> None:
        if self.oracle.max_trials is not None:
            self.oracle.max_trials += 1


def _scores(model, val_ds, test_ds, params: int) -> dict[str, float]:
    val_loss, val_accuracy = model.evaluate(val_ds, verbose=0)
    scores = {"val_accuracy": float(val_accuracy), "val_loss": float(val_loss), "params": float(params)}
    if test_ds is not None:
        scores["test_accuracy"] = float(model.evaluate(test_ds, verbose=0)[1])
    return scores


def _rejected_trials(oracle) -> list:
    return [trial for trial in oracle.trials.values()
            if trial.status == "STOPPED" and str(trial.message or "").startswith(REJECTED)]


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
               max_params: int | None = None, overwrite: bool = False, seed: int | None = None):
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
    tuner._setup(space, max_params)
    return tuner


def run_search(space: SearchSpace, splits: dict[str, DecodedClips], directory: Path, *,
               tuner_name: str | None = None, max_params: int | None = None, fresh: bool = False,
               seed: int | None = None, noise=None, verbose: int = 1, n_classes: int = 16):
    """Run (or resume) the search on the train/validation/test splits; returns the tuner."""
    from tuner_app.hypermodel import CnnHyperModel

    seed = seed if seed is not None else space.training["seed"]
    keras.utils.set_random_seed(seed)
    tuner = make_tuner(space, CnnHyperModel(space, n_classes), Path(directory), _project_name(space, tuner_name),
                       tuner_name=tuner_name, max_params=max_params, overwrite=fresh, seed=seed)
    train_ds, val_ds, test_ds = _datasets(space, splits, noise, seed)
    tuner.search(train_ds, val_ds, test_ds, verbose=verbose)
    _check_some_completed(tuner)
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


def summary_rows(tuner) -> list[dict[str, Any]]:
    """One row per trial, by trial id: trial_id, status, hyperparameters, params, val/test scores."""
    rows = []
    for trial in sorted(tuner.oracle.trials.values(), key=lambda trial: int(trial.trial_id)):
        rejected = trial.status == "STOPPED" and str(trial.message or "").startswith(REJECTED)
        row = {"trial_id": trial.trial_id, "status": "REJECTED" if rejected else trial.status,
               "hyperparameters": dict(trial.hyperparameters.values)}
        for metric in TRIAL_METRICS:
            row[metric] = _metric(trial, metric)
        row["params"] = int(row["params"]) if row["params"] is not None else _params(tuner.space, row)
        rows.append(row)
    return rows


def _params(space: SearchSpace, row: Mapping[str, Any]) -> int | None:
    # Rejected trials report no metrics; their size is still worth showing next to the budget.
    values = {name: row["hyperparameters"].get(name) for name in space.hyperparameters}
    try:
        return count_params(space, values)["params_total"]
    except (InfeasibleConfig, KeyError, TypeError):
        return None


def _metric(trial, name: str) -> float | None:
    if not trial.metrics.exists(name):
        return None
    return trial.metrics.get_last_value(name)
