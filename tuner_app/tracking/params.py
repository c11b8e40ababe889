"""Search values as MLflow's flat string params, and back: strings stay as they are, everything else
is JSON; nested mappings flatten to dotted keys."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

SPEAKER_DISJOINT_PARAM = "data.speaker_disjoint"
NOT_IN_KEYS = re.compile(r"[^\w./ :-]")  # characters MLflow refuses in param names (a class folder may have them)


def param_value(value: Any) -> str:
    """Strings as they are, everything else as JSON: 3, 0.001, true, [4, 8]."""
    return value if isinstance(value, str) else json.dumps(value)


def loads(text: str) -> Any:
    """A param back to its value: JSON if it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{"training": {"epochs": 1}} -> {"training.epochs": "1"}."""
    flat: dict[str, str] = {}
    for key, value in document.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = param_value(value)
    return flat


def speaker_disjoint(params: Mapping[str, str]) -> bool | None:
    """A parent run's data.speaker_disjoint back as a bool; None where the search recorded no speakers."""
    return {"true": True, "false": False}.get(params.get(SPEAKER_DISJOINT_PARAM, ""))


def data_params(data: Mapping[str, Any]) -> dict[str, str]:
    """data.path, data.fingerprint, data.speaker_disjoint (true/false), data.<split>.<class> clip counts and
    data.<split>.total."""
    params = {f"data.{key}": str(data[key]) for key in ("path", "fingerprint") if key in data}
    if "speaker_disjoint" in data:
        params[SPEAKER_DISJOINT_PARAM] = str(bool(data["speaker_disjoint"])).lower()
    totals: dict[str, int] = {}
    for label, per_split in data.get("counts", {}).items():
        for split, count in per_split.items():
            params[f"data.{split}.{NOT_IN_KEYS.sub('_', label)}"] = str(count)
            totals[split] = totals.get(split, 0) + count
    params.update({f"data.{split}.total": str(count) for split, count in totals.items()})
    return params


def hyperparameter_specs(params: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The parent's resolved space back from its hyperparameters.<name>.<key> params."""
    specs: dict[str, dict[str, Any]] = {}
    for key, text in params.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "hyperparameters":
            specs.setdefault(parts[1], {})[parts[2]] = loads(text)
    return specs


def typed(text: str, spec: Mapping[str, Any] | None) -> Any:
    """A hyperparameter param back to its value: one of the space's candidates if it matches, else JSON."""
    spec = spec or {}
    candidates = [spec["value"]] if "value" in spec else list(spec.get("values") or ())
    for candidate in candidates:
        if param_value(candidate) == text:
            return candidate  # keeps "123" a string when the space says it is one
    return loads(text)
