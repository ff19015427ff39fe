"""Synthetic source: the synthetic driving world (alpamayo_ros.world) behind the camera driver.

The same scenarios, expert and renderer the embedded VLA was trained on, run live on the
node's clock: frames are rendered at the world's 10 Hz steps and stamped with their step
time, and the ego pose is known exactly. Every `scenario_duration_s` the next scenario
(seed + 1, so usually another type) starts where the ego is, so a demo shows several.
"""

from __future__ import annotations

import numpy as np

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import NS_PER_S, TRAJECTORY_STEPS
from alpamayo_ros.core.planar import Pose2D, yaw_to_quaternion
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.sensors.base import CameraFrame, CameraSource, EgoPose
from alpamayo_ros.world.dataset import WorldSimulation
from alpamayo_ros.world.renderer import Renderer
from alpamayo_ros.world.scenarios import SCENARIO_TYPES

STEP_NS = 100_000_000  # the world's 0.1 s step
# A poll this close before a step boundary belongs to that step: a driver's timer ticks
# on the grid give or take the microseconds between two clock reads, and a frame must not
# come out one step (100 ms) old because of it.
STEP_TOLERANCE_NS = 2_000_000


class SyntheticSource(CameraSource):
    """The world steps on a 0.1 s grid that starts at the first poll; a poll at a grid
    instant gets the frames of that instant. `prefetch` renders the next step's frames
    ahead (the world is scripted), so a driver polling on the grid publishes each frame
    at its capture stamp instead of a render later."""

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
        self._duration_steps = max(1, round(scenario_duration_s * NS_PER_S / STEP_NS))
        self._start_ns: int | None = None
        self._steps = 0  # world steps since the source started
        self._world = WorldSimulation(seed, self._scenario_type, self._renderer)
        # Odometry-frame pose of the current scenario's world origin, so that starting the
        # next scenario does not make the ego jump.
        self._origin = Pose2D(0.0, 0.0, 0.0)
        self._prefetched: tuple[int, list[CameraFrame]] | None = None  # (step, its frames)

    def _step_at(self, stamp_ns: int) -> int:
        if self._start_ns is None:
            self._start_ns = stamp_ns
        return max(0, (stamp_ns - self._start_ns + STEP_TOLERANCE_NS) // STEP_NS)

    def _advance_to(self, stamp_ns: int) -> None:
        target = self._step_at(stamp_ns)
        while self._steps < target:
            self._steps += 1
            if self._starts_scenario(self._steps):
                self._next_scenario()
            else:
                self._world.step()

    def _starts_scenario(self, step: int) -> bool:
        return step % self._duration_steps == 0

    def _next_scenario(self) -> None:
        here = self._odometry_pose(self._world.ego_pose())
        self._seed += 1
        self._world = WorldSimulation(self._seed, self._scenario_type, self._renderer)
        # The new scenario's origin, placed so its start pose lands where the ego is.
        self._origin = here.compose(self._world.ego_pose().inverse())

    def _odometry_pose(self, pose: Pose2D) -> Pose2D:
        return self._origin.compose(pose)

    def _step_stamp_ns(self, step: int) -> int:
        assert self._start_ns is not None
        return self._start_ns + step * STEP_NS

    def _render(self, steps_ahead: int) -> list[CameraFrame]:
        stamp = self._step_stamp_ns(self._steps + steps_ahead)
        width, height = self._size
        names = tuple(self._rig.cameras)
        images = self._world.render(names, width, height, steps_ahead)
        return [CameraFrame(name, stamp, image) for name, image in zip(names, images, strict=True)]

    def frames(self, stamp_ns: int) -> list[CameraFrame]:
        self._advance_to(stamp_ns)
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] == self._steps:
            return prefetched[1]
        return self._render(0)

    def prefetch(self, stamp_ns: int) -> None:
        """Render the frames of the step at `stamp_ns` now, unless a new scenario starts
        before it (its world does not exist yet) or the poll has not started the grid."""
        if self._start_ns is None:
            return
        step = self._step_at(stamp_ns)
        ahead = step - self._steps
        if not 0 < ahead <= TRAJECTORY_STEPS:
            return
        if any(self._starts_scenario(s) for s in range(self._steps + 1, step + 1)):
            return
        self._prefetched = (step, self._render(ahead))

    def ego_pose(self, stamp_ns: int) -> EgoPose | None:
        """The pose at `stamp_ns`, moved on from the last world step by the vehicle step;
        None before the first frames, whose poll starts the world on the frame grid."""
        if self._start_ns is None or stamp_ns < self._start_ns:
            return None
        self._advance_to(stamp_ns)
        elapsed_s = (stamp_ns - self._step_stamp_ns(self._steps)) / NS_PER_S
        ego, yaw_rate = self._world.ego_since_step(min(max(elapsed_s, 0.0), STEP_NS / NS_PER_S))
        pose = self._odometry_pose(ego.pose)
        return EgoPose(
            stamp_ns=stamp_ns,
            position=np.array([pose.x, pose.y, 0.0]),
            orientation_xyzw=yaw_to_quaternion(pose.yaw),
            linear_velocity=np.array([ego.v, 0.0, 0.0]),
            angular_velocity=np.array([0.0, 0.0, yaw_rate]),
        )
