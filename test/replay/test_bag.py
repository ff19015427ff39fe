"""Bags written and read with rosbags: raw messages round-trip byte for byte, in a plain
MCAP file with zstd chunks that the mcap library reads too, with the QoS they were recorded
with, and every way a bag can be unusable says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from alpamayo_ros_msgs.msg import Reasoning
from mcap.reader import make_reader
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from sensor_msgs.msg import Image

from alpamayo_ros.replay.bag import (
    BagError,
    BagRecorder,
    PlaybackClock,
    TopicQos,
    bag_contents,
    read_messages,
    recorded_qos,
)
from alpamayo_ros.replay.typestore import message_definition

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
            # A flat grey frame with one varying pixel: compressible, as camera frames are.
            pixels = bytes(range(i, i + 6)) + bytes([128]) * 59_994
            image = Image(height=100, width=200, encoding="rgb8", step=600, data=pixels)
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


def test_chunks_are_zstd_compressed_inside_a_plain_mcap_file(tmp_path: Path) -> None:
    written = record(tmp_path / "bag")
    # bag.mcap, not bag.mcap.zstd: no file-level compression.
    assert sorted(p.name for p in (tmp_path / "bag").iterdir()) == ["bag.mcap", "metadata.yaml"]
    mcap_file = tmp_path / "bag" / "bag.mcap"
    metadata = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())
    information = metadata["rosbag2_bagfile_information"]
    assert (information["compression_mode"], information["compression_format"]) == ("", "")
    assert information["relative_file_paths"] == ["bag.mcap"]
    with mcap_file.open("rb") as stream:
        reader = make_reader(stream)
        summary = reader.get_summary()
        assert summary is not None and summary.chunk_indexes
        assert {chunk.compression for chunk in summary.chunk_indexes} == {"zstd"}
        compressed = sum(chunk.compressed_size for chunk in summary.chunk_indexes)
        assert compressed * 10 < sum(chunk.uncompressed_size for chunk in summary.chunk_indexes)
        schemas = {s.name: s for s in summary.schemas.values()}
        assert schemas[IMAGE].encoding == "ros2msg"
        assert schemas[IMAGE].data.decode() == message_definition(IMAGE)
        read: dict[str, list[bytes]] = {topic: [] for topic in written}
        for _, channel, message in reader.iter_messages(log_time_order=True):
            assert channel.message_encoding == "cdr"
            read[channel.topic].append(message.data)
    assert read == written


def test_qos_round_trips_through_the_metadata(tmp_path: Path) -> None:
    latched = TopicQos(reliability="reliable", durability="transient_local", depth=7)
    sensor = TopicQos(reliability="best_effort", durability="volatile", depth=1000)
    with BagRecorder(tmp_path / "bag") as bag:
        bag.add_topic("/map", REASONING, latched)
        bag.add_topic("/camera/image_raw", IMAGE, sensor)
        bag.add_topic("/vla/reasoning", REASONING)  # no QoS known: none offered
    assert bag_contents(tmp_path / "bag").qos == {"/map": latched, "/camera/image_raw": sensor}
    # As rosbag2 (version 9) writes it, for `ros2 bag play`.
    metadata = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())
    offered = {
        entry["topic_metadata"]["name"]: entry["topic_metadata"]["offered_qos_profiles"]
        for entry in metadata["rosbag2_bagfile_information"]["topics_with_message_count"]
    }
    assert offered["/vla/reasoning"] == []
    (profile,) = offered["/map"]
    assert {k: profile[k] for k in ("history", "depth", "reliability", "durability")} == {
        "history": "keep_last",
        "depth": 7,
        "reliability": "reliable",
        "durability": "transient_local",
    }
    assert profile["deadline"] == {"sec": 0, "nsec": 0}  # none: the ROS default
    # ... and in the MCAP channel, where Foxglove and rosbag2's MCAP plugin look.
    with (tmp_path / "bag" / "bag.mcap").open("rb") as stream:
        summary = make_reader(stream).get_summary()
    assert summary is not None
    channels = {c.topic: c.metadata for c in summary.channels.values()}
    (profile,) = yaml.safe_load(channels["/camera/image_raw"]["offered_qos_profiles"])
    assert (profile["reliability"], profile["durability"]) == ("best_effort", "volatile")


def offer(reliability: QosReliability, durability: QosDurability, depth: int) -> Qos:
    none = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        reliability,
        durability,
        none,
        none,
        QosLiveliness.AUTOMATIC,
        none,
        False,
    )


def test_a_topic_plays_with_what_every_recorded_offer_allows() -> None:
    latched = offer(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, 10)
    best_effort = offer(QosReliability.BEST_EFFORT, QosDurability.TRANSIENT_LOCAL, 50)
    volatile = offer(QosReliability.RELIABLE, QosDurability.VOLATILE, 1)
    assert recorded_qos([latched]) == TopicQos("reliable", "transient_local", 10)
    assert recorded_qos([latched, best_effort]) == TopicQos("best_effort", "transient_local", 50)
    assert recorded_qos([volatile, latched]) == TopicQos("reliable", "volatile", 10)


def test_an_empty_recording_is_a_readable_bag(tmp_path: Path) -> None:
    with BagRecorder(tmp_path / "bag"):
        pass
    contents = bag_contents(tmp_path / "bag")
    assert (contents.topics, contents.message_count) == ({}, 0)
    assert (contents.start_ns, contents.end_ns) == (0, 0)  # not rosbag2's "no time" sentinel
    assert list(read_messages(tmp_path / "bag")) == []
    with (tmp_path / "bag" / "bag.mcap").open("rb") as stream:
        assert list(make_reader(stream).iter_messages()) == []


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
