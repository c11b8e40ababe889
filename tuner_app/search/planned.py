"""How many trials a search trains in all, as its progress counts them down."""

from __future__ import annotations

import keras_tuner

from tuner_app.device.budget import Budget, misfit
from tuner_app.model.space.configurations import configurations, is_grid
from tuner_app.search import keras_tuner_internals


def trials(tuner) -> int | None:
    """The trials `tuner` trains in all: Hyperband's brackets, else max_trials, for a grid at most the
    configurations within --max-params (None if the oracle cannot say)."""
    oracle = getattr(tuner.oracle, "local", tuner.oracle)  # a worker's own copy knows the budget too
    if isinstance(oracle, keras_tuner.oracles.HyperbandOracle):
        return _hyperband_trials(oracle)
    planned = oracle.max_trials
    if isinstance(oracle, keras_tuner.oracles.GridSearchOracle) and is_grid(tuner.space):
        # Counted on params alone: converting every configuration for flash and RAM would take minutes.
        by_params = Budget(tuner.budget.params)
        fitting = sum(1 for values in configurations(tuner.space)
                      if misfit(tuner.space, values, by_params, tuner.n_classes)[1] is None)
        planned = fitting if planned is None else min(planned, fitting)
    return planned


def _hyperband_trials(oracle) -> int:
    # keras-tuner's own bracket arithmetic: every round of every bracket, per iteration.
    return sum(keras_tuner_internals.hyperband_round_sizes(oracle)) * oracle.hyperband_iterations
