"""Planar poses: composition and inversion round trips, yaw/rotation/quaternion agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from alpamayo_ros.core.planar import (
    Pose2D,
    quaternion_to_yaw,
    rotation_to_yaw,
    wrap_angle,
    yaw_to_quaternion,
    yaw_to_rotation,
)

A = Pose2D(3.0, -1.0, 0.7)
B = Pose2D(-2.0, 5.0, -2.1)


def close(p: Pose2D, q: Pose2D) -> bool:
    return (
        math.isclose(p.x, q.x, abs_tol=1e-12)
        and math.isclose(p.y, q.y, abs_tol=1e-12)
        and abs(float(wrap_angle(p.yaw - q.yaw))) < 1e-12
    )


def test_compose_inverse_and_relative_round_trip() -> None:
    assert close(A.compose(A.inverse()), Pose2D(0.0, 0.0, 0.0))
    assert close(A.compose(A.relative(B)), B)
    assert close(A.relative(A), Pose2D(0.0, 0.0, 0.0))


def test_points_follow_rep103_axes() -> None:
    facing_left = Pose2D(1.0, 2.0, math.pi / 2)
    # One metre ahead of a car facing +y is one metre further along +y.
    assert facing_left.transform_point(1.0, 0.0) == pytest.approx((1.0, 3.0))
    assert facing_left.relative_point(1.0, 3.0) == pytest.approx((1.0, 0.0))


def test_yaw_rotation_and_quaternion_agree_with_scipy() -> None:
    yaws = np.array([-3.0, -0.5, 0.0, 1.2, 3.1])
    expected = Rotation.from_euler("z", yaws[:, None])
    np.testing.assert_allclose(yaw_to_rotation(yaws), expected.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rotation_to_yaw(expected.as_matrix()), yaws, atol=1e-12)
    quaternions = expected.as_quat().reshape(-1, 4)
    same_sign = np.sign(quaternions[:, 3:])  # q and -q are the same rotation
    np.testing.assert_allclose(yaw_to_quaternion(yaws), quaternions * same_sign, atol=1e-12)
    assert yaw_to_quaternion(yaws[1]).shape == (4,)
    for yaw, quaternion in zip(yaws, quaternions, strict=True):
        assert quaternion_to_yaw(*quaternion) == pytest.approx(yaw)
    tilted = Rotation.from_euler("ZYX", [0.8, 0.1, -0.2]).as_quat()
    assert quaternion_to_yaw(*tilted) == pytest.approx(0.8)
