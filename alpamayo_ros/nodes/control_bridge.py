"""Control bridge node: tracks the newest trajectory and guards it with a watchdog.

At a fixed rate it measures where the ego is relative to the trajectory's frame (the ego
frame at the plan's t0), computes steering and acceleration, and publishes them as a
ControlCommand and a TwistStamped. When the plan or the odometry goes stale (age measured
from their input stamps) or is invalid, the watchdog takes over and brings the car to a
safe stop; it resumes tracking only after inputs are fresh again for several cycles.
"""

from __future__ import annotations

import math

from alpamayo_ros_msgs.msg import ControlCommand, Trajectory
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.control import (
    TrackedTrajectory,
    TrackerGains,
    TrajectoryTracker,
    VehicleParams,
)
from alpamayo_ros.core.ego_history import EgoHistoryBuffer, HistoryUnavailable
from alpamayo_ros.core.stamped import AddResult
from alpamayo_ros.core.watchdog import Watchdog, WatchdogConfig, WatchdogState
from alpamayo_ros.nodes import conversions
from alpamayo_ros.nodes.runtime import ERROR, OK, WARN, Diagnostics, declare_parameters, run

_MODES = {
    WatchdogState.WAITING: ControlCommand.MODE_WAITING,
    WatchdogState.TRACKING: ControlCommand.MODE_TRACKING,
    WatchdogState.SAFE_STOP: ControlCommand.MODE_SAFE_STOP,
    WatchdogState.STOPPED: ControlCommand.MODE_STOPPED,
}
_LEVELS = {
    WatchdogState.WAITING: WARN,
    WatchdogState.TRACKING: OK,
    WatchdogState.SAFE_STOP: ERROR,
    WatchdogState.STOPPED: ERROR,
}


class ControlBridge(Node):
    def __init__(self) -> None:
        super().__init__("control_bridge")
        self.params = declare_parameters(self, "control_bridge")
        self.vehicle = VehicleParams(
            wheelbase=self.params["wheelbase"],
            max_steering_angle=self.params["max_steering_angle"],
        )
        self.tracker = TrajectoryTracker(
            self.vehicle, TrackerGains(lookahead_time=self.params["lookahead_time"])
        )
        self.watchdog = Watchdog(
            WatchdogConfig(
                trajectory_timeout_s=self.params["trajectory_timeout_s"],
                odometry_timeout_s=self.params["odometry_timeout_s"],
                safe_stop_deceleration=self.params["safe_stop_deceleration"],
            )
        )
        self.period_s = 1.0 / self.params["rate_hz"]
        self.history = EgoHistoryBuffer()
        self.plan: TrackedTrajectory | None = None
        self.plan_t0_ns: int | None = None
        self.plan_inference_id = 0
        self.odometry_stamp_ns: int | None = None
        self.speed = 0.0
        self.diagnostics = Diagnostics(self)
        self.command_publisher = self.create_publisher(ControlCommand, "command", 10)
        self.twist_publisher = self.create_publisher(TwistStamped, "cmd_vel", 10)
        self.create_subscription(Trajectory, "trajectory", self.on_trajectory, 10)
        self.create_subscription(Odometry, "odometry", self.on_odometry, 50)
        self.create_timer(self.period_s, self.control)

    def on_trajectory(self, msg: Trajectory) -> None:
        try:
            plan = conversions.tracked_trajectory(msg)
        except ValueError as error:
            # Keep the previous plan: it ages out and the watchdog stops the car.
            self.diagnostics.update(ERROR, f"rejected trajectory: {error}")
            return
        self.plan = plan
        self.plan_t0_ns = conversions.stamp_ns(msg.header.stamp)
        self.plan_inference_id = msg.info.inference_id

    def on_odometry(self, msg: Odometry) -> None:
        stamp, position, quaternion, speed = conversions.odometry_sample(msg)
        result = self.history.add(stamp, position, quaternion)
        if result.keeps_sample:
            self.odometry_stamp_ns = stamp
            self.speed = speed if math.isfinite(speed) else float("nan")
        if result is AddResult.CLOCK_JUMP_BACK:
            self.plan = None
            self.plan_t0_ns = None

    def control(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        decision = self.watchdog.update(now_ns, self.plan_t0_ns, self.odometry_stamp_ns, self.speed)
        state, reason = decision.state, decision.reason
        steering = steering_rate = jerk = 0.0
        if state is WatchdogState.TRACKING:
            try:
                x, y, yaw = self.history.relative_pose(self.plan_t0_ns, self.odometry_stamp_ns)
            except HistoryUnavailable as error:
                state, reason = WatchdogState.SAFE_STOP, f"ego pose at plan time unknown: {error}"
        if state is WatchdogState.TRACKING:
            command = self.tracker.command(
                self.plan,
                (now_ns - self.plan_t0_ns) / NS_PER_S,
                x,
                y,
                yaw,
                self.speed,
                self.period_s,
            )
            steering, steering_rate = command.steering_angle, command.steering_rate
            velocity, acceleration, jerk = command.velocity, command.acceleration, command.jerk
        else:
            self.tracker.reset()
            speed = self.speed if math.isfinite(self.speed) else 0.0
            velocity, acceleration = self.watchdog.safe_stop_command(speed, self.period_s)
        self.publish(now_ns, state, reason, steering, steering_rate, velocity, acceleration, jerk)

    def publish(
        self,
        now_ns: int,
        state: WatchdogState,
        reason: str,
        steering: float,
        steering_rate: float,
        velocity: float,
        acceleration: float,
        jerk: float,
    ) -> None:
        head = conversions.header(now_ns, self.params["frame_id"])
        self.command_publisher.publish(
            ControlCommand(
                header=head,
                trajectory_stamp=conversions.time_msg(self.plan_t0_ns or 0),
                inference_id=self.plan_inference_id,
                mode=_MODES[state],
                reason=reason,
                steering_tire_angle=float(steering),
                steering_tire_rotation_rate=float(steering_rate),
                velocity=float(velocity),
                acceleration=float(acceleration),
                jerk=float(jerk),
            )
        )
        twist = TwistStamped(header=head)
        twist.twist.linear.x = float(velocity)
        twist.twist.angular.z = float(velocity * math.tan(steering) / self.vehicle.wheelbase)
        self.twist_publisher.publish(twist)
        self.diagnostics.update(_LEVELS[state], f"{state.name.lower()}: {reason}")


def main(args: list[str] | None = None) -> int:
    return run(ControlBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
