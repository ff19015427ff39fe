"""The simulated car the control bridge drives: a kinematic bicycle behind lagging actuators.

A command (road-wheel steering angle, longitudinal acceleration) is not what the car does
at once: each actuator follows its command through a first-order lag (exact over a step),
bounded in rate (the steering rate, the jerk) and in range (the steering angle, the
acceleration and deceleration), the limits the control bridge plans with
(core.control.VehicleParams). The motion is the one vehicle step of the project
(VehicleState.advance, the rear axle on the arc of curvature tan(steering) / wheelbase),
so the simulated car, the world's cars and the model's trajectories move alike. The car
drives forward only: braking brings it to rest and holds it there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alpamayo_ros.core.control import VehicleParams
from alpamayo_ros.core.kinematics import VehicleState


@dataclass(frozen=True)
class ActuatorLag:
    """Time constants of the actuators' response to a command step."""

    steering_s: float = 0.15
    acceleration_s: float = 0.25

    def __post_init__(self) -> None:
        if not (self.steering_s > 0.0 and self.acceleration_s > 0.0):
            raise ValueError(f"actuator time constants must be positive, got {self}")


@dataclass(frozen=True)
class ActuatorState:
    """What the actuators deliver now, and how fast that changes."""

    steering: float  # rad, road wheel, left positive
    acceleration: float  # m/s^2 actually applied (0 while held at rest)
    steering_rate: float = 0.0  # rad/s
    jerk: float = 0.0  # m/s^3


class SimulatedVehicle:
    def __init__(
        self,
        state: VehicleState,
        actuators: ActuatorState,
        params: VehicleParams = VehicleParams(),
        lag: ActuatorLag = ActuatorLag(),
    ) -> None:
        self.state = state
        self.actuators = actuators
        self._params = params
        self._lag = lag

    @property
    def curvature(self) -> float:
        return math.tan(self.actuators.steering) / self._params.wheelbase

    def step(self, steering_command: float, acceleration_command: float, dt: float) -> None:
        """Move the car `dt` seconds under the command (held over the step)."""
        if not dt > 0.0:
            raise ValueError(f"dt must be positive, got {dt}")
        if not (math.isfinite(steering_command) and math.isfinite(acceleration_command)):
            raise ValueError(
                f"a command must be finite: {steering_command}, {acceleration_command}"
            )
        params, before = self._params, self.actuators
        steering = _lagged(
            before.steering,
            steering_command,
            self._lag.steering_s,
            params.max_steering_rate,
            (-params.max_steering_angle, params.max_steering_angle),
            dt,
        )
        acceleration = _lagged(
            before.acceleration,
            acceleration_command,
            self._lag.acceleration_s,
            params.max_jerk,
            (-params.max_deceleration, params.max_acceleration),
            dt,
        )
        # Forward only: braking stops the car within the step and holds it at rest.
        applied = max(acceleration, -self.state.v / dt)
        self.actuators = ActuatorState(
            steering,
            applied,
            (steering - before.steering) / dt,
            (applied - before.acceleration) / dt,
        )
        self.state = self.state.advance(applied, self.curvature, dt)


def _lagged(
    value: float,
    target: float,
    time_constant_s: float,
    max_rate: float,
    bounds: tuple[float, float],
    dt: float,
) -> float:
    """`value` moved towards `target` by a first-order lag over `dt`, its change bounded
    by `max_rate` and the result by `bounds`."""
    lagged = target + (value - target) * math.exp(-dt / time_constant_s)
    change = min(max(lagged - value, -max_rate * dt), max_rate * dt)
    return min(max(value + change, bounds[0]), bounds[1])
