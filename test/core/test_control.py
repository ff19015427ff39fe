import math

import numpy as np
import pytest

from alpamayo_ros.core.control import (
    InvalidTrackingInput,
    TrackedTrajectory,
    TrajectoryTracker,
    VehicleParams,
)
from alpamayo_ros.core.kinematics import integrate_unicycle

STEPS = 64
WHEELBASE = VehicleParams().wheelbase


def _trajectory(acceleration=0.0, curvature=0.0, v0=10.0):
    rollout = integrate_unicycle(np.broadcast_to(acceleration, STEPS), curvature, v0=v0)
    return TrackedTrajectory.from_rollout(rollout)


def test_straight_trajectory_needs_no_steering():
    command = TrajectoryTracker().command(_trajectory(), 0.0, 0.0, 0.0, 0.0, 10.0, dt=0.05)
    assert command.steering_angle == 0.0
    # Left of the path: steer right, back towards it.
    offset = TrajectoryTracker().command(_trajectory(), 1.0, 10.0, 0.5, 0.0, 10.0, dt=0.05)
    assert offset.steering_angle < -0.01


@pytest.mark.parametrize("kappa", [0.05, -0.02])
def test_on_a_circle_steering_matches_its_curvature(kappa):
    trajectory = _trajectory(curvature=kappa)
    k = 19  # ego exactly on the path at t0+2 s, heading along it
    command = TrajectoryTracker().command(
        trajectory, 2.0, trajectory.x[k], trajectory.y[k], trajectory.yaw[k], 10.0, dt=0.05
    )
    # The lookahead point lies on the same circle: pure pursuit is exact up to chord sagging.
    assert command.steering_angle == pytest.approx(math.atan(WHEELBASE * kappa), rel=0.01)


def test_speed_error_is_corrected_with_the_right_sign():
    trajectory = _trajectory()  # 10 m/s, no feedforward
    slow = TrajectoryTracker().command(trajectory, 0.0, 0.0, 0.0, 0.0, 8.0, dt=0.05)
    fast = TrajectoryTracker().command(trajectory, 0.0, 0.0, 0.0, 0.0, 12.0, dt=0.05)
    assert slow.acceleration == pytest.approx(0.5 * 2.0)
    assert fast.acceleration == pytest.approx(-0.5 * 2.0)


def test_feedforward_is_previewed():
    trajectory = _trajectory(acceleration=1.0)  # v = 10 + t
    command = TrajectoryTracker().command(trajectory, 1.0, 10.5, 0.0, 0.0, 11.0, dt=0.05)
    assert command.velocity == pytest.approx(11.3)  # sampled at 1.0 + 0.3 s preview
    assert command.acceleration == pytest.approx(1.0 + 0.5 * 0.3)


def test_beyond_the_end_the_last_point_is_held():
    trajectory = _trajectory(acceleration=1.0)
    command = TrajectoryTracker().command(trajectory, 9.0, 120.0, 0.0, 0.0, 16.4, dt=0.05)
    assert command.velocity == pytest.approx(16.4)
    assert command.acceleration == pytest.approx(0.0)
    assert command.steering_angle == pytest.approx(0.0)


def test_absolute_and_rate_limits():
    tracker = TrajectoryTracker()
    # Far below the target speed and right of the path: both saturate, no rate limit
    # on the first command because the actuator state is unknown.
    first = tracker.command(_trajectory(v0=30.0), 0.0, 0.0, -2.0, 0.0, 0.0, dt=0.1)
    assert (first.steering_angle, first.acceleration) == (0.6, 3.0)
    assert first.steering_rate == first.jerk == 0.0
    # Suddenly left of the path and far too fast: rates limit the change.
    second = tracker.command(_trajectory(v0=0.0), 0.0, 0.0, 2.0, 0.0, 30.0, dt=0.1)
    assert second.steering_angle == pytest.approx(0.6 - 0.5 * 0.1)
    assert second.steering_rate == pytest.approx(-0.5)
    assert second.acceleration == pytest.approx(3.0 - 10.0 * 0.1)
    assert second.jerk == pytest.approx(-10.0)
    tracker.reset()
    arguments = (_trajectory(v0=0.0), 0.0, 0.0, 2.0, 0.0, 30.0, 0.1)
    after_reset = tracker.command(*arguments)
    assert after_reset == TrajectoryTracker().command(*arguments)
    assert after_reset.acceleration == -8.0


def test_closed_loop_lane_change():
    speed, duration, width = 15.0, 4.0, 3.5
    t = 0.1 * np.arange(STEPS)
    # A sine of curvature turns the car and back: net lateral shift A v^2 T^2 / (2 pi).
    amplitude = width * 2 * np.pi / (speed * duration) ** 2
    curvature = np.where(t < duration, amplitude * np.sin(2 * np.pi * t / duration), 0.0)
    trajectory = TrackedTrajectory.from_rollout(integrate_unicycle(0.0, curvature, v0=speed))
    assert trajectory.y[-1] == pytest.approx(width, abs=0.05)

    tracker, dt = TrajectoryTracker(), 0.02
    x = y = yaw = 0.0
    v, worst_lateral_error = speed, 0.0
    for step in range(round(6.0 / dt)):
        command = tracker.command(trajectory, step * dt, x, y, yaw, v, dt)
        x += v * math.cos(yaw) * dt
        y += v * math.sin(yaw) * dt
        yaw += v * math.tan(command.steering_angle) / WHEELBASE * dt
        v += command.acceleration * dt
        lateral_error = abs(y - np.interp(x, trajectory.x, trajectory.y))
        worst_lateral_error = max(worst_lateral_error, lateral_error)
    assert x == pytest.approx(speed * 6.0, abs=1.0)
    assert abs(y - trajectory.y[-1]) < 0.3
    assert worst_lateral_error < 0.3
    assert abs(yaw) < 0.02 and v == pytest.approx(speed, abs=0.1)


def test_invalid_inputs():
    with pytest.raises(InvalidTrackingInput, match="dt > 0"):
        TrajectoryTracker().command(_trajectory(), 0.0, 0.0, 0.0, 0.0, 10.0, dt=0.0)
    with pytest.raises(InvalidTrackingInput, match="finite"):
        TrajectoryTracker().command(_trajectory(), 0.0, 0.0, 0.0, 0.0, math.nan, dt=0.1)
    with pytest.raises(InvalidTrackingInput, match="increase"):
        TrackedTrajectory(*(np.array([0.0, 0.0]),) * 6)
