"""Recordings a user brings, as camera sources of the camera driver: a video file per
camera and an image folder per camera, each with a poses file (t, x, y, yaw) for the ego
motion, drive the VLA node to outputs built from the recorded frames, stamped on the
driver's clock at their recorded times (so one recorded step apart)."""

from __future__ import annotations

import csv
import itertools
import time
from pathlib import Path

import cv2
import pytest
from alpamayo_ros_msgs.msg import PlannerConditioning
from parameter_files import parameter_file
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from recorded_drive import SPECS

from alpamayo_ros.core.contract import CAMERA_ORDER, NS_PER_S
from alpamayo_ros.core.planar import quaternion_to_yaw
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.graph import Topics
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.resources import config_file
from alpamayo_ros.ros.conversions import stamp_ns
from alpamayo_ros.sensors import create_source

FRAME_PERIOD_NS = 100_000_000
SECONDS = 6


def record(directory: Path, kind: str) -> dict[str, object]:
    """The synthetic drive written as a user would have it: per camera a video file or a
    folder of PNGs at 10 Hz, and the ego poses at 50 Hz; returns the source's options."""
    rig = CameraRig.load(config_file("rig.yaml"), CAMERA_ORDER)
    world = create_source("synthetic", rig, width=256, height=128, seed=2)
    start = 10 * NS_PER_S
    writers: dict[str, cv2.VideoWriter] = {}
    for camera in CAMERA_ORDER:
        if kind == "video":
            path = str(directory / f"{camera}.avi")
            writers[camera] = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 128))
        else:
            (directory / camera).mkdir()
    with (directory / "poses.csv").open("w", newline="") as stream:
        poses = csv.writer(stream)
        poses.writerow(["t", "x", "y", "yaw"])
        for tick in range(SECONDS * 50):
            stamp = start + tick * 20_000_000
            if tick % 5 == 0:
                for frame in world.frames(stamp):
                    bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
                    if kind == "video":
                        writers[frame.camera].write(bgr)
                    else:
                        cv2.imwrite(str(directory / frame.camera / f"{tick // 5:04d}.png"), bgr)
            pose = world.ego_pose(stamp)
            assert pose is not None
            t = (stamp - start) / NS_PER_S
            yaw = quaternion_to_yaw(*pose.orientation_xyzw)
            poses.writerow([f"{t:.3f}", pose.position[0], pose.position[1], yaw])
    for writer in writers.values():
        writer.release()
    poses_file = str(directory / "poses.csv")
    if kind == "video":
        return {
            "files": [str(directory / f"{c}.avi") for c in CAMERA_ORDER],
            "poses_file": poses_file,
        }
    return {
        "paths": [str(directory / c) for c in CAMERA_ORDER],
        "rate_hz": 10.0,
        "poses_file": poses_file,
    }


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
