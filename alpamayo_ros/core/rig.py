"""Camera rig: intrinsics and extrinsics of each camera, read from a rig YAML file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml
from scipy.spatial.transform import Rotation

from alpamayo_ros.configuration import ConfigurationError

# base_link (x forward, y left, z up) -> optical frame (z forward, x right, y down).
_OPTICAL_FROM_BODY = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


class RigError(ConfigurationError):
    """A rig file that does not describe the cameras asked for."""


@dataclass(frozen=True)
class CameraModel:
    name: str
    horizontal_fov_deg: float
    position: npt.NDArray[np.float64]  # optical centre in base_link
    yaw: float
    pitch: float
    roll: float

    def intrinsics(self, width: int, height: int) -> npt.NDArray[np.float64]:
        """3x3 pinhole matrix K with square pixels and a centred principal point."""
        focal = (width / 2.0) / math.tan(math.radians(self.horizontal_fov_deg) / 2.0)
        return np.array(
            [[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]]
        )

    def body_rotation(self) -> npt.NDArray[np.float64]:
        """Rotation of the camera's body-axes (x viewing direction) in base_link."""
        rotation = Rotation.from_euler("ZYX", [self.yaw, self.pitch, self.roll])
        return np.asarray(rotation.as_matrix(), dtype=np.float64)

    def optical_rotation(self) -> npt.NDArray[np.float64]:
        """Rotation of the optical frame in base_link (columns: optical axes)."""
        rotation: npt.NDArray[np.float64] = self.body_rotation() @ _OPTICAL_FROM_BODY.T
        return rotation


@dataclass(frozen=True)
class CameraRig:
    cameras: dict[str, CameraModel]

    @classmethod
    def load(cls, path: Path, names: list[str] | tuple[str, ...]) -> CameraRig:
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RigError(f"{path}: rig file not found") from None
        entries = (document or {}).get("cameras") or {}
        missing = [name for name in names if name not in entries]
        if missing:
            raise RigError(f"{path}: no calibration for camera(s) {', '.join(missing)}")
        cameras = {}
        for name in names:
            entry = entries[name]
            try:
                cameras[name] = CameraModel(
                    name=name,
                    horizontal_fov_deg=float(entry["horizontal_fov_deg"]),
                    position=np.asarray(entry["position"], dtype=float).reshape(3),
                    yaw=float(entry["yaw"]),
                    pitch=float(entry["pitch"]),
                    roll=float(entry["roll"]),
                )
            except (KeyError, TypeError, ValueError) as error:
                raise RigError(f"{path}: camera {name}: {error!r}") from None
            if not 0.0 < cameras[name].horizontal_fov_deg < 180.0:
                raise RigError(f"{path}: camera {name}: horizontal_fov_deg must be in (0, 180)")
        return cls(cameras)
