"""The video source plays one file per camera on the node's clock at the files' own timing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from indexed_videos import LEVEL_STEP, write_video

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.resources import repository_root
from alpamayo_ros.sensors.base import CameraFrame
from alpamayo_ros.sensors.playback import SourceError
from alpamayo_ros.sensors.video import VideoSource

RIG = CameraRig.load(repository_root() / "config" / "rig.yaml", CAMERA_ORDER[:2])
START_NS = 1_000_000_000_000
MS = 1_000_000
FPS = 20.0  # a frame every 50 ms
OPENCV_CAPTURE = cv2.VideoCapture


class NoPresentationTimes:
    """A capture whose backend reports 0 ms for every frame and a frame rate of 10 Hz
    (wrapping, not subclassing: OpenCV 5's VideoCapture crashes when a Python subclass is
    garbage-collected)."""

    def __init__(self, path: str) -> None:
        self._capture = OPENCV_CAPTURE(path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._capture, name)

    def get(self, property_id: int) -> float:
        reported = {cv2.CAP_PROP_POS_MSEC: 0.0, cv2.CAP_PROP_FPS: 10.0}
        return reported.get(property_id, self._capture.get(property_id))


def frame_index(frame: CameraFrame) -> int:
    """Which frame of its file an RGB frame is (blue, the last channel, encodes it)."""
    assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
    assert frame.image[..., 0].max() < 6  # red stays dark: the image came out RGB
    return round(float(frame.image[..., 2].mean()) / LEVEL_STEP)


def played(frames: list[CameraFrame]) -> dict[str, tuple[int, int]]:
    """camera -> (frame index, stamp)"""
    return {frame.camera: (frame_index(frame), frame.stamp_ns) for frame in frames}


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    """Two cameras' files: 30 frames (1.5 s) and 20 frames (1 s)."""
    return [
        write_video(tmp_path / "left.avi", 30, FPS),
        write_video(tmp_path / "front.avi", 20, FPS),
    ]


def test_frames_are_stamped_at_their_presentation_times(files: list[str]) -> None:
    left, front = CAMERA_ORDER[:2]
    source = VideoSource(RIG, files=files)
    assert played(source.frames(START_NS)) == {left: (0, START_NS), front: (0, START_NS)}
    assert source.frames(START_NS + 20 * MS) == []  # frame 1 is due at 50 ms
    # Between frames 3 (150 ms) and 4: the newest due one, at its own time; 1 and 2 dropped.
    assert played(source.frames(START_NS + 170 * MS)) == {
        left: (3, START_NS + 150 * MS),
        front: (3, START_NS + 150 * MS),
    }
    assert source.frames(START_NS + 170 * MS) == []  # never a frame twice
    assert played(source.frames(START_NS + 200 * MS)) == {
        left: (4, START_NS + 200 * MS),
        front: (4, START_NS + 200 * MS),
    }
    source.close()


def test_a_file_that_ends_drops_out_and_the_source_finishes_with_the_last(
    files: list[str],
) -> None:
    left, front = CAMERA_ORDER[:2]
    source = VideoSource(RIG, files=files)
    source.frames(START_NS)
    assert played(source.frames(START_NS + 1_200 * MS)) == {
        left: (24, START_NS + 1_200 * MS),
        front: (19, START_NS + 950 * MS),  # its last frame
    }
    assert not source.finished
    assert played(source.frames(START_NS + 1_300 * MS)) == {left: (26, START_NS + 1_300 * MS)}
    assert played(source.frames(START_NS + 9_000 * MS)) == {left: (29, START_NS + 1_450 * MS)}
    assert source.finished
    assert source.frames(START_NS + 9_100 * MS) == []
    source.close()


def test_rate_two_plays_twice_as_fast(files: list[str]) -> None:
    left = CAMERA_ORDER[0]
    source = VideoSource(RIG, files=files, rate=2.0)
    source.frames(START_NS)
    stamps = []
    for k in range(1, 6):
        stamps.append(played(source.frames(START_NS + k * 25 * MS))[left])
    assert stamps == [(k, START_NS + k * 25 * MS) for k in range(1, 6)]


def test_without_presentation_times_frames_are_timed_by_index_and_rate(
    files: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cv2, "VideoCapture", NoPresentationTimes)
    left = CAMERA_ORDER[0]
    source = VideoSource(RIG, files=files)
    assert played(source.frames(START_NS))[left] == (0, START_NS)
    assert played(source.frames(START_NS + 350 * MS))[left] == (3, START_NS + 300 * MS)
    assert played(source.frames(START_NS + 2_000 * MS))[left] == (20, START_NS + 2_000 * MS)


def test_ego_pose_comes_from_the_poses_file_on_the_files_time_base(
    files: list[str], tmp_path: Path
) -> None:
    poses = tmp_path / "poses.csv"
    poses.write_text("t,x,y,yaw\n0.0,0.0,0.0,0.0\n1.0,10.0,0.0,0.0\n2.0,20.0,0.0,0.0\n")
    source = VideoSource(RIG, files=files, rate=2.0, poses_file=str(poses))
    source.frames(START_NS)
    pose = source.ego_pose(START_NS + 250 * MS)  # 0.5 s into the files at rate 2
    assert pose is not None and pose.stamp_ns == START_NS + 250 * MS
    np.testing.assert_allclose(pose.position, [5.0, 0.0, 0.0])
    np.testing.assert_allclose(pose.linear_velocity, [10.0, 0.0, 0.0])  # recorded m/s
    assert source.ego_pose(START_NS + 1_500 * MS) is None  # past the poses file
    assert VideoSource(RIG, files=files).ego_pose(START_NS) is None


def test_unusable_options_are_named(files: list[str], tmp_path: Path) -> None:
    left, front = CAMERA_ORDER[:2]
    with pytest.raises(SourceError, match=r"^files: 1 given for 2 cameras \(" + left):
        VideoSource(RIG, files=files[:1])
    missing = str(tmp_path / "gone.mp4")
    with pytest.raises(
        SourceError, match=f"^camera {front}: video file '{re.escape(missing)}' not found$"
    ):
        VideoSource(RIG, files=[files[0], missing])
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(b"not a video" * 100)
    with pytest.raises(
        SourceError, match=f"^camera {left}: cannot open video file '{re.escape(str(garbage))}'$"
    ):
        VideoSource(RIG, files=[str(garbage), files[1]])
    with pytest.raises(SourceError, match=r"poses\.csv: cannot read poses file"):
        VideoSource(RIG, files=files, poses_file=str(tmp_path / "poses.csv"))
