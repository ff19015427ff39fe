"""Open-loop metrics of Alpamayo-R1: displacement errors, meta-action accuracy and
reasoning-action consistency, one plan's scores (`score_plan`, for synthetic scenarios and
recorded drives alike), and their aggregation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import TRAJECTORY_DT_S
from alpamayo_ros.core.meta_actions import label_meta_action
from alpamayo_ros.pipeline.planning import Plan
from alpamayo_ros.world.reasoning_text import is_consistent

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
class PlanScore:
    """One plan against the truth (the expert's future or the logged one), as every
    open-loop evaluation scores it; a figure the truth is too short for is None."""

    index: int  # the selected candidate, or the top-ranked one where none passed the checks
    planned: bool  # some candidate passed the checks (else the graph publishes no plan)
    min_ade_3s: float | None
    min_ade_6_4s: float | None
    ade_3s: float | None  # of the candidate at `index`
    ade_6_4s: float | None
    fde_3s: float | None
    fde_6_4s: float | None
    # The reasoning text states what the candidate at `index` does (AR1's consistency).
    consistent: bool


def score_plan(plan: Plan, truth: npt.NDArray[np.float64], text: str) -> PlanScore:
    """`plan`'s candidates against `truth` [T <= 64, 3] (the ego frame at t0, every 0.1 s),
    and its reasoning `text` against the candidate it goes with."""
    chosen = plan.selection.index
    index = chosen if chosen is not None else int(np.argmax(plan.scores))
    candidates = plan.samples.xyz()  # minADE scores the model's samples
    selected = plan.rollouts[index].xyz()[None]

    def covered(steps: int) -> bool:
        return len(truth) >= steps

    def final(steps: int) -> float | None:
        if not covered(steps):
            return None
        return float(np.linalg.norm(selected[0, steps - 1, :2] - truth[steps - 1, :2]))

    return PlanScore(
        index=index,
        planned=chosen is not None,
        min_ade_3s=min_ade(candidates, truth, STEPS_3S) if covered(STEPS_3S) else None,
        min_ade_6_4s=min_ade(candidates, truth, STEPS_6_4S) if covered(STEPS_6_4S) else None,
        ade_3s=min_ade(selected, truth, STEPS_3S) if covered(STEPS_3S) else None,
        ade_6_4s=min_ade(selected, truth, STEPS_6_4S) if covered(STEPS_6_4S) else None,
        fde_3s=final(STEPS_3S),
        fde_6_4s=final(STEPS_6_4S),
        consistent=is_consistent(text, *label_meta_action(plan.rollouts[index])),
    )


@dataclass(frozen=True)
class SampleResult:
    scenario_type: str
    seed: int
    # None only where the truth is shorter than the horizon (never for a synthetic sample).
    min_ade_3s: float | None
    min_ade_6_4s: float | None
    ade_3s: float | None  # of the selected candidate (the top-ranked where none passed)
    ade_6_4s: float | None
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
