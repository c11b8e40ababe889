"""What a resumed search must share with the search it resumes, and a worker with its chief: the resolved space
with the command line's overrides applied (the recipe: training, tuner options, objective) and the corpus. The
search record keeps it with its sha256; anything else runs a search other than the one its trials belong to."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner_app.errors import TunerAppError
from tuner_app.features.augment_config import AugmentConfig
from tuner_app.model.space.search_space import SearchSpace, resolved

# Tuner options that may change on resume: how many trials run, how failing ones are retried. keras-tuner reads
# them afresh at every start; its oracle restores the rest of the tuner section from the first start, or they
# change what a trial trains. --max-params, which is not in the space, may change too.
MAY_CHANGE = ("max_trials", "max_retries_per_trial", "max_consecutive_failed_trials")
# Keys added after search records began, with the value under which a search trains as it did before them: at
# that value each is left out of the identity, so a search recorded then still resumes; any other is a change.
LATER_AUGMENT_KEYS = ("speed_min", "speed_max", "vtlp_alpha", "vtlp_boundary_hz", "mixup_alpha")
LATER_KEYS = {("training", "chance_epochs"): 0, ("training", "monitor"): "val_loss", ("training", "int8"): False,
              ("objective", "accuracy"): "float",
              **{("augment", key): getattr(AugmentConfig, key) for key in LATER_AUGMENT_KEYS}}
DIFFERENCES_SHOWN = 3
SHOWN_CHARS = 24  # of a long value (a corpus fingerprint, a list of class names)
RESUME_REMEDY = ("run it unchanged to resume it, or start over with --fresh (deletes its trials) or a new "
                 "--runs-dir")
WORKER_REMEDY = "give this worker the chief's space file, --seed and corpus"
log = logging.getLogger(__name__)
_ABSENT = object()


def search_identity(space: SearchSpace, tuner_name: str | None, seed: int, class_names: Sequence[str],
                    data: Mapping[str, Any]) -> dict[str, Any]:
    """The space as the search runs it (`seed`: training.seed or --seed; `tuner_name`: the space's or --tuner),
    less MAY_CHANGE and the LATER_KEYS at their earlier values, with the corpus's fingerprint and class names."""
    identity = json.loads(json.dumps(resolved(space)))  # as the record reads it back: lists, not tuples
    identity["tuner"] = {key: value for key, value in identity["tuner"].items() if key not in MAY_CHANGE}
    identity["tuner"]["name"] = tuner_name or space.tuner["name"]
    identity["training"]["seed"] = seed
    for (section, key), before in LATER_KEYS.items():
        if identity[section].get(key) == before:
            identity[section].pop(key)
    identity["corpus"] = {"fingerprint": data.get("fingerprint"), "class_names": list(class_names)}
    return identity


def digest(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()


def check_same_search(record: Mapping[str, Any], identity: Mapping[str, Any], where: Path, remedy: str) -> None:
    """A TunerAppError naming the first keys that differ if `record` (read from `where`) is of another search;
    a warning if it is from before records kept their fingerprint."""
    if "fingerprint" not in record:
        log.warning(f"{where}: written before search records kept a fingerprint; resuming without checking that "
                    "the space, recipe and corpus are unchanged")
        return
    if record["fingerprint"] == digest(identity):
        return
    found = differences(record.get("identity", {}), identity) or ["its fingerprint"]
    more = f" and {len(found) - DIFFERENCES_SHOWN} more" if len(found) > DIFFERENCES_SHOWN else ""
    raise TunerAppError(f"{where}: the search there was run with another space, recipe or corpus "
                        f"({', '.join(found[:DIFFERENCES_SHOWN])}{more}); {remedy}")


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """`dotted.key: old -> new` for every leaf that differs, in the old document's order."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = [*old, *(key for key in new if key not in old)]
        return [line for key in keys
                for line in differences(old.get(key, _ABSENT), new.get(key, _ABSENT), f"{path}.{key}".lstrip("."))]
    return [] if old == new else [f"{path}: {_shown(old)} -> {_shown(new)}"]


def _shown(value: Any) -> str:
    text = "(none)" if value is _ABSENT else value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."
