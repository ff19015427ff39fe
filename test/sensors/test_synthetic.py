"""The synthetic source renders every camera and knows the exact ego pose."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from alpamayo_ros.configuration import UnknownName
from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.graph import repository_root
from alpamayo_ros.sensors import create_source
from alpamayo_ros.sensors.rig import CameraRig
from alpamayo_ros.sensors.synthetic import ASPHALT_RGB, MARKING_RGB, SKY_RGB

RIG = CameraRig.load(repository_root() / "config" / "rig.yaml", CAMERA_ORDER)


def test_frames_for_every_camera_with_sky_road_and_markings() -> None:
    source = create_source("synthetic", RIG, width=320, height=180)
    frames = source.frames(5_000_000_000)
    assert [frame.camera for frame in frames] == list(CAMERA_ORDER)
    for frame in frames:
        assert frame.image.shape == (180, 320, 3) and frame.image.dtype == np.uint8
        assert frame.stamp_ns == 5_000_000_000
    front = frames[1].image
    assert tuple(front[5, 160]) == SKY_RGB
    assert tuple(front[-5, 5]) == ASPHALT_RGB or tuple(front[-5, 160]) == ASPHALT_RGB
    bright = np.all(front.astype(int) >= np.array(MARKING_RGB) - 40, axis=-1)
    assert bright[90:].sum() > 50, "front camera shows no lane markings"


def test_markings_move_with_the_ego() -> None:
    source = create_source("synthetic", RIG, width=320, height=180, ego_speed_mps=10.0)
    first = source.frames(0)[1].image
    later = source.frames(300_000_000)[1].image  # 3 m further
    assert np.any(first != later)


def test_ego_pose_follows_the_road_arc() -> None:
    source = create_source("synthetic", RIG, ego_speed_mps=10.0, ego_curvature=0.02)
    source.frames(1_000_000_000)  # the first request starts the drive
    pose = source.ego_pose(3_000_000_000)  # 20 m along a 50 m radius arc
    yaw = 0.02 * 20.0
    np.testing.assert_allclose(
        pose.position[:2], [math.sin(yaw) / 0.02, (1 - math.cos(yaw)) / 0.02]
    )
    assert Rotation.from_quat(pose.orientation_xyzw).as_euler("xyz")[2] == pytest.approx(yaw)
    assert pose.angular_velocity[2] == pytest.approx(0.2)


def test_unknown_source_is_named() -> None:
    with pytest.raises(UnknownName, match="unknown camera source 'webcam'"):
        create_source("webcam", RIG)
