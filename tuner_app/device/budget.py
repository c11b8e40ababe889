"""The size budget a configuration must fit before it trains: --max-params (the architecture walk), --max-flash
and --max-ram (its int8 model converted with untrained weights, costs.py). A cheap floor from the walk turns the
clearly oversized away without converting them."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Mapping

from tuner_app.device import costs
from tuner_app.errors import InfeasibleConfig, TunerAppError
from tuner_app.model.architecture.configured import walk
from tuner_app.model.space.configurations import configurations

KB = 1024  # --max-flash and --max-ram are in KB of 1,024 bytes, as microcontroller memories are sized
OPTIONS = {"params": "--max-params", "flash_bytes": "--max-flash", "ram_bytes": "--max-ram"}
CHECKED_SAMPLES, CHECKED_CONVERTED = 200, 3  # the check before a search: configurations floored, then converted


@dataclasses.dataclass(frozen=True)
class Budget:
    """Upper bounds (None: none) on params_total, and the int8 features-in model's flash and RAM bytes."""

    params: int | None = None
    flash_bytes: int | None = None
    ram_bytes: int | None = None

    @property
    def on_device(self) -> bool:
        return self.flash_bytes is not None or self.ram_bytes is not None

    def device_limits(self) -> dict[str, int]:
        return {name: limit for name in ("flash_bytes", "ram_bytes") if (limit := getattr(self, name)) is not None}

    def describe(self) -> str:
        """As the command line gave it, e.g. '--max-params 25,000, --max-ram 32 KB'."""
        return ", ".join(f"{OPTIONS[name]} {_limit_text(name, limit)}" for name, limit in self.limits().items())

    def limits(self) -> dict[str, int]:
        return {name: limit for name in OPTIONS if (limit := getattr(self, name)) is not None}


def of_options(max_params: int | None = None, max_flash_kb: float | None = None,
               max_ram_kb: float | None = None) -> Budget:
    """The budget of the command line's options (flash and RAM in KB)."""
    return Budget(max_params, _bytes(max_flash_kb), _bytes(max_ram_kb))


def _bytes(kilobytes: float | None) -> int | None:
    return None if kilobytes is None else int(kilobytes * KB)


def _limit_text(name: str, limit: int) -> str:
    # rounded as the user wrote it: --max-flash 41.6 is 42,598 bytes, shown as 41.6 KB and not 41.5996
    return f"{limit:,}" if name == "params" else f"{round(limit / KB, 3):g} KB"


def measures_device(space, budget: Budget) -> bool:
    """Whether a search measures its trials as deployed (costs.py): asked for by a flash or RAM budget, a device
    size axis, or int8 scores (`training.int8`, `objective.accuracy: int8`)."""
    from tuner_app.device import trial_int8

    return budget.on_device or space.objective["size"] in costs.DEVICE_COSTS or trial_int8.asked(space)


def misfit(space, values: Mapping[str, Any], budget: Budget | None, n_classes: int) -> tuple[int | None, str | None]:
    """(params, why the configuration cannot be trained); the reason is None if it can, params None if it is
    infeasible."""
    budget = budget or Budget()
    try:
        walked = walk(space, {name: value for name, value in values.items() if name in space.hyperparameters},
                      n_classes)
    except InfeasibleConfig as err:
        return None, str(err)
    params = walked.params_total
    if budget.params is not None and params > budget.params:
        return params, f"{params} params > budget {budget.params}"
    return params, device_misfit(space, values, budget, n_classes, walked) if budget.on_device else None


def floors(walked) -> dict[str, int]:
    """Lower bounds of the int8 model's costs from the walk: every parameter takes at least a byte of flash (a
    folded batch norm's four become a 4-byte bias and per-channel scales), and every block's input and output
    tensor is in the arena at some time."""
    largest = max(max(math.prod(row.input_shape), math.prod(row.output_shape)) for row in walked.rows)
    return {"flash_bytes": walked.params_total, "ram_bytes": largest}


def device_misfit(space, values: Mapping[str, Any], budget: Budget, n_classes: int, walked=None) -> str | None:
    """Why the configuration's int8 model does not fit the flash and RAM budget; None if it does."""
    walked = walked or walk(space, values, n_classes)
    least = floors(walked)
    over = _over(least, budget, "at least ")
    if over:
        return over
    try:
        measured = costs.untrained(space, _space_values(space, values), n_classes)
    except TunerAppError as error:
        return f"no int8 model to measure ({error})"
    return _over(measured, budget)


def _space_values(space, values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name in space.hyperparameters}


def _over(found: Mapping[str, float], budget: Budget, qualifier: str = "") -> str | None:
    for name, limit in budget.device_limits().items():
        if found[name] > limit:
            return f"{name} {qualifier}{int(found[name]):,} > {OPTIONS[name]} {_limit_text(name, limit)}"
    return None


def check_device_budget(space, budget: Budget | None, n_classes: int) -> None:
    """Raise TunerAppError, before anything trains, where no configuration fits the flash and RAM budget: none of
    CHECKED_SAMPLES configurations has floors within it, or none of the CHECKED_CONVERTED with the lowest does
    once converted."""
    if budget is None or not budget.on_device:
        return
    floored = sorted(_floored(space, n_classes), key=lambda item: _load(item[0], budget))
    fitting = [values for least, values in floored if not _over(least, budget)]
    tried = [(values, device_misfit(space, values, budget, n_classes)) for values in fitting[:CHECKED_CONVERTED]]
    if any(reason is None for _, reason in tried):
        return
    closest = tried[0][1] if tried else _over(floored[0][0], budget, "at least ") if floored else "none is feasible"
    raise TunerAppError(f"{space.source}: no configuration fits {budget.describe()} (of {CHECKED_SAMPLES} sampled, "
                        f"the closest: {closest})")


def _floored(space, n_classes: int) -> list[tuple[dict[str, int], dict[str, Any]]]:
    found = []
    for values in configurations(space, CHECKED_SAMPLES, seed=0):
        try:
            found.append((floors(walk(space, values, n_classes)), values))
        except InfeasibleConfig:
            continue
    return found


def _load(least: Mapping[str, int], budget: Budget) -> float:
    """How far a configuration's floors fill the budget (the largest fraction)."""
    return max(least[name] / limit for name, limit in budget.device_limits().items())


def with_device_costs(space, rows: list[dict[str, Any]], budget: Budget, n_classes: int) -> list[dict[str, Any]]:
    """The dry run's rows (model/architecture/space_sizes.dry_run), each feasible one within the params budget measured
    (DEVICE_COSTS, converted untrained) and marked over_budget against the whole budget."""
    for row in rows:
        if row["params"] is None or row.get("over_budget"):
            continue
        values = row["hyperparameters"]
        row["over_budget"] = device_misfit(space, values, budget, n_classes) is not None
        with contextlib.suppress(TunerAppError):  # one with no int8 model is over budget, and shows no costs
            row.update(costs.untrained(space, values, n_classes))
    return rows
