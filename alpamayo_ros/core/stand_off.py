"""Plans that keep off the object a reasoning stops or yields for.

A reasoning names what it stops for and where: "Stop behind the stopped vehicle", cause
STOPPED_VEHICLE at (23.9, -1.1) m in the ego frame at t0. A sampled trajectory that drives
into that place contradicts it whatever its meta-action says: the embedded model's samples
for such a reasoning brake at 1-1.5 m/s^2 where 3-6 are needed, label as a stop, and run
into the car. So the planning step refuses a sample that comes within a clearance of the
object, and when every sample does, brakes along the best one to stop short of it: the
stop the reasoning asked for, bounded by a maximum deceleration.

Only objects that stay where they are named: a stopped vehicle, a pedestrian or cyclist
yielded to, construction. Not a traffic light (its position is the light's head, which on
many roads stands beyond the intersection, not at the stop line), and not a lead or
cutting-in vehicle (it moves on; following it is the action expert's job).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import TRAJECTORY_DT_S
from alpamayo_ros.core.decisions import Cause, LongitudinalDecision
from alpamayo_ros.core.kinematics import Rollout, integrate_unicycle, stop_at_standstill
from alpamayo_ros.core.model_io import CausalDecision

STOPPING_DECISIONS = frozenset(
    {LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT, LongitudinalDecision.YIELD}
)
STANDING_CAUSES = frozenset(
    {Cause.STOPPED_VEHICLE, Cause.PEDESTRIAN, Cause.CYCLIST, Cause.CONSTRUCTION}
)


@dataclass(frozen=True)
class StandOff:
    """Keep the ego origin (base_link) at least `clearance_m` from the point (x, y), in
    the ego frame at t0, where the reasoning's cause is."""

    cause: Cause
    x: float
    y: float
    clearance_m: float

    @classmethod
    def stated_by(cls, decision: CausalDecision | None, clearance_m: float) -> StandOff | None:
        """The stand-off a decision asks for: a stop or a yield for a standing object ahead
        of the car; None otherwise, or when `clearance_m` is 0 (the rule off)."""
        if clearance_m < 0.0:
            raise ValueError(f"the stand-off clearance must be >= 0, got {clearance_m}")
        if decision is None or clearance_m == 0.0:
            return None
        if decision.longitudinal_decision not in STOPPING_DECISIONS:
            return None
        if decision.cause not in STANDING_CAUSES:
            return None
        x, y, _ = decision.cause_object_position
        if not (np.isfinite(x) and np.isfinite(y)) or x <= 0.0:
            return None  # behind or beside the car, or no position: nothing to stop short of
        return cls(decision.cause, float(x), float(y), clearance_m)

    def _distances(self, rollouts: Rollout) -> npt.NDArray[np.float64]:
        return np.asarray(np.hypot(rollouts.x - self.x, rollouts.y - self.y))

    def violations(self, rollouts: Rollout) -> list[str]:
        """Per candidate of a batch [K, T]: why it breaks the stand-off, "" when it keeps it."""
        distances = self._distances(rollouts)
        reasons = []
        for k in range(rollouts.batch_shape[0]):
            closest = int(np.argmin(distances[k]))
            if distances[k, closest] >= self.clearance_m:
                reasons.append("")
                continue
            reasons.append(
                f"comes {distances[k, closest]:.1f} m from the {self.cause.name.lower()} the "
                f"reasoning stops for (clearance {self.clearance_m:g} m) at "
                f"t={rollouts.t[k, closest]:.1f} s"
            )
        return reasons

    def braking(self, rollout: Rollout, speed: float, max_deceleration: float) -> Rollout:
        """`rollout`'s path [T] driven with the constant deceleration that stops before it
        first comes within the clearance (at once when it starts within it), at most
        `max_deceleration`; stopped, it stays stopped."""
        if max_deceleration <= 0.0:
            raise ValueError(f"max_deceleration must be positive, got {max_deceleration}")
        speed = max(speed, 0.0)
        inside = self._distances(rollout) < self.clearance_m
        steps = np.hypot(np.diff(rollout.x, prepend=0.0), np.diff(rollout.y, prepend=0.0))
        # Path length up to the last state outside the clearance (all of it when none is in).
        entry = int(np.argmax(inside)) if inside.any() else len(steps)
        room = float(steps[:entry].sum())
        needed = speed**2 / (2.0 * room) if room > 0.0 else np.inf
        deceleration = min(needed, max_deceleration) if speed > 0.0 else 0.0
        acceleration = stop_at_standstill(
            np.full(rollout.t.shape, -deceleration), speed, TRAJECTORY_DT_S
        )
        return integrate_unicycle(acceleration, rollout.curvature, speed, dt=TRAJECTORY_DT_S)
