"""Recordings a user brings, as camera sources of the camera driver: a video file per
camera and an image folder per camera, each with a poses file (t, x, y, yaw) for the ego
motion, drive the VLA node to outputs built from the recorded frames, stamped on the
driver's clock at their recorded times (so one recorded step apart)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from alpamayo_ros_msgs.msg import PlannerConditioning
from parameter_files import parameter_file
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from recorded_drive import SPECS
from user_recordings import record

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.graph import Topics
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.ros.conversions import stamp_ns

FRAME_PERIOD_NS = 100_000_000


@pytest.mark.parametrize("kind", ["video", "folder"])
def test_a_recording_with_a_poses_file_drives_the_graph(
    rclpy_context: Context, tmp_path: Path, kind: str
) -> None:
    options = record(tmp_path, kind)
    params = parameter_file(
        tmp_path, "constant_velocity", camera_driver={"source": kind, kind: options}
    )
    node = Node("recorded_probe", context=rclpy_context)
    outputs: list[PlannerConditioning] = []
    node.create_subscription(PlannerConditioning, Topics.CONDITIONING, outputs.append, 100)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    try:
        nodes = (SPECS["camera_driver"], SPECS["vla_inference"])
        with GraphProcesses(params, nodes=nodes) as graph:
            deadline = time.monotonic() + 60.0
            while len(outputs) < 5:
                graph.check()
                assert time.monotonic() < deadline, f"{len(outputs)} outputs"
                executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
    for msg in outputs:
        stamps = sorted({stamp_ns(s) for s in msg.info.input_stamps})
        assert list(msg.info.input_cameras) == list(CAMERA_ORDER)
        # The four frames per camera are recorded steps, 0.1 s apart, ending at t0.
        assert stamps[-1] == stamp_ns(msg.header.stamp)
        assert all(b - a == FRAME_PERIOD_NS for a, b in itertools.pairwise(stamps))
