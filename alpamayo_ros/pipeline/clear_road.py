"""The clear road the front cameras show, against the stops the reasoning makes.

The model names stopped vehicles and cones that are not there, places those that are
10-15 m short, and drives into what it misnames (a stopped car called a lead). The cameras
show how far the car's corridor is clear road, and how wide what stands at its end is
(perception.free_space). Here:
- `moved_to_clear_road`: a stop for a stopped vehicle or cones placed within road the
  cameras show clear moves to where the clear road ends;
- `ClearRoadTrack`: what stands at the clear road's end, followed from plan to plan for
  its speed along the lane and sideways both ways, so the planning step keeps off what
  stands or moves slower there whatever the reasoning calls it;
- `moving_where_standing`: a stop for a "stopped vehicle" or "cones" that the track has
  surely moving on is that thing, kept off as it moves, not stood behind.
The planning step (pipeline.planning) applies them. Why each rule, by seed:
docs/closed_loop.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.decisions import Cause
from alpamayo_ros.core.ego_history import EgoHistory
from alpamayo_ros.core.planar import Pose2D
from alpamayo_ros.core.stand_off import StandOff, widened
from alpamayo_ros.perception.free_space import FreeSpace, corridor_centre
from alpamayo_ros.perception.lane import LaneEstimate

# Stops the cameras' clear road can move (perception.free_space): a stopped vehicle stands
# on the road, so it is not where they show clear road; cones stand still, and the
# corridor looked along is the car's body and the half metre the expert passes cones
# with, so cones beside a clear corridor are passed on the lane's centre without a stop
# (the model stops behind cones that are not there, or that leave the lane: seed 3000273
# stood behind a remembered "construction" 7 m ahead of a clear lane; the three mixed
# held-out sets went 0.86 / 0.90 / 0.90 -> 0.87 / 0.91 / 0.90 of the expert's progress,
# no collision added). Not a pedestrian or a cyclist: they move, and a crossing one can
# be out of the corridor and back in a second. How far past the place the reasoning (or
# the memory) puts one the road must be clear: about the model's placement scatter and a
# car's half length.
CLEARED_CAUSES = frozenset({Cause.STOPPED_VEHICLE, Cause.CONSTRUCTION})
CLEAR_PAST_M = 3.0
# The thing at the clear road's end, followed from plan to plan (`ClearRoadTrack`): how
# far back, how many plans and how far apart the first and the last must be for a speed,
# and how far from the last one the next may be and still be the same thing (the tele
# camera's pixel rows are up to 3 m of road apart at 30-40 m).
TRACK_S = 1.0
TRACK_MIN_SPAN_S = 0.3
# Until plans this far apart agree, a speed is too rough (a far end jumps 3 m between pixel
# rows) to call the thing faster than the car.
TRACK_SURE_SPAN_S = 0.5
TRACK_JUMP_M = 3.0
TRACK_JUMP_FRACTION = 0.1
# How many plans must have seen a thing, and for how long after the cameras last showed
# it, for it to be coasted where they miss it (`ClearRoadTrack.follow`).
TRACK_CONFIRM = 2
TRACK_COAST_S = 0.5
# Slower sideways than this, a thing is taken to stay where it is sideways: its measured
# extent jitters by a pixel (0.1-0.4 m) between frames, a walker goes 1-1.5 m/s.
LATERAL_DEADBAND_MPS = 0.4
# Faster than the car by this much, it moves away: nothing to keep off. Slower than this,
# it stands, and is kept off over the whole plan; a moving one over the first
# MOVING_HORIZON_S (kept off over 6.4 s at its speed of the moment, a lead that speeds up
# had the car braking for it, and the model, braking, then slowed for good: seed 3000320,
# 1.03 -> 0.63 of the expert's progress).
MOVING_AWAY_MPS = 1.0
# Nearer than this, the clear road's end is measured finely enough (pixel rows a metre of
# road apart or less) for its speed to tell a standing thing from one moving on: further,
# an end that stays on one row of the tele camera for a second reads as moving at the
# car's speed (seed 3000174: a stopped car 39 m ahead "at 6.9 m/s").
MOVING_MEASURED_WITHIN_M = 25.0
STANDING_MPS = 1.0
MOVING_HORIZON_S = 3.0
# A thing whose speed is not known yet is taken as standing only where waiting for its
# speed would leave a stop harder than this (m/s^2).
UNKNOWN_SPEED_DECELERATION = 4.0


def moved_to_clear_road(
    stand_off: StandOff, free_space: FreeSpace | None, lane: LaneEstimate | None
) -> StandOff | None:
    """A stop for a stopped vehicle or cones moved to where the cameras' clear road ends, where they
    show the car's corridor clear road CLEAR_PAST_M past the place it was put at (on the
    lane's centre there, or straight ahead); None where it stays.

    Why: the embedded model names stopped vehicles that are not there, and once the car
    stands behind one it keeps naming it (seeds 3000223, 3000227: stopped for the rest of
    the drive, nothing within 20 m); it places one that is there 10-15 m short (seed
    3000205). Moved, the stop is where the thing the cameras see begins, or as far as they
    look: the car drives up to it and never past what it has seen clear."""
    if free_space is None or stand_off.cause not in CLEARED_CAUSES:
        return None
    if stand_off.cause is Cause.CONSTRUCTION and lane is None:
        # Cones beside the corridor are cleared by a plan on the lane's centre only.
        return None
    if stand_off.passing_clearance_m is not None or not free_space.clear_past(
        stand_off.x, CLEAR_PAST_M
    ):
        return None
    x = free_space.clear_to_x
    return replace(stand_off, x=x, y=corridor_centre(lane, x))


def unknown_speed_stop_m(speed: float) -> float:
    """How far a car at `speed` needs to stop at UNKNOWN_SPEED_DECELERATION (m)."""
    return speed**2 / (2.0 * UNKNOWN_SPEED_DECELERATION)


def moving_where_standing(
    stand_off: StandOff,
    followed: Followed | None,
    track: ClearRoadTrack,
    t0_ns: int,
    speed: float,
    clearance_m: float,
) -> bool:
    """Whether `stand_off` is a stop for a thing that stands (CLEARED_CAUSES: a stopped
    vehicle, cones) within CLEAR_PAST_M of the thing the cameras follow at the clear road's
    end (`followed`), and the `track` has that thing surely moving on at t0
    (`ClearRoadTrack.moves_on`, asked last: it reads every pair of plans): nothing stands
    before it, where the road is clear. Its speed counts within MOVING_MEASURED_WITHIN_M,
    or where a car at `speed` could still stop `clearance_m` short of it, at
    UNKNOWN_SPEED_DECELERATION, after the TRACK_S a wrong speed lasts."""
    if (
        followed is None
        or stand_off.cause not in CLEARED_CAUSES
        or stand_off.passing_clearance_m is not None
        or abs(stand_off.x - followed.x) > CLEAR_PAST_M
        or not track.moves_on(t0_ns)
    ):
        return False
    room = followed.x - speed * TRACK_S - clearance_m
    return followed.x <= MOVING_MEASURED_WITHIN_M or room > unknown_speed_stop_m(speed)


@dataclass(frozen=True)
class _ClearRoadEnd:
    t0_ns: int
    x: float
    ego_speed: float
    extent_y: tuple[float, float] | None
    # The car at t0 in the track's own frame, by the ego history (`ClearRoadTrack._moved_to`):
    # what the cameras show moves sideways in base_link as the car itself turns and drifts.
    ego_pose: Pose2D
    # Which of the track's frames that is: sightings are placed against each other only
    # within one (a frame starts over where a plan comes without a history).
    frame: int


class Followed(NamedTuple):
    """The thing at the clear road's end as `ClearRoadTrack` follows it."""

    x: float  # m, base_link, where it begins
    speed: float | None  # m/s along the lane; None until followed long enough
    extent_y: tuple[float, float] | None  # how far sideways it reaches (FreeSpace.extent_y)
    # m/s (rightward <= 0, leftward >= 0): how fast it may move sideways each way (0
    # until followed long enough, or under LATERAL_DEADBAND_MPS: the measured extent
    # jitters by a pixel between frames)
    lateral_speeds: tuple[float, float] = (0.0, 0.0)


def _sideways(first: _ClearRoadEnd, last: _ClearRoadEnd, _: float) -> float | None:
    """How far the middle of the thing's extent moved sideways (across the car's heading
    at the later plan) from one plan to a later one, each placed by the car's pose then;
    None where either has no extent, or they are placed in different frames."""
    if first.extent_y is None or last.extent_y is None or first.frame != last.frame:
        return None
    before = first.ego_pose.transform_point(first.x, sum(first.extent_y) / 2.0)
    _, before_y = last.ego_pose.relative_point(*before)
    return sum(last.extent_y) / 2.0 - before_y


def _sideways_in_view(first: _ClearRoadEnd, last: _ClearRoadEnd, _: float) -> float | None:
    """How far the middle of the thing's extent moved sideways in base_link, as the
    cameras see it (the car's own turning left in); None where either has no extent."""
    if first.extent_y is None or last.extent_y is None:
        return None
    return (sum(last.extent_y) - sum(first.extent_y)) / 2.0


def _along_the_lane(first: _ClearRoadEnd, last: _ClearRoadEnd, dt: float) -> float:
    """How far the thing at the clear road's end moved along the lane from one plan to a
    later one `dt` s on: how far its end moved, the car's own travel (the mean of the two
    plans' speeds) added."""
    return last.x - first.x + 0.5 * (first.ego_speed + last.ego_speed) * dt


class ClearRoadTrack:
    """What the cameras show at the clear road's end, followed from plan to plan: where it
    is and how fast it moves along the lane.

    Why: the model drives into what it misnames. On seed 3000100 it says "speed up to
    follow the lead" and closes from 10 m at 8 m/s on a lead doing 3.8; on 3000143, once
    the memory's hold is over, it calls the stopped car ahead a lead vehicle and drives on
    at 7 m/s. The cameras show the thing the whole time, its distance shrinking; a planner
    that keeps off what is in its lane does not need the reasoning to name it right.

    Its speed is the median, over pairs of plans at least TRACK_MIN_SPAN_S apart within
    TRACK_S, of how fast the end moved, the car's own travel added (the mean of the two
    plans' speeds): robust to the pixel rows a far end jumps between."""

    def __init__(self) -> None:
        self._ends: list[_ClearRoadEnd] = []
        # The last plan's t0 and the car's pose then, in the track's frame.
        self._last_pose: tuple[int, Pose2D] | None = None
        self._frame = 0

    def follow(
        self,
        t0_ns: int,
        free_space: FreeSpace | None,
        ego_speed: float,
        ego_history: EgoHistory | None = None,
    ) -> Followed | None:
        """The thing at the clear road's end at t0; None where nothing stands in the
        corridor within range, and its speed None where it has not been followed long
        enough for one (it may be a pedestrian stepping in: seed 3000145). A jump further
        than TRACK_JUMP_M (and TRACK_JUMP_FRACTION of its distance) from the last end, or a
        t0 that goes back, starts over. A thing seen in TRACK_CONFIRM plans that the
        cameras then miss is coasted (at its speed, the car's travel taken off) for up to
        TRACK_COAST_S: a pedestrian crossing at the corridor's edge came and went from one
        frame to the next, and the car, braking every other plan, hit her (seed 3000389)."""
        if any(e.t0_ns >= t0_ns for e in self._ends):  # a replay that starts over
            self._ends.clear()
        frame, ego_pose = self._moved_to(t0_ns, ego_history)
        if free_space is None or free_space.clear_to_x >= free_space.range_x:
            return self._coasted(t0_ns, ego_speed)
        x = free_space.clear_to_x
        ends = [e for e in self._ends if t0_ns - e.t0_ns <= TRACK_S * NS_PER_S]
        # Compared with where the last one would be now: after a coast the car has moved on.
        if ends and abs(x - self._predicted(t0_ns, ego_speed).x) > (
            TRACK_JUMP_M + TRACK_JUMP_FRACTION * x
        ):
            ends = []
        ends.append(_ClearRoadEnd(t0_ns, x, ego_speed, free_space.extent_y, ego_pose, frame))
        self._ends = ends
        return Followed(
            x, self._speed(t0_ns, ego_speed), free_space.extent_y, self._lateral_speeds()
        )

    def _moved_to(self, t0_ns: int, ego_history: EgoHistory | None) -> tuple[int, Pose2D]:
        """The track's frame and the car's pose at t0 in it: the last plan's moved on by
        how the car moved since, as the ego history at t0 shows it (odometry, not an
        estimate). A new frame starts, with the car at its origin, where there is no
        history or it does not reach back to the last plan; what was placed in the old
        one is then placed against nothing (`_sideways`), not read across frames."""
        last = self._last_pose
        if ego_history is not None and last is not None and last[0] < t0_ns:
            last_seen_now = ego_history.planar_pose_at(last[0])
            if last_seen_now is not None:
                pose = last[1].compose(last_seen_now.inverse())
                self._last_pose = (t0_ns, pose)
                return self._frame, pose
        self._frame += 1
        pose = Pose2D(0.0, 0.0, 0.0)
        self._last_pose = (t0_ns, pose) if ego_history is not None else None
        return self._frame, pose

    def _lateral_speeds(self) -> tuple[float, float]:
        """How fast the middle of the thing's extent may move sideways (`_median_rate`),
        (rightward, leftward): the fastest of two estimates each way, 0 under
        LATERAL_DEADBAND_MPS. One is measured with the car's own turning and drift taken
        out: in base_link a thing keeps its bearing while the car turns the way it walks
        (seed 3000541: the car nudged left round a pedestrian crossing leftwards at
        1.5 m/s; her extent stayed at y -1.0..-0.6 m from 23 m to 13 m ahead, read as
        standing beside the path, and the car hit her). The other in base_link as the
        cameras see it: a cone line the car turns towards closes in on it there, which is
        what keeps it off the next cone (with the first alone, 6 cone lines were hit on
        the held-out seeds where there had been 1)."""
        speeds = [0.0]
        for moved in (_sideways, _sideways_in_view):
            speed = self._median_rate(moved)
            if speed is not None and abs(speed) >= LATERAL_DEADBAND_MPS:
                speeds.append(speed)
        return min(speeds), max(speeds)

    def _speed(self, t0_ns: int, ego_speed: float) -> float | None:
        """How fast the end moves along the lane (`_median_rate`), the car's own travel
        added (the mean of the two plans' speeds); no faster than the car until the plans
        span TRACK_SURE_SPAN_S."""
        speed = self._median_rate(_along_the_lane)
        if speed is not None and (t0_ns - self._ends[0].t0_ns) / NS_PER_S < TRACK_SURE_SPAN_S:
            speed = min(speed, ego_speed)
        return speed

    def moves_on(self, t0_ns: int) -> bool:
        """Whether the thing followed surely moves on: plans spanning TRACK_SURE_SPAN_S up
        to t0 followed it, and every pair of them (not only their median) has it going at
        STANDING_MPS or more. A standing thing's end jitters between pixel rows, some pairs
        either way; a stopped car a lead uncovers, within a jump the track takes as the
        same thing, reads as standing from the pairs after it."""
        if not self._ends or (t0_ns - self._ends[0].t0_ns) / NS_PER_S < TRACK_SURE_SPAN_S:
            return False
        rates = self._rates(_along_the_lane)
        return bool(rates) and min(rates) >= STANDING_MPS

    def _median_rate(
        self, moved: Callable[[_ClearRoadEnd, _ClearRoadEnd, float], float | None]
    ) -> float | None:
        """The median of `_rates`; None where no pair tells."""
        rates = self._rates(moved)
        return float(np.median(rates)) if rates else None

    def _rates(
        self, moved: Callable[[_ClearRoadEnd, _ClearRoadEnd, float], float | None]
    ) -> list[float]:
        """Over pairs of ends at least TRACK_MIN_SPAN_S apart, how far the thing `moved`
        between them (None where a pair does not tell) per second."""
        rates = []
        for i, first in enumerate(self._ends):
            for last in self._ends[i + 1 :]:
                dt = (last.t0_ns - first.t0_ns) / NS_PER_S
                distance = moved(first, last, dt) if dt >= TRACK_MIN_SPAN_S else None
                if distance is not None:
                    rates.append(distance / dt)
        return rates

    def _coasted(self, t0_ns: int, ego_speed: float) -> Followed | None:
        """The last thing followed, where it will be at t0 (`_predicted`), while it was
        seen in TRACK_CONFIRM plans and last no more than TRACK_COAST_S ago; else it is
        forgotten."""
        ends = self._ends
        if len(ends) < TRACK_CONFIRM or (t0_ns - ends[-1].t0_ns) > TRACK_COAST_S * NS_PER_S:
            self._ends = []
            return None
        return self._predicted(t0_ns, ego_speed)

    def _predicted(self, t0_ns: int, ego_speed: float) -> Followed:
        """Where the last thing followed will be at t0 if it goes on as it was (standing,
        if its speed is not known), the car's travel taken off; reaching further sideways
        the way it moves, never less the other way."""
        last = self._ends[-1]
        speed = self._speed(last.t0_ns, last.ego_speed)
        dt = (t0_ns - last.t0_ns) / NS_PER_S
        x = last.x + ((speed or 0.0) - 0.5 * (last.ego_speed + ego_speed)) * dt
        lateral = self._lateral_speeds()
        extent = last.extent_y
        if extent is not None:
            right, left = widened(extent, lateral, dt)
            extent = (float(right), float(left))
        return Followed(x, speed, extent, lateral)
