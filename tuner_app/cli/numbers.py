"""The ranges of the numeric options, where click's plain types would let a number through that then fails
deep inside (a seed numpy refuses, a plan too large for memory, a nan timeout that never expires)."""

from __future__ import annotations

import math

import click

from tuner_app.constants import MAX_TRIALS, SEED_MAX


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan, which passes every comparison of its range."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


SEED = click.IntRange(0, SEED_MAX)
TRIALS = click.IntRange(1, MAX_TRIALS)
CLIPS_PER_WORD = click.IntRange(1, 100_000)  # 1.6 million clips; its plan of takes is made in memory first
WORKER_TIMEOUT = FiniteFloatRange(1, 7 * 24 * 3600)  # a week; inf or nan would never give a lost trial away
KILOBYTES = FiniteFloatRange(min=0, min_open=True, max=1 << 30)  # a device budget: above 0, at most a terabyte
