"""Expert driver: stops, follows, yields, nudges and changes lanes as the rules say, within
comfort bounds, deterministically, with unicycle-exact kinematics."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import VehicleState, integrate_unicycle
from alpamayo_ros.world.agents import (
    Agent,
    AgentKind,
    Crossing,
    LaneChange,
    LightColour,
    SpeedChange,
    TrafficLight,
)
from alpamayo_ros.world.expert import EGO_FRONT_M, Expert, ExpertError
from alpamayo_ros.world.road import Intersection, Road, Segment
from alpamayo_ros.world.scenarios import Scenario
from alpamayo_ros.world.simulation import Simulation, Trace
from alpamayo_ros.world.state import Appearance


def scenario(
    agents: tuple[Agent, ...] = (),
    lanes: int = 1,
    lane: int = 0,
    speed: float = 12.0,
    lights: tuple[TrafficLight, ...] = (),
    road: Road | None = None,
) -> Scenario:
    return Scenario(
        seed=0,
        scenario_type="test",
        variant="test",
        road=road or Road((Segment(800.0),), lane_count=lanes),
        agents=agents,
        lights=lights,
        ego_lane=lane,
        ego_s=0.0,
        ego_speed=speed,
        set_speed=12.0,
        sample_step=20,
        appearance=Appearance(),
    )


def drive(world: Scenario, seconds: float) -> Trace:
    return Simulation(world).run(round(seconds * 10))


def arrays(trace: Trace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    acceleration = np.array([c.acceleration for c in trace.controls])
    speed = np.array([e.v for e in trace.ego])
    d = np.array([trace.states[0].road.project(e.x, e.y)[1] for e in trace.ego])
    return acceleration, speed, d


def test_ego_step_is_integrate_unicycle() -> None:
    rng = np.random.default_rng(1)
    acceleration, curvature = rng.normal(0, 1, 40), rng.normal(0, 0.03, 40)
    ego = VehicleState(0.0, 0.0, 0.0, 8.0)
    poses = []
    for a, k in zip(acceleration, curvature, strict=True):
        ego = ego.advance(a, k)
        poses.append((ego.x, ego.y, ego.yaw, ego.v))
    rollout = integrate_unicycle(acceleration, curvature, 8.0)
    np.testing.assert_allclose(
        np.array(poses).T, [rollout.x, rollout.y, rollout.yaw, rollout.v], atol=1e-9
    )


def test_free_road_tracks_the_set_speed_in_the_lane() -> None:
    trace = drive(scenario(speed=6.0), 20.0)
    acceleration, speed, d = arrays(trace)
    assert speed[-1] == pytest.approx(12.0, abs=0.2)
    assert np.abs(d).max() < 1e-6
    assert acceleration.max() <= 1.5 + 1e-9
    assert trace.intents[-1].cause is Cause.NONE


def test_curve_is_driven_with_bounded_lateral_acceleration() -> None:
    road = Road((Segment(60.0), Segment(75.0, 0.02), Segment(400.0)))
    trace = drive(scenario(road=road), 16.0)
    _, speed, d = arrays(trace)
    curvature = np.array([c.curvature for c in trace.controls])
    assert np.max(speed[:-1] ** 2 * np.abs(curvature)) < 2.6
    assert np.abs(d).max() < 0.3
    causes = {intent.cause for intent in trace.intents}
    assert Cause.ROAD_GEOMETRY in causes


def test_stops_at_a_red_light_line() -> None:
    intersection = Intersection(s=120.0)
    road = Road((Segment(800.0),), intersection=intersection)
    light = TrafficLight.cycle(
        "traffic_light_1",
        intersection.far_edge_s + 1.5,
        -3.25,
        intersection.stop_line_s,
        LightColour.RED,
        100.0,
    )
    trace = drive(scenario(road=road, lights=(light,)), 25.0)
    acceleration, speed, _ = arrays(trace)
    front = trace.states[0].road.project(trace.ego[-1].x, trace.ego[-1].y)[0] + EGO_FRONT_M
    assert speed[-1] == pytest.approx(0.0, abs=1e-9)
    assert intersection.stop_line_s - 1.0 < front <= intersection.stop_line_s
    assert acceleration.min() >= -4.0
    last = trace.intents[-1]
    assert (last.cause, last.longitudinal) == (
        Cause.TRAFFIC_LIGHT,
        LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT,
    )


def test_follows_a_slower_lead_at_a_safe_gap() -> None:
    lead = Agent("vehicle_1", AgentKind.VEHICLE, s=40.0, d=0.0, speed=7.0)
    trace = drive(scenario(agents=(lead,)), 30.0)
    _, speed, _ = arrays(trace)
    gap = trace.states[-1].agents[0].rear_s - (
        trace.states[0].road.project(trace.ego[-1].x, trace.ego[-1].y)[0] + EGO_FRONT_M
    )
    assert speed[-1] == pytest.approx(7.0, abs=0.3)
    assert 8.0 < gap < 20.0
    assert trace.intents[-1].cause is Cause.LEAD_VEHICLE


def test_braking_lead_is_anticipated_within_comfort() -> None:
    lead = Agent(
        "vehicle_1",
        AgentKind.VEHICLE,
        s=26.0,
        d=0.0,
        speed=12.0,
        speed_change=SpeedChange(1.0, 8.0, 0.0),
    )
    trace = drive(scenario(agents=(lead,)), 12.0)
    acceleration, speed, _ = arrays(trace)
    # Reacts to the brake lights on the next step, not only when the gap has shrunk.
    assert acceleration[11] < -2.0
    assert acceleration.min() >= -4.0 - 1e-9
    assert speed[-1] == pytest.approx(0.0, abs=1e-6)
    assert trace.intents[12].cause is Cause.LEAD_VEHICLE


def test_only_an_emergency_brakes_harder_than_normal() -> None:
    # A parked car 12 m ahead of the front at 12 m/s needs 8 m/s^2: brake at the 6 m/s^2 bound.
    parked = Agent(
        "vehicle_1",
        AgentKind.VEHICLE,
        s=EGO_FRONT_M + 12.0 + 2.3,
        d=0.0,
        holds_brake_when_stopped=False,
    )
    trace = drive(scenario(agents=(parked,)), 5.0)
    acceleration, speed, _ = arrays(trace)
    assert acceleration.min() == pytest.approx(-6.0)
    assert speed[-1] == pytest.approx(0.0, abs=1e-6)


def test_stopped_vehicle_without_left_lane_means_stopping_behind() -> None:
    parked = Agent("vehicle_1", AgentKind.VEHICLE, s=100.0, d=0.0, holds_brake_when_stopped=False)
    trace = drive(scenario(agents=(parked,)), 20.0)
    _, speed, d = arrays(trace)
    assert speed[-1] == pytest.approx(0.0, abs=1e-9) and np.abs(d).max() < 1e-6
    assert trace.intents[-1].cause is Cause.STOPPED_VEHICLE


def test_stopped_vehicle_with_free_left_lane_means_lane_change() -> None:
    parked = Agent("vehicle_1", AgentKind.VEHICLE, s=120.0, d=0.0, holds_brake_when_stopped=False)
    trace = drive(scenario(agents=(parked,), lanes=2), 20.0)
    _, speed, d = arrays(trace)
    assert speed.min() > 11.0
    assert d[-1] == pytest.approx(3.5, abs=0.05)
    lateral = {intent.lateral for intent in trace.intents}
    assert LateralDecision.LANE_CHANGE in lateral
    # The lane change takes about 3.5 s (from 5 % to 95 % of the offset).
    moving = np.flatnonzero((d > 0.175) & (d < 3.325))
    assert 2.0 < len(moving) / 10.0 < 4.5


def test_blocked_left_lane_means_stopping_behind() -> None:
    parked = Agent("vehicle_1", AgentKind.VEHICLE, s=120.0, d=0.0, holds_brake_when_stopped=False)
    other = Agent("vehicle_2", AgentKind.VEHICLE, s=124.0, d=3.5, holds_brake_when_stopped=False)
    trace = drive(scenario(agents=(parked, other), lanes=2), 20.0)
    _, speed, d = arrays(trace)
    assert speed[-1] == pytest.approx(0.0, abs=1e-9) and np.abs(d).max() < 1e-6


def test_yields_to_a_crossing_pedestrian_then_goes() -> None:
    walker = Agent(
        "pedestrian_1", AgentKind.PEDESTRIAN, s=45.0, d=-3.0, crossing=Crossing(0.5, 1.0, 1, 5.0)
    )
    trace = drive(scenario(agents=(walker,)), 20.0)
    _, speed, _ = arrays(trace)
    assert speed.min() < 1.0  # stopped or nearly for the pedestrian
    assert speed[-1] > 5.0  # and drove on once it had crossed
    assert Cause.PEDESTRIAN in {intent.cause for intent in trace.intents}
    assert LongitudinalDecision.YIELD in {intent.longitudinal for intent in trace.intents}


def test_nudges_left_in_lane_around_cones() -> None:
    cones = tuple(
        Agent(f"cone_{i}", AgentKind.CONE, s=80.0 + 4.0 * i, d=-1.75 + 0.6 - 0.2) for i in range(6)
    )
    trace = drive(scenario(agents=cones), 14.0)
    _, speed, d = arrays(trace)
    assert 0.6 < d.max() < 0.8  # in-lane nudge, inside the lane
    assert speed.min() > 11.5
    intents = {(intent.lateral, intent.cause) for intent in trace.intents}
    assert (LateralDecision.IN_LANE_NUDGE, Cause.CONSTRUCTION) in intents
    assert abs(d[-1]) < 0.05  # back to the lane centre after the cones


def test_cut_in_is_followed() -> None:
    cutter = Agent(
        "vehicle_1",
        AgentKind.VEHICLE,
        s=25.0,
        d=3.5,
        speed=8.0,
        lane_change=LaneChange(1.0, 3.0, 0.0),
    )
    trace = drive(scenario(agents=(cutter,), lanes=2), 8.0)
    acceleration, _, _ = arrays(trace)
    causes = [intent.cause for intent in trace.intents]
    first = causes.index(Cause.CUT_IN)
    # It reacts while the car is still moving over, before it is centred in the lane.
    assert trace.states[first].agents[0].d > 0.5
    assert acceleration[first:].min() < -0.5


def test_expert_is_deterministic() -> None:
    walker = Agent(
        "pedestrian_1", AgentKind.PEDESTRIAN, s=50.0, d=-3.0, crossing=Crossing(0.5, 1.2, 1, 5.0)
    )
    first, second = (drive(scenario(agents=(walker,)), 10.0) for _ in range(2))
    assert first.controls == second.controls and first.intents == second.intents


def test_invalid_expert() -> None:
    road = Road((Segment(100.0),))
    with pytest.raises(ExpertError):
        Expert(road, 1, 10.0)
    with pytest.raises(ExpertError):
        Expert(road, 0, 0.0)
