import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from alpamayo_ros.core.ego_history import (
    EgoHistoryBuffer,
    HistoryUnavailable,
    InvalidOdometry,
    invalid_pose,
)
from alpamayo_ros.core.planar import Pose2D
from alpamayo_ros.core.stamped import AddResult, InvalidStamp

MS = 1_000_000
BASE_NS = 1_700_000_000_000_000_000  # realistic epoch stamps: float seconds would lose ns
SPEED, YAW_RATE = 10.0, 0.2  # circle of radius 50 m
START_YAW, START_XY = 2.0, np.array([120.0, -40.0])  # arbitrary odom-frame start


def _pose(t_s):
    """Odometry pose on a known circle, in the odom frame."""
    radius, yaw = SPEED / YAW_RATE, YAW_RATE * t_s
    local = np.array([radius * np.sin(yaw), radius * (1.0 - np.cos(yaw))])
    c, s = np.cos(START_YAW), np.sin(START_YAW)
    xy = START_XY + np.array([[c, -s], [s, c]]) @ local
    return np.r_[xy, 1.5], Rotation.from_euler("z", START_YAW + yaw).as_quat()


def _filled(rate_hz, duration_s=3.0, flip_every_other_quaternion=False):
    buffer = EgoHistoryBuffer()
    period_ns = round(1e9 / rate_hz)
    for k in range(round(duration_s * rate_hz) + 1):
        position, quaternion = _pose(k * period_ns / 1e9)
        if flip_every_other_quaternion and k % 2:
            quaternion = -quaternion  # same rotation, other hemisphere
        assert buffer.add(BASE_NS + k * period_ns, position, quaternion) is AddResult.ACCEPTED
    return buffer


def _expected_in_t0_frame(stamps_ns):
    """Analytic pose on the circle relative to the pose at t0: depends only on t - t0."""
    tau = (stamps_ns - stamps_ns[-1]) / 1e9
    radius, yaw = SPEED / YAW_RATE, YAW_RATE * tau
    xyz = np.column_stack([radius * np.sin(yaw), radius * (1.0 - np.cos(yaw)), np.zeros_like(yaw)])
    return xyz, Rotation.from_euler("z", yaw[:, np.newaxis]).as_matrix()


@pytest.mark.parametrize("rate_hz", [50, 100])
def test_resampling_is_by_time_and_exact_on_sample_times(rate_hz):
    history = _filled(rate_hz).resample(BASE_NS + 3_000 * MS)
    np.testing.assert_array_equal(np.diff(history.stamps_ns), 100 * MS)
    assert history.stamps_ns[-1] == BASE_NS + 3_000 * MS
    xyz, rotations = _expected_in_t0_frame(history.stamps_ns)
    np.testing.assert_allclose(history.xyz, xyz, atol=1e-9)
    np.testing.assert_allclose(history.rotations, rotations, atol=1e-12)
    # 1.5 s at 10 m/s, not 15 messages (0.15 s at 100 Hz).
    assert np.linalg.norm(history.xyz[0]) == pytest.approx(14.9, abs=0.1)


@pytest.mark.parametrize("rate_hz", [50, 100])
def test_resampling_between_samples_interpolates(rate_hz):
    t0_ns = BASE_NS + 2_987_654_321
    history = _filled(rate_hz, flip_every_other_quaternion=True).resample(t0_ns)
    xyz, rotations = _expected_in_t0_frame(history.stamps_ns)
    # Linear interpolation cuts the arc: at most the sagitta L^2/(8R) of one odometry step.
    chord = SPEED / rate_hz
    np.testing.assert_allclose(history.xyz, xyz, atol=2 * chord**2 / (8 * SPEED / YAW_RATE))
    # Slerp is exact for a constant yaw rate, whatever the quaternion sign.
    np.testing.assert_allclose(history.rotations, rotations, atol=1e-9)


def test_last_pose_is_the_origin_and_identity():
    history = _filled(50).resample(BASE_NS + 2_345 * MS)
    assert history.xyz.shape == (16, 3) and history.rotations.shape == (16, 3, 3)
    assert history.stamps_ns.dtype == np.int64
    np.testing.assert_array_equal(history.xyz[-1], 0.0)
    np.testing.assert_allclose(history.rotations[-1], np.eye(3), atol=1e-15)


def test_relative_pose_is_expressed_in_the_reference_frame():
    buffer = _filled(50)
    reference_ns, stamp_ns = BASE_NS + 2_003 * MS, BASE_NS + 2_503 * MS
    x, y, yaw = buffer.relative_pose(reference_ns, stamp_ns)
    # 0.5 s along the circle, seen from the pose 0.5 s earlier (sagitta-level tolerance).
    turned, radius = YAW_RATE * 0.5, SPEED / YAW_RATE
    expected = (radius * np.sin(turned), radius * (1 - np.cos(turned)))
    assert (x, y) == pytest.approx(expected, abs=1e-4)
    assert yaw == pytest.approx(turned, abs=1e-9)
    with pytest.raises(HistoryUnavailable, match="older than the requested time"):
        buffer.relative_pose(reference_ns, BASE_NS + 4_000 * MS)


def test_a_past_pose_is_read_off_the_history_in_the_t0_frame():
    """Where the car was 0.5 s and 0.25 s before t0, as the planner places what it saw
    then: on the history's poses exactly, between them by interpolation (to the arc's
    sagitta), nothing outside its span."""
    history = _filled(50).resample(BASE_NS + 2_000 * MS)
    radius = SPEED / YAW_RATE
    for before_s, tolerance in ((0.5, 1e-6), (0.25, 5e-3)):
        pose = history.planar_pose_at(BASE_NS + 2_000 * MS - round(before_s * 1e9))
        turned = -YAW_RATE * before_s
        assert pose is not None
        assert (pose.x, pose.y) == pytest.approx(
            (radius * np.sin(turned), radius * (1 - np.cos(turned))), abs=tolerance
        )
        assert pose.yaw == pytest.approx(turned, abs=1e-9)
    assert history.planar_pose_at(BASE_NS + 2_000 * MS) == Pose2D(0.0, 0.0, 0.0)
    assert history.planar_pose_at(BASE_NS + 2_000 * MS + 1) is None
    assert history.planar_pose_at(BASE_NS + 400 * MS) is None  # 1.6 s before t0


def test_small_forward_extrapolation_continues_at_constant_velocity():
    buffer = EgoHistoryBuffer()
    for k in range(0, 201):
        buffer.add(BASE_NS + 10 * MS * k, [3.0 * k / 100, 0.0, 0.0], [0, 0, 0, 1])
    history = buffer.resample(BASE_NS + 2_040 * MS)  # 40 ms past the newest sample
    np.testing.assert_allclose(history.xyz[:, 0], -0.3 * np.arange(15, -1, -1), atol=1e-12)
    with pytest.raises(HistoryUnavailable, match=r"0\.060 s older than the requested time"):
        buffer.resample(BASE_NS + 2_060 * MS)


def test_duplicates_out_of_order_and_non_finite_are_dropped_and_counted():
    buffer = EgoHistoryBuffer()
    identity = [0.0, 0.0, 0.0, 1.0]
    rejected = AddResult.REJECTED_NONFINITE
    assert buffer.add(BASE_NS, [0, 0, 0], identity) is AddResult.ACCEPTED
    assert buffer.add(BASE_NS + 20 * MS, [1, 0, 0], identity) is AddResult.ACCEPTED
    assert buffer.add(BASE_NS + 20 * MS, [9, 9, 9], identity) is AddResult.DUPLICATE
    assert buffer.add(BASE_NS + 10 * MS, [9, 9, 9], identity) is AddResult.OUT_OF_ORDER
    assert buffer.add(BASE_NS + 30 * MS, [np.nan, 0, 0], identity) is rejected
    assert buffer.add(BASE_NS + 30 * MS, [0, 0, 0], [0, 0, 0, 0]) is rejected
    assert buffer.add(BASE_NS + 30 * MS, [0, 0, 0], [0, 0, np.inf, 1]) is rejected
    assert len(buffer) == 2


def test_clock_jump_back_clears_and_keeps_the_new_sample():
    buffer = _filled(50)
    result = buffer.add(BASE_NS - 10_000 * MS, [0, 0, 0], [0, 0, 0, 1])
    assert result is AddResult.CLOCK_JUMP_BACK
    assert len(buffer) == 1
    with pytest.raises(HistoryUnavailable, match="only one odometry sample"):
        buffer.resample(BASE_NS - 10_000 * MS)


def test_old_samples_are_trimmed_to_capacity():
    buffer = EgoHistoryBuffer(capacity_s=1.0)
    for k in range(301):
        buffer.add(BASE_NS + 10 * MS * k, [k, 0, 0], [0, 0, 0, 1])
    assert len(buffer) == 101  # the newest second, both ends included


def test_gap_in_odometry_is_reported():
    buffer = EgoHistoryBuffer()
    for k in range(201):
        if not 140 < k < 155:  # no odometry between 2.8 s and 3.1 s
            buffer.add(BASE_NS + 20 * MS * k, [k, 0, 0], [0, 0, 0, 1])
    expected = r"odometry gap of 0\.300 s, 1\.1 s before the requested time \(limit 0\.250 s\)"
    with pytest.raises(HistoryUnavailable, match=expected):
        buffer.resample(BASE_NS + 4_000 * MS)
    # A history ending on the last sample before the gap needs nothing from inside it.
    assert buffer.resample(BASE_NS + 2_800 * MS).xyz[0, 0] == pytest.approx(-75.0)


def test_insufficient_history_messages():
    buffer = EgoHistoryBuffer()
    with pytest.raises(HistoryUnavailable, match="no odometry received yet"):
        buffer.resample(BASE_NS)
    for k in range(11):
        buffer.add(BASE_NS + 100 * MS * k, [k, 0, 0], [0, 0, 0, 1])
    expected = r"covers 1\.00 s before the requested time but 1\.50 s are needed"
    with pytest.raises(HistoryUnavailable, match=expected):
        buffer.resample(BASE_NS + 1_000 * MS)


def test_bad_inputs_are_programming_errors():
    buffer = EgoHistoryBuffer()
    with pytest.raises(InvalidStamp):
        buffer.add(1.7e9, [0, 0, 0], [0, 0, 0, 1])
    with pytest.raises(InvalidOdometry):
        buffer.add(BASE_NS, [0, 0], [0, 0, 0, 1])


@pytest.mark.parametrize(
    ("position", "quaternion", "named"),
    [
        ([np.nan, 0, 0], [0, 0, 0, 1], "position.x is nan"),
        ([0, 0, np.inf], [0, 0, 0, 1], "position.z is inf"),
        ([0, 0, 0], [0, 0, 0, 0], "orientation is a zero quaternion"),
        ([0, 0, 0], [0, 0, np.nan, 1], "orientation.z is nan"),
        ([0, 0, 0], [0, 0, 0, 1], None),
    ],
)
def test_an_invalid_pose_is_named_by_its_field(position, quaternion, named):
    assert invalid_pose(np.array(position, float), np.array(quaternion, float)) == named


def test_fast_odometry_is_thinned_so_the_buffer_stays_bounded_and_covers_the_history():
    buffer = EgoHistoryBuffer()
    results = [
        buffer.add(BASE_NS + k * MS, [0.01 * k, 0, 0], [0, 0, 0, 1])  # 1 kHz for 6 s
        for k in range(6000)
    ]
    assert results.count(AddResult.SKIPPED) == 4500  # 1 in 4 kept: 250 Hz
    assert len(buffer) <= 1251
    history = buffer.resample(BASE_NS + 5999 * MS)
    np.testing.assert_allclose(history.xyz[0], [-15.0, 0, 0], atol=1e-9)
