"""Foxglove bridge node: the running graph, live in Foxglove or Lichtblick, with no ROS
install on the viewing machine.

It serves the graph's topics over the Foxglove WebSocket protocol (foxglove-sdk): each
topic becomes a channel whose schema is its ROS 2 message definition (`ros2msg`, from the
project's typestore) and whose messages are the CDR bytes exactly as they arrived, so the
viewer decodes cameras, markers, TF and the project's own messages as it does a bag.
Topics are found as they appear (every `discovery_period_s`), and each subscription takes
the QoS its publishers offer: best effort for the cameras, transient local for
/tf_static. A topic of a type the typestore does not know is skipped and named on
/diagnostics. The bridge only listens; nothing in the driving loop waits on it.
"""

from __future__ import annotations

import importlib
from typing import Any

import foxglove
from rclpy.node import Node
from rclpy.qos import QoSProfile

from alpamayo_ros.replay.typestore import message_definition
from alpamayo_ros.ros.qos import matching_every_publisher
from alpamayo_ros.ros.runtime import OK, WARN, Diagnostics, declare_parameters, run

# Messages kept per topic between the subscription and the bridge: the newest matter.
DEPTH = 10


class FoxgloveBridge(Node):
    def __init__(self) -> None:
        super().__init__("foxglove_bridge")
        self.params = declare_parameters(self, "foxglove_bridge")
        self.diagnostics = Diagnostics(self, hardware_id="foxglove websocket")
        self.server = foxglove.start_server(
            name="alpamayo_ros", host=self.params["host"], port=self.params["port"]
        )
        self.channels: dict[str, foxglove.Channel] = {}
        self.skipped: dict[str, str] = {}  # topic -> why it is not served
        self.get_logger().info(
            f"Foxglove WebSocket on ws://{self.params['host']}:{self.server.port} "
            "(Foxglove or Lichtblick: Open connection, Foxglove WebSocket)"
        )
        self.discover()
        self.create_timer(self.params["discovery_period_s"], self.discover)

    def discover(self) -> None:
        """A channel and a subscription for every topic not served yet."""
        for topic, types in self.get_topic_names_and_types():
            if topic in self.channels or topic in self.skipped:
                continue
            if len(types) != 1:
                self.skipped[topic] = f"{len(types)} types on one topic: {', '.join(types)}"
                continue
            offered = [info.qos_profile for info in self.get_publishers_info_by_topic(topic)]
            if not offered:
                # Only subscribed to yet: served once a publisher offers its QoS (taken
                # now, a reliable subscription would never match best-effort cameras).
                continue
            self.serve(topic, types[0], offered)
        level = WARN if self.skipped else OK
        skipped = "; ".join(f"{topic}: {why}" for topic, why in sorted(self.skipped.items()))
        self.diagnostics.update(
            level,
            f"serving {len(self.channels)} topics on port {self.server.port}"
            + (f"; not served: {skipped}" if skipped else ""),
        )

    def serve(self, topic: str, type_name: str, offered: list[QoSProfile]) -> None:
        try:
            definition = message_definition(type_name)
            message_type = _message_class(type_name)
        except (KeyError, ImportError, AttributeError, ValueError) as error:
            self.skipped[topic] = f"type {type_name} unknown here ({error})"
            return
        channel = foxglove.Channel(
            topic,
            message_encoding="cdr",
            schema=foxglove.Schema(
                name=type_name, encoding="ros2msg", data=definition.encode("utf-8")
            ),
        )
        self.channels[topic] = channel
        self.create_subscription(
            message_type,
            topic,
            lambda data, channel=channel: self.forward(channel, data),
            matching_every_publisher(offered, DEPTH),
            raw=True,
        )

    def forward(self, channel: foxglove.Channel, data: bytes) -> None:
        channel.log(data, log_time=self.get_clock().now().nanoseconds)

    def destroy_node(self) -> None:
        self.server.stop()
        super().destroy_node()


def _message_class(type_name: str) -> Any:
    """The rclpy class of "package/msg/Type"."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def main(args: list[str] | None = None) -> int:
    return run(FoxgloveBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
