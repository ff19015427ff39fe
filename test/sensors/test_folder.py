"""The folder source plays one image folder per camera at the images' recorded times, taken
from a stamps.csv, a frame rate or the file names."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.resources import repository_root
from alpamayo_ros.sensors.base import CameraFrame
from alpamayo_ros.sensors.folder import FolderSource
from alpamayo_ros.sensors.playback import SourceError

RIG = CameraRig.load(repository_root() / "config" / "rig.yaml", CAMERA_ORDER[:2])
LEFT, FRONT = CAMERA_ORDER[:2]
START_NS = 1_000_000_000_000
MS = 1_000_000


def image_folder(folder: Path, names: list[str]) -> str:
    """PNG images named `names`; image k is uniformly blue at level 10 (k + 1)."""
    folder.mkdir()
    for index, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((24, 32, 3), (10 * (index + 1), 0, 0), np.uint8))
    return str(folder)


def played(frames: list[CameraFrame]) -> dict[str, tuple[int, int]]:
    """camera -> (image index in its folder, stamp); checks the image came out RGB."""
    result = {}
    for frame in frames:
        assert frame.image.shape == (24, 32, 3) and frame.image.dtype == np.uint8
        red, green, blue = (int(frame.image[0, 0, channel]) for channel in range(3))
        assert red == green == 0 and blue % 10 == 0
        result[frame.camera] = (blue // 10 - 1, frame.stamp_ns)
    return result


def test_stamps_from_names_in_seconds_start_at_the_earliest_camera(tmp_path: Path) -> None:
    left = image_folder(
        tmp_path / "left",
        ["1700000000.000.png", "1700000000.100.png", "1700000000.250.png", "1700000000.400.png"],
    )
    front = image_folder(tmp_path / "front", ["1700000000.050.png", "1700000000.300.png"])
    source = FolderSource(RIG, paths=[left, front])
    assert played(source.frames(START_NS)) == {LEFT: (0, START_NS)}  # front starts at 50 ms
    assert played(source.frames(START_NS + 60 * MS)) == {FRONT: (0, START_NS + 50 * MS)}
    # 0.1 s and 0.25 s are both due: only the newest comes, at its own time.
    assert played(source.frames(START_NS + 260 * MS)) == {LEFT: (2, START_NS + 250 * MS)}
    assert source.frames(START_NS + 260 * MS) == []  # never an image twice
    assert not source.finished
    assert played(source.frames(START_NS + 5_000 * MS)) == {
        LEFT: (3, START_NS + 400 * MS),
        FRONT: (1, START_NS + 300 * MS),
    }
    assert source.finished


def test_stamps_from_names_in_nanoseconds_keep_every_digit(tmp_path: Path) -> None:
    names = ["1700000000000000000.png", "1700000000033333333.png", "1700000000066666667.png"]
    folder = image_folder(tmp_path / "left", names)
    front = image_folder(tmp_path / "front", ["1700000000000000001.png"])
    source = FolderSource(RIG, paths=[folder, front], stamp_unit="ns", playback_rate=0.5)
    assert played(source.frames(START_NS)) == {LEFT: (0, START_NS)}
    assert played(source.frames(START_NS + 1)) == {}  # front's 1 ns is 2 ns at rate 0.5
    assert played(source.frames(START_NS + 2)) == {FRONT: (0, START_NS + 2)}
    assert played(source.frames(START_NS + 70 * MS)) == {LEFT: (1, START_NS + 66_666_666)}
    assert played(source.frames(START_NS + 140 * MS)) == {LEFT: (2, START_NS + 133_333_334)}


def test_a_stamps_file_comes_before_the_rate_which_comes_before_the_names(
    tmp_path: Path,
) -> None:
    listed = image_folder(tmp_path / "listed", ["a.png", "b.png", "c.png"])
    (tmp_path / "listed" / "stamps.csv").write_text("file,t\nc.png,1.25\na.png,0\nb.png,0.5\n")
    paced = image_folder(tmp_path / "paced", [f"frame_{k:03d}.png" for k in range(30)])
    source = FolderSource(RIG, paths=[listed, paced], rate_hz=10.0)
    assert played(source.frames(START_NS)) == {LEFT: (0, START_NS), FRONT: (0, START_NS)}
    assert played(source.frames(START_NS + 520 * MS)) == {
        LEFT: (1, START_NS + 500 * MS),
        FRONT: (5, START_NS + 500 * MS),
    }
    assert played(source.frames(START_NS + 1_300 * MS)) == {
        LEFT: (2, START_NS + 1_250 * MS),
        FRONT: (13, START_NS + 1_300 * MS),
    }


def test_an_image_that_does_not_decode_is_skipped_and_counted(tmp_path: Path) -> None:
    left = image_folder(tmp_path / "left", [f"{k}.png" for k in range(4)])
    front = image_folder(tmp_path / "front", [f"{k}.png" for k in range(4)])
    (tmp_path / "left" / "1.png").write_bytes(b"\x89PNG truncated")
    source = FolderSource(RIG, paths=[left, front])
    source.frames(START_NS)
    assert played(source.frames(START_NS + 1_000 * MS)) == {FRONT: (1, START_NS + 1_000 * MS)}
    assert source.skipped_files == 1
    assert played(source.frames(START_NS + 2_000 * MS)) == {
        LEFT: (2, START_NS + 2_000 * MS),
        FRONT: (2, START_NS + 2_000 * MS),
    }
    assert source.skipped_files == 1


def test_ego_pose_comes_from_the_poses_file_in_the_folders_seconds(tmp_path: Path) -> None:
    left = image_folder(tmp_path / "left", ["100.0.png", "101.0.png"])
    front = image_folder(tmp_path / "front", ["100.5.png"])
    poses = tmp_path / "poses.csv"
    poses.write_text("t,x,y,yaw\n100.0,0.0,0.0,0.0\n102.0,4.0,0.0,0.0\n")
    source = FolderSource(RIG, paths=[left, front], poses_file=str(poses))
    source.frames(START_NS)
    pose = source.ego_pose(START_NS + 500 * MS)
    assert pose is not None and pose.stamp_ns == START_NS + 500 * MS
    np.testing.assert_allclose(pose.position, [1.0, 0.0, 0.0])
    assert FolderSource(RIG, paths=[left, front]).ego_pose(START_NS) is None


def test_unusable_folders_are_named(tmp_path: Path) -> None:
    named = image_folder(tmp_path / "named", ["frame_000.png", "frame_001.png"])
    numbered = image_folder(tmp_path / "numbered", ["1.png", "2.png"])
    with pytest.raises(
        SourceError, match=r"frame_000\.png: the file name is not a stamp; set rate_hz, or .*stamps"
    ):
        FolderSource(RIG, paths=[numbered, named])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(
        SourceError, match=f"^camera {FRONT}: no images .* in folder '{re.escape(str(empty))}'$"
    ):
        FolderSource(RIG, paths=[numbered, str(empty)])
    missing = tmp_path / "missing"
    with pytest.raises(
        SourceError, match=f"^camera {LEFT}: image folder '{re.escape(str(missing))}' not found$"
    ):
        FolderSource(RIG, paths=[str(missing), numbered])
    with pytest.raises(SourceError, match=r"^paths: 1 given for 2 cameras"):
        FolderSource(RIG, paths=[numbered])
    (tmp_path / "named" / "stamps.csv").write_text("file,t\nframe_000.png,1.0\n")
    with pytest.raises(
        SourceError, match=r"stamps\.csv: 1 image.* without a time, first frame_001"
    ):
        FolderSource(RIG, paths=[numbered, named])
    (tmp_path / "named" / "stamps.csv").write_text("file,t\nframe_000.png,1\nframe_001.png,1\n")
    with pytest.raises(
        SourceError, match=r"frame_001\.png: its time is not after the image before"
    ):
        FolderSource(RIG, paths=[numbered, named])
