"""Enumerating a space: the full grid or seeded samples, the smallest feasible configuration, the
budget check made before anything trains, and the dry run."""

from __future__ import annotations

import itertools
import logging
import math
import random
from typing import Any, Iterable, Iterator, Mapping

import keras_tuner

from tuner_app.errors import InfeasibleConfig, TunerAppError
from tuner_app.model.architecture import N_CLASSES, count_params
from tuner_app.model.spaces import FC_UNITS, SearchSpace, candidate_values, declare

MAX_ENUMERATED = 1_000_000  # sizes are cheap arithmetic: a million configurations take a few seconds
SAMPLED = 100_000  # configurations the budget check sizes when a space has more than MAX_ENUMERATED
SAMPLE_SEED = 0

log = logging.getLogger(__name__)


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


def _size_grids(space: SearchSpace) -> list[dict[str, list]]:
    """The configurations that differ in size, as one grid per fc_layers value: fc_units_K deeper than that
    is inactive, so it keeps its first value (as floats do: dropout and learning rate add no parameters)."""
    candidates = {name: _size_candidates(spec) for name, spec in space.hyperparameters.items()}
    grids = []
    for depth in candidates["fc_layers"]:
        grid = {**candidates, "fc_layers": [depth]}
        for name in candidates:
            match = FC_UNITS.match(name)
            if match and int(match.group(1)) > depth:
                grid[name] = candidates[name][:1]
        grids.append(grid)
    return grids


def _grid_size(grid: Mapping[str, list]) -> int:
    return math.prod(len(values) for values in grid.values())


def _enumerated(grids: list[dict[str, list]]) -> Iterator[dict[str, Any]]:
    for grid in grids:
        for combination in itertools.product(*grid.values()):
            yield dict(zip(grid, combination))


def _sampled(grids: list[dict[str, list]], count: int) -> Iterator[dict[str, Any]]:
    """`count` seeded draws, uniform over the grids' configurations."""
    rng = random.Random(SAMPLE_SEED)
    weights = [_grid_size(grid) for grid in grids]
    for grid in rng.choices(grids, weights, k=count):
        yield {name: rng.choice(values) for name, values in grid.items()}


def _smallest(space: SearchSpace, candidates: Iterable[dict[str, Any]], n_classes: int) -> tuple[int, dict] | None:
    best = None
    for values in candidates:
        try:
            params = count_params(space, values, n_classes)["params_total"]
        except InfeasibleConfig:
            continue
        if best is None or params < best[0]:
            best = (params, values)
    return best


def smallest_configuration(space: SearchSpace, n_classes: int = N_CLASSES) -> tuple[int, dict] | None:
    """(params, values) of the smallest feasible configuration; None if none is feasible.

    Raises TunerAppError if the space is too large to enumerate (more than MAX_ENUMERATED sizes).
    """
    grids = _size_grids(space)
    if sum(map(_grid_size, grids)) > MAX_ENUMERATED:
        raise TunerAppError(f"{space.source}: too many configurations to find the smallest")
    return _smallest(space, _enumerated(grids), n_classes)


def check_budget(space: SearchSpace, max_params: int | None, n_classes: int = N_CLASSES) -> None:
    """Raise TunerAppError, before any training, if no configuration of the space fits the budget.

    Every configuration that differs in size is sized; in a space with more than MAX_ENUMERATED of them a
    seeded sample of SAMPLED is, and a warning says so.
    """
    grids = _size_grids(space)
    total = sum(map(_grid_size, grids))
    if total <= MAX_ENUMERATED:
        smallest, which = _smallest(space, _enumerated(grids), n_classes), ""
    else:
        log.warning("%s: %s configurations differ in size, too many to size each; the budget check sized "
                    "%s seeded random samples", space.source, f"{total:,}", f"{SAMPLED:,}")
        smallest, which = _smallest(space, _sampled(grids, SAMPLED), n_classes), "sampled "
    if smallest is None:
        raise TunerAppError(f"{space.source}: every {which}configuration of the space is infeasible")
    params, values = smallest
    if max_params is not None and params > max_params:
        of = f" of {SAMPLED:,} sampled" if which else ""
        raise TunerAppError(f"{space.source}: no {which}configuration fits --max-params {max_params:,}; the "
                            f"smallest{of} has {params:,} params ({_searched(space, values)})")


def _searched(space: SearchSpace, values: Mapping[str, Any]) -> str:
    """name=value of the searched hyperparameters that set the size (active fc_units only)."""
    shown = []
    for name, spec in space.hyperparameters.items():
        match = FC_UNITS.match(name)
        if spec["type"] in ("fixed", "float") or (match and int(match.group(1)) > values["fc_layers"]):
            continue
        shown.append(f"{name}={values[name]}")
    return ", ".join(shown)


def dry_run(space: SearchSpace, trials: int | None = None, seed: int = 0,
            max_params: int | None = None, n_classes: int = N_CLASSES) -> list[dict[str, Any]]:
    """One row per configuration, sized for `n_classes` outputs: hyperparameters, params (None if infeasible),
    params_conv/fc, infeasible, and with a budget, over_budget."""
    rows = []
    for values in configurations(space, trials, seed):
        try:
            counts = count_params(space, values, n_classes)
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
