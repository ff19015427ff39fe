"""Every interface type crosses to another process over real DDS and back unchanged."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
from interface_samples import INTERFACE_NAMES, interface_class, sample
from rclpy.executors import SingleThreadedExecutor

ECHO = Path(__file__).with_name("echo_node.py")


@pytest.fixture
def echo_process(ros_domain: int):
    process = subprocess.Popen(
        [sys.executable, str(ECHO)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout.readline().strip() == "ready"
    yield process
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        # Seen once in a clean-clone run: the echo node hung in DDS teardown after its
        # round trips were done. What this test checks is the round trip, not a shutdown
        # under a loaded machine; the node is ended so that nothing outlives the test.
        process.kill()
        process.wait(10)


def test_every_interface_round_trips_between_processes(echo_process, rclpy_context) -> None:
    from echo_node import QOS

    node = rclpy.create_node("interface_roundtrip", context=rclpy_context)
    received: dict[str, object] = {}
    expected = {name: sample(name, seed=3 + i) for i, name in enumerate(INTERFACE_NAMES)}
    publishers = {}
    for name in INTERFACE_NAMES:
        msg_type = interface_class(name)
        publishers[name] = node.create_publisher(msg_type, f"in/{name}", QOS)
        node.create_subscription(
            msg_type, f"out/{name}", lambda msg, name=name: received.setdefault(name, msg), QOS
        )
    for name, publisher in publishers.items():
        publisher.publish(expected[name])

    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    deadline = time.monotonic() + 20.0
    while len(received) < len(INTERFACE_NAMES) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    executor.shutdown()
    node.destroy_node()

    assert sorted(received) == INTERFACE_NAMES
    for name in INTERFACE_NAMES:
        assert received[name] == expected[name], name
        assert received[name] != interface_class(name)(), f"{name} sample is all defaults"
