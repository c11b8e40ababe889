"""Enumerating a space: the full grid or seeded samples of its configurations, none of them sized (their sizes,
the smallest and the budget check: model/architecture/space_sizes.py)."""

from __future__ import annotations

import random
from typing import Any

from tuner_app.errors import TunerAppError
from tuner_app.model.space import hyperparameters as hps
from tuner_app.model.space.search_space import SearchSpace

MAX_ENUMERATED = 100_000  # a configuration's walk takes 75-100 us: 100,000 take ~10 s on 2 cores


def is_grid(space: SearchSpace) -> bool:
    """True if every hyperparameter has a finite list of values and the space has at most MAX_ENUMERATED
    active configurations: few enough to list (counted up to that, never listed to count)."""
    axes = {name: hps.candidate_values(spec) for name, spec in space.hyperparameters.items()}
    if any(values is None for values in axes.values()):
        return False
    return hps.count_active(space.hyperparameters, axes, MAX_ENUMERATED) <= MAX_ENUMERATED


def configurations(space: SearchSpace, trials: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Every active configuration of a grid (first hyperparameter outermost; an inactive one holds no value),
    or `trials` seeded random samples."""
    if trials is None and is_grid(space):
        axes = {name: hps.candidate_values(spec) for name, spec in space.hyperparameters.items()}
        return list(hps.active_configurations(space.hyperparameters, axes))
    trials = trials if trials is not None else space.tuner.get("max_trials")
    if trials is None:
        raise TunerAppError(f"{space.source}: the space has continuous hyperparameters or more than "
                            f"{MAX_ENUMERATED:,} configurations; give a number of trials to sample")
    return _sample(space, trials, seed)


def _sample(space: SearchSpace, trials: int, seed: int) -> list[dict[str, Any]]:
    """Seeded draws as keras-tuner's random search makes them: each active hyperparameter in turn."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hps.declare(hp, space.hyperparameters)
    rng = random.Random(seed)
    samples = []
    for _ in range(trials):
        values: dict[str, Any] = {}
        for item in hp.space:
            if hps.is_active(space.hyperparameters, item.name, values):
                values[item.name] = item.random_sample(rng.randrange(2**31))
        samples.append(values)
    return samples
