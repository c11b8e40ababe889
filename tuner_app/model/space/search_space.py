"""Search spaces in YAML: one file holds everything a search needs (model, frontend, frontends, augment,
hyperparameters, initial_configurations, tuner, training, objective). Problems raise TunerAppError naming
file and key path.

Every hyperparameter the model family and the training recipe read exists in the validated space: what the YAML
leaves out is Fixed at its default. A hyperparameter may also set the front-end: `frontend` picks a preset of
`frontends`, and the keys of FRONTEND_FIELDS override it; `epochs` overrides `training.epochs`.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import os
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Mapping

from tuner_app.config import check_type, reject_unknown
from tuner_app.constants import MAX_TRIALS, SEED_MAX
from tuner_app.errors import TunerAppError
from tuner_app.features.augment_config import AugmentConfig
from tuner_app.features.frontend import FrontendConfig
from tuner_app.model.space import hyperparameters as hps
from tuner_app.model.space import bounded_yaml, initial_configurations
from tuner_app.model.space.initial_configurations import InitialConfiguration
from tuner_app.model.space.known_hyperparameters import FAMILY, FRONTEND_FIELDS, MODELS, checked_hyperparameters

TOP_KEYS = ("model", "frontend", "frontends", "augment", "hyperparameters", initial_configurations.KEY, "tuner",
            "training", "objective")

# Tuner options are keras-tuner's own constructor arguments.
TUNER_COMMON = {"seed": int, "executions_per_trial": int, "max_retries_per_trial": int,
                "max_consecutive_failed_trials": int}
TUNER_OPTIONS: dict[str, dict[str, type]] = {
    "random": {**TUNER_COMMON, "max_trials": int},
    "grid": {**TUNER_COMMON, "max_trials": int},
    "bayesian": {**TUNER_COMMON, "max_trials": int, "num_initial_points": int, "alpha": float, "beta": float},
    "hyperband": {**TUNER_COMMON, "max_epochs": int, "factor": int, "hyperband_iterations": int},
    "pareto": {**TUNER_COMMON, "max_trials": int, "sampler": str, "gap_candidates": int},
}
PARETO_SAMPLERS = ("tpe", "nsga2")
# `objective.size`: the pareto tuner's second objective. The last three are the int8 model's on a device
# (device/costs.py), measured before training.
SIZE_OBJECTIVES = ("params_total", "macs", "model_bytes", "flash_bytes", "ram_bytes", "latency_ms")
# `objective.accuracy`: which validation accuracy the front is of: the float model's, or its int8 conversion's.
ACCURACY_METRICS = {"float": "val_accuracy", "int8": "val_accuracy_int8"}
# chance_epochs: the epochs after the warm-up after which a trial still at chance stops (search/chance.py; 0:
# never). 5 leaves a slow starter 5 epochs at full learning rate, yet saves most of the 10-40 epochs the spaces
# give a stuck trial (seen: 25 epochs of a BC-ResNet near chance).
# monitor: what early stopping watches, and whose best epoch's weights a trial keeps. val_loss is the seed's
# rule; on a split by speaker the validation loss of an unheard voice rises (overconfidence) epochs before its
# accuracy stops rising, so val_accuracy keeps trained weights there.
# int8: after each trial trains, convert its network to int8 (features in) and score it there too
# (device/trial_int8.py): seconds per trial, so off unless asked.
TRAINING_DEFAULTS = {"epochs": 10, "batch_size": 64, "patience": 3, "seed": 0, "chance_epochs": 5,
                     "monitor": "val_loss", "int8": False}
SEEDS = (0, SEED_MAX)
# [low, high] of each number of `training` and `tuner`: what the option means, up to far beyond any search.
TRAINING_RANGES = {"epochs": (1, 10_000), "batch_size": (1, 65_536), "patience": (0, 10_000), "seed": SEEDS,
                   "chance_epochs": (0, 10_000), "monitor": ("val_loss", "val_accuracy"), "int8": (False, True)}
TUNER_RANGES = {"seed": SEEDS, "max_trials": (1, MAX_TRIALS), "executions_per_trial": (1, 100),
                "max_retries_per_trial": (0, 100), "max_consecutive_failed_trials": (1, MAX_TRIALS),
                "num_initial_points": (1, MAX_TRIALS), "alpha": (1e-12, 1e6), "beta": (0.0, 1e6),
                "max_epochs": (1, 10_000), "factor": (2, 100), "hyperband_iterations": (1, 100),
                "gap_candidates": (1, 100)}
OBJECTIVE_DEFAULTS = {"name": "val_accuracy", "direction": "max", "size": "params_total", "accuracy": "float",
                      "hv_reference": None}
# The hypervolume's fixed reference point per size axis, (size, accuracy), where `objective.hv_reference` gives
# none: beyond the seed's largest model (50.5M params, 2D conv1 fc2), so every model counts, and fixed, so that
# searches and tuners compare. Its hypervolume is the area in (log10 size, accuracy) the front dominates.
HV_REFERENCES = {"params_total": (1e8, 0.0), "macs": (1e11, 0.0), "model_bytes": (4e8, 0.0),
                 "flash_bytes": (1e9, 0.0), "ram_bytes": (1e9, 0.0), "latency_ms": (1e4, 0.0)}
REFERENCE_HELP = "give SIZE,ACC: a positive size and an accuracy in [0, 1], e.g. 1e8,0"


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A validated search space; `hyperparameters` maps hp name -> spec dict, parents before their conditional
    children, YAML order otherwise; `frontends` are the presets the `frontend` hyperparameter picks from;
    `initial_configurations` are what every tuner proposes first (model/space/initial_configurations.py)."""

    source: str
    model: str
    frontend: FrontendConfig
    frontends: dict[str, FrontendConfig]
    augment: AugmentConfig
    hyperparameters: dict[str, dict[str, Any]]
    tuner: dict[str, Any]
    training: dict[str, int]
    objective: dict[str, Any]
    initial_configurations: tuple[InitialConfiguration, ...] = ()


def accuracy_metric(space: SearchSpace) -> str:
    """The validation accuracy the space's front is of (`objective.accuracy`)."""
    return ACCURACY_METRICS[space.objective.get("accuracy", "float")]


def search_dirs() -> list[Traversable]:
    """Where a space given by name is looked for: ./search_spaces, $TUNER_APP_SPACES, the built-in spaces."""
    dirs: list[Traversable] = [Path("search_spaces")]
    if os.environ.get("TUNER_APP_SPACES"):
        dirs.append(Path(os.environ["TUNER_APP_SPACES"]))
    # setup.cfg installs the top-level search_spaces/ as this package, editable or not.
    return [*dirs, importlib.resources.files("tuner_app.search_spaces")]


def locate(space: str | os.PathLike) -> Path:
    """The file of a space given as a path, or as a name like `cnn2d` (see search_dirs)."""
    path = Path(space)
    if path.exists() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path  # a path: load() names it if it is missing
    for folder in search_dirs():
        if (folder / f"{space}.yaml").is_file():
            return Path(folder / f"{space}.yaml")
    known = sorted({file.name.removesuffix(".yaml") for folder in search_dirs() if folder.is_dir()
                    for file in folder.iterdir() if file.name.endswith(".yaml")})
    raise TunerAppError(f"--space {space}: no such file, and no space of that name (known: {', '.join(known)})")


def load(path: str | os.PathLike) -> SearchSpace:
    """Read (within bounded_yaml's bounds) and validate one search-space YAML file."""
    name = os.path.basename(os.fspath(path))
    document = bounded_yaml.read(path)
    if document is None:  # an empty file, or comments only: a mistake, not a request for every default
        raise TunerAppError(f"{name}: empty search space; start from one in search_spaces/ (e.g. --space default)")
    return from_dict(document, name)


def from_dict(document: Any, source: str = "<space>") -> SearchSpace:
    """Validate an already-parsed YAML document; `source` names it in error messages."""
    document = _mapping(document if document is not None else {}, source, "")
    reject_unknown(document, TOP_KEYS, f"{source}:")
    declared = _mapping(document.get("hyperparameters"), source, "hyperparameters")
    model = document.get("model", FAMILY if FAMILY in declared else "cnn2d")
    if model not in MODELS:
        raise TunerAppError(f"{source}: model: expected one of {list(MODELS)}, got {model!r}")
    frontend = FrontendConfig.from_dict(_mapping(document.get("frontend"), source, "frontend"),
                                        where=f"{source}: frontend")
    frontends = _frontends(document.get("frontends"), frontend, source)
    specs = checked_hyperparameters(declared, model, frontends, source)
    training = _section(document.get("training"), TRAINING_DEFAULTS, TRAINING_RANGES, source, "training")
    _check_warmup(specs, training, source)
    if not any(name in specs for name in (FAMILY, "frontend", *FRONTEND_FIELDS)):
        _check_model_frontend(model, frontend, source)
    return SearchSpace(
        source=source, model=model, frontend=frontend, frontends=frontends,
        augment=AugmentConfig.from_dict(_mapping(document.get("augment"), source, "augment"),
                                        where=f"{source}: augment"),
        hyperparameters=specs, tuner=_tuner(document.get("tuner"), source),
        training=training,
        objective=_objective(document.get("objective"), source),
        initial_configurations=initial_configurations.checked_configurations(
            document.get(initial_configurations.KEY), specs, source),
    )


def _check_warmup(specs: Mapping[str, dict], training: Mapping[str, int], source: str) -> None:
    fewest = hps.bound(specs["epochs"], min) if "epochs" in specs else training["epochs"]
    if hps.bound(specs["warmup_epochs"], max) >= fewest:
        raise TunerAppError(f"{source}: hyperparameters.warmup_epochs: values must be below the {fewest} "
                            "training epochs")


def _check_model_frontend(model: str, frontend: FrontendConfig, source: str) -> None:
    if (model == "cnn1d") != (frontend.kind == "waveform"):
        wanted = "waveform" if model == "cnn1d" else "stft, mel or mfcc"
        raise TunerAppError(f"{source}: frontend.kind: model {model} needs {wanted}, got {frontend.kind!r}")


def _frontends(section: Any, base: FrontendConfig, source: str) -> dict[str, FrontendConfig]:
    """Each preset: its keys over the `frontend` section's."""
    presets = {}
    for name, preset in _mapping(section, source, "frontends").items():
        where = f"{source}: frontends.{name}"
        presets[str(name)] = FrontendConfig.from_dict({**base.to_dict(), **_mapping(preset, source, f"frontends.{name}")},
                                                      where=where)
    return presets


def _mapping(value: Any, source: str, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TunerAppError(f"{source}: {where or 'top level'}: expected a mapping, got {value!r}")
    return dict(value)


def _tuner(section: Any, source: str) -> dict[str, Any]:
    tuner = _mapping(section, source, "tuner") or {"name": "random"}
    name = tuner.get("name", "random")
    if name not in TUNER_OPTIONS:
        raise TunerAppError(f"{source}: tuner.name: expected one of {sorted(TUNER_OPTIONS)}, got {name!r}")
    options = TUNER_OPTIONS[name]
    options_given = {k: v for k, v in tuner.items() if k != "name"}
    reject_unknown(options_given, ["name", *options], f"{source}: tuner")
    for key, value in options_given.items():
        check_type(value, options[key], f"{source}: tuner.{key}")
        if key in TUNER_RANGES:
            _check_in_range(value, TUNER_RANGES[key], f"{source}: tuner.{key}")
    if options_given.get("sampler", "tpe") not in PARETO_SAMPLERS:
        raise TunerAppError(f"{source}: tuner.sampler: expected one of {list(PARETO_SAMPLERS)}, "
                            f"got {options_given['sampler']!r}")
    return {"name": name, **options_given}


def _check_in_range(value: int | float | str, limits: tuple, where: str) -> None:
    if isinstance(value, str):  # a choice: `limits` lists them
        if value not in limits:
            raise TunerAppError(f"{where}: expected one of {list(limits)}, got {value!r}")
        return
    low, high = limits
    if not low <= value <= high:  # also refuses nan
        raise TunerAppError(f"{where}: expected a number from {low:,} to {high:,}, got {value!r}")


def _section(section: Any, defaults: Mapping[str, Any], ranges: Mapping[str, tuple], source: str,
             where: str) -> dict:
    values = _mapping(section, source, where)
    reject_unknown(values, defaults, f"{source}: {where}")
    for key, value in values.items():
        check_type(value, type(defaults[key]), f"{source}: {where}.{key}")
        _check_in_range(value, ranges[key], f"{source}: {where}.{key}")
    return {**defaults, **values}


def _objective(section: Any, source: str) -> dict[str, Any]:
    values = _mapping(section, source, "objective")
    reject_unknown(values, OBJECTIVE_DEFAULTS, f"{source}: objective")
    objective = {**OBJECTIVE_DEFAULTS, **values}
    check_type(objective["name"], str, f"{source}: objective.name")
    if objective["size"] not in SIZE_OBJECTIVES:
        raise TunerAppError(f"{source}: objective.size: expected one of {list(SIZE_OBJECTIVES)}, "
                            f"got {objective['size']!r}")
    if objective["accuracy"] not in ACCURACY_METRICS:
        raise TunerAppError(f"{source}: objective.accuracy: expected one of {list(ACCURACY_METRICS)}, "
                            f"got {objective['accuracy']!r}")
    if objective["direction"] not in ("min", "max"):
        raise TunerAppError(f"{source}: objective.direction: expected 'min' or 'max', "
                            f"got {objective['direction']!r}")
    given = objective["hv_reference"]
    reference = HV_REFERENCES[objective["size"]] if given is None else checked_reference(
        given, f"{source}: objective.hv_reference")
    return {**objective, "hv_reference": list(reference)}


def checked_reference(reference: Any, where: str) -> tuple[float, float]:
    """A hypervolume reference point (size > 0, accuracy in [0, 1], both finite); TunerAppError naming `where`."""
    try:
        if isinstance(reference, str):  # "10" would unpack to (1, 0)
            raise TypeError(reference)
        x_ref, y_ref = (float(value) for value in reference)
    except (TypeError, ValueError):
        x_ref = y_ref = math.nan
    if not (math.isfinite(x_ref) and x_ref > 0 and 0.0 <= y_ref <= 1.0):  # also rejects nan
        raise TunerAppError(f"{where}: {reference!r}: {REFERENCE_HELP}")
    return x_ref, y_ref


def declare(hp, space: SearchSpace) -> None:
    """Create every hyperparameter of `space` on `hp` up front, each in its conditional scopes (GridSearch
    needs all names before build)."""
    hps.declare(hp, space.hyperparameters)


def resolved(space: SearchSpace) -> dict[str, Any]:
    """The space with every default filled in, as a plain document that `from_dict` reads back."""
    return {"model": space.model, "frontend": dataclasses.asdict(space.frontend),
            "frontends": {name: dataclasses.asdict(preset) for name, preset in space.frontends.items()},
            "augment": dataclasses.asdict(space.augment), "hyperparameters": space.hyperparameters,
            "tuner": space.tuner, "training": space.training, "objective": space.objective,
            **_resolved_initial(space)}


def _resolved_initial(space: SearchSpace) -> dict[str, Any]:
    # Only where listed: the documents (and so the fingerprints) of spaces without any stay as they were.
    listed = space.initial_configurations
    return {initial_configurations.KEY: initial_configurations.resolved(listed)} if listed else {}
