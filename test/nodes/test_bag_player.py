"""BagPlayerNode over real DDS: a bag is played at its recorded pace, also when opening it
is slow."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import serialize_message
from std_msgs.msg import String

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.nodes import bag_player
from alpamayo_ros.nodes.bag_player import BagPlayerNode
from alpamayo_ros.replay.bag import BagMessage, BagRecorder

TOPIC = "/chatter"
PERIOD_S = 0.2
MESSAGES = 4
SLOW_OPEN_S = 0.6


def write_bag(path: Path) -> None:
    """MESSAGES strings, PERIOD_S apart."""
    with BagRecorder(path) as bag:
        bag.add_topic(TOPIC, "std_msgs/msg/String")
        for index in range(MESSAGES):
            raw = serialize_message(String(data=str(index)))
            bag.write(TOPIC, NS_PER_S + round(index * PERIOD_S * NS_PER_S), raw)


def received_times(context: Context, player: BagPlayerNode) -> list[float]:
    """When a subscriber in its own thread got each message of one play (monotonic s)."""
    listener = Node("listener", context=context)
    times: list[float] = []
    listener.create_subscription(
        String, TOPIC, lambda _: times.append(time.monotonic()), QoSProfile(depth=MESSAGES)
    )
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    spinning = threading.Thread(target=executor.spin, daemon=True)
    spinning.start()
    try:
        assert player.wait_for_subscribers([TOPIC], 10.0)
        player.play()
        deadline = time.monotonic() + 5.0
        while len(times) < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        executor.shutdown()
        spinning.join(timeout=5.0)
        listener.destroy_node()
    return times


@pytest.mark.parametrize("slow_open", [False, True])
def test_messages_keep_their_recorded_spacing(
    rclpy_context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_open: bool
) -> None:
    write_bag(tmp_path / "bag")
    if slow_open:
        read = bag_player.read_messages

        def slowly_opened(path: Path, topics: tuple[str, ...] = ()) -> Iterator[BagMessage]:
            time.sleep(SLOW_OPEN_S)  # a large bag on a busy disk
            yield from read(path, topics)

        monkeypatch.setattr(bag_player, "read_messages", slowly_opened)
    player = BagPlayerNode(tmp_path / "bag", context=rclpy_context)
    try:
        times = received_times(rclpy_context, player)
    finally:
        player.destroy_node()
    assert len(times) == MESSAGES
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Not a burst making up for the open (gaps of about 0): each message about PERIOD_S
    # after the previous. Times are of delivery to a listener in this process: one gap may
    # shrink where a busy machine delayed the message before it, not two.
    assert sorted(gaps)[1] > PERIOD_S / 4, gaps
