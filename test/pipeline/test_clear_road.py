"""The clear road the cameras show, against the reasoning's stops (pipeline.clear_road):
a stop moved to where the clear road ends, and what stands at its end followed from plan
to plan, along the lane and sideways both ways. How the planning step uses them is in
test_planning_step.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.decisions import Cause
from alpamayo_ros.core.ego_history import EgoHistory
from alpamayo_ros.core.planar import Pose2D
from alpamayo_ros.core.stand_off import StandOff
from alpamayo_ros.perception.free_space import MAX_FREE_X_M, FreeSpace
from alpamayo_ros.perception.lane import LaneEstimate
from alpamayo_ros.pipeline.clear_road import (
    CLEAR_PAST_M,
    ClearRoadTrack,
    Followed,
    moved_to_clear_road,
)


def straight_lane() -> LaneEstimate:
    """A straight lane with the car on its centre."""
    stations = np.arange(5.0, 61.0, 2.0)
    return LaneEstimate(stations, np.zeros_like(stations), 3.5)


def test_moved_to_clear_road_needs_the_margin_a_stop_and_the_cause() -> None:
    stop = StandOff(Cause.STOPPED_VEHICLE, 10.0, 0.5, 7.0)
    moved = moved_to_clear_road(stop, FreeSpace(25.0), None)
    assert moved is not None and (moved.x, moved.y) == (25.0, 0.0)
    assert moved_to_clear_road(stop, FreeSpace(10.0 + CLEAR_PAST_M), None) is None
    assert moved_to_clear_road(stop, None, None) is None
    passing = dataclasses.replace(stop, passing_clearance_m=1.8)
    assert moved_to_clear_road(passing, FreeSpace(25.0), None) is None
    for cause in (Cause.PEDESTRIAN, Cause.CYCLIST, Cause.TRAFFIC_LIGHT):
        assert (
            moved_to_clear_road(dataclasses.replace(stop, cause=cause), FreeSpace(25.0), None)
            is None
        )
    # Cones beside a clear corridor are passed on the lane's centre: the stop moves on.
    cones_stop = dataclasses.replace(stop, cause=Cause.CONSTRUCTION)
    cones = moved_to_clear_road(cones_stop, FreeSpace(25.0), straight_lane())
    assert cones is not None and cones.x == 25.0
    # Without a lane, no plan on its centre clears the cones beside the corridor.
    assert moved_to_clear_road(cones_stop, FreeSpace(25.0), None) is None
    # Beyond what the cameras look along, nothing is known clear.
    far = dataclasses.replace(stop, x=MAX_FREE_X_M - 1.0)
    assert moved_to_clear_road(far, FreeSpace(MAX_FREE_X_M), None) is None


def test_the_clear_road_end_is_followed_and_its_speed_found() -> None:
    """At 10 m/s, a thing the cameras show 20 m ahead closes at 6 m/s (it moves at 4 m/s):
    from the first plan it is where it is, its speed unknown; 0.3 s on, 4 m/s, whatever
    the pixel rows it jumps between (+-0.5 m). A jump of 8 m is another thing (it starts
    over); nothing within range, or a t0 going back, forgets it."""
    track = ClearRoadTrack()
    jitter = [0.0, 0.5, -0.5, 0.3, -0.2, 0.5, -0.4, 0.0]
    followed = []
    for k, noise in enumerate(jitter):
        x = 20.0 - 6.0 * 0.1 * k + noise
        followed.append(track.follow(k * NS_PER_S // 10, FreeSpace(x), 10.0))
    assert followed[0] == Followed(20.0, None, None)
    assert followed[2] is not None and followed[2].speed is None
    last = followed[-1]
    assert last is not None and last.speed == pytest.approx(4.0, abs=1.0)
    jumped = track.follow(8 * NS_PER_S // 10, FreeSpace(last.x + 8.0), 10.0)
    assert jumped is not None and jumped.speed is None
    assert track.follow(9 * NS_PER_S // 10, FreeSpace(MAX_FREE_X_M), 10.0) is None
    assert track.follow(10 * NS_PER_S // 10, None, 10.0) is None
    track.follow(11 * NS_PER_S // 10, FreeSpace(15.0), 10.0)
    assert track.follow(0, FreeSpace(15.0), 10.0) == Followed(15.0, None, None)


def test_a_thing_crossing_is_seen_crossing_from_a_car_that_turns() -> None:
    """Seed 3000541: the car, at 12 m/s, turns left round what it reads as a cyclist; a
    pedestrian 25 m ahead and 1.5 m right walks left at 1.5 m/s into its path. In
    base_link the car's turn (a weave, up to 0.3 rad/s, so that the order in which
    its moves are composed matters) swings her bearing right faster than she walks left.
    Placed by the ego history (where the car was at each earlier plan), she is seen
    crossing at her own speed, leftwards; as the cameras see her, rightwards: the track
    keeps both ways. Without a history, only the latter."""
    speed, weave = 12.0, 0.3

    def car(t_s: float) -> Pose2D:  # heading weave * sin(t), in the frame of the car at 0
        t = np.linspace(0.0, t_s, 401)
        yaw = weave * np.sin(t)
        step = np.diff(t)
        x = np.sum(speed * (np.cos(yaw[1:]) + np.cos(yaw[:-1])) / 2.0 * step)
        y = np.sum(speed * (np.sin(yaw[1:]) + np.sin(yaw[:-1])) / 2.0 * step)
        return Pose2D(float(x), float(y), float(yaw[-1]))

    def history(t0_s: float) -> EgoHistory:
        stamps = np.array([round((t0_s - 0.1 * k) * NS_PER_S) for k in range(15, -1, -1)])
        now = car(t0_s)
        poses = [now.relative(car(stamp / NS_PER_S)) for stamp in stamps]
        xyz = np.array([[pose.x, pose.y, 0.0] for pose in poses])
        yaw = np.array([pose.yaw for pose in poses])
        rotations = np.zeros((16, 3, 3))
        rotations[:, 0, 0], rotations[:, 0, 1] = np.cos(yaw), -np.sin(yaw)
        rotations[:, 1, 0], rotations[:, 1, 1] = np.sin(yaw), np.cos(yaw)
        rotations[:, 2, 2] = 1.0
        return EgoHistory(stamps.astype(np.int64), xyz, rotations)

    placed, unplaced = ClearRoadTrack(), ClearRoadTrack()
    for k in range(6):
        t0_s = 0.1 * k
        x, y = car(t0_s).relative_point(25.0, -1.5 + 1.5 * t0_s)  # her near side
        seen = FreeSpace(x, MAX_FREE_X_M, (y - 0.3, y + 0.3))
        followed = placed.follow(round(t0_s * NS_PER_S), seen, speed, history(t0_s))
        blind = unplaced.follow(round(t0_s * NS_PER_S), seen, speed)
    assert followed is not None
    rightward, leftward = followed.lateral_speeds
    assert leftward == pytest.approx(1.5, abs=0.2) and rightward < -0.4
    assert blind is not None
    assert blind.lateral_speeds[0] < -0.4 and blind.lateral_speeds[1] == 0.0

    # One plan without a history (a malformed message) starts a new frame: sightings of
    # the old one, which began 1 s and 12 m back, are not placed against the new one's.
    interrupted = ClearRoadTrack()
    for k in range(16):
        t0_s = 0.1 * k
        x, y = car(t0_s).relative_point(25.0, -1.5 + 1.5 * t0_s)
        seen = FreeSpace(x, MAX_FREE_X_M, (y - 0.3, y + 0.3))
        given = None if k == 10 else history(t0_s)
        followed = interrupted.follow(round(t0_s * NS_PER_S), seen, speed, given)
        assert followed is not None and followed.lateral_speeds[1] < 2.0, k
    assert followed.lateral_speeds[1] == pytest.approx(1.5, abs=0.2)


def test_a_thing_moves_on_surely_only_where_every_pair_of_plans_says_so() -> None:
    """At 10 m/s: a thing closing at 6 m/s whatever its end's jitter (it goes at 4 m/s)
    moves on once plans span 0.5 s; a standing one whose end jumps between pixel rows
    (some pairs read it moving, the median maybe too) does not."""
    moving, standing = ClearRoadTrack(), ClearRoadTrack()
    jitter = [0.0, 0.5, -0.5, 0.3, -0.2, 0.5, -0.4, 0.0]
    rows = [0.0, 0.0, 1.3, 1.3, 1.3, 0.0, 1.3, 1.3]
    for k, (noise, row) in enumerate(zip(jitter, rows, strict=True)):
        t0_ns = k * NS_PER_S // 10
        moving.follow(t0_ns, FreeSpace(20.0 - 0.6 * k + noise), 10.0)
        standing.follow(t0_ns, FreeSpace(20.0 - 1.0 * k + row), 10.0)
        assert moving.moves_on(t0_ns) == (k >= 5)
        assert not standing.moves_on(t0_ns)


def test_a_thing_the_cameras_miss_for_a_moment_is_coasted() -> None:
    """At 10 m/s, a pedestrian 16 m ahead, seen in two plans, with her width: missed in
    the next frames (seed 3000389), she is where the car's travel brings her, width and
    all, for half a second; then forgotten. Seen in one plan only, she is not coasted."""
    track = ClearRoadTrack()
    for k in range(2):
        track.follow(k * NS_PER_S // 10, FreeSpace(16.0 - k, MAX_FREE_X_M, (-0.6, 0.1)), 10.0)
    coasted = track.follow(4 * NS_PER_S // 10, FreeSpace(MAX_FREE_X_M), 10.0)
    assert coasted is not None and coasted.x == pytest.approx(12.0)
    assert coasted.extent_y == (-0.6, 0.1)
    assert track.follow(7 * NS_PER_S // 10, None, 10.0) is None
    once = ClearRoadTrack()
    once.follow(0, FreeSpace(16.0), 10.0)
    assert once.follow(NS_PER_S // 10, FreeSpace(MAX_FREE_X_M), 10.0) is None


def test_a_speed_is_not_called_faster_than_the_car_until_plans_agree_over_half_a_second() -> None:
    """A thing 20 m ahead whose end jumps 3 m further in 0.3 s (the tele camera's pixel
    rows): read at once, 10 m/s more than the car; until plans 0.5 s apart agree, no faster
    than the car. A t0 earlier than the last starts over."""
    track = ClearRoadTrack()
    for k, x in enumerate((20.0, 20.0, 21.5, 23.0)):
        followed = track.follow(k * NS_PER_S // 10, FreeSpace(x), 5.0)
    assert followed is not None and followed.speed == pytest.approx(5.0)
    assert track.follow(NS_PER_S // 10, FreeSpace(20.0), 5.0) == Followed(20.0, None, None)
