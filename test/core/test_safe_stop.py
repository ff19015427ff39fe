"""The stop profile: planned once, monotone, bounded in jerk, held at zero."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpamayo_ros.core.safe_stop import InvalidStopProfile, StopProfile

NS = 1_000_000_000
START = 50 * NS


def commands(profile: StopProfile, seconds: float, dt: float = 0.01):
    return [profile.at(START + round(k * dt * NS)) for k in range(round(seconds / dt) + 1)]


def test_from_cruise_the_velocity_falls_monotonically_to_zero_and_stays() -> None:
    profile = StopProfile.start(START, 12.0, 0.0, deceleration=3.0, jerk=10.0)
    assert profile.ramp_s == pytest.approx(0.3)
    # 12 m/s at 3 m/s^2 is 4 s, plus half the jerk ramp.
    assert profile.duration_s == pytest.approx(4.0 + 0.15)
    series = commands(profile, 6.0)
    velocities = np.array([c.velocity for c in series])
    assert velocities[0] == 12.0 and np.all(np.diff(velocities) <= 0.0)
    assert velocities[-1] == 0.0 and velocities.min() == 0.0
    accelerations = np.array([c.acceleration for c in series])
    assert np.all(accelerations <= 0.0) and accelerations.min() == -3.0
    # The deceleration builds at the jerk limit: no step larger than jerk * dt.
    assert np.abs(np.diff(accelerations)).max() <= 10.0 * 0.01 + 1e-9
    # At standstill the holding brake stays on.
    assert series[-1].acceleration == -3.0


def test_later_measurements_do_not_move_the_profile() -> None:
    """It depends on the clock alone: the same time gives the same command."""
    profile = StopProfile.start(START, 10.0, -1.0, 3.0, 10.0)
    assert profile.at(START + 2 * NS) == profile.at(START + 2 * NS)
    assert profile.at(START - NS) == profile.at(START)


def test_a_car_speeding_up_starts_braking_from_zero_acceleration() -> None:
    profile = StopProfile.start(START, 10.0, 2.5, 3.0, 10.0)
    assert profile.acceleration == 0.0
    assert profile.at(START + NS // 10).velocity < 10.0


def test_a_short_stop_ends_during_the_jerk_ramp() -> None:
    profile = StopProfile.start(START, 0.05, 0.0, 3.0, 10.0)
    assert profile.duration_s == pytest.approx(math.sqrt(2 * 0.05 / 10.0))
    assert profile.at(START + NS).velocity == 0.0


def test_unknown_speed_holds_the_brake_and_bad_parameters_are_refused() -> None:
    assert StopProfile.start(START, math.nan, 0.0, 3.0, 10.0).at(START).velocity == 0.0
    with pytest.raises(InvalidStopProfile):
        StopProfile.start(START, 5.0, 0.0, 0.0, 10.0)
    with pytest.raises(InvalidStopProfile):
        StopProfile.start(START, 5.0, 0.0, 3.0, math.inf)


def test_escalation_continues_from_where_the_profile_is() -> None:
    soft = StopProfile.start(START, 20.0, 0.0, 3.0, 10.0)
    at_one_second = soft.at(START + NS)
    hard = soft.escalate(START + NS, 6.0)
    assert hard.at(START + NS).velocity == pytest.approx(at_one_second.velocity)
    assert hard.duration_s + 1.0 < soft.duration_s
    velocities = [c.velocity for c in commands(soft, 1.0) + commands(hard, 5.0)[100:]]
    assert np.all(np.diff(velocities) <= 1e-12)
    assert soft.escalate(START + NS, 2.0) is soft  # never weaker
