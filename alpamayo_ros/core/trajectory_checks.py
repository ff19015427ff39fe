"""Physical plausibility checks of model trajectories and choice among candidates.

A learned planner can output anything; nothing reaches the controller without passing these
checks, and the reasons are kept as text so operators see why a candidate was refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from alpamayo_ros.core.contract import MAX_ABS_ACCELERATION, MAX_ABS_CURVATURE
from alpamayo_ros.core.kinematics import Rollout


class InvalidCandidates(ValueError):
    """Inputs of the wrong shape (a batch where one rollout is expected, score count)."""


@dataclass(frozen=True)
class Limits:
    """Feasibility limits; defaults follow the model's control bounds and a passenger car."""

    max_abs_acceleration: float = MAX_ABS_ACCELERATION  # m/s^2, the action space bound (1 g)
    max_abs_curvature: float = MAX_ABS_CURVATURE  # 1/m, ~3 m turning radius, the action bound
    max_lateral_acceleration: float = 6.0  # m/s^2, v^2*kappa; beyond it tyres saturate
    max_abs_jerk: float = 20.0  # m/s^3, between consecutive steps; above it is a glitch
    # Speeds below this reverse the car; a plan that does so while driving forward is refused.
    min_forward_speed: float = -0.05  # m/s, a margin for rounding at standstill
    standstill_speed: float = 0.1  # m/s; jerk is checked between steps faster than this


@dataclass(frozen=True)
class Selection:
    """The chosen candidate (None: no feasible one) and why each other was refused."""

    index: int | None
    feasible: NDArray[np.bool_]  # [K]
    violations: tuple[tuple[str, ...], ...]  # [K], empty for feasible candidates


def check_rollout(
    rollout: Rollout, limits: Limits = Limits(), forward_only: bool = True
) -> list[str]:
    """Human-readable limit violations of a single rollout [T]; empty when feasible.

    `forward_only`: the car drives forward (the meta-action is not a reverse one), so a
    trajectory whose speed turns negative is refused however smooth it is.
    """
    if rollout.batch_shape:
        raise InvalidCandidates(f"check_rollout takes one rollout, got batch {rollout.batch_shape}")
    non_finite = rollout.non_finite_fields()
    if non_finite:
        return [f"non-finite values in {', '.join(non_finite)}"]

    # Jerk while moving: coming to rest (or starting from it) ends a braking command at
    # once, a step change the passengers do not feel as they would at speed.
    moving = np.abs(rollout.v) > limits.standstill_speed
    jerk = np.where(
        moving[1:] & moving[:-1], np.diff(rollout.acceleration) / np.diff(rollout.t), 0.0
    )
    checks = (
        ("acceleration", rollout.acceleration, rollout.t, limits.max_abs_acceleration, "m/s^2"),
        ("curvature", rollout.curvature, rollout.t, limits.max_abs_curvature, "1/m"),
        (
            "lateral acceleration",
            rollout.lateral_acceleration(),
            rollout.t,
            limits.max_lateral_acceleration,
            "m/s^2",
        ),
        ("jerk", jerk, rollout.t[1:], limits.max_abs_jerk, "m/s^3"),
    )
    violations = [
        violation
        for name, values, times, limit, unit in checks
        if (violation := _worst_excess(name, values, times, limit, unit)) is not None
    ]
    slowest = int(np.argmin(rollout.v))
    if forward_only and rollout.v[slowest] < limits.min_forward_speed:
        violations.append(
            f"reverses while driving forward: speed {rollout.v[slowest]:+.3g} m/s "
            f"at t={rollout.t[slowest]:.1f} s"
        )
    return violations


def select_trajectory(
    rollouts: Rollout,
    scores: ArrayLike,
    limits: Limits = Limits(),
    forward_only: bool = True,
    refusals: Sequence[str] = (),
) -> Selection:
    """Highest-scoring feasible candidate of a batch [K, T]; NaN scores count as infeasible.

    `refusals`: per candidate, why a rule beyond these limits refuses it ("" where none
    does), such as a stand-off the reasoning asks for; empty when no rule applies.

    The one selection rule: the planner node, evaluation and the benchmark all choose here.
    """
    scores = np.asarray(scores, dtype=float)
    if len(rollouts.batch_shape) != 1 or scores.shape != rollouts.batch_shape:
        raise InvalidCandidates(
            f"need rollouts [K, T] and scores [K], "
            f"got batch {rollouts.batch_shape} and {scores.shape}"
        )
    if refusals and len(refusals) != len(scores):
        raise InvalidCandidates(f"need {len(scores)} refusals, got {len(refusals)}")
    refused = tuple(refusals) or ("",) * len(scores)
    violations = tuple(
        tuple(check_rollout(rollouts[k], limits, forward_only))
        + (() if np.isfinite(scores[k]) else (f"score {scores[k]} is not finite",))
        + ((refused[k],) if refused[k] else ())
        for k in range(len(scores))
    )
    feasible = np.array([not reasons for reasons in violations], dtype=bool)
    index = int(np.argmax(np.where(feasible, scores, -np.inf))) if feasible.any() else None
    return Selection(index=index, feasible=feasible, violations=violations)


def _worst_excess(
    name: str, values: NDArray[np.float64], times: NDArray[np.float64], limit: float, unit: str
) -> str | None:
    """Describe the largest |value| above the limit, if any."""
    if values.size == 0:
        return None
    worst = int(np.argmax(np.abs(values)))
    if abs(values[worst]) <= limit:
        return None
    return f"{name} {values[worst]:+.3g} {unit} exceeds ±{limit:g} at t={times[worst]:.1f} s"
