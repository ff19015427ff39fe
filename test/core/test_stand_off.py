"""The stand-off a reasoning asks for: which decisions state one, which samples break it,
and the braking that keeps it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import integrate_unicycle, stop_at_standstill
from alpamayo_ros.core.model_io import CausalDecision
from alpamayo_ros.core.stand_off import PASSING_TO_M, StandOff, settings_problem, sideways_gap

STEPS = 64


def decision(
    longitudinal: LongitudinalDecision, cause: Cause, position: tuple[float, float, float]
) -> CausalDecision:
    return CausalDecision(
        "", longitudinal, LateralDecision.LANE_KEEPING, cause, cause.name.lower(), position
    )


STOP = LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT


@pytest.mark.parametrize(
    ("longitudinal", "cause", "position"),
    [
        (LongitudinalDecision.SET_SPEED_TRACKING, Cause.STOPPED_VEHICLE, (20.0, 0.0, 0.8)),
        (LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING, Cause.LEAD_VEHICLE, (20.0, 0.0, 0.8)),
        # A green light (the expert keeps its speed for it) is no line to stop at.
        (LongitudinalDecision.SET_SPEED_TRACKING, Cause.TRAFFIC_LIGHT, (30.0, 0.0, 0.0)),
        (LongitudinalDecision.YIELD, Cause.TRAFFIC_LIGHT, (30.0, 0.0, 0.0)),  # not a stop
        (STOP, Cause.TRAFFIC_LIGHT, (3.0, 0.0, 0.0)),  # the front is past the line
        (STOP, Cause.STOPPED_VEHICLE, (-4.0, 0.0, 0.8)),  # behind the car
        (LongitudinalDecision.YIELD, Cause.PEDESTRIAN, (2.0, 3.0, 0.9)),  # beside it
        (STOP, Cause.STOPPED_VEHICLE, (float("nan"), 0.0, 0.8)),
    ],
)
def test_only_a_stop_or_yield_for_a_standing_object_ahead_states_one(
    longitudinal: LongitudinalDecision, cause: Cause, position: tuple[float, float, float]
) -> None:
    # Every rule on: the object clearance, the passing clearance and the stop line's.
    assert StandOff.stated_by(decision(longitudinal, cause, position), 10.0, 1.8, 4.7) is None


def test_a_yield_to_a_pedestrian_states_one_unless_the_rule_is_off() -> None:
    yielding = decision(LongitudinalDecision.YIELD, Cause.PEDESTRIAN, (18.0, 2.5, 0.9))
    assert StandOff.stated_by(yielding, 10.0) == StandOff(Cause.PEDESTRIAN, 18.0, 2.5, 10.0)
    assert StandOff.stated_by(yielding, 0.0) is None
    assert StandOff.stated_by(None, 10.0) is None


def test_a_stop_for_a_light_keeps_off_its_line_with_its_own_clearance() -> None:
    """The light's place is where its stop line crosses the car's path; the object
    clearance does not apply to it, nor a nudge, and 0 turns the rule off."""
    red = decision(STOP, Cause.TRAFFIC_LIGHT, (25.0, 0.1, 0.0))
    line = StandOff.stated_by(red, 7.0, 1.8, 4.7)
    assert line == StandOff(Cause.TRAFFIC_LIGHT, 25.0, 0.1, 4.7)
    assert StandOff.stated_by(red, 7.0, 1.8, 0.0) is None
    assert StandOff.stated_by(red, 0.0, 0.0, 4.7) == line  # the object rules off, not this
    nudging = replace(red, lateral_decision=LateralDecision.IN_LANE_NUDGE)
    assert StandOff.stated_by(nudging, 7.0, 1.8, 4.7) == line  # still a stop, not a pass
    green_nudge = replace(nudging, longitudinal_decision=LongitudinalDecision.SET_SPEED_TRACKING)
    assert StandOff.stated_by(green_nudge, 7.0, 1.8, 4.7) is None  # no pass round a light
    # A sample whose base_link reaches 21 m (its front 24.7 m) is refused and says why.
    rollouts = integrate_unicycle(np.full((2, STEPS), -1.0), np.zeros((2, STEPS)), 6.5)
    assert rollouts.x.max() == pytest.approx(21.1, abs=0.2)
    assert line.violations(rollouts)[0].startswith(
        "comes 3.9 m from the stop line of the traffic_light the reasoning stops for"
    )
    # Within the clearance already (base_link 4.0 m from the line), the car may come 0.5 m
    # closer, but not so close that its front (3.7 m ahead of base_link) is past the line.
    close = StandOff.stated_by(decision(STOP, Cause.TRAFFIC_LIGHT, (4.0, 0.0, 0.0)), 7, 1.8, 4.7)
    assert close is not None
    creeping = integrate_unicycle(np.full((1, STEPS), 0.02), np.zeros((1, STEPS)), 0.0)
    assert 0.3 < creeping.x.max() < 0.5
    assert close.violations(creeping)[0].startswith("comes 3.6 m from the stop line")


def test_settings_that_cannot_work_are_named() -> None:
    assert settings_problem(7.0, 6.0) is None and settings_problem(0.0, 6.0) is None
    assert settings_problem(7.0, 6.0, 1.8) is None and settings_problem(0.0, 6.0, 0.0) is None
    assert settings_problem(-1.0, 6.0) == "the stand-off clearance must be >= 0 m, got -1.0"
    assert "maximum deceleration must be > 0, got 0.0" in str(settings_problem(7.0, 0.0))
    assert settings_problem(float("nan"), 6.0) is not None
    assert "passing clearance must be >= 0 m, got -0.5" in str(settings_problem(7.0, 6.0, -0.5))
    assert settings_problem(7.0, 6.0, float("inf")) is not None
    assert "stop line clearance must be 0 (off) or at least 3.7 m" in str(
        settings_problem(7.0, 6.0, 1.8, 2.0)
    )
    assert settings_problem(7.0, 6.0, 1.8, -1.0) is not None
    assert settings_problem(7.0, 6.0, 1.8, 3.7) is None


def nudge(cause: Cause, position: tuple[float, float, float]) -> CausalDecision:
    return CausalDecision(
        "",
        LongitudinalDecision.SET_SPEED_TRACKING,
        LateralDecision.OUT_OF_LANE_NUDGE,
        cause,
        cause.name.lower(),
        position,
    )


def test_a_nudge_round_a_standing_object_ahead_states_a_passing_clearance() -> None:
    cones = nudge(Cause.CONSTRUCTION, (30.0, -1.6, 0.4))
    assert StandOff.stated_by(cones, 7.0, 1.8) == StandOff(
        Cause.CONSTRUCTION, 30.0, -1.6, 7.0, passing_clearance_m=1.8
    )
    assert StandOff.stated_by(cones, 7.0, 0.0) is None  # the passing rule off
    assert StandOff.stated_by(cones, 0.0, 1.8) is None  # both off
    assert StandOff.stated_by(cones, 7.0) is None
    assert StandOff.stated_by(nudge(Cause.CONSTRUCTION, (3.0, -1.6, 0.4)), 7.0, 1.8) is None
    assert StandOff.stated_by(nudge(Cause.LEAD_VEHICLE, (30.0, -1.6, 0.8)), 7.0, 1.8) is None
    # A stop for the object outranks passing it.
    stopping = CausalDecision(
        "",
        LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT,
        LateralDecision.IN_LANE_NUDGE,
        Cause.CYCLIST,
        "cyclist",
        (25.0, -1.0, 0.9),
    )
    assert StandOff.stated_by(stopping, 7.0, 1.8) == StandOff(Cause.CYCLIST, 25.0, -1.0, 7.0)


def test_samples_that_pass_too_close_beside_the_object_are_named() -> None:
    """At 10 m/s past cones from 30 m on, 1.6 m right of the lane centre: going straight
    passes 1.6 m beside them, a sample that has moved 0.4 m left passes 2.0 m beside;
    one that only comes back into the cones' line past the stretch counts as passing."""
    cones = StandOff(Cause.CONSTRUCTION, 30.0, -1.6, 7.0, passing_clearance_m=1.8)
    straight = integrate_unicycle(np.zeros(STEPS), np.zeros(STEPS), 10.0)
    rollouts = integrate_unicycle(np.zeros((3, STEPS)), np.zeros((3, STEPS)), 10.0)
    y = np.stack(
        [
            straight.y,
            straight.y + np.clip(straight.x / 30.0, 0.0, 1.0) * 0.4,
            np.where(straight.x > 30.0 + PASSING_TO_M, -1.6, 0.4),
        ]
    )
    rollouts = replace(rollouts, y=y)
    going_straight, nudged, beyond = cones.violations(rollouts)
    assert going_straight.startswith(
        "passes 1.6 m beside the construction the reasoning nudges around "
        "(passing clearance 1.8 m) at t=2.5 s"
    )
    assert nudged == "" and beyond == ""


def test_samples_that_come_within_the_clearance_are_named_with_where_and_when() -> None:
    """At 10 m/s toward a stopped car 30 m ahead: keeping speed enters the 10 m clearance at
    2.0 s; braking at 2.6 m/s^2 stops at 19.2 m, outside it."""
    stand_off = StandOff(Cause.STOPPED_VEHICLE, 30.0, 0.0, 10.0)
    acceleration = stop_at_standstill(np.stack([np.zeros(STEPS), np.full(STEPS, -2.6)]), 10.0)
    rollouts = integrate_unicycle(acceleration, np.zeros((2, STEPS)), 10.0)
    keeping, braking = stand_off.violations(rollouts)
    assert keeping.startswith("comes 0.0 m from the stopped_vehicle the reasoning stops for")
    assert "(clearance 10 m)" in keeping
    assert braking == ""
    assert rollouts.x[1].max() == pytest.approx(10.0**2 / 5.2, abs=0.01)


def test_a_moving_thing_the_cameras_show_is_kept_off_where_it_will_be() -> None:
    """A thing 20 m ahead going at 6 m/s; the car at 10 m/s keeping its speed comes within
    7 m of it after 3.25 s (and reaches it at 5 s), at 8 m/s never within 6.4 s. Kept off
    over the first 3 s only, keeping 10 m/s passes; standing, neither does."""
    moving = StandOff(Cause.OTHER, 20.0, 0.0, 7.0, seen=True, speed_mps=6.0)
    rollouts = integrate_unicycle(np.zeros((2, STEPS)), np.zeros((2, STEPS)), np.array([10.0, 8.0]))
    ten, eight = moving.violations(rollouts)
    assert (
        ten == "comes 0.0 m from the thing the cameras show in the lane (clearance 7 m) at t=5.0 s"
    )
    assert eight == ""
    assert replace(moving, horizon_s=3.0).violations(rollouts) == ["", ""]
    standing = replace(moving, speed_mps=0.0, horizon_s=3.0)
    assert all(standing.violations(rollouts))


def test_braking_stops_short_of_the_clearance_and_stays_stopped() -> None:
    stand_off = StandOff(Cause.STOPPED_VEHICLE, 30.0, 0.0, 10.0)
    keeping = integrate_unicycle(np.zeros(STEPS), np.zeros(STEPS), 10.0)
    braking = stand_off.braking(keeping, 10.0, max_deceleration=6.0)
    assert np.hypot(braking.x - 30.0, braking.y).min() == pytest.approx(10.0, abs=0.05)
    # Stops at the clearance's edge (20 m) with the deceleration that needs: v^2 / 2s.
    assert braking.x.max() == pytest.approx(20.0, abs=0.05)
    np.testing.assert_allclose(braking.acceleration[braking.v > 0.0], -2.5, atol=1e-9)
    assert braking.v.min() == 0.0 and np.all(np.diff(braking.x) >= 0.0)
    np.testing.assert_array_equal(braking.curvature, keeping.curvature)


def test_braking_is_bounded_and_follows_the_path() -> None:
    """12 m from the clearance at 15 m/s needs 9.4 m/s^2: it brakes at the bound, 6, and
    enters; on a curve it stays on the sample's arc."""
    stand_off = StandOff(Cause.PEDESTRIAN, 22.0, 0.0, 10.0)
    curving = integrate_unicycle(np.zeros(STEPS), np.full(STEPS, 0.01), 15.0)
    braking = stand_off.braking(curving, 15.0, max_deceleration=6.0)
    assert braking.acceleration[0] == pytest.approx(-6.0)
    assert braking.v[-1] == pytest.approx(0.0, abs=1e-9)
    assert np.hypot(braking.x - 22.0, braking.y).min() < 10.0
    np.testing.assert_allclose(braking.curvature, 0.01)
    assert np.all(braking.y > 0.0)  # turning left, as the sample did


def test_braking_follows_the_samples_path_by_distance() -> None:
    """A sample straight for 2 s at 10 m/s, then turning left towards a stopped car on its
    path: the slower braking car turns where the sample turned (20 m on), not after 2 s."""
    curvature = np.where(np.arange(STEPS) < 20, 0.0, 0.02)
    sample = integrate_unicycle(np.zeros(STEPS), curvature, 10.0)
    stand_off = StandOff(Cause.STOPPED_VEHICLE, sample.x[39], sample.y[39], 7.0)
    braking = stand_off.braking(sample, 10.0, max_deceleration=6.0)
    assert braking.v[-1] == pytest.approx(0.0, abs=1e-9) and braking.x.max() > 19.0
    # Every braking state lies on the sample's path (within a step's rounding).
    dense = integrate_unicycle(np.zeros(STEPS * 10), np.repeat(curvature, 10), 10.0, dt=0.01)
    gaps = np.hypot(braking.x[:, None] - dense.x[None], braking.y[:, None] - dense.y[None])
    assert gaps.min(axis=1).max() < 0.15
    assert np.hypot(braking.x - stand_off.x, braking.y - stand_off.y).min() > 7.0 - 0.05
    assert np.all(braking.y[braking.x < 19.0] == pytest.approx(0.0, abs=1e-9))


def test_within_the_clearance_only_coming_closer_breaks_it() -> None:
    """Queued 5 m from a stopped car (inside the 7 m clearance): standing keeps the
    stand-off, creeping 1 m closer does not."""
    stand_off = StandOff(Cause.STOPPED_VEHICLE, 5.0, 0.0, 7.0)
    creep = np.r_[np.full(10, 1.0), np.full(10, -1.0), np.zeros(STEPS - 20)]  # 1 m on
    batch = integrate_unicycle(np.stack([np.zeros(STEPS), creep]), 0.0, 0.0)
    kept, broken = stand_off.violations(batch)
    assert kept == "" and broken.startswith("comes 4.0 m from the stopped_vehicle")


def test_braking_at_standstill_or_from_inside_the_clearance() -> None:
    stand_off = StandOff(Cause.CONSTRUCTION, 6.0, 0.5, 10.0)
    keeping = integrate_unicycle(np.full(STEPS, 1.0), np.zeros(STEPS), 0.0)
    standing = stand_off.braking(keeping, 0.0, max_deceleration=6.0)
    assert np.all(standing.v == 0.0) and np.all(standing.x == 0.0)
    moving = integrate_unicycle(np.zeros(STEPS), np.zeros(STEPS), 3.0)
    inside = stand_off.braking(moving, 3.0, max_deceleration=6.0)
    assert inside.acceleration[0] == pytest.approx(-6.0)  # already within: brake at once
    with pytest.raises(ValueError, match="maximum deceleration must be > 0"):
        stand_off.braking(moving, 3.0, max_deceleration=0.0)


def test_a_sample_that_stops_short_keeps_the_clearance_and_small_ones_are_floors() -> None:
    """Cones from 30 m on, 1.6 m right: a sample that stops 20 m short never passes them (not
    refused, and the full clearance holds for the others); a clearance under the 1.2 m floor
    is its own floor."""
    straight = integrate_unicycle(np.zeros((2, STEPS)), np.zeros((2, STEPS)), 10.0)
    stopping = integrate_unicycle(
        stop_at_standstill(np.full((1, STEPS), -2.6), 10.0), np.zeros((1, STEPS)), 10.0
    )
    both = straight.appended(stopping[0])
    cones = StandOff(Cause.CONSTRUCTION, 30.0, -1.6, 7.0, passing_clearance_m=1.8)
    passing, _, stopped = cones.violations(both)
    assert "(passing clearance 1.8 m)" in passing and stopped == ""
    # Without the stopping sample none keeps 1.8 m: the 1.2 m floor lets 1.6 m pass...
    assert cones.violations(straight) == ["", ""]
    # ... and refuses 1.0 m.
    close = StandOff(Cause.CONSTRUCTION, 30.0, -1.0, 7.0, passing_clearance_m=1.8)
    assert close.violations(straight)[0].startswith("passes 1.0 m beside")
    assert "(passing clearance 1.2 m)" in close.violations(straight)[0]
    small = StandOff(Cause.CONSTRUCTION, 30.0, -1.0, 7.0, passing_clearance_m=0.8)
    assert small.violations(straight) == ["", ""]


def test_a_seen_thing_with_its_width_is_passed_with_room_or_stood_off() -> None:
    """What the cameras show standing 20 m ahead, reaching from 1.75 to 1.2 m right of
    base_link: a path on y = 0 (the car's body 0.25 m from it) breaks the stand-off where
    base_link comes within 7 m of it; 0.3 m further left (0.55 m) it passes; stopping 7 m
    short it keeps it. Braking along the straight path stops base_link 7 m short."""
    seen = StandOff(Cause.OTHER, 20.0, 0.0, 7.0, seen=True, extent_y=(-1.75, -1.2))
    straight = integrate_unicycle(np.zeros((1, STEPS)), np.zeros((1, STEPS)), 10.0)
    assert seen.violations(straight)[0].startswith("comes ")
    left = replace(straight, y=straight.y + 0.3)
    assert seen.violations(left) == [""]
    short = integrate_unicycle(
        stop_at_standstill(np.full((1, STEPS), -5.0), 10.0, 0.1), np.zeros((1, STEPS)), 10.0
    )
    assert short.x.max() < 13.0 and seen.violations(short) == [""]
    braked = seen.braking(straight[0], 10.0, 6.0)
    assert 12.0 < braked.x.max() <= 13.0 + 1e-6


def test_a_seen_thing_reaches_further_each_way_it_may_move() -> None:
    """A walker 20 m ahead, 3.0 to 2.6 m left of the path: a straight plan at 10 m/s
    passes her 1.65 m aside where she stands or walks away; walking towards the path at
    1.5 m/s she is in it by the time the car is there. Either estimate that has her
    coming counts (lateral_speeds: rightward, leftward)."""
    straight = integrate_unicycle(np.zeros((1, STEPS)), np.zeros((1, STEPS)), 10.0)
    walker = StandOff(Cause.OTHER, 20.0, 0.0, 7.0, seen=True, extent_y=(2.6, 3.0))
    assert walker.violations(straight) == [""]
    assert replace(walker, lateral_speeds_mps=(0.0, 1.5)).violations(straight) == [""]
    coming = replace(walker, lateral_speeds_mps=(-1.5, 0.0))
    assert coming.violations(straight)[0].startswith("comes ")
    assert replace(walker, lateral_speeds_mps=(-1.5, 1.5)).violations(straight)[0] != ""


def test_the_body_s_corners_count_where_the_car_turns_towards_a_thing() -> None:
    """Seed 3000002 in the graph: base_link 0.7 m left of a cone line whose near edge is
    1.0 m right of it clears it by 0.75 m, but turned back towards it at 0.07 rad the front
    corner comes 0.26 m nearer (3.7 m x sin 0.07) and the rear's swings away; heading away,
    the rear corner comes 0.06 m nearer."""
    assert float(sideways_gap(np.array(0.7), -3.0, -1.0)) == pytest.approx(0.75)
    turned_in = float(sideways_gap(np.array(0.7), -3.0, -1.0, -0.07))
    assert turned_in == pytest.approx(1.7 - 0.95 * np.cos(0.07) - 3.7 * np.sin(0.07))
    turned_away = float(sideways_gap(np.array(0.7), -3.0, -1.0, 0.07))
    assert turned_away == pytest.approx(1.7 - 0.95 * np.cos(0.07) - 0.9 * np.sin(0.07))
    # A path along y = 0.7 at that heading breaks a 0.5 m passing gap the straight one keeps.
    seen = StandOff(Cause.OTHER, 10.0, 0.0, 7.0, seen=True, extent_y=(-3.0, -0.8))
    straight = integrate_unicycle(np.zeros((1, STEPS)), np.zeros((1, STEPS)), 5.0)
    along = replace(straight, y=straight.y + 0.7)
    assert seen.violations(along) == [""]
    assert seen.violations(replace(along, yaw=np.full_like(along.yaw, -0.07)))[0].startswith(
        "comes "
    )


def test_beside_a_seen_thing_already_a_plan_may_not_come_closer_sideways() -> None:
    """A cone line begins at the car's front (3.6 m ahead), its near edge 1.2 m right of
    base_link: the car's body is 0.25 m from it. Going on straight keeps that gap; drifting
    0.1 m towards it breaks the stand-off; nothing may go through it."""
    seen = StandOff(Cause.OTHER, 3.6, 0.0, 7.0, seen=True, extent_y=(-1.75, -1.2))
    straight = integrate_unicycle(np.zeros((1, STEPS)), np.zeros((1, STEPS)), 5.0)
    assert seen.violations(straight) == [""]
    drift = replace(straight, y=straight.y - np.minimum(straight.t, 1.0) * 0.1)
    assert seen.violations(drift)[0].startswith("comes ")
    overlapping = StandOff(Cause.OTHER, 3.6, 0.0, 7.0, seen=True, extent_y=(-1.0, 0.5))
    assert overlapping.violations(straight)[0].startswith("comes ")
