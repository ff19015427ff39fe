"""A user's camera, reprojected, shows the rig camera's view, and says what it cannot fix."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import yaml

from alpamayo_ros.core.rig import CameraModel, CameraRig
from alpamayo_ros.resources import repository_root
from alpamayo_ros.sensors.reprojection import (
    CalibrationError,
    CameraCalibration,
    Mount,
    Reprojection,
    RigAdaptation,
)

RIG_CAMERA = CameraRig.load(repository_root() / "config" / "rig.yaml", ["front_wide_120fov"])
FRONT: CameraModel = RIG_CAMERA.cameras["front_wide_120fov"]
USER_K = [400.0, 0.0, 322.0, 0.0, 405.0, 197.0, 0.0, 0.0, 1.0]  # 640 x 400, off-centre
DISTORTIONS = {
    "plumb_bob": [-0.3, 0.1, 0.001, -0.001, 0.0],
    "rational_polynomial": [0.4, -0.05, 0.001, -0.001, 0.002, 0.7, -0.02, 0.01],
    "equidistant": [0.05, -0.01, 0.002, 0.0],
}
# Same position as the rig camera, looking 8 deg left, 5 deg down, rolled 3 deg.
ROTATED_MOUNT = Mount.from_euler(
    FRONT.position, math.radians(8.0), math.radians(-5.0), math.radians(3.0)
)


def user_camera(model: str) -> CameraCalibration:
    return CameraCalibration.from_camera_info(640, 400, model, DISTORTIONS[model], USER_K)


def blob_image(width: int, height: int, centre: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """A black RGB image with a bright Gaussian spot centred on a sub-pixel position."""
    rows, columns = np.mgrid[:height, :width]
    sigma = 4.0
    squared = (columns - centre[0]) ** 2 + (rows - centre[1]) ** 2
    spot = np.round(255.0 * np.exp(-squared / (2.0 * sigma**2))).astype(np.uint8)
    return np.repeat(spot[:, :, None], 3, axis=2)


def centroid(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    weights = image[:, :, 0].astype(np.float64)
    assert weights.sum() > 0.0, "the spot was not reprojected into the output"
    rows, columns = np.mgrid[: image.shape[0], : image.shape[1]]
    total = weights.sum()
    return np.array([(weights * columns).sum() / total, (weights * rows).sum() / total])


def rig_pixel(point: npt.NDArray[np.float64], width: int, height: int) -> npt.NDArray[np.float64]:
    """Where the rig camera's pinhole model sees a base_link point."""
    homogeneous = FRONT.intrinsics(width, height) @ (
        FRONT.optical_rotation().T @ (point - FRONT.position)
    )
    return np.asarray(homogeneous[:2] / homogeneous[2], dtype=np.float64)


def points_ahead() -> list[npt.NDArray[np.float64]]:
    """Points 15 m from the rig camera, spread over the part of its view both cameras see."""
    points = []
    for azimuth in (-25.0, -10.0, 0.0, 12.0, 22.0):
        for elevation in (-12.0, 0.0, 10.0):
            a, e = math.radians(azimuth), math.radians(elevation)
            direction = np.array(
                [math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)]
            )
            points.append(FRONT.position + 15.0 * direction)
    return points


@pytest.mark.parametrize("model", ["plumb_bob", "rational_polynomial", "equidistant"])
@pytest.mark.parametrize("output_size", [(576, 320), (256, 128)])
def test_a_distorted_rotated_camera_lands_points_within_a_pixel_of_the_rig_view(
    model: str, output_size: tuple[int, int]
) -> None:
    width, height = output_size
    calibration = user_camera(model)
    reprojection = Reprojection(calibration, ROTATED_MOUNT, FRONT, width, height)
    errors = []
    for point in points_ahead():
        in_user_frame = ROTATED_MOUNT.optical_rotation.T @ (point - ROTATED_MOUNT.position)
        user_pixel = calibration.project(in_user_frame[None, :])[0]
        assert 10.0 < user_pixel[0] < 630.0 and 10.0 < user_pixel[1] < 390.0
        output = reprojection.apply(blob_image(640, 400, user_pixel))
        assert output.shape == (height, width, 3) and output.dtype == np.uint8
        errors.append(np.linalg.norm(centroid(output) - rig_pixel(point, width, height)))
    assert max(errors) < 1.0, errors


def test_a_camera_identical_to_the_rig_camera_gives_the_image_back() -> None:
    calibration = CameraCalibration.from_camera_info(
        256, 128, "plumb_bob", [0.0] * 5, FRONT.intrinsics(256, 128).ravel()
    )
    same_mount = Mount.from_euler(FRONT.position, FRONT.yaw, FRONT.pitch, FRONT.roll)
    reprojection = Reprojection(calibration, same_mount, FRONT, 256, 128)
    image = np.random.default_rng(4).integers(0, 256, (128, 256, 3), dtype=np.uint8)
    np.testing.assert_array_equal(reprojection.apply(image), image)
    assert reprojection.translation_m == 0.0
    assert reprojection.uncovered_fraction == 0.0
    assert reprojection.limitations() == []


def test_a_translated_mount_is_reported_as_not_compensated() -> None:
    moved = Mount.from_euler(FRONT.position + np.array([0.3, 0.2, 0.0]), 0.0, 0.0, 0.0)
    reprojection = Reprojection(user_camera("plumb_bob"), moved, FRONT, 256, 128)
    assert reprojection.translation_m == pytest.approx(math.hypot(0.3, 0.2))
    assert "mount 0.36 m from the rig camera's position (not compensated)" in (
        reprojection.limitations()
    )
    nearby = Mount.from_euler(FRONT.position + np.array([0.0, 0.0, 0.02]), 0.0, 0.0, 0.0)
    close = Reprojection(user_camera("plumb_bob"), nearby, FRONT, 256, 128)
    assert not any("mount" in line for line in close.limitations())


def test_a_wide_camera_covers_the_rig_view_and_a_narrow_one_is_reported() -> None:
    fisheye = CameraCalibration.from_camera_info(
        800, 800, "equidistant", [0.0] * 4, [250.0, 0, 399.5, 0, 250.0, 399.5, 0, 0, 1]
    )
    wide = Reprojection(fisheye, ROTATED_MOUNT, FRONT, 256, 128)
    assert wide.uncovered_fraction < 0.001
    assert wide.limitations() == []

    # An undistorted 40 deg camera looking the same way covers a centred rectangle.
    narrow_focal = 320.0 / math.tan(math.radians(20.0))
    pinhole = CameraCalibration.from_camera_info(
        640, 400, "plumb_bob", [0.0] * 5, [narrow_focal, 0, 319.5, 0, narrow_focal, 199.5, 0, 0, 1]
    )
    straight = Mount.from_euler(FRONT.position, 0.0, 0.0, 0.0)
    narrow = Reprojection(pinhole, straight, FRONT, 256, 128)
    rig_focal = FRONT.intrinsics(256, 128)[0, 0]
    covered = (640.0 * rig_focal / narrow_focal) * (400.0 * rig_focal / narrow_focal)
    assert narrow.uncovered_fraction == pytest.approx(1.0 - covered / (256 * 128), abs=0.01)
    assert f"{narrow.uncovered_fraction:.0%} of the rig view not seen by this camera" in (
        narrow.limitations()
    )


def test_a_camera_facing_backwards_sees_nothing_of_the_front_view() -> None:
    """Rays behind a camera must not be mirrored into its image."""
    backwards = Mount.from_euler(FRONT.position, math.pi, 0.0, 0.0)
    for model in ("plumb_bob", "equidistant"):
        reprojection = Reprojection(user_camera(model), backwards, FRONT, 256, 128)
        assert reprojection.uncovered_fraction == 1.0
        white = np.full((400, 640, 3), 255, dtype=np.uint8)
        assert not reprojection.apply(white).any()


def test_rays_past_the_fold_of_the_distortion_stay_black() -> None:
    """Strong barrel distortion r(1 - 0.5 r^2) turns back at r = sqrt(2/3) (39.2 deg):
    rays beyond it would otherwise land inside the image again."""
    calibration = CameraCalibration.from_camera_info(
        640,
        400,
        "plumb_bob",
        [-0.5, 0.0, 0.0, 0.0, 0.0],
        [200.0, 0, 319.5, 0, 200.0, 199.5, 0, 0, 1],
    )
    straight = Mount.from_euler(FRONT.position, 0.0, 0.0, 0.0)
    reprojection = Reprojection(calibration, straight, FRONT, 256, 128)
    output = reprojection.apply(np.full((400, 640, 3), 255, dtype=np.uint8))[:, :, 0]
    rows, columns = np.mgrid[:128, :256]
    rays = (
        np.stack([columns, rows, np.ones_like(columns)], axis=-1)
        @ np.linalg.inv(FRONT.intrinsics(256, 128)).T
    )
    field_angle = np.degrees(np.arctan(np.hypot(rays[..., 0], rays[..., 1])))
    fold = math.degrees(math.atan(math.sqrt(2.0 / 3.0)))
    assert np.all(output[field_angle < fold - 1.0] == 255)
    assert np.all(output[field_angle > fold + 1.0] == 0)


def test_a_large_image_is_filtered_before_sampling_so_fine_detail_does_not_alias() -> None:
    """A 1-pixel checkerboard seen 13x smaller is uniform grey, not a moire pattern."""
    calibration = CameraCalibration.from_camera_info(
        1920, 1080, "plumb_bob", [0.0] * 5, [1000.0, 0, 959.5, 0, 1000.0, 539.5, 0, 0, 1]
    )
    straight = Mount.from_euler(FRONT.position, 0.0, 0.0, 0.0)
    reprojection = Reprojection(calibration, straight, FRONT, 256, 128)
    rows, columns = np.mgrid[:1080, :1920]
    checkerboard = np.where((rows + columns) % 2 == 0, 255, 0).astype(np.uint8)
    output = reprojection.apply(np.repeat(checkerboard[:, :, None], 3, axis=2))
    centre = output[54:74, 118:138, 0].astype(np.float64)  # well inside the covered part
    assert abs(centre.mean() - 127.5) < 2.0
    assert centre.std() < 2.0


def test_an_image_of_another_size_than_the_calibration_is_refused() -> None:
    reprojection = Reprojection(user_camera("plumb_bob"), ROTATED_MOUNT, FRONT, 256, 128)
    with pytest.raises(CalibrationError, match=r"image is 320x200.*calibrated for 640x400"):
        reprojection.apply(np.zeros((200, 320, 3), dtype=np.uint8))


@pytest.mark.parametrize("model", ["plumb_bob", "equidistant"])
def test_project_follows_the_distortion_model(model: str) -> None:
    k1 = -0.2
    calibration = CameraCalibration.from_camera_info(
        640, 400, model, [k1] + [0.0] * (4 if model == "plumb_bob" else 3), USER_K
    )
    point = np.array([[0.3, -0.2, 1.0]])
    radius = math.hypot(0.3, 0.2)
    if model == "plumb_bob":
        scale = 1.0 + k1 * radius**2
    else:
        angle = math.atan(radius)
        scale = angle * (1.0 + k1 * angle**2) / radius
    expected = [400.0 * 0.3 * scale + 322.0, 405.0 * -0.2 * scale + 197.0]
    np.testing.assert_allclose(calibration.project(point)[0], expected, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "d", "k", "width", "message"),
    [
        ("kannala_brandt", [0.0] * 4, USER_K, 640, "distortion model 'kannala_brandt'"),
        ("plumb_bob", [0.0] * 4, USER_K, 640, "plumb_bob needs 5 distortion coefficients, got 4"),
        ("equidistant", [0.0] * 5, USER_K, 640, "equidistant needs 4 distortion coefficients"),
        ("rational_polynomial", [0.0] * 7, USER_K, 640, "needs 5 or 8 or 12 or 14"),
        ("plumb_bob", [0.0] * 5, [0.0, *USER_K[1:]], 640, "focal lengths must be positive"),
        ("plumb_bob", [0.0] * 5, [math.nan, *USER_K[1:]], 640, "finite"),
        ("plumb_bob", [0.0] * 5, USER_K[:6], 640, "malformed calibration"),
        ("plumb_bob", [0.0] * 5, USER_K, 0, "image size 0x400 is empty"),
    ],
)
def test_unusable_calibrations_are_refused_with_the_reason(
    model: str, d: list[float], k: list[float], width: int, message: str
) -> None:
    with pytest.raises(CalibrationError, match=message):
        CameraCalibration.from_camera_info(width, 400, model, d, k)


def calibration_document(model: str) -> dict[str, object]:
    """A file as camera_calibration_parsers writes it (the ROS camera calibrator)."""
    coefficients = DISTORTIONS[model]
    return {
        "image_width": 640,
        "image_height": 400,
        "camera_name": "user_front",
        "camera_matrix": {"rows": 3, "cols": 3, "data": USER_K},
        "distortion_model": model,
        "distortion_coefficients": {"rows": 1, "cols": len(coefficients), "data": coefficients},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": np.eye(3).ravel().tolist()},
        "projection_matrix": {
            "rows": 3,
            "cols": 4,
            "data": [400.0, 0, 322, 0, 0, 405, 197, 0, 0, 0, 1, 0],
        },
    }


@pytest.mark.parametrize("model", ["plumb_bob", "rational_polynomial", "equidistant"])
def test_a_calibration_file_loads(tmp_path: Path, model: str) -> None:
    path = tmp_path / "user_front.yaml"
    path.write_text(yaml.safe_dump(calibration_document(model)))
    loaded = CameraCalibration.load(path)
    assert (loaded.width, loaded.height, loaded.distortion_model) == (640, 400, model)
    np.testing.assert_array_equal(loaded.camera_matrix, np.reshape(USER_K, (3, 3)))
    np.testing.assert_array_equal(loaded.distortion, DISTORTIONS[model])


def test_an_unusable_calibration_file_is_named_with_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(CalibrationError, match=r"absent\.yaml: calibration file not found"):
        CameraCalibration.load(missing)

    document = calibration_document("plumb_bob")
    del document["distortion_model"]
    incomplete = tmp_path / "incomplete.yaml"
    incomplete.write_text(yaml.safe_dump(document))
    with pytest.raises(
        CalibrationError,
        match=r"incomplete\.yaml \(camera user_front\): missing key 'distortion_model'",
    ):
        CameraCalibration.load(incomplete)

    document = calibration_document("plumb_bob")
    document["distortion_coefficients"] = {"rows": 1, "cols": 3, "data": [0.1, 0.0, 0.0]}
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(document))
    with pytest.raises(
        CalibrationError, match=r"short\.yaml \(camera user_front\): plumb_bob needs 5"
    ):
        CameraCalibration.load(short)

    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("image_width: [640\n")
    with pytest.raises(CalibrationError, match=r"garbled\.yaml: cannot read calibration"):
        CameraCalibration.load(garbled)


def test_a_mount_is_written_like_a_rig_camera() -> None:
    mount = Mount.from_euler([1.0, 0.5, 1.2], math.radians(90.0), 0.0, 0.0)
    np.testing.assert_allclose(mount.optical_rotation[:, 2], [0.0, 1.0, 0.0], atol=1e-12)  # left
    np.testing.assert_allclose(mount.optical_rotation[:, 1], [0.0, 0.0, -1.0], atol=1e-12)  # down
    with pytest.raises(CalibrationError, match="not a rotation"):
        Mount(np.zeros(3), np.diag([1.0, 1.0, -1.0]))


def test_rig_adaptation_rebuilds_only_for_a_new_calibration() -> None:
    rig = CameraRig.load(repository_root() / "config" / "rig.yaml", ["front_wide_120fov"])
    adaptation = RigAdaptation(rig, (128, 64))
    calibration = CameraCalibration.from_camera_info(
        320, 200, "plumb_bob", [-0.1, 0.0, 0.0, 0.0, 0.0], [200, 0, 160, 0, 200, 100, 0, 0, 1]
    )
    image = np.full((200, 320, 3), 90, dtype=np.uint8)
    with pytest.raises(CalibrationError, match="no calibration yet"):
        adaptation.apply("front_wide_120fov", image)
    assert adaptation.calibrate("front_wide_120fov", calibration) is not None
    assert adaptation.calibrate("front_wide_120fov", calibration) is None  # the same again
    assert adaptation.apply("front_wide_120fov", image).shape == (64, 128, 3)
    moved = Mount.from_euler([1.8, 0.5, 1.5], 0.0, 0.0, 0.0)
    rebuilt = adaptation.calibrate("front_wide_120fov", calibration, moved)
    assert rebuilt is not None and rebuilt.translation_m == pytest.approx(0.5)
