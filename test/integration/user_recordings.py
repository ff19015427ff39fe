"""Shared by the tests of user recordings: the synthetic drive written as a user would have
it, a video file or an image folder per camera with a poses file."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2

from alpamayo_ros.core.contract import CAMERA_ORDER, NS_PER_S
from alpamayo_ros.core.planar import quaternion_to_yaw
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.resources import config_file
from alpamayo_ros.sensors import create_source

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
