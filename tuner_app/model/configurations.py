"""Enumerating a space: the full grid or seeded samples, the smallest feasible configuration, the
budget check made before anything trains, and the dry run."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, Mapping

import keras_tuner

from tuner_app.errors import InfeasibleConfig, TunerAppError
from tuner_app.model.architecture import N_CLASSES, count_params
from tuner_app.model.spaces import SearchSpace, candidate_values, declare

MAX_ENUMERATED = 1_000_000  # sizes are cheap arithmetic: a million configurations take a few seconds


def is_grid(space: SearchSpace) -> bool:
    """True if every hyperparameter has a finite list of values."""
    return all(candidate_values(spec) is not None for spec in space.hyperparameters.values())


def configurations(space: SearchSpace, trials: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The full grid in YAML key order (first key outermost), or `trials` seeded random samples."""
    if trials is None and is_grid(space):
        names = list(space.hyperparameters)
        grids = [candidate_values(space.hyperparameters[name]) for name in names]
        return [dict(zip(names, combo)) for combo in itertools.product(*grids)]
    trials = trials if trials is not None else space.tuner.get("max_trials")
    if trials is None:
        raise TunerAppError(f"{space.source}: the space has continuous hyperparameters; "
                            "give a number of trials to sample")
    return _sample(space, trials, seed)


def _sample(space: SearchSpace, trials: int, seed: int) -> list[dict[str, Any]]:
    hp = keras_tuner.HyperParameters()
    declare(hp, space)
    rng = random.Random(seed)
    return [{item.name: item.random_sample(rng.randrange(2**31)) for item in hp.space} for _ in range(trials)]


def _size_candidates(spec: Mapping[str, Any]) -> list:
    values = candidate_values(spec)
    if values is not None:
        return values
    if spec["type"] == "int":  # log-sampled ints still take every step
        return list(range(spec["min_value"], spec["max_value"] + 1, spec.get("step") or 1))
    return [spec["min_value"]]  # floats (dropout, learning rate) do not change the size


def smallest_configuration(space: SearchSpace, n_classes: int = N_CLASSES) -> tuple[int, dict] | None:
    """(params, values) of the smallest feasible configuration; None if none is feasible.

    Raises TunerAppError if the space is too large to enumerate (more than MAX_ENUMERATED sizes).
    """
    names = list(space.hyperparameters)
    grids = [_size_candidates(space.hyperparameters[name]) for name in names]
    if math.prod(len(grid) for grid in grids) > MAX_ENUMERATED:
        raise TunerAppError(f"{space.source}: too many configurations to find the smallest")
    best = None
    for combo in itertools.product(*grids):
        values = dict(zip(names, combo))
        try:
            params = count_params(space, values, n_classes)["params_total"]
        except InfeasibleConfig:
            continue
        if best is None or params < best[0]:
            best = (params, values)
    return best


def check_budget(space: SearchSpace, max_params: int | None, n_classes: int = N_CLASSES) -> None:
    """Raise TunerAppError, before any training, if no configuration of the space fits the budget."""
    try:
        smallest = smallest_configuration(space, n_classes)
    except TunerAppError:
        return  # too large to enumerate: the search itself reports a budget nothing meets
    if smallest is None:
        raise TunerAppError(f"{space.source}: every configuration of the space is infeasible")
    params, values = smallest
    if max_params is not None and params > max_params:
        searched = ", ".join(f"{name}={values[name]}" for name, spec in space.hyperparameters.items()
                             if spec["type"] not in ("fixed", "float"))
        raise TunerAppError(f"{space.source}: no configuration fits --max-params {max_params:,}; the smallest "
                            f"has {params:,} params ({searched})")


def dry_run(space: SearchSpace, trials: int | None = None, seed: int = 0,
            max_params: int | None = None) -> list[dict[str, Any]]:
    """One row per configuration: hyperparameters, params (None if infeasible), params_conv/fc, infeasible,
    and with a budget, over_budget."""
    rows = []
    for values in configurations(space, trials, seed):
        try:
            counts = count_params(space, values)
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
