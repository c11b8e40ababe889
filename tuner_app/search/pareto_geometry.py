"""The geometry of a Pareto front of accuracy against size: which points are non-dominated, the
hypervolume they dominate against a reference point, the front's knee, and the widest gap in its sizes.

Size x is minimised (on a log scale for hypervolume, knee and gaps), accuracy y maximised. The search uses it
as it goes (progress, the pareto oracle) and the Pareto analysis at the end.
"""

from __future__ import annotations

import bisect
import math
from typing import Sequence

from tuner_app.errors import TunerAppError

Point = tuple[float, float]
ROUNDING = 1e-9  # float noise: a knee must stand out of the line by more than this


def non_dominated(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points (x minimised, y maximised), by x ascending, y descending, index.

    A point is dominated if another is <= in x and >= in y and strictly better in one: exact duplicates are
    all on the front; equal x with lower y, or equal y with larger x, is dominated. Non-finite: TunerAppError.
    """
    if not all(math.isfinite(value) for point in points for value in point):
        raise TunerAppError(f"Pareto points must be finite numbers: {list(points)}")
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: list[int] = []
    leader: Point | None = None  # the most accurate point seen so far, i.e. at the smallest x
    for index in order:
        point = (points[index][0], points[index][1])
        if leader is None or point[1] > leader[1] or point == leader:
            front.append(index)
            leader = point
    return front


def front_points(points: Sequence[Point]) -> list[Point]:
    """The non-dominated points themselves, by size ascending."""
    return [points[index] for index in non_dominated(points)]


def hypervolume(points: Sequence[Point], reference: Point, log_x: bool = True) -> float:
    """Area dominated by the front of `points` and bounded by `reference` (x_ref, y_ref), in (log10 x, y) when
    log_x, else (x, y): sum over the front by x of (X_ref - X_i) * (y_i - y_(i-1)), from y_ref. Points outside
    the box (x > x_ref or y < y_ref) add nothing."""
    x_ref, y_ref = reference
    inside = [point for point in points if point[0] <= x_ref and point[1] >= y_ref]
    scale = _log10 if log_x else float
    area, floor = 0.0, y_ref
    for index in non_dominated(inside):
        x, y = inside[index]
        area += (scale(x_ref) - scale(x)) * (y - floor)
        floor = y
    return area


def gap_width(size: float, front: Sequence[Point]) -> float:
    """The width, in decades (log10), of the gap in the front's sizes that `size` falls in: between the two
    front sizes around it, or from the nearest end of the front out to `size`; 0 at a size the front holds,
    infinite for an empty front."""
    if not front:
        return math.inf
    sizes, position = sorted(_log10(x) for x, _ in front), _log10(size)
    if position in sizes:
        return 0.0
    if position < sizes[0] or position > sizes[-1]:
        return min(abs(position - sizes[0]), abs(position - sizes[-1]))
    above = bisect.bisect(sizes, position)
    return sizes[above] - sizes[above - 1]


def knee(front: Sequence[Point]) -> int:
    """Index into `front` (non-dominated points sorted by x) of its knee: in (log10 x, y) normalised to [0, 1]
    over the front, the point farthest from the line joining its first and last points on the side of the ideal
    corner (small, accurate); ties go to the smaller index. A front of 1 or 2 points, or one with no point
    above that line, gives its most accurate point (the first of equals)."""
    if not front:
        raise TunerAppError("the knee of an empty front is undefined")
    most_accurate = max(range(len(front)), key=lambda i: (front[i][1], -i))
    if len(front) < 3:
        return most_accurate
    u = _normalised([_log10(x) for x, _ in front])
    v = _normalised([y for _, y in front])
    du, dv = u[-1] - u[0], v[-1] - v[0]
    if du == dv == 0:  # every point identical (the front sorts x up, y up): no line to measure from
        return most_accurate
    # The cross product is positive on the upper-left (ideal) side of the line from the first to the last point.
    lift = [(du * (v[i] - v[0]) - dv * (u[i] - u[0])) / math.hypot(du, dv) for i in range(len(front))]
    best = max(range(len(front)), key=lambda i: (lift[i], -i))
    return best if lift[best] > ROUNDING else most_accurate


def _normalised(values: list[float]) -> list[float]:
    low, span = min(values), max(values) - min(values)
    return [(value - low) / (span or 1.0) for value in values]


def _log10(value: float) -> float:
    if value <= 0:
        raise TunerAppError(f"size {value} cannot go on a log scale: sizes must be positive")
    return math.log10(value)
