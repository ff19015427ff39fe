"""The control step: the newest plan and odometry in, one guarded command out.

The watchdog decides whether the plan and the odometry may be trusted (ages measured from
their input stamps); if so the tracker follows the plan from where the ego is in the
plan's t0 frame, otherwise the car is brought to a safe stop. Commands never ask for a
negative velocity: the stack drives forward only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numpy.typing import ArrayLike

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.control import (
    ControlCommand,
    TrackedTrajectory,
    TrackerGains,
    TrajectoryTracker,
    VehicleParams,
)
from alpamayo_ros.core.ego_history import EgoHistoryBuffer, HistoryUnavailable
from alpamayo_ros.core.stamped import AddResult
from alpamayo_ros.core.watchdog import Watchdog, WatchdogConfig, WatchdogState


@dataclass(frozen=True)
class ControlOutput:
    state: WatchdogState
    reason: str  # why this state, for the command message and diagnostics
    command: ControlCommand
    plan_t0_ns: int | None  # t0 of the plan being tracked (None: none received)
    plan_inference_id: int


class ControlStep:
    """Watchdog plus tracker, evaluated once per control period."""

    def __init__(
        self,
        period_s: float,
        vehicle: VehicleParams = VehicleParams(),
        gains: TrackerGains = TrackerGains(),
        watchdog: WatchdogConfig = WatchdogConfig(),
    ) -> None:
        if not period_s > 0.0:
            raise ValueError(f"control period must be positive, got {period_s}")
        self.period_s = period_s
        self.vehicle = vehicle
        self.tracker = TrajectoryTracker(vehicle, gains)
        self.watchdog = Watchdog(watchdog)
        self.history = EgoHistoryBuffer()
        self.plan: TrackedTrajectory | None = None
        self.plan_t0_ns: int | None = None
        self.plan_inference_id = 0
        self.odometry_stamp_ns: int | None = None
        self.speed = 0.0

    def set_plan(self, plan: TrackedTrajectory, t0_ns: int, inference_id: int) -> None:
        self.plan, self.plan_t0_ns, self.plan_inference_id = plan, t0_ns, inference_id

    def add_odometry(
        self, stamp_ns: int, position: ArrayLike, quaternion: ArrayLike, speed: float
    ) -> AddResult:
        result = self.history.add(stamp_ns, position, quaternion)
        if result.keeps_sample:
            self.odometry_stamp_ns = stamp_ns
            self.speed = speed if math.isfinite(speed) else float("nan")
        if result is AddResult.CLOCK_JUMP_BACK:
            self.plan = None
            self.plan_t0_ns = None
        return result

    def command(self, now_ns: int) -> ControlOutput:
        decision = self.watchdog.update(now_ns, self.plan_t0_ns, self.odometry_stamp_ns, self.speed)
        state, reason = decision.state, decision.reason
        command = None
        if state is WatchdogState.TRACKING:
            assert self.plan is not None and self.plan_t0_ns is not None
            assert self.odometry_stamp_ns is not None
            try:
                x, y, yaw = self.history.relative_pose(self.plan_t0_ns, self.odometry_stamp_ns)
            except HistoryUnavailable as error:
                state, reason = WatchdogState.SAFE_STOP, f"ego pose at plan time unknown: {error}"
            else:
                elapsed_s = (now_ns - self.plan_t0_ns) / NS_PER_S
                command = self.tracker.command(
                    self.plan, elapsed_s, x, y, yaw, self.speed, self.period_s
                )
        if command is None:
            self.tracker.reset()
            speed = self.speed if math.isfinite(self.speed) else 0.0
            velocity, acceleration = self.watchdog.safe_stop_command(speed, self.period_s)
            command = ControlCommand(0.0, 0.0, velocity, acceleration, 0.0)
        return ControlOutput(state, reason, command, self.plan_t0_ns, self.plan_inference_id)
