"""Bag player node: publishes a bag's messages at their recorded pace and /clock with the
bag's time, so nodes started with use_sim_time run on the recorded time.

Messages go out byte for byte as recorded, on reliable publishers (which best-effort
sensor subscriptions also accept, and which lose nothing when the bag is replayed to
reproduce a run), transient local where the bag recorded the topic so (a latched topic
then reaches nodes that subscribe late, as it did live). Run by `alpamayo-ros replay`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from alpamayo_ros.graph import Topics
from alpamayo_ros.nodes.bag_recorder import DURABILITY
from alpamayo_ros.replay.bag import PlaybackClock, bag_contents, read_messages
from alpamayo_ros.ros.conversions import time_msg
from alpamayo_ros.ros.runtime import message_class

QUEUE_DEPTH = 100


def never() -> bool:
    return False


class BagPlayerNode(Node):
    def __init__(
        self,
        path: Path,
        topics: Sequence[str] = (),
        rate: float = 1.0,
        clock_hz: float = 100.0,
        context: Context | None = None,
    ) -> None:
        super().__init__("bag_player", context=context)
        self.path = Path(path)
        self.topics = tuple(topics)
        self.contents = bag_contents(self.path, self.topics)
        self.rate = rate
        self.clock_period_s = 1.0 / clock_hz
        self.clock_publisher = self.create_publisher(Clock, Topics.CLOCK, 10)
        self.counts: Counter[str] = Counter()  # published so far, also after an interruption
        self.publishers_by_topic = {
            topic: self.create_publisher(message_class(msgtype), topic, self._qos_for(topic))
            for topic, msgtype in self.contents.topics.items()
        }

    def without_subscribers(self, topics: Sequence[str] = ()) -> list[str]:
        """Those of `topics` (default: every played topic) that no node subscribes to:
        their messages would go nowhere."""
        return [
            topic
            for topic in topics or self.publishers_by_topic
            if self.count_subscribers(topic) == 0
        ]

    def wait_for_subscribers(
        self, topics: Sequence[str], wait_s: float, stop: Callable[[], bool] = never
    ) -> bool:
        """Wait up to `wait_s` for discovery until each of `topics` (default: every played
        topic) has a subscriber, or `stop()`; whether they all have one."""
        deadline = time.monotonic() + wait_s
        while self.without_subscribers(topics):
            if time.monotonic() >= deadline or stop():
                return False
            time.sleep(0.05)
        return True

    def play(self, stop: Callable[[], bool] = never) -> None:
        """Publish the whole bag once, or until `stop()` holds, which is checked between
        publishes (so that an interruption never cuts one short; see `alpamayo-ros replay`)."""
        clock: PlaybackClock | None = None
        for message in read_messages(self.path, self.topics):
            if clock is None:
                # The pace starts once the bag is open and its first message read: a clock
                # started before would make up for a slow open (a large bag, a busy disk)
                # with a burst, and a subscriber that keeps the newest inputs would skip.
                clock = PlaybackClock(self.contents.start_ns, time.monotonic_ns(), self.rate)
            if not self._publish_clock_until(clock.wall_time(message.timestamp_ns), clock, stop):
                return
            self.clock_publisher.publish(Clock(clock=time_msg(message.timestamp_ns)))
            self.publishers_by_topic[message.topic].publish(message.raw)
            self.counts[message.topic] += 1

    def _publish_clock_until(
        self, wall_ns: int, clock: PlaybackClock, stop: Callable[[], bool]
    ) -> bool:
        """Publish /clock until `wall_ns` (True), or until `stop()` (False)."""
        while (now := time.monotonic_ns()) < wall_ns:
            if stop():
                return False
            self.clock_publisher.publish(Clock(clock=time_msg(clock.bag_time(now))))
            time.sleep(min(self.clock_period_s, (wall_ns - now) / 1e9))
        return not stop()

    def _qos_for(self, topic: str) -> QoSProfile:
        recorded = self.contents.qos.get(topic)
        return QoSProfile(
            depth=QUEUE_DEPTH,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE
            if recorded is None
            else DURABILITY[recorded.durability],
        )
