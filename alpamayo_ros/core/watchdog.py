"""Safety watchdog of the control bridge: stop the car when its inputs go stale.

Trajectory age is measured from the trajectory's INPUT stamp t0, not from its arrival: a
plan computed from 1 s old images is 1 s old however quickly it was delivered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from alpamayo_ros.core.contract import NS_PER_S


class InvalidWatchdogInput(ValueError):
    """An input no state can be derived from (e.g. a non-positive time step)."""


class WatchdogState(Enum):
    WAITING = "waiting"  # no fresh input yet since start: hold the brake
    TRACKING = "tracking"  # inputs fresh: follow the trajectory
    SAFE_STOP = "safe_stop"  # inputs stale while moving: brake at a fixed rate
    STOPPED = "stopped"  # at standstill after a safe stop: hold the brake


@dataclass(frozen=True)
class WatchdogConfig:
    trajectory_timeout_s: float = 0.5  # max age of the trajectory, from its input stamp t0
    odometry_timeout_s: float = 0.2  # max age of the odometry stamp
    max_future_s: float = 0.5  # stamps further ahead of now mean the clock jumped
    safe_stop_deceleration: float = 3.0  # m/s^2, firm but comfortable, positive magnitude
    standstill_speed: float = 0.1  # m/s
    recovery_cycles: int = 5  # consecutive fresh checks before tracking again


@dataclass(frozen=True)
class WatchdogDecision:
    state: WatchdogState
    reason: str  # why, for logs and diagnostics


class Watchdog:
    """State machine evaluated once per control cycle."""

    def __init__(self, config: WatchdogConfig = WatchdogConfig()) -> None:
        self._config = config
        self._state = WatchdogState.WAITING
        self._fresh_streak = 0

    @property
    def state(self) -> WatchdogState:
        return self._state

    def update(
        self,
        now_ns: int,
        trajectory_t0_ns: int | None,
        odometry_stamp_ns: int | None,
        speed: float,
    ) -> WatchdogDecision:
        """Advance the state machine with the newest input stamps (None: never received).

        Leaving SAFE_STOP/STOPPED needs recovery_cycles fresh checks in a row, so a
        flickering input cannot make the car lurch between braking and driving.
        """
        config = self._config
        stale_reason = self._stale_reason(now_ns, trajectory_t0_ns, odometry_stamp_ns, speed)
        self._fresh_streak = 0 if stale_reason else self._fresh_streak + 1
        if stale_reason is not None and self._state is WatchdogState.WAITING:
            return WatchdogDecision(self._state, stale_reason)
        stopping = self._state in (WatchdogState.SAFE_STOP, WatchdogState.STOPPED)
        if stale_reason is None and (not stopping or self._fresh_streak >= config.recovery_cycles):
            self._state = WatchdogState.TRACKING
            return WatchdogDecision(self._state, "inputs fresh")
        at_standstill = math.isfinite(speed) and abs(speed) < config.standstill_speed
        self._state = WatchdogState.STOPPED if at_standstill else WatchdogState.SAFE_STOP
        reason = stale_reason or (
            f"recovering: inputs fresh for {self._fresh_streak} of {config.recovery_cycles} checks"
        )
        return WatchdogDecision(self._state, reason)

    def safe_stop_command(self, speed: float, dt: float) -> tuple[float, float]:
        """(velocity, acceleration) while stopping: brake at the safe-stop rate.

        Convention: acceleration is always -safe_stop_deceleration, also at standstill,
        where it acts as the holding brake; the velocity target ramps down by
        deceleration*dt per cycle and stays at 0. The stack drives forward only, so a
        negative or unknown speed targets 0 directly.
        """
        if not dt > 0.0:
            raise InvalidWatchdogInput(f"time step must be positive, got {dt}")
        deceleration = self._config.safe_stop_deceleration
        velocity = max(speed - deceleration * dt, 0.0) if math.isfinite(speed) else 0.0
        return velocity, -deceleration

    def _stale_reason(
        self,
        now_ns: int,
        trajectory_t0_ns: int | None,
        odometry_stamp_ns: int | None,
        speed: float,
    ) -> str | None:
        """Why the inputs cannot be trusted, or None when they are fresh."""
        config = self._config
        inputs = (
            ("trajectory", trajectory_t0_ns, config.trajectory_timeout_s),
            ("odometry", odometry_stamp_ns, config.odometry_timeout_s),
        )
        for name, stamp_ns, timeout_s in inputs:
            if stamp_ns is None:
                return f"no {name} received yet"
            age_s = (now_ns - stamp_ns) / NS_PER_S
            if age_s < -config.max_future_s:
                return f"{name} stamp is {-age_s:.2f} s in the future (clock jump)"
            if age_s > timeout_s:
                return f"{name} is {age_s:.2f} s old (limit {timeout_s:.2f} s)"
        if not math.isfinite(speed):
            return f"speed {speed} is not finite"
        return None
