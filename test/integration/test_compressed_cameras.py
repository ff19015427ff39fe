"""Cameras as JPEG CompressedImage (image_transport's `<topic>/compressed`): the camera
driver publishes them, the VLA node subscribes to them instead of the raw images, and its
outputs are built from those frames, stamped with their times."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from alpamayo_ros_msgs.msg import PlannerConditioning
from parameter_files import parameter_file
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage

from alpamayo_ros.core.contract import CAMERA_ORDER, FRAMES_PER_CAMERA
from alpamayo_ros.graph import NODES, Topics
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.ros.conversions import stamp_ns

SPECS = tuple(spec for spec in NODES if spec.name in ("camera_driver", "vla_inference"))


def test_the_vla_node_runs_on_compressed_cameras(rclpy_context: Context, tmp_path: Path) -> None:
    params = parameter_file(
        tmp_path,
        "constant_velocity",
        camera_driver={"publish_compressed": True},
        vla_inference={"image_transport": "compressed"},
    )
    node = Node("compressed_probe", context=rclpy_context)
    received: dict[str, list] = defaultdict(list)
    for camera in CAMERA_ORDER:
        node.create_subscription(
            CompressedImage,
            f"/sensing/camera/{camera}/image_raw/compressed",
            received[camera].append,
            qos_profile_sensor_data,
        )
    node.create_subscription(
        PlannerConditioning, Topics.CONDITIONING, received["conditioning"].append, 10
    )
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)

    def frames() -> set[int]:
        return {stamp_ns(m.header.stamp) for camera in CAMERA_ORDER for m in received[camera]}

    def seen_whole() -> list[PlannerConditioning]:
        """Outputs all of whose inputs came after the probe saw every camera (before that,
        discovery may have matched the VLA node sooner than the probe)."""
        if not all(received[camera] for camera in CAMERA_ORDER):
            return []
        since = max(stamp_ns(received[camera][0].header.stamp) for camera in CAMERA_ORDER)
        return [
            output
            for output in received["conditioning"]
            if min(stamp_ns(s) for s in output.info.input_stamps) >= since
        ]

    try:
        with GraphProcesses(params, nodes=SPECS) as graph:
            deadline = time.monotonic() + 40.0
            while len(seen_whole()) < 5:
                graph.check()
                assert time.monotonic() < deadline, {k: len(v) for k, v in received.items()}
                executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
    assert all(m.format == "rgb8; jpeg compressed bgr8" for m in received[CAMERA_ORDER[0]])
    # Every output is stamped with a frame's time and built from frames the probe saw too
    # (best effort may drop one at the probe, so most outputs, not all, show every input).
    published, outputs = frames(), seen_whole()
    complete = 0
    for output in outputs:
        assert len(output.info.input_stamps) == len(CAMERA_ORDER) * FRAMES_PER_CAMERA
        assert stamp_ns(output.header.stamp) in published
        complete += {stamp_ns(s) for s in output.info.input_stamps} <= published
    assert complete >= 0.6 * len(outputs), (complete, len(outputs))
