"""The control step: tracks fresh plans, stops on stale ones, never commands reverse."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.control import TrackedTrajectory, VehicleParams
from alpamayo_ros.core.input_health import Level
from alpamayo_ros.core.kinematics import integrate_unicycle
from alpamayo_ros.core.watchdog import WatchdogConfig, WatchdogState
from alpamayo_ros.pipeline.control import ControlStep

T0_NS = 1_000 * NS_PER_S
PERIOD_S = 0.02
IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def drive(step: ControlStep, plan: TrackedTrajectory, speeds: list[float]) -> list:
    """Odometry along the plan's straight line at the given speeds, one command per 20 ms."""
    step.set_plan(plan, T0_NS, inference_id=7)
    outputs, x = [], 0.0
    for k, speed in enumerate(speeds):
        now = T0_NS + round(k * PERIOD_S * NS_PER_S)
        x += speed * PERIOD_S
        step.add_odometry(now, np.array([x, 0.0, 0.0]), IDENTITY, speed)
        outputs.append(step.command(now))
    return outputs


def test_a_plan_that_brakes_through_zero_is_never_a_reverse_command() -> None:
    """A plan from a backend that integrated braking past standstill (as the planner did
    before it stopped at zero): its speeds turn negative after 1.3 s."""
    braking = integrate_unicycle(np.full(64, -3.0), np.zeros(64), 4.0)
    assert braking.v.min() < -10.0
    plan = TrackedTrajectory.from_rollout(braking)
    speeds = list(np.maximum(4.0 - 3.0 * PERIOD_S * np.arange(100), 0.0))
    # A plan valid for 3 s, so the tracker (not the watchdog) follows it to standstill.
    step = ControlStep(PERIOD_S, watchdog=WatchdogConfig(trajectory_timeout_s=3.0))
    outputs = drive(step, plan, speeds)
    tracking = [o for o in outputs if o.state is WatchdogState.TRACKING]
    assert len(tracking) == len(outputs) - 1  # the first has one odometry sample only
    assert min(o.command.velocity for o in outputs) == 0.0
    assert all(o.command.velocity >= 0.0 for o in outputs)
    assert all(o.plan_inference_id == 7 and o.plan_t0_ns == T0_NS for o in tracking)


def test_without_a_plan_it_waits_and_holds_the_brake() -> None:
    step = ControlStep(PERIOD_S)
    step.add_odometry(T0_NS, np.zeros(3), IDENTITY, 0.0)
    output = step.command(T0_NS)
    assert output.state is WatchdogState.WAITING and output.reason == "no trajectory received yet"
    assert output.command.velocity == 0.0 and output.command.acceleration < 0.0


def test_a_bridge_started_under_a_moving_car_brakes_from_its_speed_not_at_once() -> None:
    """A respawned bridge, the car at 10 m/s and no plan yet: the velocity commanded falls
    along the stop profile from the measured speed; before any odometry it holds 0."""
    step = ControlStep(PERIOD_S)
    assert step.command(T0_NS - 1).command.velocity == 0.0  # motion unknown: hold
    outputs = []
    for k in range(300):
        now = T0_NS + round(k * PERIOD_S * NS_PER_S)
        step.add_odometry(now, np.array([10.0 * k * PERIOD_S, 0.0, 0.0]), IDENTITY, 10.0)
        outputs.append(step.command(now))
    assert all(o.state is WatchdogState.WAITING for o in outputs)
    velocities = np.array([o.command.velocity for o in outputs])
    assert velocities[0] == pytest.approx(10.0)
    assert np.all(np.diff(velocities) <= 0.0)
    # The brake held before the speed was known is not let go to ramp up again.
    moving = velocities > 0.0
    accelerations = np.array([o.command.acceleration for o in outputs])
    assert np.all(accelerations[moving] <= -3.0 + 1e-9), accelerations[:5]
    assert np.abs(np.diff(velocities)).max() <= 3.0 * PERIOD_S + 1e-9  # a ramp, not a step
    bound_s = 10.0 / 3.0 + 0.5 * 3.0 / 10.0
    assert velocities[int(np.ceil(bound_s / PERIOD_S)) + 1 :].max() == 0.0


def test_tracking_that_resumes_after_a_stop_moves_on_from_it_within_the_rate_limits() -> None:
    """A plan back after a stall at 20 m/s: the first command tracking it moves the braking
    and the steering on from the stop's last command within the jerk and steering-rate
    limits (from nothing, it jumped from -3 to +3 m/s^2 and by 1.7 rad/s)."""
    speeding_up_in_a_curve = integrate_unicycle(np.full(64, 1.5), np.full(64, 0.02), 20.0)
    plan = TrackedTrajectory.from_rollout(speeding_up_in_a_curve)
    step, limits = ControlStep(PERIOD_S), VehicleParams()
    outputs = []
    for k in range(150):
        now = T0_NS + round(k * PERIOD_S * NS_PER_S)
        if k in (0, 100):  # the planner stalls after the first plan, then plans again
            step.set_plan(plan, now, inference_id=k)
        step.add_odometry(now, np.array([20.0 * k * PERIOD_S, 0.0, 0.0]), IDENTITY, 20.0)
        outputs.append(step.command(now))
    states = [o.state for o in outputs]
    # (The first command, with one odometry sample, cannot place the car on the plan.)
    stalled = states.index(WatchdogState.SAFE_STOP, states.index(WatchdogState.TRACKING))
    resumed = states.index(WatchdogState.TRACKING, stalled)
    assert resumed > 100
    before, after = outputs[resumed - 1].command, outputs[resumed].command
    assert before.acceleration == pytest.approx(-3.0)
    assert abs(after.acceleration - before.acceleration) <= limits.max_jerk * PERIOD_S + 1e-9
    assert abs(after.steering_angle - before.steering_angle) <= (
        limits.max_steering_rate * PERIOD_S + 1e-9
    )


def test_a_stop_in_a_curve_keeps_the_steering_angle() -> None:
    curve = integrate_unicycle(np.zeros(64), np.full(64, 0.05), 8.0)
    step = ControlStep(PERIOD_S)
    outputs = drive(step, TrackedTrajectory.from_rollout(curve), [8.0] * 60)
    states = [o.state for o in outputs]
    takeover = states.index(WatchdogState.SAFE_STOP, 1)
    steering = outputs[takeover - 1].command.steering_angle
    assert steering > 0.05  # turning left when the plan went stale
    assert all(o.command.steering_angle == steering for o in outputs[takeover:])


def test_the_last_command_before_deactivation_is_a_stop_in_the_curve() -> None:
    """Tracking a left curve at 8 m/s, speeding up: the handover asks for standstill at
    the safe-stop deceleration with the steering held, not the tracking command a vehicle
    interface would otherwise hold."""
    curve = integrate_unicycle(np.full(64, 0.5), np.full(64, 0.05), 8.0)
    step = ControlStep(PERIOD_S)
    outputs = drive(step, TrackedTrajectory.from_rollout(curve), [8.0] * 10)
    last = outputs[-1]
    assert last.state is WatchdogState.TRACKING and last.command.acceleration > 0.0
    handover = step.handover(T0_NS + round(10 * PERIOD_S * NS_PER_S))
    assert handover.state is WatchdogState.SAFE_STOP and "deactivated" in handover.reason
    assert handover.command.velocity == 0.0
    assert handover.command.acceleration == -3.0
    assert handover.command.steering_angle == last.command.steering_angle > 0.05
    assert (handover.plan_t0_ns, handover.plan_inference_id) == (T0_NS, 7)


def test_a_handover_never_brakes_weaker_than_the_car_was_braking() -> None:
    """Odometry lost: the stop had escalated to the emergency deceleration, which the
    handover keeps; standing, the handover holds the brake as STOPPED."""
    cruise = integrate_unicycle(np.zeros(64), np.zeros(64), 10.0)
    step = ControlStep(PERIOD_S, watchdog=WatchdogConfig(trajectory_timeout_s=10.0))
    drive(step, TrackedTrajectory.from_rollout(cruise), [10.0] * 10)
    last_odometry = T0_NS + round(9 * PERIOD_S * NS_PER_S)
    for k in range(1, 150):
        output = step.command(last_odometry + round(k * PERIOD_S * NS_PER_S))
    assert output.state is WatchdogState.EMERGENCY_STOP
    assert step.handover(last_odometry + 3 * NS_PER_S).command.acceleration == -6.0

    standing = ControlStep(PERIOD_S)
    standing.add_odometry(T0_NS, np.zeros(3), IDENTITY, 0.0)
    standing.command(T0_NS)
    handover = standing.handover(T0_NS + NS_PER_S // 50)
    assert handover.state is WatchdogState.STOPPED
    assert (handover.command.velocity, handover.command.acceleration) == (0.0, -3.0)
    # A standstill reading from before the odometry was lost says nothing of now.
    assert standing.handover(T0_NS + 2 * NS_PER_S).state is WatchdogState.SAFE_STOP


def test_a_stale_plan_stops_the_car_on_the_profile_whatever_odometry_says() -> None:
    """The watchdog takes over 0.5 s after the plan's t0; the car keeps speeding up (the
    actuators are ignoring us): the command still falls monotonically to zero, in
    speed / deceleration plus half the jerk ramp, and stays there."""
    cruise = integrate_unicycle(np.zeros(64), np.zeros(64), 10.0)
    step = ControlStep(PERIOD_S)
    speeds = list(10.0 + 0.05 * np.arange(400))  # 8 s at 50 Hz, accelerating
    outputs = drive(step, TrackedTrajectory.from_rollout(cruise), speeds)
    states = [o.state for o in outputs]
    assert states[1] is WatchdogState.TRACKING  # the first command lacks a second odometry
    takeover = states.index(WatchdogState.SAFE_STOP, 1)
    assert takeover * PERIOD_S == pytest.approx(0.52)  # the first check past the 0.5 s limit
    velocities = np.array([o.command.velocity for o in outputs[takeover:]])
    assert np.all(np.diff(velocities) <= 0.0)
    # It starts from the lower of the measured and the last commanded speed.
    start_speed = min(speeds[takeover], outputs[takeover - 1].command.velocity)
    bound_s = start_speed / 3.0 + 0.5 * 3.0 / 10.0
    assert velocities[int(np.ceil(bound_s / PERIOD_S)) + 1 :].max() == 0.0
    assert velocities[int(bound_s / PERIOD_S) - 5] > 0.0  # not a jump to zero either
    assert all(o.command.acceleration <= 0.0 for o in outputs[takeover:])


def test_odometry_lost_escalates_to_the_emergency_deceleration() -> None:
    cruise = integrate_unicycle(np.zeros(64), np.zeros(64), 10.0)
    step = ControlStep(PERIOD_S, watchdog=WatchdogConfig(trajectory_timeout_s=10.0))
    outputs = drive(step, TrackedTrajectory.from_rollout(cruise), [10.0] * 10)
    assert outputs[-1].state is WatchdogState.TRACKING
    last_odometry = T0_NS + round(9 * PERIOD_S * NS_PER_S)
    later = [step.command(last_odometry + round(k * PERIOD_S * NS_PER_S)) for k in range(1, 150)]
    states = [o.state for o in later]
    assert WatchdogState.SAFE_STOP in states and states[-1] is WatchdogState.EMERGENCY_STOP
    assert "odometry" in later[-1].reason
    emergency = states.index(WatchdogState.EMERGENCY_STOP)
    assert later[emergency + 60].command.acceleration == -6.0
    velocities = [o.command.velocity for o in later]
    assert np.all(np.diff(velocities) <= 0.0)


def test_after_standstill_a_speed_reading_again_never_raises_the_command() -> None:
    cruise = integrate_unicycle(np.zeros(64), np.zeros(64), 2.0)
    step = ControlStep(PERIOD_S)
    # Stale plan after 0.5 s; the car stops, then odometry jitters above standstill.
    speeds = [2.0] * 30 + [0.0] * 50 + [0.5] * 20
    outputs = drive(step, TrackedTrajectory.from_rollout(cruise), speeds)
    states = [o.state for o in outputs]
    assert WatchdogState.STOPPED in states
    after = outputs[states.index(WatchdogState.STOPPED) :]
    assert any(o.state is WatchdogState.SAFE_STOP for o in after)
    assert all(o.command.velocity == 0.0 for o in after)


def test_one_standstill_reading_does_not_cut_the_stop_short() -> None:
    cruise = integrate_unicycle(np.zeros(64), np.zeros(64), 20.0)
    step = ControlStep(PERIOD_S)
    speeds = [20.0] * 40 + [0.0] + [20.0] * 20  # a glitch during the stop
    outputs = drive(step, TrackedTrajectory.from_rollout(cruise), speeds)
    stop = [o for o in outputs if o.state is not WatchdogState.TRACKING][1:]
    velocities = np.array([o.command.velocity for o in stop])
    assert np.all(np.diff(velocities) <= 0.0)
    assert np.abs(np.diff(velocities)).max() < 3.0 * 2 * PERIOD_S  # no step to zero
    assert WatchdogState.STOPPED not in {o.state for o in stop}


def test_taking_over_a_hard_braking_plan_neither_speeds_up_nor_brakes_weaker() -> None:
    """The tracker was braking at 8 m/s^2 towards 3.6 m/s when the plan went stale."""
    braking = integrate_unicycle(np.full(64, -8.0), np.zeros(64), 10.0)
    step = ControlStep(PERIOD_S)
    outputs = drive(step, TrackedTrajectory.from_rollout(braking), [10.0] * 40)
    states = [o.state for o in outputs]
    takeover = states.index(WatchdogState.SAFE_STOP, 1)
    before, after = outputs[takeover - 1].command, outputs[takeover].command
    assert after.velocity <= before.velocity
    assert after.acceleration <= -3.0
    assert min(o.command.acceleration for o in outputs[takeover:]) <= min(before.acceleration, -3.0)


def test_a_clock_jump_back_during_a_stop_never_raises_the_command() -> None:
    cruise = integrate_unicycle(np.zeros(64), np.zeros(64), 10.0)
    step = ControlStep(PERIOD_S)
    outputs = drive(step, TrackedTrajectory.from_rollout(cruise), [10.0] * 80)
    assert outputs[-1].state is WatchdogState.SAFE_STOP
    slowed = outputs[-1].command.velocity
    assert slowed < 9.0
    assert step.command(T0_NS).command.velocity <= slowed


def test_a_command_is_due_after_most_of_a_period_so_odometry_at_the_rate_drives_it() -> None:
    step = ControlStep(PERIOD_S)
    period_ns = round(PERIOD_S * NS_PER_S)
    assert step.due(0)  # nothing commanded yet
    step.command(1_000 * period_ns)
    # Odometry at the control rate with jitter triggers each command...
    assert step.due(1_000 * period_ns + round(0.85 * period_ns))
    # ...faster odometry every few samples, and a clock that went back at once.
    assert not step.due(1_000 * period_ns + period_ns // 2)
    assert step.due(999 * period_ns)


def test_invalid_odometry_is_named_in_the_health_report() -> None:
    step = ControlStep(PERIOD_S)
    step.add_odometry(T0_NS, np.zeros(3), IDENTITY, 5.0)
    step.add_odometry(T0_NS + 20_000_000, np.array([np.nan, 0.0, 0.0]), IDENTITY, 5.0)
    step.add_odometry(T0_NS + 40_000_000, np.zeros(3), np.zeros(4), 5.0)
    step.add_odometry(T0_NS + 60_000_000, np.zeros(3), IDENTITY, float("nan"))
    report = step.health.report(T0_NS + 60_000_000)
    assert report.level is Level.ERROR
    assert "odometry: invalid (speed is nan; 3 so far)" in report.message
    assert report.counts == {"odometry invalid": 3}
    assert len(step.history) == 2  # neither invalid pose reached the history


def test_a_restarted_step_brakes_from_the_measured_speed_not_from_its_old_stop() -> None:
    """Deactivated standing (its stop ended), reactivated with the car at 15 m/s: it
    ramps down from 15 m/s as a new bridge would, not holding the old standstill."""
    cruise = integrate_unicycle(np.zeros(64), np.zeros(64), 2.0)
    step = ControlStep(PERIOD_S)
    outputs = drive(step, TrackedTrajectory.from_rollout(cruise), [2.0] * 30 + [0.0] * 60)
    assert outputs[-1].state is WatchdogState.STOPPED and outputs[-1].command.velocity == 0.0
    step.restart()
    later = T0_NS + 10 * NS_PER_S
    velocities = []
    for k in range(20):
        now = later + round(k * PERIOD_S * NS_PER_S)
        step.add_odometry(now, np.array([15.0 * k * PERIOD_S, 0.0, 0.0]), IDENTITY, 15.0)
        velocities.append(step.command(now).command.velocity)
    assert velocities[0] == pytest.approx(15.0)
    assert np.all(np.diff(velocities) <= 0.0) and velocities[-1] > 14.0


def test_a_refused_plan_is_named_in_the_health_report_while_the_old_one_ages_out() -> None:
    """A plan that cannot be read (NaN in it): the command after it no longer hides why
    (the bridge's diagnostics led with the watchdog's next state); the report names it
    for its hold, and the car stops on the old plan's age."""
    step = ControlStep(PERIOD_S)
    cruise = TrackedTrajectory.from_rollout(integrate_unicycle(np.zeros(64), np.zeros(64), 10.0))
    drive(step, cruise, [10.0] * 10)
    now = T0_NS + round(10 * PERIOD_S * NS_PER_S)
    step.refuse_plan(now, "x[3] is nan")
    report = step.health.report(now + NS_PER_S)
    assert report.level is Level.ERROR
    assert report.message == "trajectory: invalid (x[3] is nan; 1 so far)"
    assert report.counts["trajectory invalid"] == 1
    assert step.health.report(now + 4 * NS_PER_S).level is Level.OK  # held 3 s
    assert step.plan_t0_ns == T0_NS  # the old plan stays, to age out


def test_plans_stamped_ahead_of_the_odometry_stop_the_car_without_flickering() -> None:
    """A planner whose clock runs 80 ms ahead (further than the odometry is extrapolated):
    no plan can be placed, and the car stops, steadily; before, every plan was tracked
    for the commands after its own and stopped for the rest, ERROR and OK at 10 Hz."""
    step = ControlStep(PERIOD_S)
    cruise = TrackedTrajectory.from_rollout(integrate_unicycle(np.zeros(64), np.zeros(64), 10.0))
    states, reasons = [], []
    for k in range(150):
        now = T0_NS + round(k * PERIOD_S * NS_PER_S)
        if k % 5 == 0:
            step.set_plan(cruise, now + 80_000_000, inference_id=k)
        step.add_odometry(now, np.array([10.0 * k * PERIOD_S, 0.0, 0.0]), IDENTITY, 10.0)
        output = step.command(now)
        states.append(output.state)
        reasons.append(output.reason)
    # The first plan is placed while the odometry is within reach of its t0 (up to
    # 0.05 s extrapolated); from the second on, none is, and the stop holds.
    assert WatchdogState.TRACKING not in states[5:], states
    assert any("ego pose at plan time unknown" in reason for reason in reasons[5:])
