"""Bag recorder node: writes the graph's topics to an MCAP rosbag2 bag, byte for byte.

Subscribes to serialized messages (nothing is deserialized) as topics appear, reliable where
every publisher is reliable so nothing is dropped, best effort for sensor streams, transient
local where every publisher is (latched topics published before recording began), and
stamps each message with its receive time on the node's clock (sim time under
use_sim_time), as `ros2 bag record` does. The bag keeps each topic's subscription QoS as its
offered_qos_profiles, for players. Run by `alpamayo-ros record`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from alpamayo_ros.replay.bag import BagError, BagRecorder, TopicQos
from alpamayo_ros.ros.qos import matching_every_publisher
from alpamayo_ros.ros.runtime import message_class

# Topics every ROS process has; recorded only when asked for by name.
INFRASTRUCTURE_TOPICS = frozenset({"/rosout", "/parameter_events"})
DISCOVERY_PERIOD_S = 0.2
# Messages a subscription queues while the recorder writes: bursts of camera frames fit.
QUEUE_DEPTH = 1000

DURABILITY = {
    "volatile": DurabilityPolicy.VOLATILE,
    "transient_local": DurabilityPolicy.TRANSIENT_LOCAL,
}


class BagRecorderNode(Node):
    def __init__(
        self, bag: BagRecorder, topics: Sequence[str] = (), context: Context | None = None
    ) -> None:
        super().__init__("bag_recorder", context=context)
        self.bag = bag
        self.wanted = frozenset(topics)
        self.ignored: set[str] = set()
        self.subscriptions_by_topic: dict[str, object] = {}
        # On the steady clock: under use_sim_time a paused /clock (a lock-step run holding
        # at its start) must not pause discovery, or the first messages go unrecorded.
        self.create_timer(
            DISCOVERY_PERIOD_S, self.discover, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )

    def discover(self) -> None:
        """Subscribe to every new topic that should be recorded."""
        for topic, types in self.get_topic_names_and_types():
            if topic in self.subscriptions_by_topic or topic in self.ignored:
                continue
            if self.wanted and topic not in self.wanted:
                continue
            if not self.wanted and topic in INFRASTRUCTURE_TOPICS:
                continue
            if len(types) != 1:
                self._ignore(topic, f"has several types {types}")
                continue
            offered = [p.qos_profile for p in self.get_publishers_info_by_topic(topic)]
            if not offered:
                # Only subscribed to yet: its QoS comes with its first publisher (taken
                # now, a latched /tf_static would be recorded, and replayed, volatile).
                continue
            qos = matching_every_publisher(offered, QUEUE_DEPTH)
            try:
                self.bag.add_topic(topic, types[0], recorded_as(qos))
            except BagError as error:
                self._ignore(topic, str(error))
                continue
            self.subscriptions_by_topic[topic] = self.create_subscription(
                message_class(types[0]),
                topic,
                lambda raw, topic=topic: self.bag.write(
                    topic, self.get_clock().now().nanoseconds, raw
                ),
                qos,
                raw=True,
            )
            self.get_logger().info(f"recording {topic} ({types[0]})")

    @property
    def missing(self) -> list[str]:
        """Topics asked for by name that have not appeared."""
        return sorted(self.wanted - set(self.subscriptions_by_topic))

    def _ignore(self, topic: str, reason: str) -> None:
        self.ignored.add(topic)
        self.get_logger().warning(f"not recording {topic}: {reason}")


def recorded_as(qos: QoSProfile) -> TopicQos:
    """The bag's record of the subscription's QoS, for players."""
    return TopicQos(
        reliability="reliable" if qos.reliability == ReliabilityPolicy.RELIABLE else "best_effort",
        durability=(
            "transient_local" if qos.durability == DurabilityPolicy.TRANSIENT_LOCAL else "volatile"
        ),
        depth=qos.depth,
    )
