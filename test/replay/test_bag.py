"""Bags written and read with rosbags: raw messages round-trip byte for byte, and every
way a bag can be unusable says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from alpamayo_ros_msgs.msg import Reasoning
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from alpamayo_ros.replay.bag import (
    BagError,
    BagRecorder,
    PlaybackClock,
    bag_contents,
    read_messages,
)

REASONING = "alpamayo_ros_msgs/msg/Reasoning"
IMAGE = "sensor_msgs/msg/Image"


def record(path: Path) -> dict[str, list[bytes]]:
    written: dict[str, list[bytes]] = {"/vla/reasoning": [], "/camera/image_raw": []}
    with BagRecorder(path) as bag:
        bag.add_topic("/vla/reasoning", REASONING)
        bag.add_topic("/camera/image_raw", IMAGE)
        for i in range(5):
            raw = serialize_message(Reasoning(text=f"step {i}"))
            bag.write("/vla/reasoning", 1_000 + 100 * i, raw)
            written["/vla/reasoning"].append(raw)
            image = Image(height=1, width=2, encoding="rgb8", step=6, data=bytes(range(i, i + 6)))
            raw = serialize_message(image)
            bag.write("/camera/image_raw", 1_050 + 100 * i, raw)
            written["/camera/image_raw"].append(raw)
        assert bag.counts["/vla/reasoning"] == 5
    return written


def test_messages_round_trip_byte_for_byte_in_time_order(tmp_path: Path) -> None:
    written = record(tmp_path / "bag")
    assert list((tmp_path / "bag").glob("*.mcap"))
    messages = list(read_messages(tmp_path / "bag"))
    assert [m.timestamp_ns for m in messages] == sorted(m.timestamp_ns for m in messages)
    for topic, raws in written.items():
        assert [m.raw for m in messages if m.topic == topic] == raws
    first = next(m for m in messages if m.topic == "/vla/reasoning")
    assert first.msgtype == REASONING
    assert deserialize_message(first.raw, Reasoning).text == "step 0"


def test_contents_and_topic_selection(tmp_path: Path) -> None:
    record(tmp_path / "bag")
    contents = bag_contents(tmp_path / "bag")
    assert contents.topics == {"/vla/reasoning": REASONING, "/camera/image_raw": IMAGE}
    assert (contents.start_ns, contents.message_count) == (1_000, 10)
    only = bag_contents(tmp_path / "bag", ["/camera/image_raw"])
    assert list(only.topics) == ["/camera/image_raw"] and only.message_count == 5
    assert {m.topic for m in read_messages(tmp_path / "bag", ["/vla/reasoning"])} == {
        "/vla/reasoning"
    }
    with pytest.raises(BagError, match=r"has no topic\(s\) /lidar"):
        bag_contents(tmp_path / "bag", ["/lidar"])


def test_unusable_bags_are_refused_with_the_reason(tmp_path: Path) -> None:
    record(tmp_path / "bag")
    with pytest.raises(BagError, match="exists; record into a new directory"):
        BagRecorder(tmp_path / "bag")  # never overwrites a recording
    with pytest.raises(BagError, match="cannot read bag"):
        bag_contents(tmp_path / "missing")
    with BagRecorder(tmp_path / "other") as bag, pytest.raises(BagError, match="unknown type"):
        bag.add_topic("/x", "no_such_pkg/msg/Thing")


def test_playback_clock_scales_time_both_ways() -> None:
    clock = PlaybackClock(bag_start_ns=5_000_000_000, wall_start_ns=100, rate=2.0)
    assert clock.wall_time(5_000_000_000) == 100
    assert clock.wall_time(7_000_000_000) == 100 + 1_000_000_000  # 2 s of bag in 1 s
    assert clock.bag_time(clock.wall_time(6_234_000_000)) == 6_234_000_000
    with pytest.raises(BagError, match="rate must be positive"):
        PlaybackClock(0, 0, rate=0.0)
