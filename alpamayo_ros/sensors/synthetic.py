"""Synthetic source: the synthetic driving world (alpamayo_ros.world) behind the camera driver.

The same scenarios, expert and renderer the embedded VLA was trained on, run live on the
node's clock: frames are rendered at the world's 10 Hz steps and stamped with their step
time, and the ego pose is known exactly. Every `scenario_duration_s` the next scenario
(seed + 1, so usually another type) starts where the ego is, so a demo shows several.
"""

from __future__ import annotations

import math

import numpy as np

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.planar import Pose2D, yaw_to_quaternion
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.sensors.base import CameraFrame, CameraSource, EgoPose
from alpamayo_ros.world.dataset import WorldSimulation
from alpamayo_ros.world.renderer import Renderer
from alpamayo_ros.world.scenarios import SCENARIO_TYPES

STEP_S = 0.1


class SyntheticSource(CameraSource):
    def __init__(
        self,
        rig: CameraRig,
        width: int = 256,
        height: int = 128,
        seed: int = 0,
        scenario_type: str = "",
        scenario_duration_s: float = 12.0,
    ) -> None:
        if scenario_type and scenario_type not in SCENARIO_TYPES:
            raise ConfigurationError(
                f"unknown scenario type {scenario_type!r} (known: {', '.join(SCENARIO_TYPES)})"
            )
        self._rig = rig
        self._renderer = Renderer(rig)
        self._size = (width, height)
        self._seed = seed
        self._scenario_type = scenario_type or None
        self._duration_steps = max(1, round(scenario_duration_s / STEP_S))
        self._start_ns: int | None = None
        self._steps = 0  # world steps since the source started
        self._world = WorldSimulation(seed, self._scenario_type, self._renderer)
        # Odometry-frame pose of the current scenario's world origin, so that starting the
        # next scenario does not make the ego jump.
        self._origin = Pose2D(0.0, 0.0, 0.0)

    def _advance_to(self, stamp_ns: int) -> None:
        if self._start_ns is None:
            self._start_ns = stamp_ns
        target = int((stamp_ns - self._start_ns) / (STEP_S * NS_PER_S))
        while self._steps < target:
            self._steps += 1
            if self._steps % self._duration_steps == 0:
                self._next_scenario()
            else:
                self._world.step()

    def _next_scenario(self) -> None:
        here = self._odometry_pose(self._world.ego_pose())
        self._seed += 1
        self._world = WorldSimulation(self._seed, self._scenario_type, self._renderer)
        # The new scenario's origin, placed so its start pose lands where the ego is.
        self._origin = here.compose(self._world.ego_pose().inverse())

    def _odometry_pose(self, pose: Pose2D) -> Pose2D:
        return self._origin.compose(pose)

    def _step_stamp_ns(self) -> int:
        assert self._start_ns is not None
        return self._start_ns + round(self._steps * STEP_S * NS_PER_S)

    def frames(self, stamp_ns: int) -> list[CameraFrame]:
        self._advance_to(stamp_ns)
        stamp = self._step_stamp_ns()
        width, height = self._size
        return [
            CameraFrame(name, stamp, self._world.render(name, width, height))
            for name in self._rig.cameras
        ]

    def ego_pose(self, stamp_ns: int) -> EgoPose:
        """The pose at `stamp_ns`, moved on from the last world step along the unicycle."""
        self._advance_to(stamp_ns)
        speed, yaw_rate = self._world.ego_velocity()
        pose = self._odometry_pose(self._world.ego_pose())
        dt = (stamp_ns - self._step_stamp_ns()) / NS_PER_S
        # The chord of the arc driven since the step, in the pose's frame.
        half_turn = 0.5 * yaw_rate * dt
        moved = pose.compose(
            Pose2D(
                speed * dt * math.cos(half_turn), speed * dt * math.sin(half_turn), 2 * half_turn
            )
        )
        return EgoPose(
            stamp_ns=stamp_ns,
            position=np.array([moved.x, moved.y, 0.0]),
            orientation_xyzw=np.array(yaw_to_quaternion(moved.yaw)),
            linear_velocity=np.array([speed, 0.0, 0.0]),
            angular_velocity=np.array([0.0, 0.0, yaw_rate]),
        )
