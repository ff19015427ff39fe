"""Open-loop metrics of Alpamayo-R1: displacement errors, meta-action accuracy and
reasoning-action consistency, and their aggregation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import TRAJECTORY_DT_S

STEPS_3S = round(3.0 / TRAJECTORY_DT_S)
STEPS_6_4S = round(6.4 / TRAJECTORY_DT_S)


def average_displacement(
    xyz: npt.NDArray[np.float64], truth: npt.NDArray[np.float64], steps: int
) -> npt.NDArray[np.float64]:
    """Mean L2 distance over the first `steps` points; xyz [..., T, 3], truth [T, 3]."""
    return np.linalg.norm(xyz[..., :steps, :2] - truth[:steps, :2], axis=-1).mean(-1)


def min_ade(
    candidates: npt.NDArray[np.float64], truth: npt.NDArray[np.float64], steps: int
) -> float:
    """minADE_K: the best of K candidates [K, T, 3]."""
    return float(average_displacement(candidates, truth, steps).min())


@dataclass(frozen=True)
class SampleResult:
    scenario_type: str
    seed: int
    min_ade_3s: float
    min_ade_6_4s: float
    ade_3s: float  # of the highest-scored candidate
    ade_6_4s: float
    planned: bool  # some candidate passed the checks (else the graph publishes no plan)
    longitudinal_correct: bool
    lateral_correct: bool
    consistent: bool  # reasoning text agrees with the selected trajectory on both axes
    cause_correct: bool
    # Distance from the true cause object where truth and model name the same object cause;
    # None otherwise, and left out of the mean.
    cause_position_error_m: float | None
    # The candidate the planning step chose (None: none feasible); not a metric.
    selected_index: int | None = None


METRICS = tuple(
    f.name
    for f in fields(SampleResult)
    if f.name not in ("scenario_type", "seed", "selected_index")
)


def mean_metrics(results: Sequence[SampleResult]) -> dict[str, float | None]:
    """Mean of each metric over the results that have it (None when none has)."""
    summary: dict[str, float | None] = {}
    for name in METRICS:
        values = [value for r in results if (value := getattr(r, name)) is not None]
        summary[name] = float(np.mean(values)) if values else None
    summary["count"] = len(results)
    return summary


def aggregate(results: Iterable[SampleResult]) -> dict[str, dict[str, float | None]]:
    """Means overall and per scenario type."""
    results = list(results)
    by_type: dict[str, list[SampleResult]] = defaultdict(list)
    for result in results:
        by_type[result.scenario_type].append(result)
    summary = {"overall": mean_metrics(results)} if results else {}
    summary.update({name: mean_metrics(group) for name, group in sorted(by_type.items())})
    return summary


def as_dict(result: SampleResult) -> dict[str, object]:
    return asdict(result)
