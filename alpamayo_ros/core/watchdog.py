"""Safety watchdog of the control bridge: stop the car when its inputs go stale.

Trajectory age is measured from the trajectory's INPUT stamp t0, not from its arrival: a
plan computed from 1 s old images is 1 s old however quickly it was delivered. How the car
stops is core.safe_stop's profile; the watchdog decides when and how hard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from alpamayo_ros.core.contract import NS_PER_S


class WatchdogState(Enum):
    WAITING = "waiting"  # no fresh input yet since start: hold the brake
    TRACKING = "tracking"  # inputs fresh: follow the trajectory
    SAFE_STOP = "safe_stop"  # inputs stale while moving: brake along the stop profile
    EMERGENCY_STOP = "emergency_stop"  # odometry lost as well: brake harder
    STOPPED = "stopped"  # at standstill after a stop: hold the brake


STOPPING = (WatchdogState.SAFE_STOP, WatchdogState.EMERGENCY_STOP, WatchdogState.STOPPED)


@dataclass(frozen=True)
class WatchdogConfig:
    trajectory_timeout_s: float = 0.5  # max age of the trajectory, from its input stamp t0
    odometry_timeout_s: float = 0.2  # max age of the odometry stamp
    max_future_s: float = 0.5  # stamps further ahead of now mean the clock jumped
    safe_stop_deceleration: float = 3.0  # m/s^2, firm but comfortable, positive magnitude
    safe_stop_jerk: float = 10.0  # m/s^3, how fast the braking builds up
    odometry_loss_s: float = 1.0  # odometry older than this: the car's motion is unknown
    emergency_deceleration: float = 6.0  # m/s^2, the stop once odometry is lost
    standstill_speed: float = 0.1  # m/s
    recovery_s: float = 0.1  # inputs fresh at every check this long before tracking again

    def at_standstill(self, speed: float) -> bool:
        """A speed reading that says the car stands (a NaN says nothing)."""
        return math.isfinite(speed) and abs(speed) < self.standstill_speed

    def odometry_lost(self, now_ns: int, odometry_stamp_ns: int | None) -> bool:
        """Odometry older than `odometry_loss_s`: its speed no longer says how the car
        moves (none at all is missing, not lost)."""
        return (
            odometry_stamp_ns is not None
            and (now_ns - odometry_stamp_ns) / NS_PER_S > self.odometry_loss_s
        )


@dataclass(frozen=True)
class WatchdogDecision:
    state: WatchdogState
    reason: str  # why, for logs and diagnostics


class Watchdog:
    """State machine evaluated once per control cycle."""

    def __init__(self, config: WatchdogConfig = WatchdogConfig()) -> None:
        self._config = config
        self._state = WatchdogState.WAITING
        self._fresh_since_ns: int | None = None  # first check of the current fresh run

    @property
    def config(self) -> WatchdogConfig:
        return self._config

    @property
    def state(self) -> WatchdogState:
        return self._state

    def update(
        self,
        now_ns: int,
        trajectory_t0_ns: int | None,
        odometry_stamp_ns: int | None,
        speed: float,
        unusable: str | None = None,
    ) -> WatchdogDecision:
        """Advance the state machine with the newest input stamps (None: never received);
        `unusable`: why inputs that are fresh still cannot be followed (the car's pose at
        the plan's t0 unknown), which counts as stale.

        Leaving a stop needs the inputs fresh at every check for recovery_s (time, not a
        count of checks, so it does not depend on how often the bridge checks), so a
        flickering input cannot make the car lurch between braking and driving.
        """
        config = self._config
        stale = self._stale_reason(now_ns, trajectory_t0_ns, odometry_stamp_ns, speed)
        stale_reason = "; ".join(reason for reason in (stale, unusable) if reason) or None
        if stale_reason is not None:
            self._fresh_since_ns = None
        elif self._fresh_since_ns is None or now_ns < self._fresh_since_ns:
            self._fresh_since_ns = now_ns  # (a clock that went back starts the run anew)
        since = self._fresh_since_ns
        fresh_s = 0.0 if since is None else (now_ns - since) / NS_PER_S
        if stale_reason is not None and self._state is WatchdogState.WAITING:
            return WatchdogDecision(self._state, stale_reason)
        stopping = self._state in STOPPING
        if stale_reason is None and (not stopping or fresh_s >= config.recovery_s):
            self._state = WatchdogState.TRACKING
            return WatchdogDecision(self._state, "inputs fresh")
        reason = stale_reason or (
            f"recovering: inputs fresh for {fresh_s:.2f} of {config.recovery_s:.2f} s"
        )
        odometry_lost = config.odometry_lost(now_ns, odometry_stamp_ns)
        at_standstill = config.at_standstill(speed)
        if odometry_lost and self._state is not WatchdogState.STOPPED:
            # The last speed is no longer known to be true: brake harder until fresh.
            self._state = WatchdogState.EMERGENCY_STOP
        elif self._state is WatchdogState.EMERGENCY_STOP and not at_standstill:
            pass  # a stop never de-escalates
        else:
            self._state = WatchdogState.STOPPED if at_standstill else WatchdogState.SAFE_STOP
        return WatchdogDecision(self._state, reason)

    def _stale_reason(
        self,
        now_ns: int,
        trajectory_t0_ns: int | None,
        odometry_stamp_ns: int | None,
        speed: float,
    ) -> str | None:
        """Why the inputs cannot be trusted, every input at fault named ("; " between
        them: a dead camera driver stops the odometry and, soon after, the plans), or None
        when they are fresh."""
        config = self._config
        inputs = (
            ("trajectory", trajectory_t0_ns, config.trajectory_timeout_s),
            ("odometry", odometry_stamp_ns, config.odometry_timeout_s),
        )
        reasons = []
        for name, stamp_ns, timeout_s in inputs:
            if stamp_ns is None:
                reasons.append(f"no {name} received yet")
                continue
            age_s = (now_ns - stamp_ns) / NS_PER_S
            if age_s < -config.max_future_s:
                reasons.append(f"{name} stamp is {-age_s:.2f} s in the future (clock jump)")
            elif age_s > timeout_s:
                reasons.append(f"{name} is {age_s:.2f} s old (limit {timeout_s:.2f} s)")
        if not math.isfinite(speed):
            reasons.append(f"speed {speed} is not finite")
        return "; ".join(reasons) or None
