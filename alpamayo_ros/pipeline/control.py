"""The control step: the newest plan and odometry in, one guarded command out.

The watchdog decides whether the plan and the odometry may be trusted (ages measured from
their input stamps); if so the tracker follows the plan from where the ego is in the
plan's t0 frame; otherwise the car follows a stop profile (core.safe_stop) fixed when the
stop began, whatever is measured later. Commands never ask for a negative velocity: the
stack drives forward only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.control import (
    ControlCommand,
    TrackedTrajectory,
    TrackerGains,
    TrajectoryTracker,
    VehicleParams,
)
from alpamayo_ros.core.ego_history import EgoHistoryBuffer, HistoryUnavailable, invalid_pose
from alpamayo_ros.core.input_health import Fault, HealthLimits, InputHealth, StreamHealth
from alpamayo_ros.core.safe_stop import StopProfile
from alpamayo_ros.core.stamped import AddResult
from alpamayo_ros.core.watchdog import Watchdog, WatchdogConfig, WatchdogState

ODOMETRY = "odometry"  # the odometry's stream name in the input health
TRAJECTORY = "trajectory"  # the plans', for the plans refused


@dataclass(frozen=True)
class ControlOutput:
    state: WatchdogState
    reason: str  # why this state, for the command message and diagnostics
    command: ControlCommand
    plan_t0_ns: int | None  # t0 of the plan being tracked (None: none received)
    plan_inference_id: int


# A command is due once this fraction of a period has passed since the previous one, so
# that odometry arriving at the control rate, with jitter, triggers every command.
DUE_PERIOD_FRACTION = 0.8

# Rate limits use the time since the previous command, at most this many periods: a
# command that comes early (a new plan) moves the actuators less, one after a stall no
# more than two periods' worth.
MAX_STEP_PERIODS = 2.0


class ControlStep:
    """Watchdog plus tracker, evaluated when a new odometry sample makes a command `due`,
    when a new plan arrives (so a plan is acted on at once, not up to a period later), and
    once per control period when neither comes."""

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
        # Faults of the odometry, and the plans refused, named and held for a while (so
        # that a 1 Hz diagnostics publisher shows them, not the command after them); the
        # ages are the watchdog's: no silence check here.
        self.health = InputHealth(
            StreamHealth(name, HealthLimits(silent_after_s=math.inf))
            for name in (ODOMETRY, TRAJECTORY)
        )
        self.plan: TrackedTrajectory | None = None
        self.plan_t0_ns: int | None = None
        self.plan_inference_id = 0
        self.odometry_stamp_ns: int | None = None
        self.speed = 0.0
        self._last_command_ns: int | None = None
        # The last command issued while the car's motion was known (None: none yet).
        self._last_command: ControlCommand | None = None
        self._stop: StopProfile | None = None  # the stop under way, if any
        # Whether the brake was held before the car's motion was known (no odometry yet).
        self._held = False

    def restart(self) -> None:
        """Forget the commands and the watchdog's state (a bridge activated again), as a
        bridge just started would; the buffered odometry and the newest plan stay, and the
        watchdog judges them afresh."""
        self.tracker.reset()
        self.watchdog = Watchdog(self.watchdog.config)
        self._last_command_ns = None
        self._last_command = None
        self._stop = None
        self._held = False

    def set_plan(self, plan: TrackedTrajectory, t0_ns: int, inference_id: int) -> None:
        self.plan, self.plan_t0_ns, self.plan_inference_id = plan, t0_ns, inference_id

    def refuse_plan(self, received_ns: int, why: str) -> None:
        """A plan that could not be read: the previous one is kept (it ages out and the
        watchdog stops the car), and the health report names why."""
        self.health[TRAJECTORY].record(Fault.INVALID, received_ns, why)

    def add_odometry(
        self,
        stamp_ns: int,
        position: ArrayLike,
        quaternion: ArrayLike,
        speed: float,
        received_ns: int | None = None,
    ) -> AddResult:
        """One odometry sample; `received_ns` (the node's clock) times its faults in the
        health report, which names what was wrong ("position.x is nan")."""
        received_ns = stamp_ns if received_ns is None else received_ns
        newest_ns = self.history.newest_stamp_ns
        result = self.history.add(stamp_ns, position, quaternion)
        stream = self.health[ODOMETRY]
        stream.received(stamp_ns, received_ns)
        invalid = None
        if result is AddResult.REJECTED_NONFINITE:
            invalid = invalid_pose(np.asarray(position, float), np.asarray(quaternion, float))
        stream.record_arrival(result, received_ns, stamp_ns, newest_ns, invalid)
        if result.keeps_sample and not math.isfinite(speed):
            stream.record(Fault.INVALID, received_ns, f"speed is {speed}")
        if result.keeps_sample:
            self.odometry_stamp_ns = stamp_ns
            self.speed = speed if math.isfinite(speed) else float("nan")
        if result is AddResult.CLOCK_JUMP_BACK:
            self.plan = None
            self.plan_t0_ns = None
        return result

    def due(self, now_ns: int) -> bool:
        """Whether the next command is due: a command follows each odometry sample at up
        to the control rate (the freshest state), a timer covering only the gaps."""
        last = self._last_command_ns
        return (
            last is None or not 0 <= now_ns - last < DUE_PERIOD_FRACTION * self.period_s * NS_PER_S
        )

    def _step_s(self, now_ns: int) -> float:
        """Seconds since the previous command, for the rate limits (the nominal period for
        the first command and when the clock went back)."""
        last, self._last_command_ns = self._last_command_ns, now_ns
        if last is None or now_ns <= last:
            return self.period_s
        return min((now_ns - last) / NS_PER_S, MAX_STEP_PERIODS * self.period_s)

    def command(self, now_ns: int) -> ControlOutput:
        step_s = self._step_s(now_ns)
        pose, unusable = self._pose_on_plan()
        decision = self.watchdog.update(
            now_ns, self.plan_t0_ns, self.odometry_stamp_ns, self.speed, unusable
        )
        state, reason = decision.state, decision.reason
        command = None
        if state is WatchdogState.TRACKING:
            assert self.plan is not None and self.plan_t0_ns is not None and pose is not None
            x, y, yaw = pose
            elapsed_s = (now_ns - self.plan_t0_ns) / NS_PER_S
            command = self.tracker.command(self.plan, elapsed_s, x, y, yaw, self.speed, step_s)
            self._stop = None
        if command is None:
            state, command = self._stop_command(now_ns, state)
            if state is WatchdogState.WAITING:
                # Nothing tracked since the start: whoever drove meanwhile (a driver, the
                # simulator's expert) set the actuators, not this profile.
                self.tracker.reset()
            else:
                # A stop that cut tracking short set them: tracking that resumes moves the
                # steering and the braking on from there, within their rate limits (reset,
                # a plan back after a stall at 20 m/s went from -3 to +3 m/s^2 at once).
                self.tracker.continue_from(command)
        if self.odometry_stamp_ns is not None:
            # A hold before any odometry says nothing of the motion: a stop that begins
            # once the speed is known begins from it.
            self._last_command = command
        return ControlOutput(state, reason, command, self.plan_t0_ns, self.plan_inference_id)

    def handover(self, now_ns: int) -> ControlOutput:
        """The last command before the bridge stops commanding (deactivated): a stop.

        A vehicle interface holds the last command it had until its own command timeout,
        so a car left on a tracking command would drive on it, accelerating or turning.
        This one asks for standstill: velocity 0, braking at the safe-stop deceleration
        (harder where the car already brakes harder), the steering held (a stop in a curve
        stays in the curve). It is one step, not a profile: there is no next command to
        ramp the braking up with."""
        self._last_command_ns = now_ns
        config = self.watchdog.config
        last = self._last_command
        braking = self._stop_braking(0.0 if last is None else last.acceleration)
        steering = 0.0 if last is None else last.steering_angle
        # Standing by a reading the watchdog still trusts (lost odometry says nothing).
        standing = (
            self.odometry_stamp_ns is not None
            and not config.odometry_lost(now_ns, self.odometry_stamp_ns)
            and config.at_standstill(self.speed)
        )
        state = WatchdogState.STOPPED if standing else WatchdogState.SAFE_STOP
        command = ControlCommand(steering, 0.0, 0.0, -braking, 0.0)
        reason = "deactivated: braking to a stop, then the vehicle's command timeout applies"
        return ControlOutput(state, reason, command, self.plan_t0_ns, self.plan_inference_id)

    def _stop_braking(self, acceleration: float) -> float:
        """A stop's deceleration (positive) from the car's `acceleration`: the safe-stop
        deceleration, or the braking under way where it is harder (within the vehicle's
        limit), never weaker."""
        braking = min(-acceleration, self.vehicle.max_deceleration)
        return max(self.watchdog.config.safe_stop_deceleration, braking)

    def _pose_on_plan(self) -> tuple[tuple[float, float, float] | None, str | None]:
        """The car's pose (x, y, yaw) in the plan's t0 frame, or why it is not known: the
        watchdog counts that as stale, so a plan stamped a little ahead of the odometry
        (further than the history extrapolates) stops the car and is tracked again only
        after the recovery time, not every other command."""
        if self.plan_t0_ns is None or self.odometry_stamp_ns is None:
            return None, None  # the watchdog names what is missing
        try:
            return self.history.relative_pose(self.plan_t0_ns, self.odometry_stamp_ns), None
        except HistoryUnavailable as error:
            return None, f"ego pose at plan time unknown: {error}"

    def _stop_command(
        self, now_ns: int, state: WatchdogState
    ) -> tuple[WatchdogState, ControlCommand]:
        """The stop profile's command: planned when the stop starts, and followed by the
        clock alone after that. It starts no faster than the car was measured or commanded
        to go and brakes no weaker than it was braking; the velocity never rises during a
        stop (not even when the clock jumps back), and the stop counts as STOPPED only
        once its profile has ended and the car reads standstill, so one bad speed reading
        cannot cut it short. The steering holds its last angle: a stop in a curve stays
        in the curve.

        A bridge that starts (or is restarted) under a moving car waits for a plan on the
        same profile, from the measured speed, rather than commanding standstill at once;
        before any odometry it holds the brake (velocity 0: the motion is unknown), and the
        profile then starts at that braking."""
        config = self.watchdog.config
        known_speed = self.odometry_stamp_ns is not None and math.isfinite(self.speed)
        last = self._last_command
        if state is WatchdogState.WAITING and not known_speed:
            self._held = True
            return state, ControlCommand(0.0, 0.0, 0.0, -config.safe_stop_deceleration, 0.0)
        if self._stop is None:
            if last is None:
                # After the hold the profile brakes on as hard: it does not let go of the
                # brake to ramp it up again once the speed is known.
                held = -config.safe_stop_deceleration if self._held else 0.0
                speed, acceleration = (max(self.speed, 0.0) if known_speed else 0.0), held
            else:
                speed = min(self.speed, last.velocity) if known_speed else last.velocity
                acceleration = last.acceleration
            self._stop = StopProfile.start(
                now_ns,
                speed,
                acceleration,
                self._stop_braking(acceleration),
                config.safe_stop_jerk,
            )
        if state is WatchdogState.EMERGENCY_STOP:
            self._stop = self._stop.escalate(now_ns, config.emergency_deceleration)
        if state is WatchdogState.STOPPED and now_ns < self._stop.end_ns:
            state = WatchdogState.SAFE_STOP
        stop = self._stop.at(now_ns)
        velocity = stop.velocity if last is None else min(stop.velocity, last.velocity)
        steering = 0.0 if last is None else last.steering_angle
        return state, ControlCommand(steering, 0.0, velocity, stop.acceleration, stop.jerk)
