"""Trajectory tracker of the control bridge: pure pursuit steering plus speed feedback.

The model replans at a few Hz while the vehicle needs commands at tens of Hz; the tracker
turns the latest trajectory into smooth, bounded steering and acceleration. The ego pose is
the rear-axle centre (base_link), where pure pursuit's bicycle geometry is exact. Forward
driving only: reverse segments are not tracked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from alpamayo_ros.core.kinematics import Rollout
from alpamayo_ros.core.planar import Pose2D

FloatArray = NDArray[np.float64]

# The trajectory is extended by straight rays along its end headings, so a lookahead point
# exists before the first and past the last point; 1 km exceeds any lookahead distance.
_END_EXTENSION_M = 1_000.0


class InvalidTrackingInput(ValueError):
    """A trajectory or tracker input that cannot produce a command."""


@dataclass(frozen=True)
class VehicleParams:
    """Vehicle geometry and actuator limits (a mid-size passenger car)."""

    wheelbase: float = 2.85  # m
    max_steering_angle: float = 0.6  # rad, road wheel
    max_steering_rate: float = 0.5  # rad/s, road wheel
    max_acceleration: float = 3.0  # m/s^2
    max_deceleration: float = 8.0  # m/s^2, positive magnitude
    max_jerk: float = 10.0  # m/s^3


@dataclass(frozen=True)
class TrackerGains:
    """Tuning of the tracker."""

    lookahead_time: float = 1.0  # s; lookahead distance = max(min_lookahead, speed*time)
    min_lookahead: float = 3.0  # m; keeps steering calm at low speed
    speed_gain: float = 0.5  # 1/s; acceleration per m/s of speed error
    preview_time: float = 0.3  # s; compensates actuator lag on the longitudinal target


@dataclass(frozen=True)
class ControlCommand:
    steering_angle: float  # rad, left positive
    steering_rate: float  # rad/s
    velocity: float  # m/s, target speed
    acceleration: float  # m/s^2
    jerk: float  # m/s^3


@dataclass(frozen=True)
class TrackedTrajectory:
    """A trajectory [T] in the ego frame at t0, t in seconds since t0 (increasing)."""

    t: FloatArray
    x: FloatArray
    y: FloatArray
    yaw: FloatArray
    v: FloatArray
    acceleration: FloatArray

    def __post_init__(self) -> None:
        shapes = {np.shape(getattr(self, name)) for name in self.__dataclass_fields__}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1 or len(self.t) < 2:
            raise InvalidTrackingInput(
                f"trajectory needs equal 1-D arrays of >= 2 points, got {shapes}"
            )
        if not np.all(np.diff(self.t) > 0.0):
            raise InvalidTrackingInput("trajectory times must increase strictly")

    @classmethod
    def from_rollout(cls, rollout: Rollout) -> TrackedTrajectory:
        if rollout.batch_shape:
            raise InvalidTrackingInput(f"one rollout needed, got batch {rollout.batch_shape}")
        return cls(
            t=rollout.t,
            x=rollout.x,
            y=rollout.y,
            yaw=rollout.yaw,
            v=rollout.v,
            acceleration=rollout.acceleration,
        )


class TrajectoryTracker:
    """Stateful tracker: rate limits apply relative to its previous command."""

    def __init__(
        self, params: VehicleParams = VehicleParams(), gains: TrackerGains = TrackerGains()
    ) -> None:
        self._params = params
        self._gains = gains
        self._previous: ControlCommand | None = None

    def reset(self) -> None:
        """Forget the previous command (e.g. after a manual takeover, a bridge activated
        again).

        The next command is then bounded but not rate limited, since the actuator state is
        unknown; its rates are reported as 0.
        """
        self._previous = None

    def continue_from(self, command: ControlCommand) -> None:
        """The actuators were last given `command` by someone else (the stop profile):
        the next command is rate limited from it, as from one of the tracker's own."""
        self._previous = command

    def command(
        self,
        traj: TrackedTrajectory,
        elapsed_s: float,
        ego_x: float,
        ego_y: float,
        ego_yaw: float,
        ego_speed: float,
        dt: float,
    ) -> ControlCommand:
        """Command for now = t0 + elapsed_s; the ego pose is in the trajectory's t0 frame."""
        inputs = (elapsed_s, ego_x, ego_y, ego_yaw, ego_speed, dt)
        if not all(math.isfinite(value) for value in inputs) or dt <= 0.0:
            raise InvalidTrackingInput(f"need finite inputs and dt > 0, got {inputs}")
        params, gains = self._params, self._gains

        lookahead = max(gains.min_lookahead, ego_speed * gains.lookahead_time)
        target_x, target_y = _lookahead_point(traj, ego_x, ego_y, lookahead)
        steering_target = math.atan(
            params.wheelbase * pure_pursuit_curvature(target_x - ego_x, target_y - ego_y, ego_yaw)
        )

        preview = elapsed_s + gains.preview_time
        # Forward driving only: a plan that ends at standstill is held at zero, never
        # turned into a reverse command.
        target_speed = max(float(np.interp(preview, traj.t, traj.v)), 0.0)
        # Past the end the last point is held: a constant speed, so no feedforward.
        feedforward = float(np.interp(preview, traj.t, traj.acceleration, right=0.0))
        acceleration_target = feedforward + gains.speed_gain * (target_speed - ego_speed)

        previous = self._previous
        steering, steering_rate = _bounded_rate_limited(
            steering_target,
            None if previous is None else previous.steering_angle,
            -params.max_steering_angle,
            params.max_steering_angle,
            params.max_steering_rate,
            dt,
        )
        acceleration, jerk = _bounded_rate_limited(
            acceleration_target,
            None if previous is None else previous.acceleration,
            -params.max_deceleration,
            params.max_acceleration,
            params.max_jerk,
            dt,
        )
        self._previous = ControlCommand(steering, steering_rate, target_speed, acceleration, jerk)
        return self._previous


def _lookahead_point(
    traj: TrackedTrajectory, x: float, y: float, distance: float
) -> tuple[float, float]:
    """The point `distance` metres along the path beyond the ego's projection onto it."""
    path_x = np.r_[
        traj.x[0] - _END_EXTENSION_M * math.cos(traj.yaw[0]),
        traj.x,
        traj.x[-1] + _END_EXTENSION_M * math.cos(traj.yaw[-1]),
    ]
    path_y = np.r_[
        traj.y[0] - _END_EXTENSION_M * math.sin(traj.yaw[0]),
        traj.y,
        traj.y[-1] + _END_EXTENSION_M * math.sin(traj.yaw[-1]),
    ]
    seg_x, seg_y = np.diff(path_x), np.diff(path_y)
    seg_length = np.hypot(seg_x, seg_y)
    arc = np.r_[0.0, np.cumsum(seg_length)]
    # Fraction along each segment of the ego's projection (0 for standstill segments).
    fraction = np.clip(
        np.divide(
            (x - path_x[:-1]) * seg_x + (y - path_y[:-1]) * seg_y,
            seg_length**2,
            out=np.zeros_like(seg_length),
            where=seg_length > 0.0,
        ),
        0.0,
        1.0,
    )
    offset = np.hypot(path_x[:-1] + fraction * seg_x - x, path_y[:-1] + fraction * seg_y - y)
    nearest = int(np.argmin(offset))
    target_arc = arc[nearest] + fraction[nearest] * seg_length[nearest] + distance
    return float(np.interp(target_arc, arc, path_x)), float(np.interp(target_arc, arc, path_y))


def pure_pursuit_lookahead(v: float) -> float:
    """Lookahead (m) for following a lane's centre at speed v: short enough that a nudge is
    not smoothed away, long enough to be stable at 10 Hz (the world's expert drives its
    lane so, and the planner follows the cameras' lane so)."""
    return min(max(3.0 + 0.4 * v, 5.0), 10.0)


def pure_pursuit_curvature(dx: float, dy: float, yaw: float) -> float:
    """Curvature of the arc from a vehicle heading `yaw` through a target (dx, dy) away:
    kappa = 2 sin(alpha) / L = 2 y_local / L^2 (0 for a target on the vehicle)."""
    _, lateral = Pose2D(0.0, 0.0, yaw).relative_point(dx, dy)
    distance_squared = dx * dx + dy * dy
    if distance_squared == 0.0:
        return 0.0
    return 2.0 * lateral / distance_squared


def _bounded_rate_limited(
    target: float,
    previous: float | None,
    lower: float,
    upper: float,
    max_rate: float,
    dt: float,
) -> tuple[float, float]:
    """Clamp to [lower, upper], then move at most max_rate*dt from previous; returns value, rate.

    previous lies within the bounds, so the result does too.
    """
    bounded = min(max(target, lower), upper)
    if previous is None:
        return bounded, 0.0
    step = min(max(bounded - previous, -max_rate * dt), max_rate * dt)
    return previous + step, step / dt
