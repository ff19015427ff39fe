"""Standing objects the reasoning named, remembered where they stand while the car drives on.

The embedded model names a stopped car or a line of cones from 30-40 m, then loses it close
up: on seed 3000124 it stopped for a stopped car 30 m ahead, and for the last 2.5 s
before hitting it placed the car 22-26 m ahead or named none. The frames it is shown at
close range are states an expert never drives into, so no label taught it those. A
stopped car or a cone does not leave because the reasoning stops naming it. So the
planner remembers each place the reasoning names a stopped vehicle or construction at,
whatever it decides for it, in an odometry frame of its own, dead-reckoned from each plan's
ego speed and yaw rate (no odometry topic needed, and a replay gives the same memory).
While a place is held, the planning step stops short of the nearest remembered place ahead
when the reasoning keeps its lane and states no stand-off of its own, or a stop further on
(pipeline.planning). Kept only as a place to pass at the passing clearance, the car still
hit the stopped car on seed 3000124 and a cone on 3000155; remembering only the places it
stops or yields for, or only those named while keeping its lane, hit more (README).

A place counts while two statements, made at different times within `AGREE_S` of each
other, place the same kind of object within `AGREE_M` (one frame's misreading is not
remembered); each statement is kept for `hold_s`.

What it cannot tell apart: a moving car the model misnames as a stopped one (its places
move on with the car, so each is held only `hold_s`, and the car slows for where it was),
a place the model misjudges (on seed 3000186 it named a stopped car 44 m ahead while
changing lanes, where it stood 68 m on, and the car braked for a place 26 m short of it),
and a car it went round: after a lane change past a stopped car, keeping its new lane, the
car can brake beside it for up to `hold_s`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alpamayo_ros.core.decisions import Cause
from alpamayo_ros.core.kinematics import EgoState
from alpamayo_ros.core.model_io import CausalDecision
from alpamayo_ros.core.planar import Pose2D
from alpamayo_ros.core.stand_off import BESIDE_THE_CAR_M

# Causes whose object stays where it is named: remembered. A pedestrian or a cyclist who
# is yielded to moves on; a light's line is restated as long as the light is red.
REMEMBERED_CAUSES = frozenset({Cause.STOPPED_VEHICLE, Cause.CONSTRUCTION})
# How far apart in time and space two statements may be and still confirm one place. The
# model's placements of one standing object scatter about a metre from plan to plan.
AGREE_S = 2.0
AGREE_M = 3.0
# How long a statement is kept, when nothing else says. At least AGREE_S, or no two
# statements could confirm each other for as long as they may be apart.
HOLD_S = 5.0


def hold_problem(hold_s: float) -> str | None:
    """Why statements cannot be kept `hold_s`, if so."""
    if not AGREE_S <= hold_s < math.inf:
        return (
            f"the memory must keep statements at least {AGREE_S:g} s (the time two that "
            f"confirm each other may be apart), got {hold_s}"
        )
    return None


@dataclass(frozen=True)
class Sighting:
    """One statement: the object's place in the memory's odometry frame, and when."""

    t_ns: int
    x: float
    y: float
    cause: Cause


@dataclass(frozen=True)
class Recalled:
    """A remembered object, in the ego frame at the newest plan's t0."""

    cause: Cause
    x: float
    y: float
    age_s: float  # since the statement that placed it

    def described(self) -> str:
        """What a diagnostic says of it."""
        return (
            f"the {self.cause.name.lower()} the reasoning named {self.age_s:.1f} s ago, "
            f"now {self.x:.1f} m ahead"
        )


class StandingObjectMemory:
    """Places of named standing objects, kept in a dead-reckoned odometry frame.

    `observe` once per plan, in t0 order; a t0 earlier than the last one (a replay that
    starts over), or more than `hold_s` after it, forgets everything.
    """

    def __init__(self, hold_s: float = HOLD_S) -> None:
        problem = hold_problem(hold_s)
        if problem:
            raise ValueError(problem)
        self.hold_s = hold_s
        self.sightings: list[Sighting] = []
        self._t_ns: int | None = None
        self._ego: EgoState | None = None
        self._pose = Pose2D(0.0, 0.0, 0.0)  # base_link in the memory's frame at the last t0

    def forget(self) -> None:
        """Start over: no places, the frame anew."""
        self.sightings.clear()
        self._t_ns, self._ego = None, None
        self._pose = Pose2D(0.0, 0.0, 0.0)

    def forget_nearer_than(self, x: float) -> None:
        """Forget the places nearer than `x` ahead (m, in the ego frame at the newest t0):
        the cameras show clear road up to a thing there that moves on, so nothing named
        before it stands; places further on stay."""
        self.sightings = [
            sighting
            for sighting in self.sightings
            if self._pose.relative_point(sighting.x, sighting.y)[0] >= x
        ]

    def observe(self, t0_ns: int, ego: EgoState, decision: CausalDecision | None) -> None:
        """Move the frame to t0 with the car's motion since the last plan (the mean of the
        two plans' speeds and yaw rates), remember what the decision names, drop what is
        older than the hold."""
        if self._t_ns is not None and self._ego is not None:
            dt = (t0_ns - self._t_ns) / 1e9
            if not 0.0 <= dt <= self.hold_s:
                self.forget()
            else:
                # The chord of the arc: along the heading half-way through the turn.
                travel = 0.5 * (self._ego.speed + ego.speed) * dt
                turn = 0.5 * (self._ego.yaw_rate + ego.yaw_rate) * dt
                step = Pose2D(travel * math.cos(0.5 * turn), travel * math.sin(0.5 * turn), turn)
                self._pose = self._pose.compose(step)
        self._t_ns, self._ego = t0_ns, ego
        oldest = t0_ns - round(self.hold_s * 1e9)
        self.sightings = [s for s in self.sightings if s.t_ns >= oldest]
        if decision is None or decision.cause not in REMEMBERED_CAUSES:
            return
        x, y, _ = decision.cause_object_position
        if not (math.isfinite(x) and math.isfinite(y)) or x <= BESIDE_THE_CAR_M:
            return
        self.sightings.append(Sighting(t0_ns, *self._pose.transform_point(x, y), decision.cause))

    def _confirmed(self, sighting: Sighting) -> bool:
        return any(
            other.t_ns != sighting.t_ns
            and other.cause is sighting.cause
            and abs(other.t_ns - sighting.t_ns) <= AGREE_S * 1e9
            and math.hypot(other.x - sighting.x, other.y - sighting.y) <= AGREE_M
            for other in self.sightings
        )

    def recall(self) -> Recalled | None:
        """The nearest confirmed place ahead of the car's front, in the ego frame at the
        newest t0; None when there is none."""
        if self._t_ns is None:
            return None
        nearest = None
        for sighting in self.sightings:
            x, y = self._pose.relative_point(sighting.x, sighting.y)
            if x <= BESIDE_THE_CAR_M or (nearest is not None and x >= nearest.x):
                continue
            if self._confirmed(sighting):
                age_s = (self._t_ns - sighting.t_ns) / 1e9
                nearest = Recalled(sighting.cause, x, y, age_s)
        return nearest
