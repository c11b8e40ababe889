"""Sizes across a space's configurations, before anything trains: the smallest feasible configuration, the
budget check (`--max-params`), and the dry run's rows."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from tuner_app.errors import InfeasibleConfig, TunerAppError
from tuner_app.model.architecture.configured import N_CLASSES, sizes
from tuner_app.model.space import hyperparameters as hps
from tuner_app.model.space.configurations import MAX_ENUMERATED, configurations
from tuner_app.model.space.search_space import SearchSpace

SAMPLED = 20_000  # configurations the budget check sizes when a space has more than MAX_ENUMERATED
SAMPLE_SEED = 0

log = logging.getLogger(__name__)


def _size_axes(space: SearchSpace) -> dict[str, Sequence]:
    """Per hyperparameter the values that can change the size: every step of an int (a range, never listed);
    a float range only its lower end (dropout, learning rate and the like add no parameters)."""
    axes: dict[str, Sequence] = {}
    for name, spec in space.hyperparameters.items():
        values = hps.candidate_values(spec)
        if values is None and spec["type"] == "int":  # log-sampled ints still take every step
            values = hps.int_range(spec)
        axes[name] = values if values is not None else [spec["min_value"]]
    return axes


def _smallest(space: SearchSpace, candidates: Iterable[dict[str, Any]], n_classes: int) -> tuple[int, dict] | None:
    best = None
    for values in candidates:
        try:
            params = sizes(space, values, n_classes)["params_total"]
        except InfeasibleConfig:
            continue
        if best is None or params < best[0]:
            best = (params, values)
    return best


def _sampled(space: SearchSpace, axes: Mapping[str, Sequence], count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(SAMPLE_SEED)
    return (hps.sample_active(space.hyperparameters, axes, rng) for _ in range(count))


def smallest_configuration(space: SearchSpace, n_classes: int = N_CLASSES) -> tuple[int, dict] | None:
    """(params, values) of the smallest feasible configuration; None if none is feasible.

    Raises TunerAppError if the space is too large to enumerate (more than MAX_ENUMERATED sizes).
    """
    axes = _size_axes(space)
    if hps.count_active(space.hyperparameters, axes, MAX_ENUMERATED) > MAX_ENUMERATED:
        raise TunerAppError(f"{space.source}: too many configurations to find the smallest")
    return _smallest(space, hps.active_configurations(space.hyperparameters, axes), n_classes)


def check_budget(space: SearchSpace, max_params: int | None, n_classes: int = N_CLASSES) -> None:
    """Raise TunerAppError, before any training, if no configuration of the space fits the budget.

    Every active configuration that can differ in size is sized; in a space with more than MAX_ENUMERATED of
    them a seeded sample of SAMPLED is, and a warning says so.
    """
    axes = _size_axes(space)
    if hps.count_active(space.hyperparameters, axes, MAX_ENUMERATED) <= MAX_ENUMERATED:
        smallest, which = _smallest(space, hps.active_configurations(space.hyperparameters, axes), n_classes), ""
    else:
        log.warning("%s: more than %s configurations differ in size, too many to size each; the budget check "
                    "sized %s seeded random samples", space.source, f"{MAX_ENUMERATED:,}", f"{SAMPLED:,}")
        smallest, which = _smallest(space, _sampled(space, axes, SAMPLED), n_classes), "sampled "
    if smallest is None:
        raise TunerAppError(f"{space.source}: every {which}configuration of the space is infeasible")
    params, values = smallest
    if max_params is not None and params > max_params:
        of = f" of {SAMPLED:,} sampled" if which else ""
        raise TunerAppError(f"{space.source}: no {which}configuration fits --max-params {max_params:,}; the "
                            f"smallest{of} has {params:,} params ({_searched(space, values)})")


def _searched(space: SearchSpace, values: Mapping[str, Any]) -> str:
    """name=value of the searched (not fixed, not float) hyperparameters active in `values`."""
    return ", ".join(f"{name}={values[name]}" for name, spec in space.hyperparameters.items()
                     if spec["type"] not in ("fixed", "float") and name in values)


def dry_run(space: SearchSpace, trials: int | None = None, seed: int = 0,
            max_params: int | None = None, n_classes: int = N_CLASSES) -> list[dict[str, Any]]:
    """One row per configuration, sized for `n_classes` outputs: hyperparameters, params (None if infeasible),
    params_conv/fc, infeasible, and with a budget, over_budget."""
    rows = []
    for values in configurations(space, trials, seed):
        try:
            counts = sizes(space, values, n_classes)
            rows.append({"hyperparameters": values, "params": counts["params_total"],
                         "params_conv": counts["params_conv"], "params_fc": counts["params_fc"],
                         "infeasible": None})
        except InfeasibleConfig as err:
            rows.append({"hyperparameters": values, "params": None, "params_conv": None,
                         "params_fc": None, "infeasible": str(err)})
    if max_params is not None:
        for row in rows:
            row["over_budget"] = row["params"] is not None and row["params"] > max_params
    return rows
