"""Control bridge node: tracks the newest trajectory and guards it with a watchdog.

After each odometry sample (at most `rate_hz`), at once when a new plan arrives, and from
a `rate_hz` timer whenever neither comes, it measures where the ego is relative to the
trajectory's frame (the ego frame at the plan's t0), computes steering and acceleration,
and publishes them as a ControlCommand and a TwistStamped. Following the odometry gives
each command the freshest state and leaves the timer idle while odometry flows (one
wake-up per command, not two). When the plan or the odometry goes stale (age measured
from their input stamps) or is invalid, the watchdog takes over and brings the car to a
safe stop; it resumes tracking only after inputs are fresh again for several cycles.

A managed node: active, it commands every period whatever its inputs (a stop when they
fail); configured but inactive, or unconfigured, it publishes no command at all (the
vehicle interface's own command timeout applies), and says so on /diagnostics.
On the lifecycle deactivate and shutdown transitions, and on Ctrl-C or SIGTERM, its last
command is a stop (velocity 0, braking at the safe-stop deceleration or harder, the
steering held), as nav2's controller ends on a zero velocity: the vehicle interface holds
it rather than the last tracking command. A bridge that is killed sends none; the
interface's timeout is all there is then.
"""

from __future__ import annotations

import math

from alpamayo_ros_msgs.msg import ControlCommand, Trajectory
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.subscription import Subscription
from rclpy.timer import Timer

from alpamayo_ros.core.control import TrackerGains, VehicleParams
from alpamayo_ros.core.input_health import HealthReport, Level
from alpamayo_ros.core.watchdog import WatchdogConfig, WatchdogState
from alpamayo_ros.pipeline.control import ControlOutput, ControlStep
from alpamayo_ros.ros import conversions
from alpamayo_ros.ros.managed import ManagedNode
from alpamayo_ros.ros.runtime import ERROR, OK, WARN, Diagnostics, declare_parameters, run
from alpamayo_ros.topic_map import odometry_topic

# How long the last command (the stop) may wait for its reliable readers' acknowledgement.
STOP_ACK_WAIT_S = 1.0

_LEVELS = {
    WatchdogState.WAITING: WARN,
    WatchdogState.TRACKING: OK,
    WatchdogState.SAFE_STOP: ERROR,
    WatchdogState.EMERGENCY_STOP: ERROR,
    WatchdogState.STOPPED: ERROR,
}


class ControlBridge(ManagedNode):
    # Ctrl-C or SIGTERM (the launchers' stop) ends the spin, not the ROS context: the
    # teardown sends the stop (`deactivate`) before the process ends.
    LAST_WORD_ON_SIGNALS = True

    def __init__(self) -> None:
        super().__init__("control_bridge")
        self.params = declare_parameters(self, "control_bridge")
        self.step: ControlStep | None = None
        self.diagnostics = Diagnostics(self, inputs=self.input_health)
        self.diagnostics.update(WARN, "unconfigured: publishing no commands")
        self.timer: Timer | None = None
        self.inputs: list[Subscription] = []

    def configure(self) -> None:
        self.step = ControlStep(
            1.0 / self.params["rate_hz"],
            VehicleParams(
                wheelbase=self.params["wheelbase"],
                max_steering_angle=self.params["max_steering_angle"],
            ),
            TrackerGains(lookahead_time=self.params["lookahead_time"]),
            WatchdogConfig(
                trajectory_timeout_s=self.params["trajectory_timeout_s"],
                odometry_timeout_s=self.params["odometry_timeout_s"],
                safe_stop_deceleration=self.params["safe_stop_deceleration"],
                safe_stop_jerk=self.params["safe_stop_jerk"],
                odometry_loss_s=self.params["odometry_loss_s"],
                emergency_deceleration=self.params["emergency_deceleration"],
            ),
        )
        self.command_publisher = self.create_lifecycle_publisher(ControlCommand, "command", 10)
        self.twist_publisher = self.create_lifecycle_publisher(TwistStamped, "cmd_vel", 10)
        # Inputs are buffered while inactive, so tracking can resume at once on activation.
        self.inputs = [
            # Depth 1: only the newest plan is ever tracked.
            self.create_subscription(Trajectory, "trajectory", self.on_trajectory, 1),
            self.create_subscription(
                Odometry, odometry_topic(self.params["topic_map_file"]), self.on_odometry, 50
            ),
        ]
        self.timer = self.create_timer(self.step.period_s, self.control, autostart=False)
        self.diagnostics.update(WARN, "inactive: publishing no commands")

    def activate(self) -> None:
        # A bridge activated again starts as a new one would (braking from the measured
        # speed until a fresh plan), not from the state it had when deactivated.
        self.step.restart()
        self.control()  # the first command at once; the timer runs from here

    def deactivate(self) -> None:
        """The last command is a stop, which the vehicle interface holds until its own
        timeout: on the deactivate and shutdown transitions, on Ctrl-C and SIGTERM
        (`LAST_WORD_ON_SIGNALS`), and when the process ends after a callback raised;
        not where the context is already gone (nothing can be published then)."""
        self.timer.cancel()
        if self.context.ok():
            now_ns = self.get_clock().now().nanoseconds
            self.publish(now_ns, self.step.handover(now_ns))
            # Acknowledged by reliable readers before the publishers may go (the process
            # ending, a cleanup): a stop lost on the wire could not be sent again then.
            for publisher in (self.command_publisher, self.twist_publisher):
                if not publisher.wait_for_all_acked(Duration(seconds=STOP_ACK_WAIT_S)):
                    self.get_logger().warning(
                        f"the stop on {publisher.topic_name} was not acknowledged within "
                        f"{STOP_ACK_WAIT_S} s"
                    )
        self.diagnostics.update(WARN, "inactive: publishing no commands")

    def release(self) -> None:
        """What `configure` made, also when it failed half-way."""
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None
        for subscription in self.inputs:
            self.destroy_subscription(subscription)
        self.inputs = []
        self.step = None
        self.diagnostics.update(WARN, "unconfigured: publishing no commands")

    def on_trajectory(self, msg: Trajectory) -> None:
        try:
            plan = conversions.tracked_trajectory(msg)
        except ValueError as error:
            self.step.refuse_plan(self.get_clock().now().nanoseconds, str(error))
            return
        self.step.set_plan(plan, conversions.stamp_ns(msg.header.stamp), msg.info.inference_id)
        if self.active:
            self.control()  # act on the new plan now

    def on_odometry(self, msg: Odometry) -> None:
        now_ns = self.get_clock().now().nanoseconds
        stamp, position, quaternion, speed = conversions.odometry_sample(msg)
        self.step.add_odometry(stamp, position, quaternion, speed, now_ns)
        if self.active and self.step.due(now_ns):
            self.control()

    def input_health(self, now_ns: int) -> HealthReport:
        """The odometry's faults, named, ahead of the watchdog's state on /diagnostics."""
        if self.step is None:
            return HealthReport(Level.OK, "", {})
        return self.step.health.report(now_ns)

    def control(self) -> None:
        """One command now; the timer counts its next period from here."""
        now_ns = self.get_clock().now().nanoseconds
        self.publish(now_ns, self.step.command(now_ns))
        self.timer.reset()

    def publish(self, now_ns: int, output: ControlOutput) -> None:
        head = conversions.header(now_ns, self.params["frame_id"])
        command = output.command
        self.command_publisher.publish(
            ControlCommand(
                header=head,
                trajectory_stamp=conversions.time_msg(output.plan_t0_ns or 0),
                inference_id=output.plan_inference_id,
                mode=conversions.COMMAND_MODES[output.state],
                reason=output.reason,
                steering_tire_angle=float(command.steering_angle),
                steering_tire_rotation_rate=float(command.steering_rate),
                velocity=float(command.velocity),
                acceleration=float(command.acceleration),
                jerk=float(command.jerk),
            )
        )
        twist = TwistStamped(header=head)
        twist.twist.linear.x = float(command.velocity)
        twist.twist.angular.z = float(
            command.velocity * math.tan(command.steering_angle) / self.step.vehicle.wheelbase
        )
        self.twist_publisher.publish(twist)
        self.diagnostics.update(
            _LEVELS[output.state], f"{output.state.name.lower()}: {output.reason}"
        )


def main(args: list[str] | None = None) -> int:
    return run(ControlBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
