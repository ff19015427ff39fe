"""The rig file gives each camera its pinhole intrinsics and REP-103 extrinsics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.rig import CameraRig, RigError
from alpamayo_ros.resources import repository_root

RIG = repository_root() / "config" / "rig.yaml"


def test_packaged_rig_has_the_alpamayo_cameras() -> None:
    rig = CameraRig.load(RIG, CAMERA_ORDER)
    assert list(rig.cameras) == list(CAMERA_ORDER)
    assert rig.cameras["front_tele_30fov"].horizontal_fov_deg == 30.0


def test_intrinsics_follow_the_field_of_view() -> None:
    camera = CameraRig.load(RIG, CAMERA_ORDER).cameras["front_wide_120fov"]
    K = camera.intrinsics(576, 320)
    # A point on the edge of the 120 degree field of view lands on the image edge.
    direction = np.array([np.tan(np.radians(60.0)), 0.0, 1.0])
    u = (K @ direction)[0]
    assert u == pytest.approx(576 - 0.5, abs=1e-6)
    assert K[1, 2] == pytest.approx(159.5)


def test_optical_frame_looks_along_the_camera_yaw() -> None:
    rig = CameraRig.load(RIG, CAMERA_ORDER)
    front = rig.cameras["front_wide_120fov"].optical_rotation()
    np.testing.assert_allclose(front[:, 2], [1, 0, 0], atol=1e-12)  # optical z = forward
    np.testing.assert_allclose(front[:, 0], [0, -1, 0], atol=1e-12)  # optical x = right
    np.testing.assert_allclose(front[:, 1], [0, 0, -1], atol=1e-12)  # optical y = down
    left = rig.cameras["cross_left_120fov"].optical_rotation()
    assert left[1, 2] > 0.8  # looks to the left (+y)


def test_missing_camera_and_bad_fov_are_named(tmp_path: Path) -> None:
    with pytest.raises(RigError, match="no calibration for camera"):
        CameraRig.load(RIG, ["rear_tele_30fov"])
    bad = tmp_path / "rig.yaml"
    bad.write_text(
        "cameras:\n  c:\n    horizontal_fov_deg: 190\n    position: [0, 0, 1]\n"
        "    yaw: 0\n    pitch: 0\n    roll: 0\n"
    )
    with pytest.raises(RigError, match="horizontal_fov_deg must be in"):
        CameraRig.load(bad, ["c"])
    with pytest.raises(RigError, match="rig file not found"):
        CameraRig.load(tmp_path / "none.yaml", ["c"])
