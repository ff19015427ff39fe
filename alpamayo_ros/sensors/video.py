"""Video source: one video file per camera (mp4, mkv, avi, through OpenCV), played on the
node's clock at its recorded timing.

The cameras' files are one synchronised recording: each file's time starts at 0 with its
first frame, and a frame is due when the node's clock reaches its presentation time
(divided by the playback rate). A driver polling slower than the video gets the newest due
frame of each camera and the older ones are dropped, as a live camera would drop them; a
camera whose next frame is not due yet is left out of that poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.sensors.playback import (
    MediaClock,
    PoseTrack,
    SourceError,
    StreamPlayback,
    per_camera,
)

NS_PER_MS = 1_000_000


class _VideoStream:
    """One camera's file read forward, with its next frame grabbed (its presentation time
    known) but not yet decoded.

    Presentation times are the container's (CAP_PROP_POS_MSEC of each grabbed frame). A
    backend that has none reports 0 for every frame; when a frame after the first reports
    0, the file is timed by frame index / CAP_PROP_FPS from then on.
    """

    def __init__(self, camera: str, path: str) -> None:
        self.camera = camera
        self.path = path
        if not Path(path).is_file():
            raise SourceError(f"camera {camera}: video file '{path}' not found")
        self._capture = cv2.VideoCapture(path)
        if not self._capture.isOpened():
            self.close()
            raise SourceError(f"camera {camera}: cannot open video file '{path}'")
        self._frames_per_s = self._capture.get(cv2.CAP_PROP_FPS)
        self._timed_by_index = False
        self._index = -1
        self.next_ns: int | None = None  # the grabbed frame's time; None past the end
        self._grab_next()
        if self.next_ns is None:
            self.close()
            raise SourceError(f"camera {camera}: no frame can be read from video file '{path}'")

    def _grab_next(self) -> None:
        if not self._capture.grab():
            self.next_ns = None
            return
        self._index += 1
        self.next_ns = self._presentation_ns()

    def _presentation_ns(self) -> int:
        position_ms = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        if self._index > 0 and position_ms <= 0.0:
            self._timed_by_index = True
        if not self._timed_by_index:
            return round(position_ms * NS_PER_MS)
        if not self._frames_per_s > 0.0:
            raise SourceError(
                f"camera {self.camera}: video file '{self.path}' has neither frame times "
                "nor a frame rate"
            )
        return round(self._index * NS_PER_S / self._frames_per_s)

    def newest_due(self, media_ns: int) -> tuple[int, npt.NDArray[np.uint8]] | None:
        """The newest frame at or before `media_ns` not taken before, as (time, RGB image).

        OpenCV decodes only the frame grabbed last, so whether a due frame is the newest is
        known only once the one after it is grabbed: each due frame is retrieved before
        its successor is grabbed, and all but the newest are dropped.
        """
        newest: tuple[int, cv2.typing.MatLike] | None = None
        while self.next_ns is not None and self.next_ns <= media_ns:
            retrieved, bgr = self._capture.retrieve()
            if retrieved:
                newest = (self.next_ns, bgr)
            self._grab_next()
        if newest is None:
            return None
        frame_ns, bgr = newest
        return frame_ns, np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)

    @property
    def exhausted(self) -> bool:
        return self.next_ns is None

    def close(self) -> None:
        self._capture.release()


class VideoSource(StreamPlayback):
    """Frames of one video file per camera (in the rig's camera order), stamped on the node's
    clock at `first poll + presentation time / rate`; the optional poses file's `t` is on
    the same time base (seconds from the files' start)."""

    def __init__(
        self,
        rig: CameraRig,
        files: Sequence[str] = (),
        rate: float = 1.0,
        poses_file: str = "",
    ) -> None:
        cameras_and_files = per_camera(rig, "files", files)
        clock = MediaClock(0, rate)
        poses = PoseTrack.load(Path(poses_file)) if poses_file else None
        self._videos: list[_VideoStream] = []
        with ExitStack() as opened:  # a file that fails closes those opened before it
            for camera, path in cameras_and_files:
                self._videos.append(_VideoStream(camera, path))
                opened.callback(self._videos[-1].close)
            opened.pop_all()
        super().__init__(self._videos, clock, poses)

    def close(self) -> None:
        for video in self._videos:
            video.close()
