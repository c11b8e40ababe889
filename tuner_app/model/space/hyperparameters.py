"""One hyperparameter of a search space, as the YAML declares it: its spec (`type` and keras-tuner's own
arguments), its `conditional_scope`, the values it can take, and the enumeration of a space's *active*
configurations.

`conditional_scope: {parent: [values], ...}` is keras-tuner's `hp.conditional_scope(parent, values)`, one
scope per key, nested in order: the hyperparameter exists only in configurations where every parent is active
and holds one of its values. keras-tuner's oracles then leave it out of those configurations' values, so a
configuration has no inactive values and two configurations never alias one model.
"""

from __future__ import annotations

import contextlib
import math
import random
import reprlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tuner_app.config import check_type, reject_unknown
from tuner_app.errors import TunerAppError

SCOPE = "conditional_scope"
# Keys each hp type accepts (besides `type` and `conditional_scope`) and which of them are required.
HP_TYPE_KEYS = {
    "int": ({"min_value", "max_value", "step", "sampling", "default"}, {"min_value", "max_value"}),
    "float": ({"min_value", "max_value", "step", "sampling", "default"}, {"min_value", "max_value"}),
    "choice": ({"values", "ordered", "default"}, {"values"}),
    "boolean": ({"default"}, set()),
    "fixed": ({"value"}, {"value"}),
}
HP_METHODS = {"int": "Int", "float": "Float", "choice": "Choice", "boolean": "Boolean", "fixed": "Fixed"}
SAMPLINGS = ("linear", "log", "reverse_log")
VALUE_KINDS = {int: "int", float: "float", bool: "boolean"}


def checked_spec(spec: Any, value_type: type, where: str, allowed_strings=None) -> dict[str, Any]:
    """The validated spec of one hyperparameter (`where`: `file.yaml: hyperparameters.name`). String values
    must be among `allowed_strings` when it is given."""
    if not isinstance(spec, Mapping):
        raise TunerAppError(f"{where}: expected a mapping, got {spec!r}")
    spec = dict(spec)
    kind = spec.get("type")
    if kind not in HP_TYPE_KEYS:
        raise TunerAppError(f"{where}.type: expected one of {sorted(HP_TYPE_KEYS)}, got {kind!r}")
    allowed, required = HP_TYPE_KEYS[kind]
    reject_unknown({k: v for k, v in spec.items() if k not in ("type", SCOPE)}, allowed, where)
    missing = sorted(required - set(spec))
    if missing:
        raise TunerAppError(f"{where}.{missing[0]}: missing (required for type {kind})")
    if kind in VALUE_KINDS.values() and kind != VALUE_KINDS.get(value_type):
        raise TunerAppError(f"{where}.type: this hyperparameter takes {value_type.__name__} values, not type {kind}")
    for key in ("min_value", "max_value", "step", "default", "value"):
        if key in spec:
            _check_value(spec[key], value_type, f"{where}.{key}", allowed_strings)
    if kind in ("int", "float"):
        _check_range(spec, where)
    if kind == "choice":
        _check_choice(spec, value_type, where, allowed_strings)
    if "ordered" in spec:
        check_type(spec["ordered"], bool, f"{where}.ordered")
    return spec


def _check_value(value: Any, value_type: type, where: str, allowed_strings) -> None:
    check_type(value, value_type, where)
    if value_type is str and allowed_strings is not None and value not in allowed_strings:
        raise TunerAppError(f"{where}: expected one of {list(allowed_strings)}, got {value!r}")
    if value_type in (int, float) and not _finite(value):
        raise TunerAppError(f"{where}: expected a finite number, got {reprlib.repr(value)}")


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int beyond any float
        return False


def _check_range(spec: dict, where: str) -> None:
    if spec["min_value"] > spec["max_value"]:
        raise TunerAppError(f"{where}: empty range: min_value {spec['min_value']} > max_value {spec['max_value']}")
    sampling = spec.get("sampling", "linear")
    if sampling not in SAMPLINGS:
        raise TunerAppError(f"{where}.sampling: expected one of {list(SAMPLINGS)}, got {sampling!r}")
    if "default" in spec and not spec["min_value"] <= spec["default"] <= spec["max_value"]:
        raise TunerAppError(f"{where}.default: {spec['default']!r} is outside the range")
    if "step" in spec and spec["step"] <= 0:
        raise TunerAppError(f"{where}.step: expected a positive step, got {spec['step']!r}")
    if sampling != "linear":  # keras-tuner's own conditions, which it raises as a ValueError when declaring
        _check_log_range(spec, where)


def _check_log_range(spec: dict, where: str) -> None:
    if spec["min_value"] <= 0:
        raise TunerAppError(f"{where}.min_value: sampling {spec['sampling']} needs a positive min_value, "
                            f"got {spec['min_value']!r}")
    if spec.get("step", 2) <= 1:
        raise TunerAppError(f"{where}.step: sampling {spec['sampling']} multiplies by the step: it must be "
                            f"above 1, got {spec['step']!r}")


def _check_choice(spec: dict, value_type: type, where: str, allowed_strings) -> None:
    values = spec["values"]
    if not isinstance(values, list) or not values:
        raise TunerAppError(f"{where}.values: expected a non-empty list, got {reprlib.repr(values)}")
    for index, value in enumerate(values):
        _check_value(value, value_type, f"{where}.values[{index}]", allowed_strings)
    seen: set[str] = set()
    for value in values:
        if repr(value) in seen:
            raise TunerAppError(f"{where}.values: lists {value!r} twice (each would be its own trial)")
        seen.add(repr(value))
    if "default" in spec and spec["default"] not in values:
        raise TunerAppError(f"{where}.default: {spec['default']!r} is not one of {reprlib.repr(values)}")


def candidate_values(spec: Mapping[str, Any]) -> Sequence | None:
    """Every value a spec can take, in keras-tuner's order; None if the range is continuous. An int range is a
    `range`, never a list: its length, membership, indexing and draws cost as little for 10**9 values as for 2."""
    kind = spec["type"]
    if kind == "fixed":
        return [spec["value"]]
    if kind == "boolean":
        return [False, True]
    if kind == "choice":
        return list(spec["values"])
    if kind == "int" and spec.get("sampling", "linear") == "linear":
        return int_range(spec)
    return None


def int_range(spec: Mapping[str, Any]) -> range:
    """The steps of an int spec, min_value to max_value (keras-tuner's `Int` values when linear)."""
    return range(spec["min_value"], spec["max_value"] + 1, spec.get("step") or 1)


def bound(spec: Mapping[str, Any], pick) -> Any:
    """min or max (`pick`) of the values a spec can take (a range's from its ends: never by walking it)."""
    values = candidate_values(spec)
    if values is None:
        return pick(spec["min_value"], spec["max_value"])
    return pick(values[0], values[-1]) if isinstance(values, range) else pick(values)


def holds(values: Sequence, value: Any) -> bool:
    """`value in values`, but O(1) for a range (whose `in` walks it for anything but an int)."""
    if isinstance(values, range):
        return isinstance(value, int) and value in values
    return value in values


def describe(values: Sequence) -> str:
    """The values for a message: a range as `low..high` (and its step), never listed."""
    if not isinstance(values, range):
        return str(list(values))
    step = f" step {values.step}" if values.step != 1 else ""
    return f"{values[0]}..{values[-1]}{step}" if values else "none"


def scope(spec: Mapping[str, Any]) -> dict[str, list]:
    """The spec's conditional scopes, {parent: values}, outermost first."""
    return dict(spec.get(SCOPE) or {})


def is_active(specs: Mapping[str, Mapping], name: str, values: Mapping[str, Any]) -> bool:
    """True if every parent of `name` is active in `values` and holds one of the scope's values."""
    return all(parent in values and values[parent] in allowed for parent, allowed in scope(specs[name]).items())


def declare(hp, specs: Mapping[str, Mapping]) -> None:
    """Create every hyperparameter on keras-tuner's `hp`, each inside its conditional scopes (parents first)."""
    for name, spec in specs.items():
        with contextlib.ExitStack() as scopes:
            for parent, allowed in scope(spec).items():
                scopes.enter_context(hp.conditional_scope(parent, list(allowed)))
            arguments = {key: value for key, value in spec.items() if key not in ("type", SCOPE)}
            getattr(hp, HP_METHODS[spec["type"]])(name, **arguments)


def active_configurations(specs: Mapping[str, Mapping], axes: Mapping[str, Sequence]) -> Iterator[dict[str, Any]]:
    """Every combination of the `axes` values (first hyperparameter outermost) in which only active
    hyperparameters hold a value: an inactive one adds no combinations. `specs` must list parents first."""
    names = list(specs)

    def extend(index: int, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if index == len(names):
            yield dict(values)
            return
        name = names[index]
        if not is_active(specs, name, values):
            yield from extend(index + 1, values)
            return
        for value in axes[name]:
            values[name] = value
            yield from extend(index + 1, values)
        del values[name]

    return extend(0, {})


def count_active(specs: Mapping[str, Mapping], axes: Mapping[str, Sequence], limit: int) -> int:
    """How many active configurations there are, `limit` + 1 at most: only the scopes' parents are enumerated
    (up to `limit` + 1 of their combinations); every other hyperparameter multiplies by its number of values."""
    parents = {parent for spec in specs.values() for parent in scope(spec)}
    leaves = [name for name in specs if name not in parents]
    total = 0
    for values in active_configurations({name: specs[name] for name in specs if name in parents}, axes):
        total += math.prod(len(axes[name]) for name in leaves if is_active(specs, name, values))  # >= 1 each
        if total > limit:
            return limit + 1
    return total


def sample_active(specs: Mapping[str, Mapping], axes: Mapping[str, Sequence], rng: random.Random) -> dict[str, Any]:
    """One random active configuration: each active hyperparameter draws uniformly from its axis."""
    values: dict[str, Any] = {}
    for name in specs:
        if is_active(specs, name, values):
            values[name] = rng.choice(axes[name])
    return values


def parents_first(specs: Mapping[str, dict], where: str) -> dict[str, dict]:
    """`specs` reordered so that each hyperparameter follows its parents (YAML order otherwise); a parent that
    is not declared, or a cycle, is an error naming the hyperparameter."""
    ordered: dict[str, dict] = {}
    pending = dict(specs)
    while pending:
        ready = [name for name, spec in pending.items() if all(parent in ordered for parent in scope(spec))]
        if not ready:
            name = next(iter(pending))
            missing = [parent for parent in scope(pending[name]) if parent not in specs]
            problem = f"parent {missing[0]!r} is not a declared hyperparameter" if missing else "circular scopes"
            raise TunerAppError(f"{where}.{name}.{SCOPE}: {problem}")
        for name in ready:
            ordered[name] = pending.pop(name)
    return ordered


def check_scope(specs: Mapping[str, dict], name: str, where: str) -> None:
    """A scope's values must be values its parent can take (a scope no configuration enters is a typo)."""
    raw = specs[name].get(SCOPE)
    if raw is None:
        return
    if not isinstance(raw, Mapping) or not raw:
        raise TunerAppError(f"{where}.{name}.{SCOPE}: expected a mapping of parent: [values], got {raw!r}")
    for parent, allowed in raw.items():
        if parent == name or parent not in specs:
            raise TunerAppError(f"{where}.{name}.{SCOPE}.{parent}: not another declared hyperparameter")
        if not isinstance(allowed, list) or not allowed:
            raise TunerAppError(f"{where}.{name}.{SCOPE}.{parent}: expected a non-empty list of values, got {allowed!r}")
        possible = candidate_values(specs[parent])
        stray = [value for value in allowed if possible is not None and not holds(possible, value)]
        if stray:
            raise TunerAppError(f"{where}.{name}.{SCOPE}.{parent}: {stray[0]!r} is not a value of {parent} "
                                f"({describe(possible)})")


def default_value(spec: Mapping[str, Any]) -> Any:
    """keras-tuner's default of a spec: `default`, else the fixed value, the first choice, False or min_value."""
    if "default" in spec:
        return spec["default"]
    return {"fixed": lambda: spec["value"], "choice": lambda: spec["values"][0], "boolean": lambda: False}.get(
        spec["type"], lambda: spec["min_value"])()


def completed(specs: Mapping[str, Mapping], values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` made a configuration: each active hyperparameter it lacks at its default, inactive ones dropped
    (for a configuration written by hand: an edited parent can activate or deactivate its children)."""
    result: dict[str, Any] = {}
    for name, spec in specs.items():
        if is_active(specs, name, result):
            result[name] = values[name] if name in values else default_value(spec)
    return result
