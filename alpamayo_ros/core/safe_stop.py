"""The minimal-risk manoeuvre: a braking profile fixed when the watchdog takes over.

Once the inputs cannot be trusted, neither can anything measured from them, so the stop
is planned once, from the speed and acceleration at that moment, and then followed by
the clock alone: the deceleration builds up at a bounded jerk to the configured level,
the commanded velocity falls monotonically to zero and is held there. Escalating to a
stronger deceleration (odometry lost too) continues from where the profile is, so the
velocity never steps up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alpamayo_ros.core.contract import NS_PER_S


class InvalidStopProfile(ValueError):
    """Non-finite or non-positive profile parameters."""


@dataclass(frozen=True)
class StopCommand:
    velocity: float  # m/s, never negative, never above an earlier command of the profile
    acceleration: float  # m/s^2, <= 0; -deceleration at standstill (the holding brake)
    jerk: float  # m/s^3


@dataclass(frozen=True)
class StopProfile:
    """Braking from (`speed`, `acceleration`) at `start_ns` to standstill."""

    start_ns: int
    speed: float  # m/s at the start, >= 0
    acceleration: float  # m/s^2 at the start, <= 0 (a car speeding up starts from 0)
    deceleration: float  # m/s^2, positive magnitude reached and kept until standstill
    jerk: float  # m/s^3, positive: how fast the deceleration builds up

    @classmethod
    def start(
        cls, now_ns: int, speed: float, acceleration: float, deceleration: float, jerk: float
    ) -> StopProfile:
        """A stop starting now. An unknown speed starts at 0 (hold the brake); a positive
        acceleration starts at 0, so the velocity only ever falls."""
        if not (deceleration > 0.0 and jerk > 0.0 and math.isfinite(deceleration + jerk)):
            raise InvalidStopProfile(
                f"deceleration and jerk must be positive, got {deceleration}, {jerk}"
            )
        speed = max(speed, 0.0) if math.isfinite(speed) else 0.0
        acceleration = min(acceleration, 0.0) if math.isfinite(acceleration) else 0.0
        return cls(now_ns, speed, max(acceleration, -deceleration), deceleration, jerk)

    @property
    def ramp_s(self) -> float:
        """Time for the deceleration to build up to its level."""
        return (self.acceleration + self.deceleration) / self.jerk

    def _ramp_velocity(self, t: float) -> float:
        """Velocity `t` seconds in, while the deceleration builds up."""
        return self.speed + self.acceleration * t - 0.5 * self.jerk * t * t

    @property
    def duration_s(self) -> float:
        """Time from the start to standstill."""
        at_ramp_end = self._ramp_velocity(self.ramp_s)
        if at_ramp_end <= 0.0:
            # Standstill during the ramp: speed + a0 t - j t^2 / 2 = 0.
            a0, j = self.acceleration, self.jerk
            return (a0 + math.sqrt(a0 * a0 + 2.0 * j * self.speed)) / j
        return self.ramp_s + at_ramp_end / self.deceleration

    @property
    def end_ns(self) -> int:
        """When the profile reaches standstill."""
        return self.start_ns + math.ceil(self.duration_s * NS_PER_S)

    def at(self, now_ns: int) -> StopCommand:
        """The command at `now_ns` (times before the start read as the start)."""
        t = max(0.0, (now_ns - self.start_ns) / NS_PER_S)
        if t >= self.duration_s:
            return StopCommand(0.0, -self.deceleration, 0.0)
        ramp = self.ramp_s
        if t < ramp:
            acceleration = self.acceleration - self.jerk * t
            return StopCommand(self._ramp_velocity(t), acceleration, -self.jerk)
        velocity = max(0.0, self._ramp_velocity(ramp) - self.deceleration * (t - ramp))
        return StopCommand(velocity, -self.deceleration, 0.0)

    def escalate(self, now_ns: int, deceleration: float) -> StopProfile:
        """A stronger stop continuing from this profile's state at `now_ns` (never weaker:
        a lower deceleration keeps this profile)."""
        if deceleration <= self.deceleration:
            return self
        here = self.at(now_ns)
        return StopProfile.start(
            max(now_ns, self.start_ns), here.velocity, here.acceleration, deceleration, self.jerk
        )
