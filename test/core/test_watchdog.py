import math

from alpamayo_ros.core.watchdog import (
    Watchdog,
    WatchdogConfig,
    WatchdogState,
)

MS = 1_000_000
NOW = 1_700_000_000_000_000_000


def _fresh(watchdog, now=NOW, speed=10.0):
    return watchdog.update(now, now - 100 * MS, now - 10 * MS, speed)


def _tracking_watchdog():
    watchdog = Watchdog()
    assert _fresh(watchdog).state is WatchdogState.TRACKING
    return watchdog


def test_waits_until_both_inputs_arrive():
    watchdog = Watchdog()
    decision = watchdog.update(NOW, None, NOW, 0.0)
    assert decision.state is WatchdogState.WAITING
    assert decision.reason == "no trajectory received yet"
    decision = watchdog.update(NOW, NOW, None, 0.0)
    assert (decision.state, decision.reason) == (WatchdogState.WAITING, "no odometry received yet")
    # Stale first inputs keep waiting: there was never anything to track.
    assert watchdog.update(NOW, NOW - 2_000 * MS, NOW, 0.0).state is WatchdogState.WAITING
    decision = _fresh(watchdog)
    assert (decision.state, decision.reason) == (WatchdogState.TRACKING, "inputs fresh")


def test_trajectory_age_is_measured_from_its_input_stamp():
    watchdog = _tracking_watchdog()
    # Just received, but planned from inputs of t0 = now - 0.73 s.
    decision = watchdog.update(NOW, NOW - 730 * MS, NOW, 10.0)
    assert decision.state is WatchdogState.SAFE_STOP
    assert decision.reason == "trajectory is 0.73 s old (limit 0.50 s)"


def test_stale_odometry_and_non_finite_speed_trigger_safe_stop():
    watchdog = _tracking_watchdog()
    decision = watchdog.update(NOW, NOW, NOW - 250 * MS, 10.0)
    assert decision.state is WatchdogState.SAFE_STOP
    assert decision.reason == "odometry is 0.25 s old (limit 0.20 s)"
    watchdog = _tracking_watchdog()
    decision = watchdog.update(NOW, NOW, NOW, math.nan)
    assert (decision.state, decision.reason) == (WatchdogState.SAFE_STOP, "speed nan is not finite")


def test_clock_jump_makes_future_stamps_stale():
    watchdog = _tracking_watchdog()
    # A small lead (sensor clock skew) is tolerated...
    assert watchdog.update(NOW, NOW + 400 * MS, NOW, 10.0).state is WatchdogState.TRACKING
    # ...but the sim clock restarting makes every stamp lie far in the future.
    decision = watchdog.update(NOW - 30_000 * MS, NOW, NOW, 10.0)
    assert decision.state is WatchdogState.SAFE_STOP
    assert decision.reason == (
        "trajectory stamp is 30.00 s in the future (clock jump); "
        "odometry stamp is 30.00 s in the future (clock jump)"
    )


def test_every_input_at_fault_is_named():
    """A dead camera driver: no odometry, and no plan since; neither hides the other."""
    watchdog = _tracking_watchdog()
    decision = watchdog.update(NOW, NOW - 1_040 * MS, NOW - 900 * MS, math.inf)
    assert decision.reason == (
        "trajectory is 1.04 s old (limit 0.50 s); odometry is 0.90 s old (limit 0.20 s); "
        "speed inf is not finite"
    )


def test_safe_stop_ends_stopped_at_standstill():
    watchdog = _tracking_watchdog()
    stale_t0 = NOW - 1_000 * MS
    assert watchdog.update(NOW, stale_t0, NOW, 5.0).state is WatchdogState.SAFE_STOP
    assert watchdog.update(NOW, stale_t0, NOW, 0.05).state is WatchdogState.STOPPED
    # Already standing when the inputs go stale: straight to STOPPED.
    standing = Watchdog()
    _fresh(standing, speed=0.0)
    assert standing.update(NOW, stale_t0, NOW, 0.0).state is WatchdogState.STOPPED


def test_recovery_needs_the_inputs_fresh_for_a_while():
    config = WatchdogConfig(recovery_s=0.1)
    watchdog = Watchdog(config)
    _fresh(watchdog)
    watchdog.update(NOW, NOW - 1_000 * MS, NOW, 0.0)
    assert watchdog.state is WatchdogState.STOPPED
    for k in range(5):  # 0 .. 80 ms of fresh inputs
        decision = _fresh(watchdog, NOW + 20 * k * MS, speed=0.0)
        assert decision.state is WatchdogState.STOPPED
        assert decision.reason == f"recovering: inputs fresh for {0.02 * k:.2f} of 0.10 s"
    # One stale check restarts the clock; 100 ms fresh again are needed, however many checks.
    watchdog.update(NOW + 100 * MS, NOW - 1_000 * MS, NOW + 100 * MS, 0.0)
    states = [_fresh(watchdog, NOW + (120 + 10 * k) * MS, speed=0.0).state for k in range(11)]
    assert states == [WatchdogState.STOPPED] * 10 + [WatchdogState.TRACKING]


def test_odometry_lost_beyond_its_bound_escalates_and_never_de_escalates_while_moving():
    watchdog = _tracking_watchdog()
    # Odometry 0.5 s old: stale (limit 0.2 s) but not lost (1.0 s).
    decision = watchdog.update(NOW, NOW - 100 * MS, NOW - 500 * MS, 10.0)
    assert decision.state is WatchdogState.SAFE_STOP
    assert decision.reason == "odometry is 0.50 s old (limit 0.20 s)"
    later = NOW + 700 * MS
    assert watchdog.update(later, NOW, NOW - 500 * MS, 10.0).state is WatchdogState.EMERGENCY_STOP
    # Odometry back, still moving: the emergency stop goes on while recovery counts...
    for _ in range(3):
        assert _fresh(watchdog, later, speed=8.0).state is WatchdogState.EMERGENCY_STOP
    # ...and ends stopped at standstill.
    assert _fresh(watchdog, later, speed=0.0).state is WatchdogState.STOPPED


def test_fresh_inputs_that_cannot_be_followed_count_as_stale():
    """The caller's reason (the car's pose at the plan's t0 unknown) stops the car like a
    stale input, named beside any other, and leaving that stop takes the recovery time."""
    watchdog = _tracking_watchdog()
    unplaced = "ego pose at plan time unknown"
    decision = watchdog.update(NOW, NOW - 100 * MS, NOW - 10 * MS, 10.0, unplaced)
    assert (decision.state, decision.reason) == (WatchdogState.SAFE_STOP, unplaced)
    both = watchdog.update(NOW, NOW - 900 * MS, NOW - 10 * MS, 10.0, unplaced)
    assert both.reason == f"trajectory is 0.90 s old (limit 0.50 s); {unplaced}"
    assert _fresh(watchdog, NOW + 20 * MS).state is WatchdogState.SAFE_STOP  # recovering
