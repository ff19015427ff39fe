"""Synthetic source: the ego drives a lane of a constant-curvature road at constant speed.

It renders each camera of the rig with a pinhole model (sky, asphalt, dashed lane markings
moving with the distance driven) and knows the exact ego pose, so the whole graph can run and
be checked without a camera or a recording.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.sensors.base import CameraFrame, CameraSource, EgoPose
from alpamayo_ros.sensors.rig import CameraModel, CameraRig

SKY_RGB = (135, 180, 230)
ASPHALT_RGB = (70, 70, 75)
MARKING_RGB = (235, 235, 225)
LANE_WIDTH_M = 3.5
DASH_PERIOD_M = 12.0
DASH_LENGTH_M = 4.0


def arc_pose(distance: float, curvature: float) -> tuple[float, float, float]:
    """(x, y, yaw) after `distance` metres along a circle of `curvature` from the origin."""
    yaw = curvature * distance
    if abs(curvature) < 1e-9:
        return distance, 0.0, 0.0
    return math.sin(yaw) / curvature, (1.0 - math.cos(yaw)) / curvature, yaw


class SyntheticSource(CameraSource):
    def __init__(
        self,
        rig: CameraRig,
        width: int = 576,
        height: int = 320,
        ego_speed_mps: float = 10.0,
        ego_curvature: float = 0.0,
    ) -> None:
        self._rig = rig
        self._size = (width, height)
        self._speed = ego_speed_mps
        self._curvature = ego_curvature
        self._start_ns: int | None = None
        self._markings = self._lane_markings()

    def _distance(self, stamp_ns: int) -> float:
        if self._start_ns is None:
            self._start_ns = stamp_ns
        return self._speed * (stamp_ns - self._start_ns) / NS_PER_S

    def ego_pose(self, stamp_ns: int) -> EgoPose:
        x, y, yaw = arc_pose(self._distance(stamp_ns), self._curvature)
        return EgoPose(
            stamp_ns=stamp_ns,
            position=np.array([x, y, 0.0]),
            orientation_xyzw=Rotation.from_euler("z", yaw).as_quat(),
            linear_velocity=np.array([self._speed, 0.0, 0.0]),
            angular_velocity=np.array([0.0, 0.0, self._speed * self._curvature]),
        )

    def frames(self, stamp_ns: int) -> list[CameraFrame]:
        phase = self._distance(stamp_ns) % DASH_PERIOD_M
        return [
            CameraFrame(name, stamp_ns, self._render(camera, phase))
            for name, camera in self._rig.cameras.items()
        ]

    def _lane_markings(self) -> list[tuple[float, bool]]:
        """(lateral offset, dashed) of each marking of a three-lane road, ego in the middle."""
        half = LANE_WIDTH_M / 2.0
        return [(-3 * half, False), (-half, True), (half, True), (3 * half, False)]

    def _road_points(self, offset: float, start: float, end: float) -> npt.NDArray[np.float64]:
        """Points of a marking, in base_link, from `start` to `end` metres along the road."""
        s = np.linspace(start, end, max(2, int((end - start) / 0.5)))
        x, y, yaw = (np.asarray(v) for v in np.vectorize(arc_pose)(s, self._curvature))
        # Offset along the road normal (-sin yaw, cos yaw): a concentric circle.
        x = x - offset * np.sin(yaw)
        y = y + offset * np.cos(yaw)
        return np.stack([x, y, np.zeros_like(s)], axis=1)

    def _render(self, camera: CameraModel, phase: float) -> npt.NDArray[np.uint8]:
        width, height = self._size
        K = camera.intrinsics(width, height)
        rotation = camera.optical_rotation()
        image = np.empty((height, width, 3), np.uint8)
        horizon = self._horizon_row(K, rotation, camera)
        image[: max(0, horizon)] = SKY_RGB
        image[max(0, horizon) :] = ASPHALT_RGB
        for offset, dashed in self._markings:
            segments = (
                [
                    (start - phase, start - phase + DASH_LENGTH_M)
                    for start in np.arange(0.0, 80.0 + DASH_PERIOD_M, DASH_PERIOD_M)
                ]
                if dashed
                else [(-20.0, 80.0)]
            )
            for start, end in segments:
                pixels = self._project(self._road_points(offset, start, end), K, rotation, camera)
                if len(pixels) >= 2:
                    cv2.polylines(image, [pixels], False, MARKING_RGB, 2, cv2.LINE_AA)
        return image

    @staticmethod
    def _project(
        points: npt.NDArray[np.float64],
        K: npt.NDArray[np.float64],
        rotation: npt.NDArray[np.float64],
        camera: CameraModel,
    ) -> npt.NDArray[np.int32]:
        optical = (points - camera.position) @ rotation
        optical = optical[optical[:, 2] > 0.5]
        if len(optical) == 0:
            return np.zeros((0, 2), np.int32)
        uv = (optical / optical[:, 2:3]) @ K.T
        return np.clip(uv[:, :2], -1e4, 1e4).round().astype(np.int32)

    @staticmethod
    def _horizon_row(
        K: npt.NDArray[np.float64], rotation: npt.NDArray[np.float64], camera: CameraModel
    ) -> int:
        """Image row of the horizon for a level camera (pitch and roll are drawn level)."""
        direction = rotation.T @ camera.body_rotation()[:, 0]
        return round(K[1, 2] - K[1, 1] * direction[1] / max(direction[2], 1e-6))
