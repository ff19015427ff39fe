"""`alpamayo-ros record` and `replay` as a user runs them, stopped by Ctrl-C (SIGINT) or a
service manager (SIGTERM) while messages flow: exit status 0, the counts printed, no
traceback, and a recording closed into a bag that holds every message it counted. A
recording of nothing says so, and why, and still leaves a readable bag."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alpamayo_ros_msgs.msg import Reasoning
from mcap.reader import make_reader
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message, serialize_message
from recorded_drive import spin_until

from alpamayo_ros.replay.bag import BagRecorder, bag_contents, read_messages

ALPAMAYO_ROS = Path(sys.prefix) / "bin" / "alpamayo-ros"
TOPIC = "/probe/reasoning"
TOPIC_TYPE = "alpamayo_ros_msgs/msg/Reasoning"
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]
# What users saw when an interruption landed inside rclpy.
TRACEBACKS = ("Traceback", "ExternalShutdownException", "context is invalid", "rcl_shutdown")


def start(*arguments: str) -> subprocess.Popen[str]:
    """The command in a child process, on the test's ROS_DOMAIN_ID (inherited)."""
    return subprocess.Popen(
        [str(ALPAMAYO_ROS), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def printed_count(stdout: str, topic: str) -> int:
    """The count `_print_counts` printed for `topic`."""
    match = re.search(rf"^\s+{re.escape(topic)}\s+(\d+)$", stdout, re.MULTILINE)
    assert match, stdout
    return int(match.group(1))


def assert_clean_exit(process: subprocess.Popen[str], heading: str) -> str:
    """Stdout of a process that exited 0 with its counts after `heading` and no traceback."""
    stdout, stderr = process.communicate(timeout=20.0)
    assert process.returncode == 0, stdout + stderr
    assert heading in stdout, stdout
    assert not [text for text in TRACEBACKS if text in stderr], stderr
    return stdout


def mcap_topic_counts(bag: Path) -> dict[str, int]:
    """Messages per topic as the mcap library reads the bag, whose chunks must be zstd."""
    with (bag / f"{bag.name}.mcap").open("rb") as stream:
        reader = make_reader(stream)
        summary = reader.get_summary()
        assert summary is not None
        assert {chunk.compression for chunk in summary.chunk_indexes} <= {"zstd"}
        counts: dict[str, int] = {}
        for _, channel, _ in reader.iter_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
    return counts


@pytest.mark.parametrize("signum", SIGNALS)
def test_record_stops_on_a_signal_with_every_counted_message_in_the_bag(
    signum: signal.Signals, rclpy_context: Context, tmp_path: Path
) -> None:
    bag_path = tmp_path / "bag"
    probe = Node("probe", context=rclpy_context)
    publisher = probe.create_publisher(Reasoning, TOPIC, QoSProfile(depth=1000))
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(probe)
    process = start("record", "--output", str(bag_path), "--topics", TOPIC)
    try:
        assert spin_until(executor, lambda: publisher.get_subscription_count() > 0, 20.0)
        # Publish throughout, so that the signal lands while messages arrive.
        signal_at = time.monotonic() + 1.0
        deadline = signal_at + 15.0
        published = 0
        signalled = False
        while process.poll() is None and time.monotonic() < deadline:
            publisher.publish(Reasoning(text=f"message {published}"))
            published += 1
            if not signalled and time.monotonic() >= signal_at:
                process.send_signal(signum)
                signalled = True
            time.sleep(0.002)
        stdout = assert_clean_exit(process, f"wrote {bag_path}:")
    finally:
        if process.poll() is None:
            process.kill()
        executor.shutdown()
        probe.destroy_node()

    counted = printed_count(stdout, TOPIC)
    assert 0 < counted <= published
    texts = [deserialize_message(m.raw, Reasoning).text for m in read_messages(bag_path)]
    assert texts == [f"message {i}" for i in range(counted)]  # reliable: none lost, in order
    assert mcap_topic_counts(bag_path) == {TOPIC: counted}


@pytest.mark.parametrize("signum", SIGNALS)
def test_replay_stops_on_a_signal_with_its_counts(
    signum: signal.Signals, rclpy_context: Context, tmp_path: Path
) -> None:
    bag_path = tmp_path / "bag"
    with BagRecorder(bag_path) as bag:
        bag.add_topic(TOPIC, TOPIC_TYPE)
        for i in range(20):  # 2 s of bag, 20 s at the rate played
            bag.write(TOPIC, 1_000_000_000 + 100_000_000 * i, serialize_message(Reasoning()))
    probe = Node("probe", context=rclpy_context)
    received: list[Reasoning] = []
    probe.create_subscription(Reasoning, TOPIC, received.append, QoSProfile(depth=100))
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(probe)
    process = start("replay", str(bag_path), "--rate", "0.1", "--delay", "20")
    try:
        assert spin_until(executor, lambda: len(received) >= 2, 25.0), received
        process.send_signal(signum)
        stdout = assert_clean_exit(process, "played:")
    finally:
        if process.poll() is None:
            process.kill()
        executor.shutdown()
        probe.destroy_node()
    assert 2 <= printed_count(stdout, TOPIC) < 20


@pytest.mark.parametrize(
    ("arguments", "status", "reason"),
    [
        pytest.param((), 0, "no topic to record appeared", id="every-topic"),
        pytest.param(("--topics", TOPIC), 1, f"no publisher appeared on {TOPIC}", id="named"),
    ],
)
def test_recording_nothing_warns_and_leaves_a_readable_bag(
    arguments: tuple[str, ...], status: int, reason: str, ros_domain: int, tmp_path: Path
) -> None:
    bag_path = tmp_path / "bag"
    process = start("record", "--output", str(bag_path), "--duration", "1.5", *arguments)
    stdout, stderr = process.communicate(timeout=30.0)
    assert process.returncode == status, stdout + stderr
    assert f"warning: {bag_path} is empty" in stderr and reason in stderr
    assert f"ROS_DOMAIN_ID {ros_domain}" in stderr
    assert "Traceback" not in stderr
    contents = bag_contents(bag_path)
    assert (contents.topics, contents.message_count) == ({}, 0)
    assert mcap_topic_counts(bag_path) == {}


def test_recording_silent_publishers_warns_and_leaves_a_readable_bag(
    rclpy_context: Context, tmp_path: Path
) -> None:
    bag_path = tmp_path / "bag"
    probe = Node("probe", context=rclpy_context)
    probe.create_publisher(Reasoning, TOPIC, QoSProfile(depth=10))  # never publishes
    try:
        # Long enough for discovery on a busy machine too.
        process = start("record", "--output", str(bag_path), "--duration", "5")
        stdout, stderr = process.communicate(timeout=30.0)
    finally:
        probe.destroy_node()
    assert process.returncode == 0, stdout + stderr
    assert printed_count(stdout, TOPIC) == 0
    assert f"{TOPIC} had publishers but none published while recording" in stderr, stderr
    contents = bag_contents(bag_path)
    assert (contents.topics, contents.message_count) == ({TOPIC: TOPIC_TYPE}, 0)
    assert mcap_topic_counts(bag_path) == {}
