"""Search spaces in YAML: one file holds everything a search needs (model, frontend, augment,
hyperparameters, tuner, training, objective). Problems raise TunerAppError naming file and key path.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Mapping

import yaml

from tuner_app.config import check_type, reject_unknown
from tuner_app.errors import TunerAppError
from tuner_app.features.augment_config import AugmentConfig
from tuner_app.features.frontend import FrontendConfig

MODELS = ("cnn1d", "cnn2d")
HEADS = ("flatten", "gap")
TOP_KEYS = ("model", "frontend", "augment", "hyperparameters", "tuner", "training", "objective")

# Every hp name, its value type, and the Fixed default used when the YAML omits it.
# kernel_size / pool_size defaults depend on the model (see _model_defaults).
HP_DEFAULTS: dict[str, Any] = {
    "conv_layers": 2, "filters": 8, "filter_growth": 2, "kernel_size": 5, "pool_size": 2,
    "batch_norm": False, "head": "flatten", "fc_layers": 1, "fc_units_1": 1024, "fc_units_2": 512,
    "dropout": 0.5, "learning_rate": 0.001,
}
# Allowed values per hp as [low, high); every other numeric hp must be >= 1.
DOMAINS = {"fc_layers": (0, None), "dropout": (0.0, 1.0), "learning_rate": (1e-12, None)}
FC_UNITS = re.compile(r"fc_units_([1-9][0-9]*)$")

# Keys each hp type accepts (besides `type`) and which of them are required.
HP_TYPE_KEYS = {
    "int": ({"min_value", "max_value", "step", "sampling", "default"}, {"min_value", "max_value"}),
    "float": ({"min_value", "max_value", "step", "sampling", "default"}, {"min_value", "max_value"}),
    "choice": ({"values", "ordered", "default"}, {"values"}),
    "boolean": ({"default"}, set()),
    "fixed": ({"value"}, {"value"}),
}
HP_METHODS = {"int": "Int", "float": "Float", "choice": "Choice", "boolean": "Boolean", "fixed": "Fixed"}
SAMPLINGS = ("linear", "log", "reverse_log")

# Tuner options are keras-tuner's own constructor arguments.
TUNER_COMMON = {"seed": int, "executions_per_trial": int, "max_retries_per_trial": int,
                "max_consecutive_failed_trials": int}
TUNER_OPTIONS: dict[str, dict[str, type]] = {
    "random": {**TUNER_COMMON, "max_trials": int},
    "grid": {**TUNER_COMMON, "max_trials": int},
    "bayesian": {**TUNER_COMMON, "max_trials": int, "num_initial_points": int, "alpha": float, "beta": float},
    "hyperband": {**TUNER_COMMON, "max_epochs": int, "factor": int, "hyperband_iterations": int},
}
TRAINING_DEFAULTS = {"epochs": 10, "batch_size": 64, "patience": 3, "seed": 0}
OBJECTIVE_DEFAULTS = {"name": "val_accuracy", "direction": "max"}


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A validated search space; `hyperparameters` maps hp name -> spec dict, YAML order first."""

    source: str
    model: str
    frontend: FrontendConfig
    augment: AugmentConfig
    hyperparameters: dict[str, dict[str, Any]]
    tuner: dict[str, Any]
    training: dict[str, int]
    objective: dict[str, str]


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
    """Read and validate one search-space YAML file."""
    name = os.path.basename(os.fspath(path))
    try:
        with open(path, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
    except OSError as err:
        raise TunerAppError(f"{path}: cannot read search space ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise TunerAppError(f"{name}: malformed YAML{_yaml_location(err)}") from None
    return from_dict(document, name)


def _yaml_location(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return f": {err}"
    return f" at line {mark.line + 1}, column {mark.column + 1}: {getattr(err, 'problem', None) or ''}"


def from_dict(document: Any, source: str = "<space>") -> SearchSpace:
    """Validate an already-parsed YAML document; `source` names it in error messages."""
    document = _mapping(document if document is not None else {}, source, "")
    reject_unknown(document, TOP_KEYS, f"{source}:")
    model = document.get("model", "cnn2d")
    if model not in MODELS:
        raise TunerAppError(f"{source}: model: expected one of {list(MODELS)}, got {model!r}")
    frontend = FrontendConfig.from_dict(_mapping(document.get("frontend"), source, "frontend"),
                                        where=f"{source}: frontend")
    _check_model_frontend(model, frontend, source)
    return SearchSpace(
        source=source, model=model, frontend=frontend,
        augment=AugmentConfig.from_dict(_mapping(document.get("augment"), source, "augment"),
                                        where=f"{source}: augment"),
        hyperparameters=_hyperparameters(document.get("hyperparameters"), model, source),
        tuner=_tuner(document.get("tuner"), source),
        training=_section(document.get("training"), TRAINING_DEFAULTS, source, "training"),
        objective=_objective(document.get("objective"), source),
    )


def _check_model_frontend(model: str, frontend: FrontendConfig, source: str) -> None:
    if (model == "cnn1d") != (frontend.kind == "waveform"):
        wanted = "waveform" if model == "cnn1d" else "stft, mel or mfcc"
        raise TunerAppError(f"{source}: frontend.kind: model {model} needs {wanted}, got {frontend.kind!r}")


def _mapping(value: Any, source: str, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TunerAppError(f"{source}: {where or 'top level'}: expected a mapping, got {value!r}")
    return dict(value)


def _model_defaults(model: str) -> dict[str, Any]:
    if model == "cnn1d":
        return {**HP_DEFAULTS, "kernel_size": 25, "pool_size": 4}
    return dict(HP_DEFAULTS)


def _hyperparameters(section: Any, model: str, source: str) -> dict[str, dict[str, Any]]:
    declared = _mapping(section, source, "hyperparameters")
    defaults = _model_defaults(model)
    specs = {}
    for name, spec in declared.items():
        if name not in defaults and not FC_UNITS.match(str(name)):
            raise TunerAppError(f"{source}: hyperparameters.{name}: unknown hyperparameter; "
                                f"expected one of {sorted(defaults)} or fc_units_K")
        specs[name] = _hp_spec(spec, type(defaults.get(name, 1)), source, f"hyperparameters.{name}")
    deepest_fc = _bound(specs.get("fc_layers", {"type": "fixed", "value": defaults["fc_layers"]}), max)
    for name, value in defaults.items():
        # fc_units_K defaults beyond fc_layers' max would only clutter the logged params.
        if not (FC_UNITS.match(name) and int(FC_UNITS.match(name).group(1)) > deepest_fc):
            specs.setdefault(name, {"type": "fixed", "value": value})
    _check_domains(specs, source)
    _check_fc_units(specs, source)
    return specs


def _hp_spec(spec: Any, value_type: type, source: str, where: str) -> dict[str, Any]:
    spec = _mapping(spec, source, where)
    kind = spec.get("type")
    if kind not in HP_TYPE_KEYS:
        raise TunerAppError(f"{source}: {where}.type: expected one of {sorted(HP_TYPE_KEYS)}, got {kind!r}")
    allowed, required = HP_TYPE_KEYS[kind]
    reject_unknown({k: v for k, v in spec.items() if k != "type"}, allowed, f"{source}: {where}")
    missing = sorted(required - set(spec))
    if missing:
        raise TunerAppError(f"{source}: {where}.{missing[0]}: missing (required for type {kind})")
    _check_hp_values(spec, kind, value_type, source, where)
    return spec


def _check_hp_values(spec: dict, kind: str, value_type: type, source: str, where: str) -> None:
    if kind in ("int", "float", "boolean") and kind != {int: "int", float: "float", bool: "boolean"}.get(value_type):
        raise TunerAppError(f"{source}: {where}.type: this hyperparameter takes {value_type.__name__} values, "
                            f"not type {kind}")
    for key in ("min_value", "max_value", "step", "default", "value"):
        if key in spec:
            _check_value(spec[key], value_type, source, f"{where}.{key}")
    if kind in ("int", "float"):
        _check_range(spec, source, where)
    if kind == "choice":
        _check_choice(spec, value_type, source, where)
    if "ordered" in spec:
        check_type(spec["ordered"], bool, f"{source}: {where}.ordered")


def _check_value(value: Any, value_type: type, source: str, where: str) -> None:
    check_type(value, value_type, f"{source}: {where}")
    if value_type is str and value not in HEADS:
        raise TunerAppError(f"{source}: {where}: expected one of {list(HEADS)}, got {value!r}")


def _check_range(spec: dict, source: str, where: str) -> None:
    if spec["min_value"] > spec["max_value"]:
        raise TunerAppError(f"{source}: {where}: empty range: min_value {spec['min_value']} > "
                            f"max_value {spec['max_value']}")
    if spec.get("sampling", "linear") not in SAMPLINGS:
        raise TunerAppError(f"{source}: {where}.sampling: expected one of {list(SAMPLINGS)}, "
                            f"got {spec['sampling']!r}")
    if "default" in spec and not spec["min_value"] <= spec["default"] <= spec["max_value"]:
        raise TunerAppError(f"{source}: {where}.default: {spec['default']!r} is outside the range")
    if "step" in spec and spec["step"] <= 0:
        raise TunerAppError(f"{source}: {where}.step: expected a positive step, got {spec['step']!r}")


def _check_choice(spec: dict, value_type: type, source: str, where: str) -> None:
    values = spec["values"]
    if not isinstance(values, list) or not values:
        raise TunerAppError(f"{source}: {where}.values: expected a non-empty list, got {values!r}")
    for index, value in enumerate(values):
        _check_value(value, value_type, source, f"{where}.values[{index}]")
    if "default" in spec and spec["default"] not in values:
        raise TunerAppError(f"{source}: {where}.default: {spec['default']!r} is not one of {values}")


def candidate_values(spec: Mapping[str, Any]) -> list | None:
    """Every value a spec can take, in keras-tuner's order; None if the range is continuous."""
    kind = spec["type"]
    if kind == "fixed":
        return [spec["value"]]
    if kind == "boolean":
        return [False, True]
    if kind == "choice":
        return list(spec["values"])
    if kind == "int" and spec.get("sampling", "linear") == "linear":
        return list(range(spec["min_value"], spec["max_value"] + 1, spec.get("step", 1)))
    return None


def _bound(spec: Mapping[str, Any], pick) -> Any:
    values = candidate_values(spec)
    return pick(values) if values is not None else pick(spec["min_value"], spec["max_value"])


def _check_domains(specs: dict[str, dict], source: str) -> None:
    for name, spec in specs.items():
        if name in ("batch_norm", "head"):
            continue
        low, high = DOMAINS.get(name, (1, None))
        if _bound(spec, min) < low or (high is not None and _bound(spec, max) >= high):
            limit = f"in [{low}, {high})" if high is not None else f">= {low}"
            raise TunerAppError(f"{source}: hyperparameters.{name}: values must be {limit}")


def _check_fc_units(specs: dict[str, dict], source: str) -> None:
    deepest = _bound(specs["fc_layers"], max)
    for layer in range(1, deepest + 1):
        if f"fc_units_{layer}" not in specs:
            raise TunerAppError(f"{source}: hyperparameters.fc_units_{layer}: missing; fc_layers can be "
                                f"{deepest}, so fc_units_1..fc_units_{deepest} must be declared")


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
    return {"name": name, **options_given}


def _section(section: Any, defaults: Mapping[str, Any], source: str, where: str) -> dict:
    values = _mapping(section, source, where)
    reject_unknown(values, defaults, f"{source}: {where}")
    for key, value in values.items():
        check_type(value, type(defaults[key]), f"{source}: {where}.{key}")
        if value < (0 if key in ("patience", "seed") else 1):
            raise TunerAppError(f"{source}: {where}.{key}: expected a positive number, got {value!r}")
    return {**defaults, **values}


def _objective(section: Any, source: str) -> dict[str, str]:
    values = _mapping(section, source, "objective")
    reject_unknown(values, OBJECTIVE_DEFAULTS, f"{source}: objective")
    objective = {**OBJECTIVE_DEFAULTS, **values}
    check_type(objective["name"], str, f"{source}: objective.name")
    if objective["direction"] not in ("min", "max"):
        raise TunerAppError(f"{source}: objective.direction: expected 'min' or 'max', "
                            f"got {objective['direction']!r}")
    return objective


def declare(hp, space: SearchSpace) -> None:
    """Create every hyperparameter of `space` on `hp` up front (GridSearch needs all names before build)."""
    for name, spec in space.hyperparameters.items():
        arguments = {key: value for key, value in spec.items() if key != "type"}
        getattr(hp, HP_METHODS[spec["type"]])(name, **arguments)


def resolved(space: SearchSpace) -> dict[str, Any]:
    """The space with every default filled in, as a plain document that `from_dict` reads back."""
    return {"model": space.model, "frontend": dataclasses.asdict(space.frontend),
            "augment": dataclasses.asdict(space.augment), "hyperparameters": space.hyperparameters,
            "tuner": space.tuner, "training": space.training, "objective": space.objective}
