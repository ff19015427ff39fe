"""Latency probe: listens to the running graph and logs, per inference, when each hop's
output arrived (evaluation.latency turns the log into per-hop figures).

Arrival times are taken on the probe's system clock, the clock the nodes stamp with when
not replaying, so arrival minus stamp is the age of a message when a consumer gets it.
"""

from __future__ import annotations

import contextlib
import time

from alpamayo_ros_msgs.msg import ControlCommand, PlannerConditioning, Reasoning, Trajectory
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from alpamayo_ros.evaluation.latency import LatencyLog
from alpamayo_ros.graph import Topics
from alpamayo_ros.ros.conversions import command_mode_name, duration_ns, stamp_ns


class LatencyProbe(Node):
    def __init__(self, camera_topic: str, context: Context | None = None) -> None:
        super().__init__("latency_probe", context=context)
        self.log = LatencyLog()
        self.create_subscription(Image, camera_topic, self.on_image, qos_profile_sensor_data)
        self.create_subscription(PlannerConditioning, Topics.CONDITIONING, self.on_conditioning, 10)
        self.create_subscription(Reasoning, Topics.REASONING, self.on_reasoning, 10)
        self.create_subscription(Trajectory, Topics.TRAJECTORY, self.on_trajectory, 10)
        self.create_subscription(ControlCommand, Topics.CONTROL_COMMAND, self.on_command, 100)
        self.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self.on_diagnostics, 10)

    def on_image(self, msg: Image) -> None:
        self.log.frame(stamp_ns(msg.header.stamp), time.time_ns())

    def on_conditioning(self, msg: PlannerConditioning) -> None:
        info = msg.info
        self.log.conditioning(
            stamp_ns(msg.header.stamp),
            time.time_ns(),
            duration_ns(info.latency),
            duration_ns(info.input_wait),
            duration_ns(info.model_time),
        )

    def on_reasoning(self, msg: Reasoning) -> None:
        self.log.reasoning(stamp_ns(msg.header.stamp), time.time_ns())

    def on_trajectory(self, msg: Trajectory) -> None:
        self.log.trajectory(
            stamp_ns(msg.header.stamp), time.time_ns(), duration_ns(msg.planning_time)
        )

    def on_command(self, msg: ControlCommand) -> None:
        self.log.command(
            stamp_ns(msg.trajectory_stamp),
            time.time_ns(),
            command_mode_name(msg.mode),
            msg.reason,
            computed_ns=stamp_ns(msg.header.stamp),
        )

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        """The nodes' own timings, published with their status once a second."""
        sampled = {
            ("camera_driver", "publish_delay_ms"): self.log.publish_delay_ms,
            ("vla_inference", "decode_ms"): self.log.decode_ms,
        }
        for status in msg.status:
            values = {item.key: item.value for item in status.values}
            for (node, key), log in sampled.items():
                if status.name.endswith(node) and key in values:
                    with contextlib.suppress(ValueError):  # "-" before the first value
                        log.append(float(values[key]))
