"""Planar poses (REP-103: x forward, y left, yaw counter-clockwise about z): the one place
where frames are composed, inverted and converted between yaw, rotation matrices and
quaternions.

Every frame change in the stack (world to ego, odometry to a plan's t0 frame, scenario
origins, message orientations) goes through these functions, so a sign convention lives
once. Functions take scalars or numpy arrays of matching shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Pose2D:
    """A pose of a frame in a parent frame: position (m) and heading (rad, CCW from +x)."""

    x: float
    y: float
    yaw: float

    def compose(self, other: Pose2D) -> Pose2D:
        """`other` (given in this pose's frame) expressed in this pose's parent frame."""
        x, y = self.transform_point(other.x, other.y)
        return Pose2D(x, y, self.yaw + other.yaw)

    def inverse(self) -> Pose2D:
        """The parent frame's pose in this pose's frame."""
        x, y = self.relative_point(0.0, 0.0)
        return Pose2D(x, y, -self.yaw)

    def relative(self, other: Pose2D) -> Pose2D:
        """`other` (given in the parent frame) expressed in this pose's frame."""
        return self.inverse().compose(other)

    def transform_point(self, x: float, y: float) -> tuple[float, float]:
        """A point given in this pose's frame, in the parent frame."""
        cos, sin = math.cos(self.yaw), math.sin(self.yaw)
        return self.x + cos * x - sin * y, self.y + sin * x + cos * y

    def relative_point(self, x: float, y: float) -> tuple[float, float]:
        """A point given in the parent frame, in this pose's frame."""
        dx, dy = x - self.x, y - self.y
        cos, sin = math.cos(self.yaw), math.sin(self.yaw)
        return cos * dx + sin * dy, -sin * dx + cos * dy


def wrap_angle(angle: ArrayLike) -> FloatArray:
    """Angles in [-pi, pi)."""
    return (np.asarray(angle, dtype=float) + np.pi) % (2.0 * np.pi) - np.pi


def yaw_to_rotation(yaw: ArrayLike) -> FloatArray:
    """Rotation matrices [..., 3, 3] about z."""
    yaw = np.asarray(yaw, dtype=float)
    cos, sin = np.cos(yaw), np.sin(yaw)
    zero, one = np.zeros_like(yaw), np.ones_like(yaw)
    rows = [[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def rotation_to_yaw(rotation: ArrayLike) -> FloatArray:
    """Heading of rotation matrices [..., 3, 3]: the direction of their x axis in the plane."""
    matrices = np.asarray(rotation, dtype=float)
    yaw: FloatArray = np.arctan2(matrices[..., 1, 0], matrices[..., 0, 0])
    return yaw


def yaw_to_quaternion(yaw: ArrayLike) -> FloatArray:
    """Quaternions (x, y, z, w) [..., 4] of rotations by yaw [...] about z."""
    half = np.asarray(yaw, dtype=float) / 2.0
    zeros = np.zeros_like(half)
    return np.stack([zeros, zeros, np.sin(half), np.cos(half)], axis=-1)


def quaternion_to_yaw(x: float, y: float, z: float, w: float) -> float:
    """Heading of a quaternion (x, y, z, w), also when it tilts out of the plane."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
