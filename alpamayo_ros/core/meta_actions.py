"""Rule-based meta-action labels of a trajectory (Alpamayo-R1, Table 5 vocabulary).

Labels what a trajectory does in its first seconds, e.g. to check a model's stated
meta-action against its own trajectory, or to describe baseline planners the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from alpamayo_ros.core.kinematics import Rollout


class InvalidRollout(ValueError):
    """A batch of rollouts where a single one is expected."""


# Numeric values equal the constants of the ROS MetaAction message; keep them in sync.
class Longitudinal(IntEnum):
    UNKNOWN = 0
    GENTLE_ACCELERATE = 1
    STRONG_ACCELERATE = 2
    GENTLE_DECELERATE = 3
    STRONG_DECELERATE = 4
    MAINTAIN_SPEED = 5
    STOP = 6
    REVERSE = 7


class Lateral(IntEnum):
    UNKNOWN = 0
    STEER_LEFT = 1
    STEER_RIGHT = 2
    SHARP_STEER_LEFT = 3
    SHARP_STEER_RIGHT = 4
    REVERSE_LEFT = 5
    REVERSE_RIGHT = 6
    GO_STRAIGHT = 7


@dataclass(frozen=True)
class LabelThresholds:
    """Thresholds of the labelling rules, applied to the first horizon_s of the rollout."""

    horizon_s: float = 3.0  # s; a meta-action describes the near term
    stop_speed: float = 0.2  # m/s; |speed| at the horizon below this is a stop
    reverse_speed: float = -0.2  # m/s; mean speed below this is reversing
    strong_acceleration: float = 1.5  # m/s^2, mean acceleration
    gentle_acceleration: float = 0.3  # m/s^2; between +-gentle is maintaining speed
    strong_deceleration: float = -2.0  # m/s^2
    gentle_deceleration: float = -0.3  # m/s^2
    straight_heading_change: float = 0.05  # rad (~3 deg); below is going straight
    sharp_heading_change: float = 0.5  # rad (~29 deg); above is a sharp turn
    sharp_lateral_acceleration: float = 4.0  # m/s^2; above is sharp even with little turning


def label_longitudinal(
    rollout: Rollout, thresholds: LabelThresholds = LabelThresholds()
) -> Longitudinal:
    """Reverse, stop, or the mean acceleration's class over the horizon.

    A final speed near zero is a stop whether the car braked into it or was already
    standing, which is why stop is decided before acceleration.
    """
    near_term = _near_term(rollout, thresholds)
    if near_term is None:
        return Longitudinal.UNKNOWN
    if _is_reversing(near_term, thresholds):
        return Longitudinal.REVERSE
    if abs(near_term.v[-1]) < thresholds.stop_speed:
        return Longitudinal.STOP
    mean_acceleration = near_term.acceleration.mean()
    if mean_acceleration > thresholds.strong_acceleration:
        return Longitudinal.STRONG_ACCELERATE
    if mean_acceleration > thresholds.gentle_acceleration:
        return Longitudinal.GENTLE_ACCELERATE
    if mean_acceleration < thresholds.strong_deceleration:
        return Longitudinal.STRONG_DECELERATE
    if mean_acceleration < thresholds.gentle_deceleration:
        return Longitudinal.GENTLE_DECELERATE
    return Longitudinal.MAINTAIN_SPEED


def label_lateral(rollout: Rollout, thresholds: LabelThresholds = LabelThresholds()) -> Lateral:
    """Turn direction and strength from the largest heading excursion over the horizon.

    The excursion (not the net change) is used so a lane change, which turns and turns
    back, still counts as steering. Steering direction is the curvature's sign, so when
    reversing "left" means steering left although the heading then turns right.
    """
    near_term = _near_term(rollout, thresholds)
    if near_term is None:
        return Lateral.UNKNOWN
    # Heading change as if driven forwards: its sign is the steering direction.
    steering_turn = np.cumsum(near_term.curvature * np.abs(near_term.step_arc_lengths()))
    excursion = steering_turn[np.argmax(np.abs(steering_turn))]
    if abs(excursion) < thresholds.straight_heading_change:
        return Lateral.GO_STRAIGHT
    left = excursion > 0.0
    if _is_reversing(near_term, thresholds):
        return Lateral.REVERSE_LEFT if left else Lateral.REVERSE_RIGHT
    peak_lateral_acceleration = np.max(np.abs(near_term.lateral_acceleration()))
    if (
        abs(excursion) > thresholds.sharp_heading_change
        or peak_lateral_acceleration > thresholds.sharp_lateral_acceleration
    ):
        return Lateral.SHARP_STEER_LEFT if left else Lateral.SHARP_STEER_RIGHT
    return Lateral.STEER_LEFT if left else Lateral.STEER_RIGHT


def label_meta_action(
    rollout: Rollout, thresholds: LabelThresholds = LabelThresholds()
) -> tuple[Longitudinal, Lateral]:
    return label_longitudinal(rollout, thresholds), label_lateral(rollout, thresholds)


def _near_term(rollout: Rollout, thresholds: LabelThresholds) -> Rollout | None:
    """The steps within the horizon, or None when they cannot be labelled."""
    if rollout.batch_shape:
        raise InvalidRollout(f"one rollout [T] needed, got batch {rollout.batch_shape}")
    near_term = rollout.until(thresholds.horizon_s)
    if near_term.t.size == 0 or near_term.non_finite_fields():
        return None
    return near_term


def _is_reversing(near_term: Rollout, thresholds: LabelThresholds) -> bool:
    return bool(near_term.v.mean() < thresholds.reverse_speed)


# Coarse intents: the granularity at which reasoning text is compared with a trajectory.
ACCELERATE, DECELERATE, MAINTAIN, STOP, REVERSE = (
    "accelerate",
    "decelerate",
    "maintain",
    "stop",
    "reverse",
)
LONGITUDINAL_CLASSES = (ACCELERATE, DECELERATE, MAINTAIN, STOP, REVERSE)
LEFT, RIGHT, STRAIGHT = "left", "right", "straight"
LATERAL_CLASSES = (LEFT, RIGHT, STRAIGHT)


def coarse_meta_action(
    longitudinal: Longitudinal, lateral: Lateral
) -> tuple[str | None, str | None]:
    """Coarse classes of a labelled meta-action; None for UNKNOWN."""
    return _COARSE_LONGITUDINAL.get(longitudinal), _COARSE_LATERAL.get(lateral)


_COARSE_LONGITUDINAL = {
    Longitudinal.GENTLE_ACCELERATE: ACCELERATE,
    Longitudinal.STRONG_ACCELERATE: ACCELERATE,
    Longitudinal.GENTLE_DECELERATE: DECELERATE,
    Longitudinal.STRONG_DECELERATE: DECELERATE,
    Longitudinal.MAINTAIN_SPEED: MAINTAIN,
    Longitudinal.STOP: STOP,
    Longitudinal.REVERSE: REVERSE,
}
_COARSE_LATERAL = {
    Lateral.STEER_LEFT: LEFT,
    Lateral.SHARP_STEER_LEFT: LEFT,
    Lateral.REVERSE_LEFT: LEFT,
    Lateral.STEER_RIGHT: RIGHT,
    Lateral.SHARP_STEER_RIGHT: RIGHT,
    Lateral.REVERSE_RIGHT: RIGHT,
    Lateral.GO_STRAIGHT: STRAIGHT,
}
