"""Closed-loop metrics of hand-built drives against hand-computed values, and of the expert's
own drives of real scenarios."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest

from alpamayo_ros.core.meta_actions import label_meta_action
from alpamayo_ros.evaluation.closed_loop import (
    ClosedLoopError,
    Drive,
    agent_footprint,
    ego_footprint,
    plan_consistency,
    score_drive,
    summarise,
)
from alpamayo_ros.world.agents import AGENT_SIZES, AgentKind, AgentState, LightColour, LightState
from alpamayo_ros.world.dataset import make_labels
from alpamayo_ros.world.expert import EGO_FRONT_M, EGO_REAR_M
from alpamayo_ros.world.road import Intersection, Road, Segment
from alpamayo_ros.world.scenarios import make_scenario
from alpamayo_ros.world.simulation import Simulation
from alpamayo_ros.world.state import WorldState

# Two lanes, centred at d = 0 and 3.5; edges at -1.75 and 5.25. The intersection's stop line
# is at s = 59 - 7 - 2 = 50 and its far edge at 66.
ROAD = Road((Segment(300.0),), lane_count=2, intersection=Intersection(59.0))
VEHICLE_LENGTH, VEHICLE_WIDTH, VEHICLE_HEIGHT = AGENT_SIZES[AgentKind.VEHICLE]
STOP_LINE_S = 50.0


def vehicle(agent_id: str, s: float, d: float = 0.0, speed: float = 0.0) -> AgentState:
    return AgentState(
        agent_id,
        AgentKind.VEHICLE,
        s,
        d,
        0.0,
        speed,
        0.0,
        VEHICLE_LENGTH,
        VEHICLE_WIDTH,
        VEHICLE_HEIGHT,
        (200, 200, 200),
    )


def light(colour: LightColour) -> LightState:
    return LightState("light_0", 67.5, -3.25, STOP_LINE_S, colour)


def make_drive(
    x: np.ndarray,
    v: np.ndarray | float,
    y: np.ndarray | float = 0.0,
    yaw: np.ndarray | float = 0.0,
    agents: Callable[[float], tuple[AgentState, ...]] = lambda t: (),
    lights: tuple[LightState, ...] = (),
    acceleration: np.ndarray | None = None,
    expert_x: np.ndarray | None = None,
    **fields: object,
) -> Drive:
    """A drive sampled every 0.1 s from t = 0 along the straight road (x = s, y = d); the
    expert drives x (or expert_x) on the lane centre."""
    t = np.arange(len(x)) * 0.1
    columns = np.broadcast_arrays(x, y, yaw, v)
    expert_x = x if expert_x is None else expert_x
    expert = np.stack(np.broadcast_arrays(expert_x, 0.0, 0.0, 0.0), axis=1)
    return Drive(
        road=ROAD,
        states=[WorldState(time, ROAD, agents(time), lights) for time in t],
        t_s=t,
        ego=np.stack(columns, axis=1),
        acceleration=np.zeros(len(t)) if acceleration is None else acceleration,
        expert_ego=expert,
        **fields,
    )


def braking_to(front_at_rest: float) -> tuple[np.ndarray, np.ndarray]:
    """x and v of a drive from 10 m/s braking at 2.5 m/s^2 (4 s, 20 m) to rest with its front
    at front_at_rest, then standing for 2 s."""
    t = np.arange(61) * 0.1
    braking = np.minimum(t, 4.0)
    x = front_at_rest - EGO_FRONT_M - 20.0 + 10.0 * braking - 1.25 * braking**2
    return x, 10.0 - 2.5 * braking


def test_footprints_are_the_boxes_around_base_link_and_the_agent_centre() -> None:
    ego = ego_footprint(10.0, 2.0, math.pi / 2.0)  # heading +y: front at y = 2 + 3.7
    np.testing.assert_allclose(
        ego, [[10.95, 2.0 - EGO_REAR_M], [10.95, 5.7], [9.05, 5.7], [9.05, 2.0 - EGO_REAR_M]]
    )
    crossing = dataclasses.replace(vehicle("crossing", 30.0, 3.5), heading=math.pi / 2.0)
    box = agent_footprint(ROAD, crossing)
    np.testing.assert_allclose(box.mean(axis=0), [30.0, 3.5])
    np.testing.assert_allclose(np.ptp(box, axis=0), [VEHICLE_WIDTH, VEHICLE_LENGTH])


def test_driving_into_a_stopped_car_is_an_at_fault_collision() -> None:
    # The car's rear is at 37.75; the ego's front (x + 3.7) passes it after x = 34.05 (3.405 s).
    x = np.arange(51) * 1.0  # 10 m/s for 5 s
    metrics = score_drive(make_drive(x, 10.0, agents=lambda t: (vehicle("lead_0", 40.05),)))
    assert metrics.collision and metrics.at_fault_collision
    assert metrics.collision_object == "lead_0"
    assert metrics.collision_time_s == pytest.approx(3.405, abs=0.1)
    assert metrics.min_distance_m == 0.0
    assert metrics.min_ttc_s == 0.0  # closing on it in its path with no gap left
    assert metrics.score == 0.0 and not metrics.passed
    assert metrics.failures == ("at-fault collision with lead_0 at 3.5 s",)
    assert metrics.failed_at_s == metrics.collision_time_s


def test_being_rear_ended_is_not_the_egos_fault() -> None:
    # Standing at x = 50 (rear at 49.1); the follower's front (s + 2.3) reaches it at 2.11 s.
    follower = lambda t: (vehicle("follower_0", 29.95 + 8.0 * t, speed=8.0),)  # noqa: E731
    standing = score_drive(make_drive(np.full(41, 50.0), 0.0, agents=follower))
    assert standing.collision and not standing.at_fault_collision
    assert standing.collision_object == "follower_0"
    assert standing.collision_time_s == pytest.approx(2.2)
    assert standing.score == 1.0 and standing.passed  # the expert stood too: ratio 1
    assert standing.failed_at_s is None  # not at fault
    # Moving slowly, hit by a faster car whose centre is behind the rear axle at the onset;
    # it drives on through the ego, which stays one collision, judged at its onset.
    x = 50.0 + 2.0 * np.arange(41) * 0.1
    faster = lambda t: (vehicle("follower_0", 37.95 + 10.0 * t, speed=10.0),)  # noqa: E731
    moving = score_drive(make_drive(x, 2.0, agents=faster))
    assert moving.collision and not moving.at_fault_collision and moving.passed
    # Standing, hit in the side by a car crossing from the right ahead of the rear axle.
    crossing = lambda t: (  # noqa: E731
        dataclasses.replace(vehicle("crossing_0", 51.4, -5.0 + 3.0 * t), heading=math.pi / 2.0),
    )
    side = score_drive(make_drive(np.full(41, 50.0), 0.0, agents=crossing))
    assert side.collision and not side.at_fault_collision
    assert side.collision_time_s == pytest.approx(0.6)


def test_leaving_the_road_zeroes_the_score_and_lane_keeping_departs_nothing() -> None:
    t = np.arange(41) * 0.1
    drift = np.arctan2(0.5, 10.0)  # 0.5 m/s sideways at 10 m/s
    right = score_drive(make_drive(10.0 * t, 10.0, y=-0.5 * t, yaw=-drift))
    assert right.off_road and right.score == 0.0 and not right.passed
    assert right.failures[0].startswith("off the road at ")
    # The drive fails at the first sample off the road.
    assert right.failed_at_s is not None and 0.5 < right.failed_at_s < 4.0
    assert right.failures[0] == f"off the road at {right.failed_at_s:.1f} s"
    kept = score_drive(make_drive(10.0 * t, 10.0))
    assert not kept.off_road and kept.lane_departure_s == 0.0 and kept.failed_at_s is None
    assert kept.score == 1.0 and kept.passed and kept.failures == ()
    # Drifting left: the front-left corner (1.13 m left of base_link) crosses the lane
    # boundary at d = 1.75 from 1.24 s; the rear-right corner is still in lane 0 at 4 s. Each
    # sample from 1.3 s holds its departure until the next: 2.7 s in all, not off the road.
    left = score_drive(make_drive(10.0 * t, 10.0, y=0.5 * t, yaw=drift))
    assert not left.off_road and left.lane_departure_s == pytest.approx(2.7)
    # Wholly beside the road the footprint is in no lane at all: departed all the time.
    beside = score_drive(make_drive(np.full(41, 10.0), 0.0, y=-5.0))
    assert beside.off_road and beside.lane_departure_s == pytest.approx(4.0)


def test_red_light_and_stop_line_violations() -> None:
    # 10 m/s from x = 20: the front crosses the stop line at x = 46.3 (2.63 s).
    through = np.arange(51) * 1.0 + 20.0
    red = score_drive(make_drive(through, 10.0, lights=(light(LightColour.RED),)))
    assert red.red_light_violation and not red.stop_line_violation and not red.passed
    assert red.failures == ("ran the red light light_0 at 2.7 s",)
    green = score_drive(make_drive(through, 10.0, lights=(light(LightColour.GREEN),)))
    assert not green.red_light_violation and green.passed

    x, v = braking_to(STOP_LINE_S - 1.0)
    before = score_drive(make_drive(x, v, lights=(light(LightColour.RED),)))
    assert not before.red_light_violation and not before.stop_line_violation and before.passed
    x, v = braking_to(STOP_LINE_S + 2.0)
    past = score_drive(make_drive(x, v, lights=(light(LightColour.RED),)))
    assert past.red_light_violation and past.stop_line_violation
    # Standing past the line on green is waiting in the intersection, not a violation.
    past_on_green = score_drive(make_drive(x, v, lights=(light(LightColour.GREEN),)))
    assert not past_on_green.stop_line_violation and not past_on_green.red_light_violation


def test_progress_is_measured_against_the_expert_from_the_takeover() -> None:
    t = np.arange(51) * 0.1
    half = score_drive(make_drive(5.0 * t, 5.0, expert_x=10.0 * t, controlled_from_s=1.0))
    assert half.progress_m == pytest.approx(20.0)  # 1 s .. 5 s
    assert half.expert_progress_m == pytest.approx(40.0)
    assert half.progress_ratio == pytest.approx(0.5) and half.score == pytest.approx(0.5)
    assert not half.passed and half.failures == ("progress 0.50 of the expert's < 0.8",)

    # The ego drives through a parked car from 1.0 s (its front passes the rear at 12.75) to
    # 1.8 s. While the expert drove (before 1.5 s) that contact is not the commands' doing.
    parked = lambda t: (vehicle("parked_0", 15.05),)  # noqa: E731
    from_start = score_drive(make_drive(10.0 * t, 10.0, agents=parked))
    assert from_start.at_fault_collision and from_start.collision_time_s == pytest.approx(1.0)
    taken_over = score_drive(make_drive(10.0 * t, 10.0, agents=parked, controlled_from_s=1.5))
    assert not taken_over.collision and taken_over.passed
    assert taken_over.progress_m == pytest.approx(35.0)


def test_comfort_figures() -> None:
    t = np.arange(31) * 0.1
    v = 5.0 + 2.0 * t
    accelerating = np.full(31, 2.0)
    accelerating[0] = 0.0  # the takeover's first step
    drive = make_drive(5.0 * t + t**2, v, acceleration=accelerating)
    assert score_drive(drive).peak_jerk == pytest.approx(20.0)
    after_first = dataclasses.replace(drive, controlled_from_s=0.1)
    assert score_drive(after_first).peak_jerk == pytest.approx(0.0)
    step = np.where(t < 2.0, 0.0, -3.0)
    assert score_drive(make_drive(5.0 * t, 5.0, acceleration=step)).peak_jerk == pytest.approx(30.0)
    # Braking to rest: the brakes dropping to holding at standstill is not a jerk.
    speed = np.maximum(3.0 - 3.0 * t, 0.0)
    braking = np.where(speed > 0.0, -3.0, 0.0)
    stopping = make_drive(np.cumsum(speed) * 0.1, speed, acceleration=braking)
    assert score_drive(stopping).peak_jerk == pytest.approx(0.0)

    # 10 m/s around a 50 m radius (0.2 rad/s) heading backwards, through yaw = +-pi.
    heading = 3.0 + 0.2 * t
    x = 100.0 + 50.0 * (np.sin(heading) - np.sin(3.0))
    y = -50.0 * (np.cos(heading) - np.cos(3.0))
    circle = score_drive(make_drive(x, 10.0, y=y, yaw=np.angle(np.exp(1j * heading))))
    assert circle.peak_lateral_acceleration == pytest.approx(2.0)


def test_time_to_collision_and_min_distance() -> None:
    # A lead at 5 m/s, 25 m ahead of the ego's front at 10 m/s: 20 m after 1 s, closing at
    # 5 m/s. A car standing in the next lane is closed on faster, but is not in the path.
    def agents(t: float) -> tuple[AgentState, ...]:
        lead_s = EGO_FRONT_M + 25.0 + VEHICLE_LENGTH / 2.0 + 5.0 * t
        return (vehicle("lead_0", lead_s, speed=5.0), vehicle("beside_0", 12.0, 3.5))

    metrics = score_drive(make_drive(np.arange(11) * 1.0, 10.0, agents=agents))
    assert metrics.min_ttc_s == pytest.approx(4.0)
    assert metrics.min_distance_m == pytest.approx(3.5 - 2 * 0.95)  # the car beside
    assert not metrics.collision
    alone = score_drive(make_drive(np.arange(11) * 1.0, 10.0))
    assert alone.min_ttc_s == math.inf and alone.min_distance_m == math.inf


def test_latency_percentiles_and_consistency_are_carried() -> None:
    drive = make_drive(
        np.arange(11) * 1.0, 10.0, plan_latency_s=[0.1, 0.2, 0.3, 0.4, 0.5], consistency=0.75
    )
    metrics = score_drive(drive)
    assert metrics.plan_latency_p50_s == pytest.approx(0.3)
    assert metrics.plan_latency_p90_s == pytest.approx(0.46)
    assert metrics.consistency == 0.75
    bare = score_drive(make_drive(np.arange(11) * 1.0, 10.0))
    assert bare.plan_latency_p50_s is None and bare.consistency is None


def test_summarise_gives_rates_over_scenarios() -> None:
    clean = score_drive(make_drive(np.arange(11) * 1.0, 10.0, plan_latency_s=[0.2]))
    clean = dataclasses.replace(clean, min_ttc_s=4.0, peak_jerk=1.0)
    crashed = dataclasses.replace(
        clean,
        collision=True,
        at_fault_collision=True,
        score=0.0,
        passed=False,
        min_ttc_s=math.inf,
        peak_jerk=5.0,
        plan_latency_p90_s=None,
    )
    ran_red = dataclasses.replace(
        clean,
        collision=True,
        red_light_violation=True,
        stop_line_violation=True,
        off_road=True,
        score=0.5,
        progress_ratio=0.5,
        passed=False,
        min_ttc_s=2.0,
        peak_jerk=3.0,
        plan_latency_p90_s=0.4,
    )
    summary = summarise([clean, crashed, ran_red])
    assert summary["scenarios"] == 3
    assert summary["collision_rate"] == pytest.approx(2 / 3)
    assert summary["at_fault_collision_rate"] == pytest.approx(1 / 3)
    assert summary["off_road_rate"] == pytest.approx(1 / 3)
    assert summary["red_light_violation_rate"] == pytest.approx(1 / 3)
    assert summary["stop_line_violation_rate"] == pytest.approx(1 / 3)
    assert summary["pass_rate"] == pytest.approx(1 / 3)
    assert summary["mean_score"] == pytest.approx(0.5)
    assert summary["mean_progress_ratio"] == pytest.approx(2.5 / 3)
    assert summary["mean_min_ttc"] == pytest.approx(3.0)  # the finite ones
    assert summary["peak_jerk_p90"] == pytest.approx(4.6)  # 3 + 0.8 * (5 - 3)
    assert summary["plan_latency_p90_s"] == pytest.approx(0.38)  # of 0.2 and 0.4
    assert summarise([crashed])["mean_min_ttc"] is None
    with pytest.raises(ClosedLoopError, match="no drives"):
        summarise([])


def test_bad_drives_are_refused_with_the_reason() -> None:
    good = make_drive(np.arange(11) * 1.0, 10.0)
    with pytest.raises(ClosedLoopError, match=r"ego must have shape \(11, 4\)"):
        dataclasses.replace(good, ego=good.ego[:, :3])
    with pytest.raises(ClosedLoopError, match=r"acceleration must have shape \(11,\)"):
        dataclasses.replace(good, acceleration=good.acceleration[:-1])
    with pytest.raises(ClosedLoopError, match="t_s must increase: sample 5"):
        dataclasses.replace(good, t_s=np.r_[good.t_s[:5], good.t_s[4] - 0.05, good.t_s[6:]])
    with pytest.raises(ClosedLoopError, match="t_s must be a non-empty"):
        dataclasses.replace(good, t_s=np.zeros(0), ego=np.zeros((0, 4)), acceleration=[])
    with pytest.raises(ClosedLoopError, match="expert_ego must be a non-empty"):
        dataclasses.replace(good, expert_ego=np.zeros((0, 4)))
    with pytest.raises(ClosedLoopError, match="at least one world state"):
        dataclasses.replace(good, states=[])
    with pytest.raises(ClosedLoopError, match="no sample at or after controlled_from_s"):
        dataclasses.replace(good, controlled_from_s=2.0)


def test_the_experts_own_drive_is_clean() -> None:
    scenarios = [make_scenario(seed) for seed in range(40)]
    scenarios += [make_scenario(seed, "traffic_light") for seed in range(8)]  # every variant
    for scenario in scenarios:
        trace = Simulation(scenario).run(scenario.steps)
        ego = np.array([[e.x, e.y, e.yaw, e.v] for e in trace.ego])
        commanded = [control.acceleration for control in trace.controls]
        drive = Drive(
            road=scenario.road,
            states=trace.states,
            t_s=np.arange(len(ego)) * 0.1,
            ego=ego,
            acceleration=np.array([*commanded, commanded[-1]]),
            expert_ego=ego,
        )
        metrics = score_drive(drive)
        name = f"seed {scenario.seed} {scenario.scenario_type}/{scenario.variant}"
        assert not metrics.collision, name
        assert not metrics.off_road, name
        assert not metrics.red_light_violation and not metrics.stop_line_violation, name
        assert metrics.progress_ratio == 1.0, name
        assert metrics.passed and metrics.score == 1.0, name


def test_plan_consistency_scores_the_text_against_the_plan() -> None:
    labels = [make_labels(seed) for seed in range(40)]
    # The expert's own text and future agree by construction.
    assert plan_consistency([(lab.decision.text, lab.future) for lab in labels[:10]]) == 1.0
    first = labels[0]
    other = next(
        lab
        for lab in labels
        if label_meta_action(lab.future)[0] != label_meta_action(first.future)[0]
    )
    assert plan_consistency([(first.decision.text, other.future)]) == 0.0
    assert plan_consistency([]) is None
