import numpy as np
import pytest

from alpamayo_ros.core.kinematics import integrate_unicycle
from alpamayo_ros.core.trajectory_checks import (
    InvalidCandidates,
    Limits,
    check_rollout,
    select_trajectory,
)

STEPS = 64


def _rollout(acceleration=0.0, curvature=0.0, v0=10.0):
    return integrate_unicycle(np.broadcast_to(acceleration, STEPS), curvature, v0=v0)


def test_gentle_curve_is_feasible():
    assert check_rollout(_rollout(acceleration=0.5, curvature=0.02)) == []


def test_acceleration_violation_reports_value_and_time():
    acceleration = np.zeros(STEPS)
    acceleration[12] = -12.1  # the step ending at t = 1.3 s
    rollout = _rollout(acceleration=acceleration, v0=20.0)
    violations = check_rollout(rollout, Limits(max_abs_jerk=1e3))
    assert violations == ["acceleration -12.1 m/s^2 exceeds ±9.8 at t=1.3 s"]


def test_curvature_and_lateral_acceleration_violations():
    # 0.4 1/m at 5 m/s: curvature above 0.33 and v^2*kappa = 10 m/s^2 above 6.
    violations = check_rollout(_rollout(curvature=0.4, v0=5.0))
    assert violations == [
        "curvature +0.4 1/m exceeds ±0.33 at t=0.1 s",
        "lateral acceleration +10 m/s^2 exceeds ±6 at t=0.1 s",
    ]
    # 0.1 1/m is a legal curvature, but not at 10 m/s (10 m/s^2 lateral).
    assert check_rollout(_rollout(curvature=0.1)) == [
        "lateral acceleration +10 m/s^2 exceeds ±6 at t=0.1 s"
    ]


def test_jerk_between_steps():
    acceleration = np.r_[np.zeros(30), np.full(34, 3.0)]  # 3 m/s^2 within 0.1 s: 30 m/s^3
    violations = check_rollout(_rollout(acceleration=acceleration))
    assert violations == ["jerk +30 m/s^3 exceeds ±20 at t=3.1 s"]


def test_non_finite_values_short_circuit():
    acceleration = np.zeros(STEPS)
    acceleration[5] = np.nan
    violations = check_rollout(_rollout(acceleration=acceleration))
    assert violations == ["non-finite values in x, y, yaw, v, acceleration"]


def test_selection_prefers_the_best_feasible_candidate():
    rollouts = integrate_unicycle(
        np.stack([np.zeros(STEPS), np.full(STEPS, 12.0), np.zeros(STEPS), np.zeros(STEPS)]),
        np.stack([np.zeros(STEPS), np.zeros(STEPS), np.full(STEPS, 0.01), np.zeros(STEPS)]),
        v0=10.0,
    )
    selection = select_trajectory(rollouts, [0.2, 0.9, 0.5, np.nan])
    assert selection.index == 2
    np.testing.assert_array_equal(selection.feasible, [True, False, True, False])
    assert selection.violations[0] == selection.violations[2] == ()
    assert selection.violations[1] == ("acceleration +12 m/s^2 exceeds ±9.8 at t=0.1 s",)
    assert selection.violations[3] == ("score nan is not finite",)


def test_a_refusal_beyond_the_limits_makes_a_candidate_infeasible():
    rollouts = integrate_unicycle(np.zeros((3, STEPS)), 0.0, v0=5.0)
    selection = select_trajectory(rollouts, [3.0, 2.0, 1.0], refusals=["too close", "", ""])
    assert selection.index == 1
    assert selection.violations == (("too close",), (), ())
    with pytest.raises(InvalidCandidates, match="need 3 refusals, got 1"):
        select_trajectory(rollouts, [3.0, 2.0, 1.0], refusals=["too close"])


def test_selection_without_feasible_candidate():
    rollouts = integrate_unicycle(np.full((2, STEPS), 15.0), 0.0, v0=5.0)
    selection = select_trajectory(rollouts, [1.0, 2.0])
    assert selection.index is None and not selection.feasible.any()


def test_shape_errors():
    with pytest.raises(InvalidCandidates):
        check_rollout(integrate_unicycle(np.zeros((2, STEPS)), 0.0, v0=5.0))
    with pytest.raises(InvalidCandidates):
        select_trajectory(integrate_unicycle(np.zeros((2, STEPS)), 0.0, v0=5.0), [1.0, 2.0, 3.0])
