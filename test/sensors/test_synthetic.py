"""The synthetic source runs the driving world live on the node's clock."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.resources import repository_root
from alpamayo_ros.sensors import create_source

RIG = CameraRig.load(repository_root() / "config" / "rig.yaml", CAMERA_ORDER)
START_NS = 1_000_000_000_000
MS = 1_000_000


def test_frames_of_every_camera_stamped_at_world_steps() -> None:
    source = create_source("synthetic", RIG, width=128, height=64, seed=3)
    first = source.frames(START_NS)
    assert [f.camera for f in first] == list(CAMERA_ORDER)
    assert all(f.image.shape == (64, 128, 3) and f.image.dtype == np.uint8 for f in first)
    assert {f.stamp_ns for f in first} == {START_NS}
    later = source.frames(START_NS + 1_234 * MS)  # 12 world steps later
    assert {f.stamp_ns for f in later} == {START_NS + 1_200 * MS}
    assert any(np.any(a.image != b.image) for a, b in zip(first, later, strict=True))


def test_ego_pose_is_continuous_between_steps_and_across_scenarios() -> None:
    source = create_source("synthetic", RIG, seed=5, scenario_duration_s=2.0)
    source.ego_pose(START_NS)  # starts the world
    previous = source.ego_pose(START_NS + 1500 * MS)
    for k in range(1, 60):  # 50 Hz for 1.2 s across a scenario change at 2 s
        pose = source.ego_pose(START_NS + (k * 20 + 1500) * MS)
        step = np.linalg.norm(pose.position - previous.position)
        assert step < 0.02 * 30.0 + 0.5, f"ego jumped {step:.2f} m at step {k}"
        previous = pose
    assert pose.linear_velocity[0] >= 0.0


def test_unknown_scenario_type_is_named() -> None:
    with pytest.raises(ConfigurationError, match="unknown scenario type 'rally'"):
        create_source("synthetic", RIG, scenario_type="rally")
