"""Running a search: the tuner a space names (with its YAML options), its datasets, and the search from start
(or resume) to end, with its observers told how it ended."""

from __future__ import annotations

import contextlib
import gc
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import keras_tuner

from tuner_app.data import trainability
from tuner_app.data.cache import DecodedClips
from tuner_app.device import trial_int8
from tuner_app.device.budget import Budget, check_device_budget
from tuner_app.errors import TunerAppError
from tuner_app.features.dataset import make_dataset
from tuner_app.model.architecture.build import CnnHyperModel, augment_searched
from tuner_app.model.architecture.configured import N_CLASSES
from tuner_app.model.architecture.space_sizes import check_budget
from tuner_app.model.space.search_space import TUNER_OPTIONS, SearchSpace
from tuner_app.search import checkpoints, distribution, fingerprint, interrupts
from tuner_app.search.lock import LOCK_FILE, project_lock
from tuner_app.search.observers import SearchObserver
from tuner_app.search.record import SEARCH_RECORD, read_search_record, write_search_record
from tuner_app.search.tuners import TUNERS


def make_tuner(space: SearchSpace, hypermodel, directory: Path, project: str, tuner_name: str | None = None,
               budget: Budget | None = None, overwrite: bool = False, seed: int | None = None,
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
    return TUNERS[name](hypermodel, space, budget, observers, objective=objective, directory=str(directory),
                        project_name=project, overwrite=overwrite, **options)


def run_search(space: SearchSpace, splits: dict[str, DecodedClips], directory: Path, *,
               tuner_name: str | None = None, budget: Budget | None = None, fresh: bool = False,
               seed: int | None = None, noise=None, verbose: int = 0, class_names: Sequence[str] | None = None,
               observers: Sequence[SearchObserver] = (), data: Mapping[str, Any] | None = None,
               worker_timeout: float = distribution.DEFAULT_WORKER_TIMEOUT):
    """Run (or resume) the search on the train/validation/test splits; returns the tuner.

    `class_names` name the label ids (default: 16 anonymous classes); `data` describes the corpus for
    the search record. Observers hear every trial; on an interrupt they hear search_end("KILLED").
    In a distributed search (search/distribution.py) the chief serves the oracle and trains nothing, and
    gives a trial up when its worker is silent for `worker_timeout` seconds.
    """
    class_names = list(class_names or (f"class_{index}" for index in range(N_CLASSES)))
    budget = budget or Budget()
    check_budget(space, budget.params, len(class_names))
    check_device_budget(space, budget, len(class_names))
    seed = seed if seed is not None else space.training["seed"]
    keras.utils.set_random_seed(seed)
    steps_per_epoch = max(1, math.ceil(len(splits.get("train", ())) / space.training["batch_size"]))
    # A corpus that cannot train is refused before the project is touched: no record of it to resume from.
    datasets = _datasets(space, splits, noise, seed, class_names)
    # Also refuses augment hyperparameters that could clash (model.architecture.build.check_augment_bounds) before the
    # project is touched; the noise bank goes with it to the trials that map their own augmentation.
    hypermodel = CnnHyperModel(space, len(class_names), steps_per_epoch, noise=noise)
    project_dir = Path(directory) / _project_name(space, tuner_name)
    checkpoints.check_writable(project_dir)
    identity = fingerprint.search_identity(space, tuner_name, seed, class_names, data or {})
    role = distribution.role()
    interrupts.stop_requested.clear()
    # From the lock on, SIGTERM stops the search as SIGINT does: either way the lock is released.
    with _project_held(project_dir, role), interrupts.signals_to(interrupts.request_stop):
        _prepare_project(project_dir, fresh, role, identity)
        tuner = make_tuner(space, hypermodel, Path(directory), project_dir.name, tuner_name=tuner_name,
                           budget=budget, seed=seed, observers=observers)
        tuner.worker_timeout = worker_timeout
        tuner.int8_data = trial_int8.data_of(splits) if trial_int8.asked(space) else None
        if role == "worker":  # the chief has written the record, with its own view of the data
            _check_chief_record(tuner, identity)
        else:
            write_search_record(tuner, class_names, data or {}, identity)
        _search(tuner, datasets, verbose)
    return tuner


def _project_held(project_dir: Path, role: str):
    """The project's lock; none for a worker, which shares its chief's project (and lock) by design."""
    return contextlib.nullcontext() if role == "worker" else project_lock(project_dir)


def _prepare_project(project_dir: Path, fresh: bool, role: str, identity: Mapping[str, Any]) -> None:
    """--fresh empties the project (keras-tuner's overwrite would remove the lock too); a resume must run the
    search its trials belong to."""
    if role == "worker":
        return
    if fresh:
        checkpoints.start_over(project_dir, keep=LOCK_FILE)
    elif (project_dir / SEARCH_RECORD).exists():
        fingerprint.check_same_search(read_search_record(project_dir), identity, project_dir / SEARCH_RECORD,
                                      fingerprint.RESUME_REMEDY)


def _check_chief_record(tuner, identity: Mapping[str, Any]) -> None:
    tuner.oracle.get_space()  # waits for the chief, which has written its record before it answers
    fingerprint.check_same_search(read_search_record(tuner.project_dir), identity,
                                  Path(tuner.project_dir) / SEARCH_RECORD, fingerprint.WORKER_REMEDY)


def _search(tuner, datasets: tuple, verbose: int) -> None:
    """The search loop, its observers told how it ended."""
    status = "FAILED"
    try:
        with _collections_skip_what_lives_now():
            tuner.search(*datasets, verbose=verbose)
        _check_some_completed(tuner)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tuner.observers.resume(tuner)  # a tracker whose store went down logs what it missed, if it answers now
        tuner.notify("search_end", status)


@contextlib.contextmanager
def _collections_skip_what_lives_now():
    """Keras's clear_session and keras-tuner's build each run a full garbage collection before every trial: over
    the ~500,000 objects TensorFlow's import leaves, all alive for the whole search, that was 0.3-0.8 s each,
    more than fit on a small trial (benchmarks/search_efficiency.py). Frozen, they are not scanned again."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _project_name(space: SearchSpace, tuner_name: str | None) -> str:
    return f"{Path(space.source).stem}-{tuner_name or space.tuner['name']}"


def _datasets(space: SearchSpace, splits: dict[str, DecodedClips], noise, seed: int,
              class_names: Sequence[str]) -> tuple:
    """(train, validation, test or None) datasets, once the splits can train a classifier of `class_names`.
    Training batches come augmented with the space's `augment:`, or, where some augment key is a hyperparameter,
    un-augmented: each trial then maps them through its own settings (CnnHyperModel.train_data)."""
    labels = {split: splits[split].labels if split in splits else [] for split in ("train", "validation")}
    trainability.check(trainability.counts_of_labels(class_names, labels), "corpus", trainability.SEARCH_REMEDY)
    batch_size = space.training["batch_size"]
    augment = None if augment_searched(space) else space.augment
    train = make_dataset(splits["train"], batch_size, training=True, augment=augment, noise=noise, seed=seed,
                         n_classes=len(class_names))
    val = make_dataset(splits["validation"], batch_size)
    test = make_dataset(splits["test"], batch_size) if len(splits.get("test", ())) else None
    return train, val, test


def _check_some_completed(tuner) -> None:
    completed = [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]
    if tuner.rejected and not completed:
        raise TunerAppError(f"{tuner.space.source}: no configuration of the space fits "
                            f"{tuner.budget.describe()} ({len(tuner.rejected)} rejected)")


