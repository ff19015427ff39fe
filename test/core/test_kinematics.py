import numpy as np
import pytest

from alpamayo_ros.core.kinematics import (
    EgoState,
    KinematicsError,
    constant_velocity_controls,
    controls_from_paths,
    controls_from_poses,
    estimate_ego_state,
    integrate_unicycle,
)

DT = 0.1


def test_constant_speed_and_curvature_is_an_exact_circle():
    speed, kappa = 8.0, 0.05
    rollout = integrate_unicycle(np.zeros(64), np.full(64, kappa), v0=speed)
    t = DT * np.arange(1, 65)
    yaw = kappa * speed * t
    np.testing.assert_allclose(rollout.t, t)
    np.testing.assert_allclose(rollout.yaw, yaw, atol=1e-12)
    np.testing.assert_allclose(rollout.x, np.sin(yaw) / kappa, atol=1e-9)
    np.testing.assert_allclose(rollout.y, (1.0 - np.cos(yaw)) / kappa, atol=1e-9)
    np.testing.assert_allclose(rollout.v, speed)


def test_straight_constant_acceleration_is_exact():
    rollout = integrate_unicycle(np.full(64, 1.5), np.zeros(64), v0=2.0)
    t = DT * np.arange(1, 65)
    np.testing.assert_allclose(rollout.x, 2.0 * t + 0.75 * t**2, atol=1e-9)
    np.testing.assert_allclose(rollout.v, 2.0 + 1.5 * t, atol=1e-12)
    np.testing.assert_array_equal(rollout.y, 0.0)


def test_tiny_curvature_matches_the_straight_line_without_blow_up():
    rollout = integrate_unicycle(np.zeros(10), np.full(10, 1e-300), v0=10.0)
    np.testing.assert_allclose(rollout.x, 10.0 * DT * np.arange(1, 11), atol=1e-12)
    assert np.all(np.isfinite(rollout.y))


def test_speed_is_not_clamped_so_braking_through_zero_reverses():
    rollout = integrate_unicycle(np.full(30, -2.0), np.zeros(30), v0=1.0)
    assert rollout.v[-1] == pytest.approx(1.0 - 2.0 * 3.0)
    # x(t) = t - t^2 drops below zero once the car backs up past its start.
    assert rollout.x[-1] == pytest.approx(3.0 - 9.0)


def test_start_pose_rotates_and_shifts_the_whole_rollout():
    local = integrate_unicycle(np.zeros(20), np.full(20, 0.1), v0=5.0)
    yaw0 = 0.7
    moved = integrate_unicycle(np.zeros(20), np.full(20, 0.1), v0=5.0, x0=3.0, y0=-2.0, yaw0=yaw0)
    c, s = np.cos(yaw0), np.sin(yaw0)
    np.testing.assert_allclose(moved.x, 3.0 + c * local.x - s * local.y, atol=1e-12)
    np.testing.assert_allclose(moved.y, -2.0 + s * local.x + c * local.y, atol=1e-12)
    np.testing.assert_allclose(moved.yaw, local.yaw + yaw0)


def test_batch_dimensions_broadcast_v0_per_candidate():
    rollouts = integrate_unicycle(np.zeros((3, 5)), 0.0, v0=[1.0, 2.0, 3.0])
    assert rollouts.batch_shape == (3,)
    np.testing.assert_allclose(rollouts.x[:, -1], [0.5, 1.0, 1.5])
    single = rollouts[1]
    assert single.batch_shape == ()
    np.testing.assert_allclose(single.v, 2.0)
    with pytest.raises(KinematicsError):
        single[0]


def test_xyz_and_rotations_describe_the_poses():
    rollout = integrate_unicycle(np.zeros(4), np.full(4, 0.2), v0=5.0)
    xyz, rotations = rollout.xyz(), rollout.rotations()
    assert xyz.shape == (4, 3) and rotations.shape == (4, 3, 3)
    np.testing.assert_array_equal(xyz[:, 2], 0.0)
    heading = rotations @ np.array([1.0, 0.0, 0.0])
    expected = np.column_stack([np.cos(rollout.yaw), np.sin(rollout.yaw)])
    np.testing.assert_allclose(heading[:, :2], expected)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0)


def test_step_arc_lengths_sum_to_travelled_distance():
    rollout = integrate_unicycle(np.full(20, 1.0), np.zeros(20), v0=3.0)
    # s(2 s) = 3*2 + 0.5*1*4
    assert rollout.step_arc_lengths().sum() == pytest.approx(8.0)


def test_until_keeps_the_steps_within_a_time_despite_rounding():
    rollouts = integrate_unicycle(np.zeros((2, 64)), 0.0, v0=[1.0, 2.0])
    near_term = rollouts.until(3.0)  # 30 * 0.1 is 3.0000000000000004 in floating point
    assert near_term.t.shape == (2, 30)
    np.testing.assert_allclose(near_term.x[:, -1], [3.0, 6.0])


def test_a_batch_grows_by_one_appended_rollout_and_slices_back():
    batch = integrate_unicycle(np.zeros((2, 64)), 0.0, v0=[1.0, 2.0])
    one = integrate_unicycle(np.zeros(64), 0.0, v0=3.0)
    grown = batch.appended(one)
    assert grown.batch_shape == (3,)
    np.testing.assert_array_equal(grown[2].x, one.x)
    np.testing.assert_array_equal(grown[:2].x, batch.x)
    with pytest.raises(KinematicsError, match="appends one rollout to a batch"):
        one.appended(one)


def test_non_finite_fields_are_named():
    rollout = integrate_unicycle(np.r_[0.0, np.nan, 0.0], 0.0, v0=1.0)
    assert rollout.non_finite_fields() == ["x", "y", "yaw", "v", "acceleration"]
    assert integrate_unicycle(np.zeros(3), 0.0, v0=1.0).non_finite_fields() == []


def test_controls_round_trip_when_moving():
    rng = np.random.default_rng(0)
    acceleration = rng.uniform(-1.0, 1.0, size=(5, 64))
    curvature = rng.uniform(-0.2, 0.2, size=(5, 64))
    v0 = np.array([5.0, 8.0, 12.0, 20.0, 30.0])
    rollout = integrate_unicycle(acceleration, curvature, v0=v0)
    assert rollout.v.min() > 0.5
    recovered_acceleration, recovered_curvature = controls_from_poses(
        rollout.x, rollout.y, rollout.yaw, v0
    )
    np.testing.assert_allclose(recovered_acceleration, acceleration, atol=1e-6)
    np.testing.assert_allclose(recovered_curvature, curvature, atol=1e-6)


def test_paths_of_an_unknown_start_speed_give_their_smooth_controls():
    """Candidates sharing a start speed: recovered without being told it (to the bias the
    true controls' own jerk leaves), also from float32-rounded positions, where a start
    speed 0.1 m/s off gives tens of m/s^3 of jerk."""
    t = np.arange(64) * DT
    acceleration = np.stack([np.full(64, -1.5), 0.8 * np.sin(t), np.zeros(64)])
    curvature = np.stack([np.zeros(64), np.full(64, 0.01), -0.02 * np.cos(t)])
    rollout = integrate_unicycle(acceleration, curvature, v0=9.0)
    speed, recovered_acceleration, recovered_curvature = controls_from_paths(
        rollout.x, rollout.y, rollout.yaw
    )
    assert speed == pytest.approx(9.0, abs=1e-4)
    np.testing.assert_allclose(recovered_acceleration, acceleration, atol=3e-3)
    np.testing.assert_allclose(recovered_curvature, curvature, atol=1e-6)

    rounded = [v.astype(np.float32).astype(np.float64) for v in (rollout.x, rollout.y, rollout.yaw)]
    speed, smooth, _ = controls_from_paths(*rounded)
    off, _ = controls_from_poses(*rounded, speed + 0.1)
    assert speed == pytest.approx(9.0, abs=1e-3)
    assert np.abs(np.diff(smooth)).max() / DT < 5.0
    assert np.abs(np.diff(off)).max() / DT > 20.0


def test_controls_near_standstill_report_zero_curvature():
    # Stopping: 2 m/s braking at 2 m/s^2 reaches 0 after 1 s and stays there.
    acceleration = np.r_[np.full(10, -2.0), np.zeros(10)]
    rollout = integrate_unicycle(acceleration, np.full(20, 0.1), v0=2.0)
    recovered_acceleration, recovered_curvature = controls_from_poses(
        rollout.x, rollout.y, rollout.yaw, 2.0
    )
    np.testing.assert_allclose(recovered_acceleration, acceleration, atol=1e-6)
    slow = np.abs(rollout.v - rollout.acceleration * DT / 2.0) < 0.5
    np.testing.assert_array_equal(recovered_curvature[slow], 0.0)
    np.testing.assert_allclose(recovered_curvature[~slow], 0.1, atol=1e-9)


def _history(rollout):
    """History of 16 poses ending at t0, in the t0 frame (last pose at the origin)."""
    xyz, rotations = rollout.xyz(), rollout.rotations()
    r_t0 = rotations[-1]
    return (xyz - xyz[-1]) @ r_t0, np.einsum("ji,njk->nik", r_t0, rotations)


def test_ego_state_of_a_constant_turn():
    speed, kappa = 10.0, 0.04
    history = integrate_unicycle(np.zeros(16), np.full(16, kappa), v0=speed)
    state = estimate_ego_state(*_history(history))
    assert state.speed == pytest.approx(speed, abs=1e-6)
    assert state.acceleration == pytest.approx(0.0, abs=1e-6)
    assert state.yaw_rate == pytest.approx(speed * kappa, abs=1e-6)
    assert state.curvature == pytest.approx(kappa, abs=1e-6)


def test_ego_state_at_standstill_has_zero_curvature():
    xyz = np.zeros((16, 3))
    rotations = np.broadcast_to(np.eye(3), (16, 3, 3))
    assert estimate_ego_state(xyz, rotations) == EgoState(0.0, 0.0, 0.0, 0.0)


def test_ego_state_fit_beats_two_point_differences_on_noisy_history():
    speed_t0, accel = 10.0, 1.0
    t = DT * np.arange(-15, 1)
    s = speed_t0 * t + 0.5 * accel * t**2
    rng = np.random.default_rng(1)
    rotations = np.broadcast_to(np.eye(3), (16, 3, 3))
    fit_errors, naive_errors = [], []
    for _ in range(200):
        xyz = np.column_stack([s, np.zeros(16), np.zeros(16)])
        xyz[:, :2] += rng.normal(scale=0.03, size=(16, 2))
        state = estimate_ego_state(xyz - xyz[-1], rotations)
        fit_errors.append([state.speed - speed_t0, state.acceleration - accel])
        naive_speed = (xyz[-1, 0] - xyz[-2, 0]) / DT
        naive_accel = (xyz[-1, 0] - 2 * xyz[-2, 0] + xyz[-3, 0]) / DT**2
        naive_errors.append([naive_speed - speed_t0, naive_accel - accel])
    fit_rms = np.sqrt(np.mean(np.square(fit_errors), axis=0))
    naive_rms = np.sqrt(np.mean(np.square(naive_errors), axis=0))
    assert fit_rms[0] < 0.15 and fit_rms[1] < 1.0
    assert fit_rms[0] < naive_rms[0] / 2 and fit_rms[1] < naive_rms[1] / 5


def test_ego_state_rejects_too_short_history():
    with pytest.raises(KinematicsError, match="at least 3"):
        estimate_ego_state(np.zeros((2, 3)), np.broadcast_to(np.eye(3), (2, 3, 3)))


def test_constant_velocity_baseline_drives_straight_at_current_speed():
    state = EgoState(speed=12.0, acceleration=2.0, yaw_rate=0.1, curvature=0.0083)
    acceleration, curvature = constant_velocity_controls(state)
    rollout = integrate_unicycle(acceleration, curvature, v0=state.speed)
    np.testing.assert_allclose(rollout.x[-1], 12.0 * 6.4)
    np.testing.assert_array_equal(rollout.y, 0.0)
    assert acceleration.shape == curvature.shape == (64,)


def test_stop_at_standstill_reflects_speed_at_zero() -> None:
    from alpamayo_ros.core.kinematics import stop_at_standstill

    acceleration = np.array([[-2.0, -2.0, -2.0, 1.0, -5.0, 0.0]])
    clamped = stop_at_standstill(acceleration, 0.3, dt=0.1)
    speed = 0.3 + np.cumsum(clamped, axis=-1) * 0.1
    np.testing.assert_allclose(speed, [[0.1, 0.0, 0.0, 0.1, 0.0, 0.0]], atol=1e-12)
    # Nothing changes while the speed stays positive.
    cruising = np.array([0.5, -0.5, 0.2])
    np.testing.assert_allclose(stop_at_standstill(cruising, 5.0), cruising)


def test_vehicle_step_is_the_unicycle_discretisation() -> None:
    from alpamayo_ros.core.kinematics import VehicleState

    controls = [(0.5, 0.02), (-1.0, -0.05), (2.0, 0.0)]
    state = VehicleState(1.0, 2.0, 0.3, 6.0)
    for acceleration, curvature in controls:
        state = state.advance(acceleration, curvature)
    acceleration, curvature = np.array(controls).T
    rollout = integrate_unicycle(acceleration, curvature, 6.0, x0=1.0, y0=2.0, yaw0=0.3)
    assert (state.x, state.y, state.yaw, state.v) == pytest.approx(
        (rollout.x[-1], rollout.y[-1], rollout.yaw[-1], rollout.v[-1]), abs=1e-12
    )
