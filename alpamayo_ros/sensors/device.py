"""Device source: live cameras through OpenCV (V4L2 indices and device paths, GStreamer
pipelines), one per rig camera.

A camera delivers frames at its own rate and OpenCV's read blocks until the next one, so
each camera is read on its own thread, which keeps only the newest frame and the instant it
arrived: a poll never waits for a device, never gets a queue of stale frames, and stamps
each frame when it was captured rather than when it was polled. A camera that stops (read
fails: unplugged, end of stream) is reported in `failed_cameras` and the others go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack

import cv2
import numpy as np

from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.sensors.base import CameraFrame, CameraSource
from alpamayo_ros.sensors.playback import SourceError, per_camera

# How long `close` waits for a camera's pending read: a device returns it within a frame
# period, or (V4L2) fails after its own select timeout; a thread still blocked after this
# releases its capture when that read returns (it is a daemon, so it never holds up exit).
STOP_TIMEOUT_S = 1.0


def _open_device(camera: str, device: str, width: int, height: int, fps: float) -> cv2.VideoCapture:
    """`device` is an index ("0"), a path ("/dev/video2") or a GStreamer pipeline (has "!")."""
    if device.isdigit():
        capture = cv2.VideoCapture(int(device))
    elif "!" in device:
        capture = cv2.VideoCapture(device, cv2.CAP_GSTREAMER)
    else:
        capture = cv2.VideoCapture(device)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"camera {camera}: cannot open device '{device}'")
    # A device that cannot take a setting keeps its own; the frames say which it took.
    for setting, value in (
        (cv2.CAP_PROP_FRAME_WIDTH, width),
        (cv2.CAP_PROP_FRAME_HEIGHT, height),
        (cv2.CAP_PROP_FPS, fps),
    ):
        if value > 0:
            capture.set(setting, value)
    return capture


class _LiveCamera:
    """One opened device read continuously on a daemon thread, which owns the capture and
    releases it when it ends; only the newest frame is kept, with its capture instant on
    the monotonic clock."""

    def __init__(self, name: str, capture: cv2.VideoCapture) -> None:
        self.name = name
        self._capture = capture
        self._lock = threading.Lock()
        self._newest: tuple[int, cv2.typing.MatLike] | None = None  # (monotonic ns, BGR)
        self._stopping = threading.Event()
        self.failed = False
        self._thread = threading.Thread(
            target=self._read_continuously, name=f"camera {name}", daemon=True
        )
        self._thread.start()

    def _read_continuously(self) -> None:
        try:
            while not self._stopping.is_set():
                read, bgr = self._capture.read()
                if not read:
                    break
                captured_ns = time.monotonic_ns()
                with self._lock:
                    self._newest = (captured_ns, bgr)
        finally:  # also when the backend raised: the camera is gone unless it was stopped
            self.failed = not self._stopping.is_set()
            self._capture.release()

    def take_newest(self) -> tuple[int, cv2.typing.MatLike] | None:
        """The newest frame not taken before, as (monotonic capture ns, BGR image)."""
        with self._lock:
            newest, self._newest = self._newest, None
        return newest

    def stop(self) -> None:
        """Ask the thread to end after its pending read (see `join`)."""
        self._stopping.set()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


class DeviceSource(CameraSource):
    """Live cameras, one device per rig camera (in the rig's camera order), all opened here:
    a device that does not open fails the source at once. `width`, `height` and `fps` are
    asked of every device; 0 leaves its own setting. There is no ego pose."""

    def __init__(
        self,
        rig: CameraRig,
        devices: Sequence[str] = (),
        width: int = 0,
        height: int = 0,
        fps: float = 0.0,
    ) -> None:
        cameras_and_devices = per_camera(rig, "devices", devices)
        captures = []
        with ExitStack() as opened:  # a device that fails releases those opened before it
            for camera, device in cameras_and_devices:
                captures.append(_open_device(camera, device, width, height, fps))
                opened.callback(captures[-1].release)
            opened.pop_all()
        self._cameras = [
            _LiveCamera(camera, capture)
            for (camera, _), capture in zip(cameras_and_devices, captures, strict=True)
        ]

    def frames(self, stamp_ns: int) -> list[CameraFrame]:
        """Each working camera's newest frame not returned before, stamped at its capture:
        `stamp_ns` less the time since the frame arrived."""
        now_ns = time.monotonic_ns()
        frames = []
        for camera in self._cameras:
            newest = None if camera.failed else camera.take_newest()
            if newest is not None:
                captured_ns, bgr = newest
                image = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)
                frames.append(CameraFrame(camera.name, stamp_ns - (now_ns - captured_ns), image))
        return frames

    @property
    def failed_cameras(self) -> tuple[str, ...]:
        """Cameras whose read failed (unplugged, stream ended): they return no more frames."""
        return tuple(camera.name for camera in self._cameras if camera.failed)

    def close(self) -> None:
        """Stop every camera's thread and wait, STOP_TIMEOUT_S for all together, until they
        have ended; each releases its device. Closing again does nothing more."""
        for camera in self._cameras:
            camera.stop()
        deadline_s = time.monotonic() + STOP_TIMEOUT_S
        for camera in self._cameras:
            camera.join(max(0.0, deadline_s - time.monotonic()))
