"""Shared by the replay tests: a short drive of the camera driver recorded to a bag."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from alpamayo_ros_msgs.msg import Trajectory
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.graph import NODES, Topics, default_parameter_file
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.nodes.bag_recorder import BagRecorderNode
from alpamayo_ros.replay.bag import BagRecorder
from alpamayo_ros.ros import conversions

SPECS = {spec.name: spec for spec in NODES}
CAMERA_TOPICS = [
    f"/sensing/camera/{camera}/{kind}"
    for camera in CAMERA_ORDER
    for kind in ("image_raw", "camera_info")
]


def spin_until(
    executor: SingleThreadedExecutor,
    condition: Callable[[], bool],
    timeout_s: float,
    check: Callable[[], object] = lambda: None,
) -> bool:
    """Spin until `condition` holds (True) or `timeout_s` passes (False), calling `check`
    (a running graph's, which raises when a node died) before each spin."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        check()
        executor.spin_once(timeout_sec=0.05)
        if condition():
            return True
    return False


def record_drive(context: Context, bag_path: Path, messages_per_topic: int) -> None:
    """The camera driver's synthetic drive (odometry and the four cameras' images and
    camera info) recorded until every topic has `messages_per_topic` messages."""
    wanted = [Topics.ODOMETRY, *CAMERA_TOPICS]
    with (
        GraphProcesses(default_parameter_file(), nodes=(SPECS["camera_driver"],)) as graph,
        BagRecorder(bag_path) as bag,
    ):
        recorder = BagRecorderNode(bag, wanted, context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(recorder)
        try:
            enough = lambda: min(bag.counts[topic] for topic in wanted) >= messages_per_topic  # noqa: E731
            assert spin_until(executor, lambda: graph.check() or enough(), 40.0), bag.counts
        finally:
            executor.shutdown()
            recorder.destroy_node()


def trajectory_array(msg: Trajectory) -> np.ndarray:
    """[T, 7]: every number of every point (time, pose, speed, acceleration, curvature)."""
    return np.stack(
        [np.asarray(getattr(msg, name), np.float64) for name in conversions.TRAJECTORY_COLUMNS],
        axis=-1,
    )
