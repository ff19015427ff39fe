"""The device source reads each camera on its own thread and stamps frames at capture.

There is no camera on a test machine. OpenCV's VideoCapture opens a video file path as it
opens a device path, so a generated video file stands in for each device; a wrapper lets
the test decide when each read returns, as a camera's read returns when its next frame
comes, so that which frame is the newest, and when it arrived, is known.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
from indexed_videos import LEVEL_STEP, write_video

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.resources import repository_root
from alpamayo_ros.sensors.base import CameraFrame
from alpamayo_ros.sensors.device import DeviceSource
from alpamayo_ros.sensors.playback import SourceError

DEVICE_FPS = 30.0  # what the stand-in files claim

RIG = CameraRig.load(repository_root() / "config" / "rig.yaml", CAMERA_ORDER[:2])
LEFT, FRONT = CAMERA_ORDER[:2]
MS = 1_000_000
NODE_CLOCK_AHEAD_NS = 1_000_000 * MS
OPENCV_CAPTURE = cv2.VideoCapture


class SteppedDevice:
    """A video file read as a camera: each read waits until the test lets a frame come
    (`let_frames`). Wraps rather than subclasses VideoCapture, whose Python subclasses
    crash OpenCV 5 when garbage-collected."""

    opened: ClassVar[list[SteppedDevice]] = []

    def __init__(self, device: str | int, *backend: int) -> None:
        self._capture = OPENCV_CAPTURE(device, *backend)
        self._permits = threading.Semaphore(0)
        self.reads_begun = 0  # the thread begins read n + 1 once it has stored frame n
        self.read_returned_ns: list[int] = []  # monotonic instant each read returned
        self.released = False
        self.settings: dict[int, float] = {}
        SteppedDevice.opened.append(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._capture, name)

    def let_frames(self, count: int) -> None:
        self._permits.release(count)

    def read(self) -> tuple[bool, Any]:
        self.reads_begun += 1
        self._permits.acquire()
        result = self._capture.read()
        self.read_returned_ns.append(time.monotonic_ns())
        return result

    def set(self, property_id: int, value: float) -> bool:
        self.settings[property_id] = value
        return bool(self._capture.set(property_id, value))

    def release(self) -> None:
        self.released = True
        self._capture.release()


@pytest.fixture
def devices(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SteppedDevice]]:
    """The stepped devices the test's sources open, in opening order; afterwards every
    read is let through, so that no capture thread outlives its test."""
    SteppedDevice.opened = []
    monkeypatch.setattr(cv2, "VideoCapture", SteppedDevice)
    yield SteppedDevice.opened
    for device in SteppedDevice.opened:
        device.let_frames(1_000)


def frame_index(frame: CameraFrame) -> int:
    assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
    assert frame.image[..., 0].max() < 6  # red stays dark: the image came out RGB
    return round(float(frame.image[..., 2].mean()) / LEVEL_STEP)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 2.0
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def close_while_delivering(source: DeviceSource, devices: list[SteppedDevice]) -> None:
    """Close the source as a driver does: every capture thread is blocked in a read, and
    each camera's next frame comes 20 ms into the close."""
    threading.Timer(0.02, lambda: [device.let_frames(1) for device in devices]).start()
    source.close()


def node_now_ns() -> int:
    """A node clock running NODE_CLOCK_AHEAD_NS ahead of the monotonic one."""
    return time.monotonic_ns() + NODE_CLOCK_AHEAD_NS


def assert_stamped_at(frame: CameraFrame, read_returned_ns: int) -> None:
    """Stamped, on the node clock, when the device's read returned the frame (give or take
    the thread switches between two clock reads)."""
    assert abs(frame.stamp_ns - (read_returned_ns + NODE_CLOCK_AHEAD_NS)) < 20 * MS


def test_a_poll_gets_the_newest_frame_stamped_when_it_was_captured(
    devices: list[SteppedDevice], tmp_path: Path
) -> None:
    files = [
        write_video(tmp_path / "left.avi", 10, DEVICE_FPS),
        write_video(tmp_path / "front.avi", 10, DEVICE_FPS),
    ]
    source = DeviceSource(RIG, devices=files)
    left, front = devices
    left.let_frames(3)
    wait_until(lambda: left.reads_begun == 4)  # three frames stored
    time.sleep(0.2)
    poll_ns = node_now_ns()
    frames = source.frames(poll_ns)
    assert [(frame.camera, frame_index(frame)) for frame in frames] == [(LEFT, 2)]
    assert_stamped_at(frames[0], left.read_returned_ns[2])  # 0.2 s before the poll
    assert source.frames(node_now_ns()) == []  # never a frame twice; front has none yet
    front.let_frames(1)
    left.let_frames(1)
    wait_until(lambda: front.reads_begun == 2 and left.reads_begun == 5)
    later = {frame.camera: frame for frame in source.frames(node_now_ns())}
    assert {camera: frame_index(frame) for camera, frame in later.items()} == {LEFT: 3, FRONT: 0}
    assert_stamped_at(later[LEFT], left.read_returned_ns[3])
    assert_stamped_at(later[FRONT], front.read_returned_ns[0])
    assert frames[0].stamp_ns < later[LEFT].stamp_ns
    close_while_delivering(source, devices)


def test_a_camera_that_stops_is_reported_and_the_others_go_on(
    devices: list[SteppedDevice], tmp_path: Path
) -> None:
    """A file that ends stands in for a camera unplugged: its read fails."""
    files = [
        write_video(tmp_path / "left.avi", 2, DEVICE_FPS),
        write_video(tmp_path / "front.avi", 10, DEVICE_FPS),
    ]
    source = DeviceSource(RIG, devices=files)
    left, front = devices
    assert source.failed_cameras == ()
    left.let_frames(3)  # two frames, then the failing read
    front.let_frames(1)
    wait_until(lambda: source.failed_cameras == (LEFT,) and front.reads_begun == 2)
    frames = source.frames(node_now_ns())
    assert [(frame.camera, frame_index(frame)) for frame in frames] == [(FRONT, 0)]
    front.let_frames(1)
    wait_until(lambda: front.reads_begun == 3)
    assert [frame_index(frame) for frame in source.frames(node_now_ns())] == [1]
    assert left.released  # its thread released the capture when it ended
    close_while_delivering(source, devices)


def test_close_stops_every_thread_and_releases_the_devices(
    devices: list[SteppedDevice], tmp_path: Path
) -> None:
    files = [
        write_video(tmp_path / "left.avi", 10, DEVICE_FPS),
        write_video(tmp_path / "front.avi", 10, DEVICE_FPS),
    ]
    source = DeviceSource(RIG, devices=files, width=640, height=480, fps=15.0)
    assert all(
        device.settings
        == {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480, cv2.CAP_PROP_FPS: 15.0}
        for device in devices
    )
    wait_until(lambda: all(device.reads_begun == 1 for device in devices))
    threads = [thread for thread in threading.enumerate() if thread.name.startswith("camera ")]
    assert sorted(thread.name for thread in threads) == sorted(f"camera {c}" for c in (LEFT, FRONT))
    close_while_delivering(source, devices)  # the threads must end then, not read on
    assert not any(thread.is_alive() for thread in threads)
    assert all(device.released and device.reads_begun == 1 for device in devices)
    assert source.failed_cameras == ()  # stopped, not failed
    source.close()  # a second close is harmless


def test_a_device_that_does_not_open_is_named_and_the_opened_are_released(
    devices: list[SteppedDevice], tmp_path: Path
) -> None:
    file = write_video(tmp_path / "left.avi", 2, DEVICE_FPS)
    with pytest.raises(SourceError, match=f"^camera {FRONT}: cannot open device '/dev/video99'$"):
        DeviceSource(RIG, devices=[file, "/dev/video99"])
    assert [device.released for device in devices] == [True, True]
    assert not any(thread.name.startswith("camera ") for thread in threading.enumerate())
    with pytest.raises(SourceError, match=r"^devices: 1 given for 2 cameras"):
        DeviceSource(RIG, devices=[file])
