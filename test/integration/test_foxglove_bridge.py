"""The Foxglove bridge serves the graph's topics to a WebSocket client: a channel per topic
with its ROS 2 definition as schema, and the messages as the CDR bytes published, each
topic on the QoS its publishers offer (a reliable reasoning topic, best-effort cameras,
a latched /tf_static)."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import threading
from pathlib import Path

import pytest
import websockets
import yaml
from alpamayo_ros_msgs.msg import Reasoning
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage

from alpamayo_ros.graph import NODES, Topics, default_parameter_file
from alpamayo_ros.launcher import GraphProcesses

CAMERA = "/cameras/front_wide_120fov/image_raw"
TOPICS = {Topics.REASONING, CAMERA, "/tf_static"}
MESSAGE_DATA = 0x01  # the server's binary opcode for a message


def parameters(tmp_path: Path, port: int) -> Path:
    document = yaml.safe_load(default_parameter_file().read_text())
    document["foxglove_bridge"] = {"ros__parameters": {"port": port, "discovery_period_s": 0.2}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


async def advertised_then_one_message(
    port: int, topic: str, deadline_s: float
) -> tuple[dict[str, dict], bytes]:
    """The channels the server advertises (by topic) once every topic of TOPICS is there,
    then the payload of the first message on `topic` after subscribing to it."""
    uri = f"ws://127.0.0.1:{port}"
    async with asyncio.timeout(deadline_s):
        while True:  # the server starts with the node
            try:
                connection = await websockets.connect(
                    uri, subprotocols=["foxglove.sdk.v1", "foxglove.websocket.v1"]
                )
                break
            except OSError:
                await asyncio.sleep(0.2)
        async with connection:
            channels: dict[str, dict] = {}
            while not set(channels) >= TOPICS:
                frame = await connection.recv()
                if isinstance(frame, str):
                    message = json.loads(frame)
                    if message["op"] == "advertise":
                        channels.update({c["topic"]: c for c in message["channels"]})
            subscribe = json.dumps(
                {
                    "op": "subscribe",
                    "subscriptions": [{"id": 7, "channelId": channels[topic]["id"]}],
                }
            )
            await connection.send(subscribe)
            while True:
                frame = await connection.recv()
                if isinstance(frame, bytes) and frame[0] == MESSAGE_DATA:
                    subscription, _ = struct.unpack_from("<IQ", frame, 1)
                    assert subscription == 7
                    return channels, frame[13:]
                if isinstance(frame, str) and "Unknown channel" in json.loads(frame).get(
                    "message", ""
                ):
                    # foxglove-sdk can advertise a channel to a client a moment before its
                    # server accepts subscriptions to it (seen in 5 of 10 runs with a core
                    # busy): a client that subscribes at once is told so, and asks again.
                    await asyncio.sleep(0.1)
                    await connection.send(subscribe)


def test_the_bridge_serves_a_channel_per_topic_with_the_published_bytes(
    rclpy_context: Context, tmp_path: Path
) -> None:
    # Below Linux's ephemeral ports (32768 and up), which the OS may have handed out.
    port = 20000 + os.getpid() % 12000
    node = Node("foxglove_test_publisher", context=rclpy_context)
    reasoning = node.create_publisher(Reasoning, Topics.REASONING, 10)
    camera = node.create_publisher(Image, CAMERA, qos_profile_sensor_data)
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    node.create_publisher(TFMessage, "/tf_static", latched).publish(TFMessage())
    message = Reasoning(text="Slow down since a pedestrian is crossing ahead.")
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    stop = threading.Event()

    def publish() -> None:
        while not stop.wait(0.05):
            reasoning.publish(message)
            camera.publish(Image(height=2, width=2, encoding="rgb8", step=6, data=[0] * 12))
            executor.spin_once(timeout_sec=0)

    bridge = (spec for spec in NODES if spec.name == "foxglove_bridge")
    publisher = threading.Thread(target=publish, daemon=True)
    with GraphProcesses(parameters(tmp_path, port), nodes=tuple(bridge)) as graph:
        publisher.start()
        try:
            channels, payload = asyncio.run(
                advertised_then_one_message(port, Topics.REASONING, deadline_s=60.0)
            )
            graph.check()
        finally:
            stop.set()
            publisher.join()
    node.destroy_node()
    assert channels[Topics.REASONING]["schemaName"] == "alpamayo_ros_msgs/msg/Reasoning"
    assert channels[CAMERA]["schemaName"] == "sensor_msgs/msg/Image"
    assert channels["/tf_static"]["schemaName"] == "tf2_msgs/msg/TFMessage"
    for channel in channels.values():
        assert channel["encoding"] == "cdr" and channel["schemaEncoding"] == "ros2msg"
    assert "MSG: std_msgs/Header" in channels[Topics.REASONING]["schema"]
    # The bytes as published (CDR padding is not part of the content, so compare decoded).
    assert deserialize_message(payload, Reasoning) == message


def test_a_bad_port_is_refused_before_starting(tmp_path: Path) -> None:
    from alpamayo_ros.parameters import ParameterError

    with pytest.raises(ParameterError, match="must be a port"):
        GraphProcesses(parameters(tmp_path, 70000), nodes=())
