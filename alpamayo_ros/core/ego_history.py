"""Odometry buffer that produces the model's ego history: 16 poses at exactly 10 Hz.

Resampling is by TIME, never by message count: picking every N-th message ties the spacing
to the odometry rate (a known wrapper bug gave 1 s spacing on 100 Hz odometry).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from alpamayo_ros.core.contract import HISTORY_PERIOD_NS, HISTORY_POSES, NS_PER_S
from alpamayo_ros.core.planar import Pose2D, rotation_to_yaw
from alpamayo_ros.core.stamped import (
    AddResult,
    as_stamp_ns,
    classify_arrival,
)

# Interpolating the 10 Hz history across a longer gap between odometry samples would invent
# the motion in between; the stream must come at 1 / this or faster.
MAX_ODOMETRY_GAP_S = 0.25


class InvalidOdometry(ValueError):
    """A sample with the wrong shape: a programming error, not a sensor glitch."""


class HistoryUnavailable(RuntimeError):
    """The buffer cannot honestly produce the requested history; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def invalid_pose(position: NDArray[np.float64], quaternion: NDArray[np.float64]) -> str | None:
    """What makes a pose unusable, naming the field ("position.x is nan", "orientation is
    a zero quaternion"); None for a usable pose."""
    for group, values, axes in (("position", position, "xyz"), ("orientation", quaternion, "xyzw")):
        for axis, value in zip(axes, values, strict=True):
            if not np.isfinite(value):
                return f"{group}.{axis} is {value}"
    if not np.linalg.norm(quaternion) > 0.0:
        return "orientation is a zero quaternion"
    return None


@dataclass(frozen=True)
class EgoHistory:
    """Poses at stamps_ns (oldest first) in the ego frame at t0 = stamps_ns[-1]."""

    stamps_ns: NDArray[np.int64]  # [N]
    xyz: NDArray[np.float64]  # [N, 3], R_t0^T (xyz - xyz_t0)
    rotations: NDArray[np.float64]  # [N, 3, 3], R_t0^T R

    def planar_pose_at(self, stamp_ns: int) -> Pose2D | None:
        """Where the car was at `stamp_ns` in the ego frame at t0 (x, y and yaw, linear
        between the two poses around it); None outside the history's span."""
        stamps = self.stamps_ns
        if not stamps[0] <= stamp_ns <= stamps[-1]:
            return None
        upper = min(int(np.searchsorted(stamps, stamp_ns, side="left")), len(stamps) - 1)
        lower = max(upper - 1, 0)
        span = int(stamps[upper] - stamps[lower])
        fraction = (stamp_ns - int(stamps[lower])) / span if span else 0.0
        yaw = np.unwrap(rotation_to_yaw(self.rotations[[lower, upper]]))
        x, y = (1.0 - fraction) * self.xyz[lower, :2] + fraction * self.xyz[upper, :2]
        return Pose2D(float(x), float(y), float(yaw[0] + fraction * (yaw[1] - yaw[0])))


@dataclass(frozen=True)
class _Sample:
    stamp_ns: int
    position: NDArray[np.float64]
    quaternion: NDArray[np.float64]  # x, y, z, w (ROS and scipy order)


class EgoHistoryBuffer:
    """Time-ordered odometry poses of the last capacity_s seconds."""

    def __init__(
        self,
        capacity_s: float = 5.0,
        max_gap_s: float = MAX_ODOMETRY_GAP_S,
        max_extrapolation_s: float = 0.05,
        min_interval_s: float = 0.004,
    ) -> None:
        """Samples closer than `min_interval_s` to the newest are skipped: the history is
        10 Hz, so 250 Hz of odometry loses nothing and bounds the buffer at any rate."""
        self._capacity_ns = round(capacity_s * NS_PER_S)
        self._min_interval_ns = round(min_interval_s * NS_PER_S)
        self._max_gap_ns = round(max_gap_s * NS_PER_S)
        self._max_extrapolation_ns = round(max_extrapolation_s * NS_PER_S)
        self._samples: deque[_Sample] = deque()

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def newest_stamp_ns(self) -> int | None:
        return self._samples[-1].stamp_ns if self._samples else None

    def add(self, stamp_ns: int, position: ArrayLike, quaternion: ArrayLike) -> AddResult:
        """Buffer one odometry pose (map/odom frame, quaternion x, y, z, w)."""
        stamp_ns = as_stamp_ns(stamp_ns)
        position = np.asarray(position, dtype=float)
        quaternion = np.asarray(quaternion, dtype=float)
        if position.shape != (3,) or quaternion.shape != (4,):
            raise InvalidOdometry(
                f"need position [3] and quaternion [4], got {position.shape} and {quaternion.shape}"
            )
        newest = self.newest_stamp_ns
        if invalid_pose(position, quaternion) is not None:
            result = AddResult.REJECTED_NONFINITE
        else:
            result = classify_arrival(stamp_ns, newest, self._min_interval_ns)
        if result is AddResult.CLOCK_JUMP_BACK:
            self._samples.clear()
        if result.keeps_sample:
            self._samples.append(
                _Sample(stamp_ns, position, quaternion / np.linalg.norm(quaternion))
            )
            while self._samples[0].stamp_ns < stamp_ns - self._capacity_ns:
                self._samples.popleft()
        return result

    def resample(
        self,
        t0_ns: int,
        num_poses: int = HISTORY_POSES,
        period_ns: int = HISTORY_PERIOD_NS,
    ) -> EgoHistory:
        """Poses at t0 - (num_poses-1)*period .. t0, expressed in the ego frame at t0."""
        targets = as_stamp_ns(t0_ns) - period_ns * np.arange(num_poses - 1, -1, -1, dtype=np.int64)
        xyz, rotations = self._interpolate(targets)
        r_t0 = rotations[-1]
        return EgoHistory(
            stamps_ns=targets,
            xyz=(xyz - xyz[-1]) @ r_t0,
            rotations=np.einsum("ji,njk->nik", r_t0, rotations),
        )

    def relative_pose(self, reference_ns: int, stamp_ns: int) -> tuple[float, float, float]:
        """Planar pose (x, y, yaw) at stamp_ns in the ego frame at reference_ns.

        The control bridge tracks a trajectory expressed in the ego frame of its t0.
        """
        targets = np.array([as_stamp_ns(reference_ns), as_stamp_ns(stamp_ns)], dtype=np.int64)
        xyz, rotations = self._interpolate(targets)
        position = rotations[0].T @ (xyz[1] - xyz[0])
        rotation = rotations[0].T @ rotations[1]
        return float(position[0]), float(position[1]), float(rotation_to_yaw(rotation))

    def _interpolate(
        self, targets: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Odometry-frame positions [N, 3] and rotation matrices [N, 3, 3] at the targets.

        Positions are interpolated linearly, orientations by slerp; up to
        max_extrapolation_s past the newest sample, both continue at the velocity of the
        last two samples (odometry usually lags the cameras by a few ms).
        """
        stamps = np.fromiter((s.stamp_ns for s in self._samples), np.int64, len(self._samples))
        latest = int(targets.max())
        self._require_coverage(stamps, int(targets.min()), latest)

        # Bracket [k, k+1] per target; targets past the newest sample use the last bracket.
        lower = np.clip(np.searchsorted(stamps, targets, side="right") - 1, 0, len(stamps) - 2)
        gaps = stamps[lower + 1] - stamps[lower]
        # A target that hits a sample exactly needs no bracket, whatever gap is beside it.
        on_sample = (targets == stamps[lower]) | (targets == stamps[lower + 1])
        bridged_gaps = np.where(on_sample, 0, gaps)
        if np.any(bridged_gaps > self._max_gap_ns):
            worst = int(np.argmax(bridged_gaps))
            raise HistoryUnavailable(
                f"odometry gap of {gaps[worst] / NS_PER_S:.3f} s, "
                f"{(latest - targets[worst]) / NS_PER_S:.1f} s before the requested time "
                f"(limit {self._max_gap_ns / NS_PER_S:.3f} s)"
            )
        fraction = ((targets - stamps[lower]) / gaps)[:, np.newaxis]

        # Only the bracketing samples are converted: the control bridge asks at 50 Hz and
        # the buffer holds seconds of odometry.
        count = len(targets)
        ends = [self._samples[k] for k in np.concatenate([lower, lower + 1]).tolist()]
        positions = np.array([s.position for s in ends])
        orientations = Rotation.from_quat([s.quaternion for s in ends])
        xyz = positions[:count] + fraction * (positions[count:] - positions[:count])
        start = orientations[:count]
        # Slerp written as start * exp(f * log(start^-1 end)) so that f > 1 extrapolates.
        step = (start.inv() * orientations[count:]).as_rotvec()
        return xyz, (start * Rotation.from_rotvec(fraction * step)).as_matrix()

    def _require_coverage(
        self, stamps: NDArray[np.int64], earliest_ns: int, latest_ns: int
    ) -> None:
        if len(stamps) == 0:
            raise HistoryUnavailable("no odometry received yet")
        if len(stamps) == 1:
            raise HistoryUnavailable("only one odometry sample; interpolation needs two")
        if earliest_ns < stamps[0]:
            raise HistoryUnavailable(
                f"odometry covers {(latest_ns - stamps[0]) / NS_PER_S:.2f} s before the "
                f"requested time but {(latest_ns - earliest_ns) / NS_PER_S:.2f} s are needed"
            )
        if latest_ns - stamps[-1] > self._max_extrapolation_ns:
            raise HistoryUnavailable(
                f"newest odometry is {(latest_ns - stamps[-1]) / NS_PER_S:.3f} s older than the "
                f"requested time (extrapolation limit "
                f"{self._max_extrapolation_ns / NS_PER_S:.3f} s)"
            )
