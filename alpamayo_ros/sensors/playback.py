"""What recorded sources (video files, image folders, bags) share: the recording's time
base mapped onto the node's clock, and the ego poses recorded beside the images.

A recording has its own times (a video's presentation times, a folder's stamps, a bag's
header stamps). The camera driver polls a source on its clock; the first poll pins the
recording's start to that instant, and every later frame and pose is stamped on the node's
clock at `start + (media time - media start) / rate`, so frames and poses keep their
recorded spacing and stay aligned with each other whatever the playback rate.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.planar import yaw_to_quaternion
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.sensors.base import CameraFrame, CameraSource, EgoPose


class SourceError(ConfigurationError):
    """A camera source that cannot run: a missing file or device, an unreadable recording.
    The message names the camera or file and says why, in one line."""


class MediaClock:
    """A recording's time base on the node's clock, pinned at the first poll."""

    def __init__(self, media_start_ns: int, rate: float = 1.0) -> None:
        if not (rate > 0.0 and np.isfinite(rate)):
            raise SourceError(f"playback rate must be a positive number, got {rate!r}")
        self.media_start_ns = media_start_ns
        self.rate = rate
        self.node_start_ns: int | None = None

    def media_ns(self, node_ns: int) -> int:
        """The recording's time at `node_ns`; the first call pins the start there."""
        if self.node_start_ns is None:
            self.node_start_ns = node_ns
        return self.media_start_ns + round((node_ns - self.node_start_ns) * self.rate)

    def node_ns(self, media_ns: int) -> int:
        """The node-clock stamp of a recorded instant (after the first `media_ns` call)."""
        if self.node_start_ns is None:
            raise RuntimeError("the media clock starts at the first poll")
        return self.node_start_ns + round((media_ns - self.media_start_ns) / self.rate)


@dataclass(frozen=True)
class PoseTrack:
    """Recorded planar ego poses (odometry frame), interpolated between samples; velocities
    are those of the segment around an instant, in base_link. Never extrapolated: outside
    the recording the pose is unknown, which the VLA node reports as missing odometry."""

    stamps_ns: npt.NDArray[np.int64]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    yaw: npt.NDArray[np.float64]  # unwrapped, so interpolation never turns the long way

    @classmethod
    def from_samples(
        cls,
        stamps_ns: npt.ArrayLike,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        yaw: npt.ArrayLike,
        origin: str = "poses",
    ) -> PoseTrack:
        """Validated samples; `origin` (a file name) prefixes every error."""
        stamps = np.asarray(stamps_ns, dtype=np.int64)
        columns = [np.asarray(column, dtype=np.float64) for column in (x, y, yaw)]
        if len(stamps) < 2 or any(len(column) != len(stamps) for column in columns):
            raise SourceError(f"{origin}: needs at least two samples of t, x, y, yaw")
        if not all(np.isfinite(column).all() for column in columns):
            raise SourceError(f"{origin}: x, y and yaw must be finite")
        if not (np.diff(stamps) > 0).all():
            raise SourceError(f"{origin}: times must increase strictly")
        return cls(stamps, columns[0], columns[1], np.unwrap(columns[2]))

    @classmethod
    def load(cls, path: Path) -> PoseTrack:
        """A CSV file with the header `t,x,y,yaw` (seconds on the recording's time base,
        metres, radians), one row per pose."""
        try:
            with Path(path).open(encoding="utf-8", newline="") as stream:
                rows = list(csv.DictReader(stream))
        except OSError as error:
            raise SourceError(f"{path}: cannot read poses file ({error.strerror})") from None
        try:
            values = [[float(row[key]) for key in ("t", "x", "y", "yaw")] for row in rows]
        except (KeyError, TypeError, ValueError) as error:
            raise SourceError(f"{path}: expected the columns t,x,y,yaw ({error!r})") from None
        table = np.array(values, dtype=np.float64).reshape(-1, 4)
        stamps = np.round(table[:, 0] * NS_PER_S).astype(np.int64)
        return cls.from_samples(stamps, table[:, 1], table[:, 2], table[:, 3], str(path))

    @property
    def start_ns(self) -> int:
        return int(self.stamps_ns[0])

    def ego_pose(self, media_ns: int, stamp_ns: int) -> EgoPose | None:
        """The pose at the recorded instant `media_ns`, stamped `stamp_ns` (node clock);
        None outside the recording."""
        if not self.stamps_ns[0] <= media_ns <= self.stamps_ns[-1]:
            return None
        segment = min(int(np.searchsorted(self.stamps_ns, media_ns, side="right")), len(self.x) - 1)
        before, after = segment - 1, segment
        span_ns = int(self.stamps_ns[after] - self.stamps_ns[before])
        fraction = (media_ns - int(self.stamps_ns[before])) / span_ns
        x, y, yaw = (
            float(column[before] + fraction * (column[after] - column[before]))
            for column in (self.x, self.y, self.yaw)
        )
        dt_s = span_ns / NS_PER_S
        heading = 0.5 * (self.yaw[before] + self.yaw[after])
        forward = (
            (self.x[after] - self.x[before]) * np.cos(heading)
            + (self.y[after] - self.y[before]) * np.sin(heading)
        ) / dt_s
        return EgoPose(
            stamp_ns=stamp_ns,
            position=np.array([x, y, 0.0]),
            orientation_xyzw=yaw_to_quaternion(yaw),
            linear_velocity=np.array([forward, 0.0, 0.0]),
            angular_velocity=np.array([0.0, 0.0, (self.yaw[after] - self.yaw[before]) / dt_s]),
        )


def per_camera(rig: CameraRig, option: str, values: Sequence[str]) -> list[tuple[str, str]]:
    """`values` of the list option `option` (files, folders, devices: one per camera, in the
    rig's camera order) paired with the camera names; a list of another length is an error
    that names both counts, before anything is opened."""
    cameras = tuple(rig.cameras)
    if len(values) != len(cameras):
        raise SourceError(
            f"{option}: {len(values)} given for {len(cameras)} cameras ({', '.join(cameras)}); "
            "give one per camera, in that order"
        )
    return list(zip(cameras, values, strict=True))


class CameraStream(Protocol):
    """One camera's recorded frames (a video file, an image folder), taken forward in time."""

    camera: str

    def newest_due(self, media_ns: int) -> tuple[int, npt.NDArray[np.uint8]] | None:
        """The newest frame at or before `media_ns` not taken before, as (media time, RGB
        image); older ones not taken yet are dropped."""

    @property
    def exhausted(self) -> bool:
        """Every frame has been taken."""


class StreamPlayback(CameraSource):
    """A source playing one recorded stream per camera: each poll returns every camera's
    newest due frame, stamped on the node's clock at its recorded time, and the poses file
    gives the ego pose on the same clock."""

    def __init__(
        self, streams: Sequence[CameraStream], clock: MediaClock, poses: PoseTrack | None
    ) -> None:
        self._streams = streams
        self._clock = clock
        self._poses = poses

    def frames(self, stamp_ns: int) -> list[CameraFrame]:
        media_ns = self._clock.media_ns(stamp_ns)
        frames = []
        for stream in self._streams:
            newest = stream.newest_due(media_ns)
            if newest is not None:
                frame_ns, image = newest
                frames.append(CameraFrame(stream.camera, self._clock.node_ns(frame_ns), image))
        return frames

    def ego_pose(self, stamp_ns: int) -> EgoPose | None:
        if self._poses is None:
            return None
        return self._poses.ego_pose(self._clock.media_ns(stamp_ns), stamp_ns)

    @property
    def finished(self) -> bool:
        return all(stream.exhausted for stream in self._streams)
