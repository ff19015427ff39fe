"""The simulated car: actuators that lag their commands within the vehicle's limits, the
one vehicle step for the motion, forward driving only."""

from __future__ import annotations

import math

import pytest

from alpamayo_ros.core.control import VehicleParams
from alpamayo_ros.core.kinematics import VehicleState
from alpamayo_ros.world.vehicle import ActuatorLag, ActuatorState, SimulatedVehicle

PARAMS = VehicleParams()
DT = 0.02


def car(v: float = 10.0, steering: float = 0.0, acceleration: float = 0.0) -> SimulatedVehicle:
    return SimulatedVehicle(VehicleState(0.0, 0.0, 0.0, v), ActuatorState(steering, acceleration))


def test_steering_follows_its_command_with_the_lag_and_the_rate_limit() -> None:
    vehicle = car()
    vehicle.step(0.01, 0.0, DT)
    # Small steps: the first-order lag (0.15 s) alone.
    assert vehicle.actuators.steering == pytest.approx(0.01 * (1 - math.exp(-DT / 0.15)))
    vehicle = car()
    vehicle.step(0.5, 0.0, DT)
    # A large step: the rate limit binds.
    assert vehicle.actuators.steering == pytest.approx(PARAMS.max_steering_rate * DT)
    assert vehicle.actuators.steering_rate == pytest.approx(PARAMS.max_steering_rate)
    for _ in range(500):
        vehicle.step(5.0, 0.0, DT)
    assert vehicle.actuators.steering == pytest.approx(PARAMS.max_steering_angle)


def test_acceleration_is_bounded_in_jerk_and_range() -> None:
    vehicle = car()
    vehicle.step(0.0, 20.0, DT)
    assert vehicle.actuators.jerk == pytest.approx(PARAMS.max_jerk)
    for _ in range(200):
        vehicle.step(0.0, 20.0, DT)
    assert vehicle.actuators.acceleration == pytest.approx(PARAMS.max_acceleration)
    for _ in range(200):
        vehicle.step(0.0, -20.0, DT)
    assert vehicle.state.v == 0.0, "braking stops the car"
    assert vehicle.actuators.acceleration == 0.0, "and holds it at rest"


def test_braking_never_reverses() -> None:
    vehicle = car(v=1.0, acceleration=-8.0)
    positions = []
    for _ in range(100):
        vehicle.step(0.0, -8.0, DT)
        positions.append(vehicle.state.x)
        assert vehicle.state.v >= 0.0
    assert positions == sorted(positions), "it never moves backwards"
    assert vehicle.state.v == 0.0


def test_constant_steering_drives_the_bicycle_circle() -> None:
    steering = 0.1
    vehicle = car(v=5.0, steering=steering)
    for _ in range(100):  # 2 s at 5 m/s
        vehicle.step(steering, 0.0, DT)
    curvature = math.tan(steering) / PARAMS.wheelbase
    assert vehicle.state.yaw == pytest.approx(10.0 * curvature)
    radius = 1.0 / curvature
    assert math.hypot(vehicle.state.x, vehicle.state.y - radius) == pytest.approx(radius)
    assert vehicle.state.v == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("steering", "acceleration", "dt", "match"),
    [(0.0, 0.0, 0.0, "dt must be positive"), (math.nan, 0.0, DT, "must be finite")],
)
def test_bad_commands_are_refused(
    steering: float, acceleration: float, dt: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        car().step(steering, acceleration, dt)


def test_bad_lags_are_refused() -> None:
    with pytest.raises(ValueError, match="time constants must be positive"):
        ActuatorLag(steering_s=0.0)
