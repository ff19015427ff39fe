"""A user's camera shown to the model as the rig camera of its slot.

The driving model was trained on the rig's virtual pinhole cameras; a real camera has its
own lens, distortion and mount orientation. Its image is undistorted and rotated into the
rig camera's view by remap tables computed once, so each frame costs one cv2.remap. What a
pixel remap cannot compensate (a mount at another position, which changes parallax, and
the part of the rig view the real camera does not see) is measured and reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import yaml

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.rig import CameraModel, CameraRig

# The distortion models of sensor_msgs/CameraInfo that OpenCV can remap.
DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")
# Number of distortion coefficients (D) each model accepts; the polynomial models take
# the lengths cv2.initUndistortRectifyMap takes (k1 k2 p1 p2 k3 [k4 k5 k6 [s1..s4 [tx ty]]]).
_DISTORTION_LENGTHS = {
    "plumb_bob": (5,),
    "rational_polynomial": (5, 8, 12, 14),
    "equidistant": (4,),
}

# A mount this far from the rig camera's position is reported: the parallax it causes is
# not compensated by a remap.
REPORTED_TRANSLATION_M = 0.05
# A larger part of the rig view unseen by the user camera is reported.
REPORTED_UNCOVERED_FRACTION = 0.01

# Source coordinate of output pixels that must stay black: far enough outside the image
# that bilinear interpolation reads only the border value, and within the int16 range of
# OpenCV's fixed-point maps.
_OUTSIDE = -100.0
# Where neighbouring output pixels lie more than one user pixel apart, a bilinear remap
# skips user pixels and aliases; the user image is first box-filtered down by the whole
# number of pixels between them at all but this percentile of the covered output.
_DOWNSAMPLE_QUANTILE = 5.0
# Field angles sampled when finding where a distortion polynomial folds back.
_FIELD_ANGLE_SAMPLES = 4096


class CalibrationError(ConfigurationError):
    """A calibration that cannot be used; the message names the file or camera and why."""


@dataclass(frozen=True)
class CameraCalibration:
    """Intrinsics of a real camera, as in sensor_msgs/CameraInfo.

    Constructing one validates it, so a calibration that exists can be remapped.
    """

    width: int
    height: int
    camera_matrix: npt.NDArray[np.float64]  # K, 3x3
    distortion_model: str  # one of DISTORTION_MODELS
    distortion: npt.NDArray[np.float64]  # D, length by model (_DISTORTION_LENGTHS)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise CalibrationError(f"image size {self.width}x{self.height} is empty")
        if self.distortion_model not in DISTORTION_MODELS:
            raise CalibrationError(
                f"distortion model {self.distortion_model!r} is not supported "
                f"(supported: {', '.join(DISTORTION_MODELS)})"
            )
        lengths = _DISTORTION_LENGTHS[self.distortion_model]
        if self.distortion.shape not in [(length,) for length in lengths]:
            raise CalibrationError(
                f"{self.distortion_model} needs {' or '.join(map(str, lengths))} distortion "
                f"coefficients, got {self.distortion.size}"
            )
        if not np.all(np.isfinite(self.distortion)):
            raise CalibrationError(f"distortion coefficients are not finite: {self.distortion}")
        matrix = self.camera_matrix
        if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
            raise CalibrationError(f"camera matrix K must be 3x3 and finite, got {matrix.tolist()}")
        if matrix[1, 0] != 0.0 or matrix[2, 0] != 0.0 or matrix[2, 1] != 0.0 or matrix[2, 2] != 1:
            raise CalibrationError(
                f"camera matrix K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]], "
                f"got {matrix.tolist()}"
            )
        if matrix[0, 0] <= 0.0 or matrix[1, 1] <= 0.0:
            raise CalibrationError(
                f"focal lengths must be positive, got fx={matrix[0, 0]}, fy={matrix[1, 1]}"
            )
        if self.distortion_model == "equidistant" and matrix[0, 1] != 0.0:
            # cv2.fisheye's remap ignores the skew its projectPoints applies.
            raise CalibrationError("the equidistant model does not support a skewed K")

    @classmethod
    def from_camera_info(
        cls,
        width: int,
        height: int,
        distortion_model: str,
        d: npt.ArrayLike,
        k: npt.ArrayLike,
    ) -> CameraCalibration:
        """From the fields of a sensor_msgs/CameraInfo (K as 9 row-major values)."""
        try:
            camera_matrix = np.asarray(k, dtype=np.float64).reshape(3, 3)
            distortion = np.asarray(d, dtype=np.float64).reshape(-1)
            size = (int(width), int(height))
        except (TypeError, ValueError) as error:
            raise CalibrationError(f"malformed calibration: {error}") from None
        return cls(size[0], size[1], camera_matrix, str(distortion_model), distortion)

    @classmethod
    def load(cls, path: Path) -> CameraCalibration:
        """From a camera_calibration_parsers YAML file (as written by the ROS calibrator);
        its rectification and projection matrices, for stereo, are not used."""
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CalibrationError(f"{path}: calibration file not found") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise CalibrationError(f"{path}: cannot read calibration: {error}") from None
        if not isinstance(document, dict):
            raise CalibrationError(f"{path}: not a camera calibration (expected a mapping)")
        camera = f"{path} (camera {document.get('camera_name', 'unnamed')})"
        try:
            return cls.from_camera_info(
                width=document["image_width"],
                height=document["image_height"],
                distortion_model=document["distortion_model"],
                d=document["distortion_coefficients"]["data"],
                k=document["camera_matrix"]["data"],
            )
        except KeyError as error:
            raise CalibrationError(f"{camera}: missing key {error}") from None
        except TypeError:
            raise CalibrationError(f"{camera}: malformed calibration") from None
        except CalibrationError as error:
            raise CalibrationError(f"{camera}: {error}") from None

    def project(self, points_optical: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Distorted pixel coordinates [N, 2] of points [N, 3] in this camera's optical
        frame, which must lie in front of it (z > 0)."""
        points = np.asarray(points_optical, dtype=np.float64).reshape(-1, 1, 3)
        if np.any(points[:, 0, 2] <= 0.0):
            raise ValueError("points must lie in front of the camera (z > 0)")
        no_motion = np.zeros(3)
        if self.distortion_model == "equidistant":
            pixels, _ = cv2.fisheye.projectPoints(
                points, no_motion, no_motion, self.camera_matrix, self.distortion
            )
        else:
            pixels, _ = cv2.projectPoints(
                points, no_motion, no_motion, self.camera_matrix, self.distortion
            )
        return np.asarray(pixels, dtype=np.float64).reshape(-1, 2)


@dataclass(frozen=True)
class Mount:
    """Where a user camera sits in base_link."""

    position: npt.NDArray[np.float64]  # [3] metres, optical centre
    optical_rotation: npt.NDArray[np.float64]  # 3x3, columns = optical axes in base_link

    def __post_init__(self) -> None:
        if self.position.shape != (3,) or not np.all(np.isfinite(self.position)):
            raise CalibrationError(f"mount position must be 3 finite values: {self.position}")
        rotation = self.optical_rotation
        if rotation.shape != (3, 3) or not (
            np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-6)
            and np.linalg.det(rotation) > 0.0
        ):
            raise CalibrationError(f"mount rotation is not a rotation: {rotation.tolist()}")

    @classmethod
    def from_euler(cls, position: npt.ArrayLike, yaw: float, pitch: float, roll: float) -> Mount:
        """Yaw, pitch and roll (rad) of the viewing direction in base_link, as in the rig
        file, so a user mount is written like a rig camera."""
        camera = CameraModel(
            name="mount",
            horizontal_fov_deg=90.0,  # unused: only the orientation is wanted
            position=np.asarray(position, dtype=np.float64),
            yaw=yaw,
            pitch=pitch,
            roll=roll,
        )
        return cls(camera.position, camera.optical_rotation())


class Reprojection:
    """The user camera's image as the rig camera would see it."""

    def __init__(
        self,
        calibration: CameraCalibration,
        mount: Mount,
        rig_camera: CameraModel,
        width: int,
        height: int,
    ) -> None:
        """Remap tables for a width x height output with the rig camera's pinhole
        intrinsics and orientation; a mount at another position than the rig camera's
        cannot be remapped to it, and is reported (translation_m)."""
        if width <= 0 or height <= 0:
            raise CalibrationError(f"output size {width}x{height} is empty")
        self._calibration = calibration
        self._translation_m = float(np.linalg.norm(mount.position - rig_camera.position))
        # OpenCV's R takes a point of the original (user) camera into the rectified (rig)
        # camera: p_rig = R_rig^T p_base = R_rig^T R_user p_user.
        user_to_rig = rig_camera.optical_rotation().T @ mount.optical_rotation
        rig_matrix = rig_camera.intrinsics(width, height)
        map_x, map_y = _source_coordinates(calibration, user_to_rig, rig_matrix, width, height)
        # The image spans half a pixel beyond its outer pixel centres.
        covered = (
            (map_x >= -0.5)
            & (map_x <= calibration.width - 0.5)
            & (map_y >= -0.5)
            & (map_y <= calibration.height - 0.5)
        )
        self._uncovered_fraction = 1.0 - float(np.mean(covered))

        factor = _downsample_factor(map_x, map_y, covered)
        self._reduced_size = (
            max(1, round(calibration.width / factor)),
            max(1, round(calibration.height / factor)),
        )
        # A resize maps pixel centres affinely, x' = (x + 0.5) * scale - 0.5, the same as
        # building the maps with K scaled that way (the distortion is in normalised
        # coordinates, so unchanged).
        scale_x = self._reduced_size[0] / calibration.width
        scale_y = self._reduced_size[1] / calibration.height
        inside = map_x != _OUTSIDE
        map_x = np.where(inside, (map_x + 0.5) * scale_x - 0.5, _OUTSIDE).astype(np.float32)
        map_y = np.where(inside, (map_y + 0.5) * scale_y - 0.5, _OUTSIDE).astype(np.float32)
        self._map_coordinates, self._map_weights = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)

    def apply(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The rig camera's view [height, width, 3] of a user image [h, w, 3] of the
        calibration's size; what the user camera does not see is black."""
        expected = (self._calibration.height, self._calibration.width)
        if image.shape[:2] != expected:
            raise CalibrationError(
                f"image is {image.shape[1]}x{image.shape[0]}, but the camera is calibrated "
                f"for {expected[1]}x{expected[0]}"
            )
        source = image
        if self._reduced_size != (expected[1], expected[0]):
            reduced = cv2.resize(image, self._reduced_size, interpolation=cv2.INTER_AREA)
            source = np.asarray(reduced, dtype=np.uint8)
        reprojected = cv2.remap(
            source,
            self._map_coordinates,
            self._map_weights,
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        return np.asarray(reprojected, dtype=np.uint8)

    @property
    def translation_m(self) -> float:
        """Distance between the mount and the rig camera's position, which a remap cannot
        compensate: nearby objects appear shifted by parallax."""
        return self._translation_m

    @property
    def uncovered_fraction(self) -> float:
        """Fraction of output pixels whose source lies outside the user image (black)."""
        return self._uncovered_fraction

    def limitations(self) -> list[str]:
        """What the reprojected image gets wrong, for a diagnostic; empty when nothing."""
        found = []
        if self._translation_m > REPORTED_TRANSLATION_M:
            found.append(
                f"mount {self._translation_m:.2f} m from the rig camera's position "
                "(not compensated)"
            )
        if self._uncovered_fraction > REPORTED_UNCOVERED_FRACTION:
            found.append(f"{self._uncovered_fraction:.0%} of the rig view not seen by this camera")
        return found


def _source_coordinates(
    calibration: CameraCalibration,
    user_to_rig: npt.NDArray[np.float64],
    rig_matrix: npt.NDArray[np.float64],
    width: int,
    height: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """User-image coordinates (x, y maps, [height, width]) each output pixel samples;
    _OUTSIDE where its ray is behind the user camera or past the distortion's fold, where
    OpenCV's maps would mirror or fold back into the image."""
    fisheye = calibration.distortion_model == "equidistant"
    initialise = cv2.fisheye.initUndistortRectifyMap if fisheye else cv2.initUndistortRectifyMap
    map_x, map_y = initialise(
        calibration.camera_matrix,
        calibration.distortion,
        user_to_rig,
        rig_matrix,
        (width, height),
        cv2.CV_32FC1,
    )
    columns, rows = np.meshgrid(np.arange(width), np.arange(height))
    pixels = np.stack([columns, rows, np.ones_like(columns)], axis=-1).astype(np.float64)
    rays_user = pixels @ (user_to_rig.T @ np.linalg.inv(rig_matrix)).T
    field_angle = np.arctan2(np.hypot(rays_user[..., 0], rays_user[..., 1]), rays_user[..., 2])
    usable = (field_angle < _fold_angle(calibration)) & np.isfinite(map_x) & np.isfinite(map_y)
    return (
        np.where(usable, map_x, _OUTSIDE).astype(np.float64),
        np.where(usable, map_y, _OUTSIDE).astype(np.float64),
    )


def _fold_angle(calibration: CameraCalibration) -> float:
    """Field angle (rad, at most pi/2) up to which the radial distortion grows with the
    angle. Beyond it the polynomial folds back and would show rays the lens never saw as
    duplicates of ones it did (tangential terms are small and left out)."""
    angles = np.linspace(0.0, math.pi / 2.0, _FIELD_ANGLE_SAMPLES, endpoint=False)
    coefficients = np.zeros(8)
    count = min(calibration.distortion.size, 8)
    coefficients[:count] = calibration.distortion[:count]
    if calibration.distortion_model == "equidistant":
        k1, k2, k3, k4 = coefficients[:4]
        square = angles**2
        distorted = angles * (1.0 + k1 * square + k2 * square**2 + k3 * square**3 + k4 * square**4)
    else:
        k1, k2, _, _, k3, k4, k5, k6 = coefficients
        radius = np.tan(angles)
        square = radius**2
        numerator = 1.0 + k1 * square + k2 * square**2 + k3 * square**3
        denominator = 1.0 + k4 * square + k5 * square**2 + k6 * square**3
        distorted = radius * numerator / denominator
    folding = np.flatnonzero(np.diff(distorted) <= 0.0)
    return float(angles[folding[0]]) if folding.size else math.pi / 2.0


def _downsample_factor(
    map_x: npt.NDArray[np.float64],
    map_y: npt.NDArray[np.float64],
    covered: npt.NDArray[np.bool_],
) -> int:
    """Integer factor by which the user image can be box-filtered first so that the remap
    still has at least one source pixel per output pixel, in every direction, almost
    everywhere; 1 when that does not halve it."""
    if not np.any(covered):
        return 1
    dx_dv, dx_du = np.gradient(map_x)
    dy_dv, dy_du = np.gradient(map_y)
    # Smallest singular value of the map's Jacobian: the source distance between
    # neighbouring output pixels, in the direction where they are closest.
    frobenius = dx_du**2 + dx_dv**2 + dy_du**2 + dy_dv**2
    determinant = dx_du * dy_dv - dx_dv * dy_du
    spread = np.sqrt(np.maximum(frobenius**2 - 4.0 * determinant**2, 0.0))
    densest_spacing = np.sqrt(np.maximum(frobenius - spread, 0.0) / 2.0)
    spacing = float(np.percentile(densest_spacing[covered], _DOWNSAMPLE_QUANTILE))
    return max(1, math.floor(spacing))


class RigAdaptation:
    """The reprojection of every adapted camera slot, kept until its calibration changes.

    A calibration can come from a file at start-up or from each CameraInfo message (sent
    with every frame): rebuilding the tables costs milliseconds, so they are rebuilt only
    when the intrinsics or the mount differ from those they were built for.
    """

    def __init__(self, rig: CameraRig, size: tuple[int, int] | None) -> None:
        """`size`: (width, height) the model reads; None keeps each calibration's size."""
        self._rig = rig
        self._size = size
        self._built: dict[str, tuple[tuple[object, ...], Reprojection]] = {}

    def calibrate(
        self, camera: str, calibration: CameraCalibration, mount: Mount | None = None
    ) -> Reprojection | None:
        """The new reprojection of `camera` when this calibration or mount is new to it,
        else None. Without a mount the camera sits where the rig camera is."""
        rig_camera = self._rig.cameras[camera]
        if mount is None:
            mount = Mount(rig_camera.position, rig_camera.optical_rotation())
        key = (*_values(calibration), *_values(mount))
        if camera in self._built and self._built[camera][0] == key:
            return None
        width, height = self._size or (calibration.width, calibration.height)
        reprojection = Reprojection(calibration, mount, rig_camera, width, height)
        self._built[camera] = (key, reprojection)
        return reprojection

    def calibrated(self, camera: str) -> bool:
        return camera in self._built

    def apply(self, camera: str, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """`camera`'s image in its rig camera's view; raises CalibrationError before its
        calibration is known or for an image of another size."""
        if camera not in self._built:
            raise CalibrationError(f"camera {camera}: no calibration yet")
        return self._built[camera][1].apply(image)


def _values(record: CameraCalibration | Mount) -> tuple[object, ...]:
    """A dataclass's fields as comparable values (arrays as tuples)."""
    return tuple(
        tuple(np.ravel(value)) if isinstance(value, np.ndarray) else value
        for value in vars(record).values()
    )
