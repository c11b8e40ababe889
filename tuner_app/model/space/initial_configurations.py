"""`initial_configurations:` of a space: known-good configurations (a reference model, say) that every tuner
proposes before it draws any other, as Optuna's `enqueue_trial` does. Each entry is `{name: label, values:
{hyperparameter: value}}`; `name` is optional (`initial_configurations[i]` then).

Read here, against the space's validated hyperparameters: every key of `values` a declared hyperparameter that
is active under the entry's own values, every value one its hyperparameter can take. An active hyperparameter
the entry leaves out takes the hp's keras-tuner default (its `default`, else the fixed value, the first choice,
False or min_value: hyperparameters.completed), the value keras-tuner itself fills in for a missing one. Two
entries that complete to the same configuration, or share a name, are an error.
"""

from __future__ import annotations

import dataclasses
import json
import math
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from tuner_app.config import reject_unknown
from tuner_app.errors import TunerAppError
from tuner_app.model.space import hyperparameters as hps

KEY = "initial_configurations"
ENTRY_KEYS = ("name", "values")
STEP_TOLERANCE = 1e-9  # of a float on a stepped range, in steps: YAML's decimals are not binary fractions
_NO_MATCH = object()


@dataclasses.dataclass(frozen=True)
class InitialConfiguration:
    """One listed configuration: its label, and the value of every hyperparameter active in it."""

    name: str
    values: dict[str, Any]


def _identity(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), sort_keys=True)  # as the oracles tell configurations apart (oracles.py `_key`)


def checked_configurations(section: Any, specs: Mapping[str, Mapping], source: str
                           ) -> tuple[InitialConfiguration, ...]:
    """The validated `initial_configurations` section (`specs`: the space's validated hyperparameters)."""
    if section is None:
        return ()
    if not isinstance(section, list):
        raise TunerAppError(f"{source}: {KEY}: expected a list of {{name, values}} mappings, "
                            f"got {reprlib.repr(section)}")
    listed = tuple(_entry(entry, f"{source}: {KEY}[{index}]", index, specs) for index, entry in enumerate(section))
    _check_unique(listed, source)
    return listed


def resolved(listed: Sequence[InitialConfiguration]) -> list[dict[str, Any]]:
    """The configurations as a plain section that checked_configurations reads back."""
    return [{"name": configuration.name, "values": dict(configuration.values)} for configuration in listed]


def _entry(entry: Any, where: str, index: int, specs: Mapping[str, Mapping]) -> InitialConfiguration:
    if not isinstance(entry, Mapping):
        raise TunerAppError(f"{where}: expected a mapping with `values` (and an optional `name`), "
                            f"got {reprlib.repr(entry)}")
    reject_unknown(entry, ENTRY_KEYS, where)
    name = entry.get("name", f"{KEY}[{index}]")
    if not isinstance(name, str) or not name.strip():
        raise TunerAppError(f"{where}.name: expected a non-empty string, got {reprlib.repr(name)}")
    given = entry.get("values")
    if not isinstance(given, Mapping):
        raise TunerAppError(f"{where}.values: expected a mapping of hyperparameter: value, got {reprlib.repr(given)}")
    checked = {hp: _checked_value(specs, hp, value, f"{where}.values.{hp}") for hp, value in given.items()}
    return InitialConfiguration(name, _completed(specs, checked, f"{where}.values"))


def _checked_value(specs: Mapping[str, Mapping], name: Any, value: Any, where: str) -> Any:
    """`value` as its hyperparameter holds it (1 of a float hp as 1.0), or a TunerAppError naming `where`."""
    if name not in specs:
        raise TunerAppError(f"{where}: not a hyperparameter of this space; expected one of {sorted(specs)}")
    candidates = hps.candidate_values(specs[name])
    if candidates is None:
        return _in_range(specs[name], value, where)
    match = _matching(candidates, value)
    if match is _NO_MATCH:
        raise TunerAppError(f"{where}: {reprlib.repr(value)} is not a value of {name} ({_shown(candidates)})")
    return match


def _matching(candidates: Sequence, value: Any) -> Any:
    """The candidate equal to `value`, of its kind (True is no 1, "1" no 1); _NO_MATCH if none is."""
    if isinstance(candidates, range):  # never walked: `in` is O(1) for an int
        return value if type(value) is int and hps.holds(candidates, value) else _NO_MATCH
    return next((candidate for candidate in candidates if _same_kind(candidate, value) and candidate == value),
                _NO_MATCH)


def _same_kind(candidate: Any, value: Any) -> bool:
    return all(isinstance(candidate, kind) == isinstance(value, kind) for kind in (bool, str))


def _shown(candidates: Sequence) -> str:
    return hps.describe(candidates) if isinstance(candidates, range) else reprlib.repr(list(candidates))


def _in_range(spec: Mapping[str, Any], value: Any, where: str) -> Any:
    """A value of a continuous range (a float, or a log-sampled int): of its type, within it, on its steps."""
    kind = float if spec["type"] == "float" else int
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or type(value) is int)
    low, high = spec["min_value"], spec["max_value"]
    if not (number and _finite(value) and low <= value <= high):
        raise TunerAppError(f"{where}: expected {kind.__name__} from {low} to {high}, got {reprlib.repr(value)}")
    step = spec.get("step")
    if kind is float and step and spec.get("sampling", "linear") == "linear" and not _on_step(value, low, step):
        raise TunerAppError(f"{where}: {value!r} is not on the steps of {step} from {low}")
    return kind(value)


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int beyond any float
        return False


def _on_step(value: float, low: float, step: float) -> bool:
    steps = (value - low) / step
    return abs(steps - round(steps)) <= STEP_TOLERANCE * max(1.0, abs(steps))


def _completed(specs: Mapping[str, Mapping], given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Every active hyperparameter's value: the given ones, the rest at their defaults; a given one that the
    entry's own values leave inactive is an error (keras-tuner would drop it: not the model the entry means)."""
    values = hps.completed(specs, given)
    for name in given:
        if name not in values:
            raise TunerAppError(f"{where}.{name}: inactive in this entry ({_inactive_because(specs[name], values)})")
    return values


def _inactive_because(spec: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    for parent, allowed in hps.scope(spec).items():
        if parent not in values:
            return f"its parent {parent} is inactive"
        if values[parent] not in allowed:
            return f"it exists only where {parent} is one of {reprlib.repr(allowed)}, here {values[parent]!r}"
    return "its scope excludes it"


def _check_unique(listed: Sequence[InitialConfiguration], source: str) -> None:
    first_of_key: dict[str, int] = {}
    first_of_name: dict[str, int] = {}
    for index, configuration in enumerate(listed):
        where = f"{source}: {KEY}[{index}]"
        earlier = first_of_key.setdefault(_identity(configuration.values), index)
        if earlier != index:
            raise TunerAppError(f"{where}: the same configuration as {KEY}[{earlier}] (each is tried once)")
        earlier = first_of_name.setdefault(configuration.name, index)
        if earlier != index:
            raise TunerAppError(f"{where}.name: {configuration.name!r} also names {KEY}[{earlier}]")
