"""Plans that keep off the object a reasoning stops for, yields to or nudges around.

A reasoning names what it stops for and where: "Stop behind the stopped vehicle", cause
STOPPED_VEHICLE at (23.9, -1.1) m in the ego frame at t0. A sampled trajectory that drives
into that place contradicts it whatever its meta-action says: the embedded model's samples
for such a reasoning brake at 1-1.5 m/s^2 where 3-6 are needed, label as a stop, and run
into the car. So the planning step refuses a sample that comes within a clearance of the
object, and when no sample is left, brakes along the best one to stop short of it: the stop
the reasoning asked for, as hard as a maximum deceleration allows.

A nudge is the same promise sideways: "Nudge to the left to keep clear of the cones
narrowing the lane", cause CONSTRUCTION at the first cone. The model's samples for it move
a few decimetres where a metre is needed (a 0.7 m nudge labels as going straight, so the
meta-action ranking cannot tell them apart) and clip the cones. So a sample that passes
the object closer than a passing clearance, sideways, is refused, and when every sample
does, the car brakes to stop short of it as for a stop: safe, if slower than the expert,
who goes round.

Only objects that stay where they are count: a stopped vehicle, a pedestrian or cyclist
yielded to, construction; and a red or yellow light's stop line ("Stop at the stop line
because the traffic light is red", cause TRAFFIC_LIGHT at the point where the line crosses
the car's path), which the car's front must not pass: saying so, the embedded model's
plans crossed it at 3-4 m/s (seeds 3000148, 3000159, 3000172). Not a lead or
cutting-in vehicle (it moves on; following it is the action expert's job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import TRAJECTORY_DT_S
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import Rollout, along_path, stop_at_standstill
from alpamayo_ros.core.model_io import CausalDecision

# How far the car's origin (base_link, the rear axle) stays from the object: the ego's
# 3.7 m to its front, half a car's length (2.4 m) and a metre. Not more: the expert stops
# its front 3 m short, base_link 6.7-9.1 m from the object, and a larger clearance refuses
# such samples (10 m: open-loop consistency 0.83 to 0.77).
STAND_OFF_CLEARANCE_M = 7.0
# How far base_link stays from a stop line the reasoning stops at: the ego's 3.7 m to its
# front and a metre, about what the model's placement of the line is off along the road.
STOP_LINE_CLEARANCE_M = 4.7
# The hardest the braking candidate brakes (the control bridge's emergency deceleration).
STAND_OFF_MAX_DECELERATION = 6.0
# An object this close to base_link's x, or behind it, is beside or behind the car: there
# is nothing to stop short of (the ego's front is 3.7 m ahead of base_link).
BESIDE_THE_CAR_M = 3.7
# Already within the clearance (queued behind the object), a sample is refused only when it
# comes this much closer than the car is: standing or moving off keeps the stand-off.
APPROACH_TOLERANCE_M = 0.5
# How far sideways base_link passes the object a nudge goes round, where some sample does:
# half the ego's width (0.95 m), half a cyclist's (0.35 m) and 0.5 m, about what the
# model's placement of the object is off sideways (median 0.36 m for the first cone, 0.42 m
# for a cyclist; p90 0.63 and 0.93 m).
PASSING_CLEARANCE_M = 1.8
# Where no sample does, the closest a pass may still come before the car brakes instead:
# half the ego's width and a cone's, and a few centimetres. Refusing every sample under
# the full clearance stopped the car behind cyclists and cones it could pass: on seeds
# 3000200-3000299, 0.21 of the drives passed, 0.25 with this floor (README). A sample that
# never reaches the object's stretch (it stops short, or its horizon ends first) keeps any
# clearance, and counts as keeping the full one: with it, the floor stays 1.8 m.
PASSING_MINIMUM_M = 1.2
# Where a sample passes the object: from this far before the point the reasoning places to
# this far beyond it, along the ego's x at t0. The reasoning places the first cone of a
# line that goes on (and may close in on the lane), or a cyclist who rides on.
PASSING_FROM_M = 5.0
PASSING_TO_M = 15.0
# A thing the cameras show, with its width (pipeline.clear_road's tracked clear road end), is
# passed, not stood off, by a plan whose body (half the ego's width either side of
# base_link) clears it sideways by at least SEEN_PASSING_GAP_M while base_link is within
# the clearance behind where it begins to SEEN_LENGTH_M past it (a car's length and its
# overhang behind the rear axle: what hides behind its start is not known). The expert
# passes cones 0.5 m aside and cyclists 0.5-0.9 m; a pixel's width at 15 m is 0.25 m.
EGO_HALF_WIDTH_M = 0.95
EGO_REAR_M = 0.9  # the car's rear behind base_link
SEEN_PASSING_GAP_M = 0.5
SEEN_LENGTH_M = 6.0
# Beside it already (where it begins at or behind the car's front), a plan may not come
# closer sideways than the car is, less this; never through it.
SEEN_SIDEWAYS_TOLERANCE_M = 0.05

STOPPING_DECISIONS = frozenset(
    {LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT, LongitudinalDecision.YIELD}
)
NUDGING_DECISIONS = frozenset({LateralDecision.IN_LANE_NUDGE, LateralDecision.OUT_OF_LANE_NUDGE})
STANDING_CAUSES = frozenset(
    {Cause.STOPPED_VEHICLE, Cause.PEDESTRIAN, Cause.CYCLIST, Cause.CONSTRUCTION}
)
# Causes whose place is a line to stop at, not an object, and the one decision that stops
# at it (the expert stops for a red or a yellow light it can stop for; a green is SET_SPEED).
STOP_LINE_CAUSES = frozenset({Cause.TRAFFIC_LIGHT})
STOP_LINE_DECISIONS = frozenset({LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT})


def settings_problem(
    clearance_m: float,
    max_deceleration: float,
    passing_clearance_m: float = 0.0,
    stop_line_clearance_m: float = 0.0,
) -> str | None:
    """Why the clearances (0 turns a rule off) and a braking bound cannot be used, if so."""
    if not clearance_m >= 0.0:
        return f"the stand-off clearance must be >= 0 m, got {clearance_m}"
    if not 0.0 <= passing_clearance_m < np.inf:
        return f"the stand-off passing clearance must be >= 0 m, got {passing_clearance_m}"
    if not (stop_line_clearance_m == 0.0 or BESIDE_THE_CAR_M <= stop_line_clearance_m < np.inf):
        return (
            f"the stop line clearance must be 0 (off) or at least {BESIDE_THE_CAR_M} m "
            f"(base_link to the car's front), got {stop_line_clearance_m}"
        )
    if not max_deceleration > 0.0:
        return f"the stand-off's maximum deceleration must be > 0, got {max_deceleration}"
    return None


@dataclass(frozen=True)
class StandOff:
    """Keep the ego origin (base_link) at least `clearance_m` from the point (x, y), in the
    ego frame at t0, where the reasoning's cause is; or, where the car is closer already,
    come no closer. With `passing_clearance_m` (a nudge round the object) the car may pass
    it, at least that far sideways; it still stops `clearance_m` short when braking.

    `seen`: the point is what the cameras show in the car's lane, not the reasoning's
    cause (pipeline.clear_road's tracked clear road end), moving on along x at `speed_mps`,
    kept off for the first `horizon_s` of a plan (a constant speed is a guess further
    on, and the plan after next looks again). With its `extent_y` (right, left: y where it
    begins), growing at `lateral_speeds_mps` (rightward, leftward) the ways it may move,
    a plan may pass it SEEN_PASSING_GAP_M aside; without, it is a point."""

    cause: Cause
    x: float
    y: float
    clearance_m: float
    passing_clearance_m: float | None = None
    seen: bool = False
    speed_mps: float = 0.0
    horizon_s: float = np.inf
    extent_y: tuple[float, float] | None = None
    # Sideways speed (m/s, +left) of a thing with its width: it reaches further that way
    # as time goes on (a pedestrian walking into the lane), never less far the other way.
    lateral_speeds_mps: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def stated_by(
        cls,
        decision: CausalDecision | None,
        clearance_m: float,
        passing_clearance_m: float = 0.0,
        stop_line_clearance_m: float = 0.0,
    ) -> StandOff | None:
        """The stand-off a decision asks for: a stop or a yield for a standing object ahead
        of the car's front, or a nudge round one (unless `passing_clearance_m` is 0), or a
        stop at a light's line (unless `stop_line_clearance_m` is 0); None otherwise, or,
        for objects, when `clearance_m` is 0 (both object rules off: a pass too close
        brakes to that clearance)."""
        if decision is None:
            return None
        stops = STOPPING_DECISIONS
        if decision.cause in STOP_LINE_CAUSES:
            clearance_m, passing_clearance_m = stop_line_clearance_m, 0.0
            stops = STOP_LINE_DECISIONS
        elif decision.cause not in STANDING_CAUSES:
            return None
        if clearance_m == 0.0:
            return None
        stopping = decision.longitudinal_decision in stops
        nudging = decision.lateral_decision in NUDGING_DECISIONS and passing_clearance_m > 0.0
        if not (stopping or nudging):
            return None
        x, y, _ = decision.cause_object_position
        if not (np.isfinite(x) and np.isfinite(y)) or x <= BESIDE_THE_CAR_M:
            return None
        passing = None if stopping else passing_clearance_m
        return cls(decision.cause, float(x), float(y), clearance_m, passing)

    @property
    def _limit_m(self) -> float:
        """The closest base_link may come: the clearance, or less than it is now; never, for
        a stop line, so close that the front would be past it (else a car within the
        clearance could creep over the line by the tolerance per plan)."""
        limit = min(self.clearance_m, float(np.hypot(self.x, self.y)) - APPROACH_TOLERANCE_M)
        return max(limit, BESIDE_THE_CAR_M) if self.cause in STOP_LINE_CAUSES else limit

    @property
    def _what(self) -> str:
        """What the car keeps off, as a diagnostic names it."""
        if self.seen:
            return "thing the cameras show in the lane"
        if self.cause in STOP_LINE_CAUSES:
            return f"stop line of the {self.cause.name.lower()} the reasoning stops for"
        return f"{self.cause.name.lower()} the reasoning stops for"

    def _distances(self, rollouts: Rollout) -> npt.NDArray[np.float64]:
        """[K, T]: from each state to the point where it is then (infinite past the
        horizon)."""
        x = self.x + self.speed_mps * rollouts.t
        distances = np.hypot(rollouts.x - x, rollouts.y - self.y)
        return np.asarray(np.where(rollouts.t <= self.horizon_s, distances, np.inf))

    def _entering(self, rollouts: Rollout) -> npt.NDArray[np.bool_]:
        """[K, T]: the states that break the stand-off: closer than the limit to the point;
        for a thing with its width, behind it within the limit or beside it, without the
        gap."""
        if self.extent_y is None:
            return np.asarray(self._distances(rollouts) < self._limit_m)
        start = self.x + self.speed_mps * rollouts.t
        limit = min(self.clearance_m, self.x - APPROACH_TOLERANCE_M)
        alongside = (rollouts.x > start - limit) & (rollouts.x < start + SEEN_LENGTH_M)
        right, left = widened(self.extent_y, self.lateral_speeds_mps, rollouts.t)
        needed = SEEN_PASSING_GAP_M
        if self.x <= BESIDE_THE_CAR_M:
            # Beside it already, sideways only: steering away swings the rear corner
            # towards it by more than the tolerance, and that is no reason to brake.
            gap = sideways_gap(rollouts.y, right, left)
            gap_now = float(sideways_gap(np.zeros(()), *self.extent_y))  # base_link at y 0
            needed = min(needed, max(gap_now - SEEN_SIDEWAYS_TOLERANCE_M, 0.0))
        else:
            gap = sideways_gap(rollouts.y, right, left, rollouts.yaw)
        return np.asarray(alongside & (gap < needed) & (rollouts.t <= self.horizon_s))

    def violations(self, rollouts: Rollout) -> list[str]:
        """Per candidate of a batch [K, T]: why it breaks the stand-off, "" when it keeps it."""
        if self.passing_clearance_m is not None:
            return self._passing_violations(rollouts)
        entering = self._entering(rollouts)
        distances = self._distances(rollouts)
        reasons = []
        for k in range(rollouts.batch_shape[0]):
            if not entering[k].any():
                reasons.append("")
                continue
            closest = int(np.argmin(np.where(entering[k], distances[k], np.inf)))
            passing = "" if self.extent_y is None else f", {SEEN_PASSING_GAP_M:g} m aside"
            reasons.append(
                f"comes {distances[k, closest]:.1f} m from the {self._what} "
                f"(clearance {self.clearance_m:g} m{passing}) at t={rollouts.t[k, closest]:.1f} s"
            )
        return reasons

    def _passing_violations(self, rollouts: Rollout) -> list[str]:
        """Samples that pass the object closer than the passing clearance, sideways, where
        some sample keeps it; else those closer than PASSING_MINIMUM_M (or the clearance,
        if smaller)."""
        clearance = float(self.passing_clearance_m or 0.0)
        passing = (rollouts.x >= self.x - PASSING_FROM_M) & (rollouts.x <= self.x + PASSING_TO_M)
        beside = np.where(passing, np.abs(rollouts.y - self.y), np.inf)
        closest = np.argmin(beside, axis=-1)
        gaps = np.take_along_axis(beside, closest[:, None], axis=-1)[:, 0]
        floor = clearance if np.any(gaps >= clearance) else min(PASSING_MINIMUM_M, clearance)
        return [
            ""
            if gap >= floor
            else (
                f"passes {gap:.1f} m beside the {self.cause.name.lower()} the reasoning "
                f"nudges around (passing clearance {floor:g} m) at t={rollouts.t[k, at]:.1f} s"
            )
            for k, (gap, at) in enumerate(zip(gaps, closest, strict=True))
        ]

    def braking(self, rollout: Rollout, speed: float, max_deceleration: float) -> Rollout:
        """The braking candidate: `rollout`'s path [T] driven at the constant deceleration
        that stops before the path first breaks the stand-off (at once when it does so at
        its first step), at most `max_deceleration`; stopped, it stays stopped.

        The path is followed by distance: the curvature the sample had at each point of
        its path is the braking car's where it reaches that point.
        """
        problem = settings_problem(self.clearance_m, max_deceleration)
        if problem:
            raise ValueError(problem)
        speed = max(speed, 0.0)
        along = np.concatenate([[0.0], np.cumsum(rollout.step_arc_lengths())])  # [T + 1]
        entering = self._entering(rollout)
        # Path length to the last state that keeps the stand-off (all of it when all do).
        room = float(along[int(np.argmax(entering))] if entering.any() else along[-1])
        needed = speed**2 / (2.0 * room) if room > 0.0 else np.inf
        deceleration = min(needed, max_deceleration) if speed > 0.0 else 0.0
        acceleration = stop_at_standstill(
            np.full(rollout.t.shape, -deceleration), speed, TRAJECTORY_DT_S
        )
        return along_path(rollout, acceleration, speed)


FloatLike = float | npt.NDArray[np.float64]


def widened(
    extent_y: tuple[float, float], lateral_speeds: tuple[float, float], seconds: FloatLike
) -> tuple[FloatLike, FloatLike]:
    """A thing's (right, left) extent `seconds` on, at `lateral_speeds` (m/s: rightward,
    negative; leftward, positive): further each way it may go, never less far."""
    right, left = extent_y
    toward_right, toward_left = lateral_speeds
    return (
        right + np.minimum(toward_right, 0.0) * seconds,
        left + np.maximum(toward_left, 0.0) * seconds,
    )


def sideways_gap(
    y: npt.NDArray[np.float64],
    right: FloatLike,
    left: FloatLike,
    yaw: npt.NDArray[np.float64] | float = 0.0,
) -> npt.NDArray[np.float64]:
    """Between the car's body (base_link at `y`, heading `yaw`: its corners BESIDE_THE_CAR_M
    ahead and EGO_REAR_M behind, EGO_HALF_WIDTH_M either side) and a thing reaching from
    `right` to `left`, sideways; negative where they overlap. Turning back towards a thing,
    the front corner reaches 3.7 m x sin(yaw) further than base_link (seed 3000002 in the
    graph: back to its lane's centre at 0.07 rad, the car's corner struck a cone its
    base_link cleared)."""
    sin, cos = np.sin(yaw), np.abs(np.cos(yaw))
    front, rear = BESIDE_THE_CAR_M * sin, -EGO_REAR_M * sin
    body_right = y + np.minimum(front, rear) - EGO_HALF_WIDTH_M * cos
    body_left = y + np.maximum(front, rear) + EGO_HALF_WIDTH_M * cos
    return np.asarray(np.maximum(right - body_left, body_right - left))


def first_violations(stand_offs: Sequence[StandOff], rollouts: Rollout) -> list[str]:
    """Per candidate of a batch [K, T]: why it breaks the first of `stand_offs` it breaks
    ("" when it keeps them all, or there are none)."""
    if not stand_offs:
        return [""] * rollouts.batch_shape[0]
    reasons = [stand_off.violations(rollouts) for stand_off in stand_offs]
    return [next((r for r in each if r), "") for each in zip(*reasons, strict=True)]


def braking_for_all(
    stand_offs: Sequence[StandOff], rollout: Rollout, speed: float, max_deceleration: float
) -> Rollout:
    """The braking candidate along `rollout`'s path that keeps every stand-off: of each
    one's braking, the one that stops soonest."""
    if not stand_offs:
        raise ValueError("braking needs a stand-off to keep")
    candidates = [stand_off.braking(rollout, speed, max_deceleration) for stand_off in stand_offs]
    return min(candidates, key=lambda braking: float(braking.step_arc_lengths().sum()))
