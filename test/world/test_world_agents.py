"""Scripted agents: visible braking, smooth lane changes, crossings and light cycles."""

from __future__ import annotations

import itertools
import math

import pytest

from alpamayo_ros.world.agents import (
    DT_S,
    Agent,
    AgentError,
    AgentKind,
    AgentState,
    Crossing,
    LaneChange,
    LightColour,
    SpeedChange,
    TrafficLight,
)


def run(agent: Agent, seconds: float) -> list[AgentState]:
    states = [agent.initial_state()]
    for k in range(round(seconds / DT_S)):
        states.append(agent.step(states[-1], k * DT_S))
    return states


def test_braking_vehicle_stops_with_brake_lights() -> None:
    lead = Agent(
        "vehicle_1",
        AgentKind.VEHICLE,
        s=20.0,
        d=0.0,
        speed=10.0,
        speed_change=SpeedChange(1.0, 4.0, 0.0),
    )
    states = run(lead, 6.0)
    assert states[10].speed == pytest.approx(10.0) and not states[10].brake_lights
    braking = states[12]
    assert braking.acceleration == pytest.approx(-4.0) and braking.brake_lights
    assert states[-1].speed == pytest.approx(0.0)
    # Stopped in traffic, it keeps the brake lights on; 10 m at 10 m/s, then 12.5 m braking.
    assert states[-1].brake_lights
    assert states[-1].s == pytest.approx(20.0 + 10.0 + 12.5)


def test_parked_vehicle_shows_no_brake_lights() -> None:
    parked = Agent("vehicle_1", AgentKind.VEHICLE, s=20.0, d=0.0, holds_brake_when_stopped=False)
    assert not parked.initial_state().brake_lights
    assert parked.is_static


def test_lane_change_is_smooth_and_reaches_the_target() -> None:
    car = Agent(
        "vehicle_1",
        AgentKind.VEHICLE,
        s=0.0,
        d=3.5,
        speed=10.0,
        lane_change=LaneChange(1.0, 3.0, 0.0),
    )
    states = run(car, 6.0)
    d = [state.d for state in states]
    assert d[10] == pytest.approx(3.5) and d[-1] == pytest.approx(0.0)
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(d))
    assert min(state.lateral_speed for state in states) < -1.0  # visibly moving sideways
    assert states[25].heading < 0.0  # and pointing where it goes


def test_pedestrian_waits_then_crosses_and_stops_on_the_far_side() -> None:
    walker = Agent(
        "pedestrian_1",
        AgentKind.PEDESTRIAN,
        s=30.0,
        d=-3.0,
        crossing=Crossing(1.0, 1.5, 1, 4.0),
    )
    states = run(walker, 8.0)
    assert states[10].d == pytest.approx(-3.0) and states[0].heading == pytest.approx(math.pi / 2)
    assert states[20].d == pytest.approx(-3.0 + 1.5) and states[20].lateral_speed > 1.4
    assert states[-1].d == pytest.approx(4.0) and states[-1].speed == 0.0


def test_cones_are_static_and_sized() -> None:
    cone = Agent("cone_1", AgentKind.CONE, s=5.0, d=-1.0)
    state = cone.initial_state()
    assert cone.step(state, 0.0) is state
    assert (state.length, state.width, state.height) == (0.4, 0.4, 0.7)
    with pytest.raises(AgentError):
        Agent("cone_2", AgentKind.CONE, s=0.0, d=0.0, speed=1.0)


def test_traffic_light_cycles_green_yellow_red() -> None:
    light = TrafficLight.cycle(
        "traffic_light_1",
        50.0,
        -5.0,
        40.0,
        LightColour.GREEN,
        4.0,
        green_s=10.0,
        yellow_s=3.0,
        red_s=8.0,
    )
    assert light.colour_at(0.0) is LightColour.GREEN
    assert light.colour_at(4.0) is LightColour.YELLOW
    assert light.colour_at(6.9) is LightColour.YELLOW
    assert light.colour_at(7.0) is LightColour.RED
    assert light.colour_at(15.0) is LightColour.GREEN
    assert light.state_at(5.0).colour is LightColour.YELLOW
    with pytest.raises(AgentError):
        TrafficLight("traffic_light_2", 0.0, 0.0, 0.0, ())


def test_footprint_follows_the_heading() -> None:
    crossing_car = Agent(
        "vehicle_2", AgentKind.VEHICLE, s=0.0, d=0.0, crossing=Crossing(0.0, 5.0, 1, 50.0)
    ).initial_state()
    # A car driving across the road is long across it and narrow along it.
    assert crossing_car.half_width_across_road == pytest.approx(2.3)
    assert crossing_car.front_s - crossing_car.rear_s == pytest.approx(1.9)
