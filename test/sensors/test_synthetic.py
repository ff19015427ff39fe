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


def test_a_poll_a_hair_before_a_step_gets_that_step_not_the_one_before() -> None:
    """A timer's tick is known to microseconds; that must not make a frame 100 ms old."""
    source = create_source("synthetic", RIG, width=64, height=32, seed=3)
    source.frames(START_NS)
    frames = source.frames(START_NS + 300 * MS - 20_000)
    assert {f.stamp_ns for f in frames} == {START_NS + 300 * MS}


def test_prefetched_frames_are_the_frames_of_their_step() -> None:
    ahead = create_source("synthetic", RIG, width=64, height=32, seed=8)
    live = create_source("synthetic", RIG, width=64, height=32, seed=8)
    for source in (ahead, live):
        source.frames(START_NS)
    for k in range(1, 6):
        ahead.prefetch(START_NS + k * 100 * MS)
        prefetched = ahead.frames(START_NS + k * 100 * MS)
        rendered = live.frames(START_NS + k * 100 * MS)
        for a, b in zip(prefetched, rendered, strict=True):
            assert a.stamp_ns == b.stamp_ns == START_NS + k * 100 * MS
            np.testing.assert_array_equal(a.image, b.image)
    # Across a scenario change (at 0.2 s here) the next world does not exist yet: the
    # frames are rendered when their time comes, from the new scenario.
    changing, reference = (
        create_source("synthetic", RIG, width=64, height=32, seed=8, scenario_duration_s=0.2)
        for _ in range(2)
    )
    for source in (changing, reference):
        source.frames(START_NS)
    changing.prefetch(START_NS + 200 * MS)
    after_change = changing.frames(START_NS + 200 * MS)
    for a, b in zip(after_change, reference.frames(START_NS + 200 * MS), strict=True):
        assert a.stamp_ns == START_NS + 200 * MS
        np.testing.assert_array_equal(a.image, b.image)


def test_ego_pose_is_continuous_between_steps_and_across_scenarios() -> None:
    source = create_source("synthetic", RIG, width=64, height=32, seed=5, scenario_duration_s=2.0)
    assert source.ego_pose(START_NS) is None  # the first frames start the world
    source.frames(START_NS)
    previous = source.ego_pose(START_NS + 1500 * MS)
    assert previous is not None
    for k in range(1, 60):  # 50 Hz for 1.2 s across a scenario change at 2 s
        pose = source.ego_pose(START_NS + (k * 20 + 1500) * MS)
        assert pose is not None
        step = np.linalg.norm(pose.position - previous.position)
        assert step < 0.02 * 30.0 + 0.5, f"ego jumped {step:.2f} m at step {k}"
        previous = pose
    assert pose.linear_velocity[0] >= 0.0


def test_unknown_scenario_type_is_named() -> None:
    with pytest.raises(ConfigurationError, match="unknown scenario type 'rally'"):
        create_source("synthetic", RIG, scenario_type="rally")
