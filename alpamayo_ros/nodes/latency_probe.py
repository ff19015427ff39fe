"""Latency probe: listens to the running graph and logs, per inference, when each hop's
output arrived (evaluation.latency turns the log into per-hop figures).

Arrival times are taken on the probe's system clock, the clock the nodes stamp with when
not replaying, so arrival minus stamp is the age of a message when a consumer gets it.
"""

from __future__ import annotations

import time

from alpamayo_ros_msgs.msg import ControlCommand, Reasoning, Trajectory
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from alpamayo_ros.evaluation.latency import LatencyLog
from alpamayo_ros.graph import Topics
from alpamayo_ros.ros.conversions import duration_ns, stamp_ns


class LatencyProbe(Node):
    def __init__(self, camera_topic: str, context: Context | None = None) -> None:
        super().__init__("latency_probe", context=context)
        self.log = LatencyLog()
        self.create_subscription(Image, camera_topic, self.on_image, qos_profile_sensor_data)
        self.create_subscription(Reasoning, Topics.REASONING, self.on_reasoning, 10)
        self.create_subscription(Trajectory, Topics.TRAJECTORY, self.on_trajectory, 10)
        self.create_subscription(ControlCommand, Topics.CONTROL_COMMAND, self.on_command, 100)
        self.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self.on_diagnostics, 10)

    def on_image(self, msg: Image) -> None:
        self.log.frame(stamp_ns(msg.header.stamp), time.time_ns())

    def on_reasoning(self, msg: Reasoning) -> None:
        self.log.reasoning(
            stamp_ns(msg.header.stamp), time.time_ns(), duration_ns(msg.info.latency)
        )

    def on_trajectory(self, msg: Trajectory) -> None:
        self.log.trajectory(stamp_ns(msg.header.stamp), time.time_ns())

    def on_command(self, msg: ControlCommand) -> None:
        tracking = msg.mode == ControlCommand.MODE_TRACKING
        self.log.command(stamp_ns(msg.trajectory_stamp), time.time_ns(), tracking)

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        """The nodes' own compute times, published with their status once a second."""
        for status in msg.status:
            values = {item.key: item.value for item in status.values}
            if status.name.endswith("vla_inference") and "model_ms" in values:
                self.log.model_ms.append(float(values["model_ms"]))
            if status.name.endswith("diffusion_planner") and "planning_ms" in values:
                self.log.planning_ms.append(float(values["planning_ms"]))
