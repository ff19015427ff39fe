"""The camera-source interface every driver backend implements.

A source is polled by the camera driver node's clock and returns what it has for that time:
one frame per camera and, when it knows it (synthetic world, recordings), the ego pose.
Images are RGB uint8 [H, W, 3]; stamps are integer nanoseconds of the node's clock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CameraFrame:
    camera: str
    stamp_ns: int
    image: npt.NDArray[np.uint8]


@dataclass(frozen=True)
class EgoPose:
    """Ego pose in the odometry frame with body-frame velocities."""

    stamp_ns: int
    position: npt.NDArray[np.float64]  # [3]
    orientation_xyzw: npt.NDArray[np.float64]  # [4]
    linear_velocity: npt.NDArray[np.float64]  # [3], base_link
    angular_velocity: npt.NDArray[np.float64]  # [3], base_link


class CameraSource(ABC):
    @abstractmethod
    def frames(self, stamp_ns: int) -> list[CameraFrame]:
        """Frames captured at (or newest before) `stamp_ns`, one per camera that has one."""

    def prefetch(self, stamp_ns: int) -> None:  # noqa: B027 - most sources cannot
        """Prepare the frames for a coming `stamp_ns` while the driver is idle, where the
        source can know them ahead (a scripted synthetic world), so that `frames` at that
        time returns at once and a frame is published at its capture stamp."""

    def ego_pose(self, stamp_ns: int) -> EgoPose | None:
        """The ego pose at `stamp_ns`, where the source knows it."""
        return None

    @property
    def logs_set_speed(self) -> bool:
        """Whether `set_speed` can give a value (a recording that logged one)."""
        return False

    def set_speed(self, stamp_ns: int) -> float | None:
        """The set speed (m/s, as /planning/set_speed gives it: 0 is not known) last
        logged at or before `stamp_ns`, where the source is a recording that logs it; else
        None. The planner's input, not the camera's: a replayed drive is planned as it was
        driven."""
        return None

    @property
    def failed_cameras(self) -> tuple[str, ...]:
        """Cameras that stopped delivering (a device unplugged); the others go on."""
        return ()

    @property
    def finished(self) -> bool:
        """A recording played to its end; a live source never finishes."""
        return False

    def close(self) -> None:  # noqa: B027 - a no-op for sources that hold nothing
        """Release devices or files."""
