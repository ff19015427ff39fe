"""The memory of named standing objects: confirmation, dead reckoning, hold, reset."""

from __future__ import annotations

import dataclasses
import math

import pytest

from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import EgoState
from alpamayo_ros.core.model_io import CausalDecision
from alpamayo_ros.core.object_memory import HOLD_S, StandingObjectMemory

S = 1_000_000_000  # ns


def naming(cause: Cause, x: float, y: float = 0.0) -> CausalDecision:
    return CausalDecision(
        f"Stop behind the {cause.name.lower()}.",
        LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT,
        LateralDecision.LANE_KEEPING,
        cause,
        cause.name.lower(),
        (x, y, 0.0),
    )


KEEP_LANE = CausalDecision(
    "Keep the lane at the set speed.",
    LongitudinalDecision.SET_SPEED_TRACKING,
    LateralDecision.LANE_KEEPING,
    Cause.NONE,
)


def moving(speed: float, yaw_rate: float = 0.0) -> EgoState:
    return EgoState(speed, 0.0, yaw_rate, yaw_rate / speed if speed else 0.0)


def test_a_place_named_twice_is_recalled_where_it_stands_as_the_car_drives_on() -> None:
    """At 10 m/s, a stopped car named 30 m ahead and, 0.1 s later, 29.2 m ahead (0.2 m
    further); 1 s after the first, the reasoning names nothing: it is 20 m ahead, where the
    nearer of the two statements placed it."""
    memory = StandingObjectMemory()
    memory.observe(0, moving(10.0), naming(Cause.STOPPED_VEHICLE, 30.0, 0.5))
    assert memory.recall() is None  # one statement is not a place yet
    memory.observe(S // 10, moving(10.0), naming(Cause.STOPPED_VEHICLE, 29.2, 0.5))
    memory.observe(S, moving(10.0), KEEP_LANE)
    recalled = memory.recall()
    assert recalled is not None and recalled.cause is Cause.STOPPED_VEHICLE
    assert recalled.x == pytest.approx(20.0) and recalled.y == pytest.approx(0.5)
    assert recalled.age_s == pytest.approx(1.0)
    assert (
        recalled.described()
        == "the stopped_vehicle the reasoning named 1.0 s ago, now 20.0 m ahead"
    )


def test_statements_that_disagree_or_are_far_apart_in_time_confirm_nothing() -> None:
    memory = StandingObjectMemory()
    memory.observe(0, moving(0.0), naming(Cause.CONSTRUCTION, 30.0))
    memory.observe(S // 10, moving(0.0), naming(Cause.CONSTRUCTION, 34.0))  # 4 m off
    assert memory.recall() is None
    memory.observe(3 * S, moving(0.0), naming(Cause.CONSTRUCTION, 34.0))  # 2.9 s later
    assert memory.recall() is None


@pytest.mark.parametrize("cause", [Cause.PEDESTRIAN, Cause.CYCLIST, Cause.LEAD_VEHICLE])
def test_objects_that_move_on_are_not_remembered(cause: Cause) -> None:
    memory = StandingObjectMemory()
    for step in range(3):
        memory.observe(step * S // 10, moving(0.0), naming(cause, 20.0))
    assert memory.recall() is None


def test_places_are_held_for_the_hold_after_their_last_statement() -> None:
    memory = StandingObjectMemory(hold_s=2.0)
    memory.observe(0, moving(0.0), naming(Cause.CONSTRUCTION, 20.0))
    memory.observe(S // 10, moving(0.0), naming(Cause.CONSTRUCTION, 20.0))
    memory.observe(2 * S, moving(0.0), KEEP_LANE)
    assert memory.recall() is not None  # both statements kept (2.0 and 1.9 s old)
    memory.observe(2 * S + S // 5, moving(0.0), KEEP_LANE)
    assert memory.recall() is None
    assert StandingObjectMemory().hold_s == HOLD_S


def test_dead_reckoning_follows_a_turn() -> None:
    """Round a 50 m radius left turn at 10 m/s: a cone named 40 m straight ahead at t0 (and
    39 m ahead 0.1 s later) is, 2 s (20 m of arc, 0.4 rad) later, where the geometry of the
    circle puts the nearer of the two places."""
    radius, speed = 50.0, 10.0
    memory = StandingObjectMemory()
    ego = moving(speed, speed / radius)
    memory.observe(0, ego, naming(Cause.CONSTRUCTION, 40.0))
    memory.observe(S // 10, ego, naming(Cause.CONSTRUCTION, 39.0))
    for step in range(2, 21):
        memory.observe(step * S // 10, ego, KEEP_LANE)
    recalled = memory.recall()
    assert recalled is not None

    def on_circle(t_s: float, ahead_m: float) -> tuple[float, float]:
        heading = t_s * speed / radius
        x, y = radius * math.sin(heading), radius * (1.0 - math.cos(heading))
        return x + ahead_m * math.cos(heading), y + ahead_m * math.sin(heading)

    heading = 2.0 * speed / radius
    car = on_circle(2.0, 0.0)
    places = []
    for cone in (on_circle(0.0, 40.0), on_circle(0.1, 39.0)):
        dx, dy = cone[0] - car[0], cone[1] - car[1]
        places.append(
            (
                math.cos(heading) * dx + math.sin(heading) * dy,
                -math.sin(heading) * dx + math.cos(heading) * dy,
            )
        )
    assert (recalled.x, recalled.y) == pytest.approx(min(places), abs=0.01)


def test_places_beside_or_behind_the_car_are_not_recalled() -> None:
    memory = StandingObjectMemory()
    memory.observe(0, moving(10.0), naming(Cause.STOPPED_VEHICLE, 10.0))
    memory.observe(S // 10, moving(10.0), naming(Cause.STOPPED_VEHICLE, 9.0))
    memory.observe(S // 2, moving(10.0), KEEP_LANE)
    assert memory.recall() is not None  # 5 m ahead
    memory.observe(S, moving(10.0), KEEP_LANE)
    assert memory.recall() is None  # beside the car: nothing left to stop short of


@pytest.mark.parametrize("later_ns", [-S // 10, 6 * S])
def test_time_going_back_or_a_gap_longer_than_the_hold_forgets_everything(later_ns: int) -> None:
    memory = StandingObjectMemory()
    memory.observe(S, moving(0.0), naming(Cause.STOPPED_VEHICLE, 20.0))
    memory.observe(S + S // 10, moving(0.0), naming(Cause.STOPPED_VEHICLE, 20.0))
    assert memory.recall() is not None
    memory.observe(S + later_ns, moving(0.0), KEEP_LANE)
    assert memory.recall() is None and not memory.sightings


@pytest.mark.parametrize("hold_s", [0.0, 1.9, math.inf])
def test_a_hold_shorter_than_the_confirmation_window_is_refused(hold_s: float) -> None:
    with pytest.raises(ValueError, match="at least 2 s"):
        StandingObjectMemory(hold_s)


def test_a_place_is_remembered_whatever_the_reasoning_decides_for_it() -> None:
    """Named while keeping the set speed past it, or changing lanes round it: the model saw
    it, whether or not it stops (remembering only its stops hit more, README)."""
    for lateral, longitudinal in (
        (LateralDecision.LANE_CHANGE, LongitudinalDecision.SET_SPEED_TRACKING),
        (LateralDecision.LANE_KEEPING, LongitudinalDecision.SET_SPEED_TRACKING),
    ):
        memory = StandingObjectMemory()
        for step in range(2):
            named = dataclasses.replace(
                naming(Cause.STOPPED_VEHICLE, 30.0),
                lateral_decision=lateral,
                longitudinal_decision=longitudinal,
            )
            memory.observe(step * S // 10, moving(0.0), named)
        assert memory.recall() is not None


def test_one_instant_or_two_kinds_of_object_confirm_nothing() -> None:
    """The same t0 planned twice, or a cone and a stopped car at one place."""
    twice = StandingObjectMemory()
    for _ in range(2):
        twice.observe(S, moving(0.0), naming(Cause.STOPPED_VEHICLE, 20.0))
    assert twice.recall() is None
    kinds = StandingObjectMemory()
    kinds.observe(S, moving(0.0), naming(Cause.STOPPED_VEHICLE, 20.0))
    kinds.observe(S + S // 10, moving(0.0), naming(Cause.CONSTRUCTION, 20.0))
    assert kinds.recall() is None


def test_places_nearer_than_a_thing_moving_on_are_forgotten_those_beyond_stay() -> None:
    """Cones named twice 20 m ahead and a stopped car twice 40 m ahead; the cameras then
    follow a thing 22 m ahead moving on: the cones' place goes, the car's stays."""
    memory = StandingObjectMemory()
    for t_ns in (0, S // 10):
        memory.observe(t_ns, moving(0.0), naming(Cause.CONSTRUCTION, 20.0))
        memory.observe(t_ns + S // 20, moving(0.0), naming(Cause.STOPPED_VEHICLE, 40.0))
    recalled = memory.recall()
    assert recalled is not None and recalled.cause is Cause.CONSTRUCTION
    memory.forget_nearer_than(22.0)
    recalled = memory.recall()
    assert recalled is not None and recalled.cause is Cause.STOPPED_VEHICLE
    assert recalled.x == pytest.approx(40.0)
