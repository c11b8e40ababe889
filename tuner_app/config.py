"""Checks every YAML mapping shares (search spaces, front-end, augmentation): unknown keys and value
types, with messages that name the key path."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

from tuner_app.errors import TunerAppError


def key_path(where: str, key: str) -> str:
    """`file.yaml: section` + key -> `file.yaml: section.key`; a top level `file.yaml:` -> `file.yaml: key`."""
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}"


def reject_unknown(values: Mapping, known: Iterable[str], where: str) -> None:
    """Raise TunerAppError naming the first key of `values` not in `known`; `where` is the mapping's path."""
    known = sorted(known)
    for key in values:
        if key not in known:
            raise TunerAppError(f"{key_path(where, key)}: unknown key; expected one of {known}")


def check_type(value: Any, expected: type, where: str) -> None:
    """Raise TunerAppError unless `value` is an `expected` (an int passes for a float; a bool never for a number)."""
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
    if not ok:
        raise TunerAppError(f"{where}: expected {expected.__name__}, got {value!r}")


def checked_fields(cls, values: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """`values` for the dataclass `cls`: only its field names, each of its default's type."""
    values = dict(values or {})
    reject_unknown(values, [field.name for field in dataclasses.fields(cls)], where)
    for field in dataclasses.fields(cls):
        if field.name in values:
            check_type(values[field.name], type(field.default), key_path(where, field.name))
    return values
