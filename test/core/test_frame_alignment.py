import numpy as np
import pytest

from alpamayo_ros.core.frame_alignment import (
    DEFAULT_JITTER_TOLERANCE_NS,
    FrameBuffer,
    FramesUnavailable,
    choose_t0,
    select_frames,
)
from alpamayo_ros.core.stamped import AddResult

MS = 1_000_000
BASE_NS = 1_700_000_000_000_000_000
CAMERAS = ("cross_left", "front_wide", "cross_right", "front_tele")


def _buffers(stamps_by_camera):
    buffers = {}
    for camera, stamps in stamps_by_camera.items():
        buffers[camera] = FrameBuffer()
        for stamp in stamps:
            assert buffers[camera].add(stamp, f"{camera}@{stamp}") is AddResult.ACCEPTED
    return buffers


def test_10hz_cameras_with_phase_offsets_and_jitter():
    rng = np.random.default_rng(3)
    phases_ms = {"cross_left": 0, "front_wide": 23, "cross_right": 51, "front_tele": 87}
    stamps_by_camera = {
        camera: [
            BASE_NS + (100 * k + phase) * MS + int(rng.integers(-3 * MS, 3 * MS)) for k in range(12)
        ]
        for camera, phase in phases_ms.items()
    }
    buffers = _buffers(stamps_by_camera)
    t0 = choose_t0(buffers)
    assert t0 == min(stamps[-1] for stamps in stamps_by_camera.values())
    # A 10 Hz camera lags its target by up to one period by design.
    aligned = select_frames(buffers, CAMERAS, t0, max_staleness_ns=150 * MS)
    for row, camera in enumerate(CAMERAS):
        for column, offset_ms in enumerate((-300, -200, -100, 0)):
            target = t0 + offset_ms * MS
            expected = max(
                stamp
                for stamp in stamps_by_camera[camera]
                if stamp <= target + DEFAULT_JITTER_TOLERANCE_NS
            )
            assert aligned.stamps_ns[row, column] == expected
            assert aligned.payloads[row][column] == f"{camera}@{expected}"
    assert aligned.camera_order == CAMERAS and aligned.t0_ns == t0
    assert aligned.max_skew_ns() == max(np.ptp(aligned.stamps_ns[:, c]) for c in range(4))
    assert aligned.max_skew_ns() < 106 * MS


def test_30hz_camera_frames_are_100ms_apart_not_the_last_four():
    stamps = [BASE_NS + round(k * 1e9 / 30) for k in range(20)]
    buffers = _buffers({"front_wide": stamps})
    aligned = select_frames(buffers, ["front_wide"], choose_t0(buffers))
    # Every third frame falls exactly on a target: 100 ms apart.
    expected = [stamps[-10], stamps[-7], stamps[-4], stamps[-1]]
    np.testing.assert_array_equal(aligned.stamps_ns[0], expected)
    assert aligned.stamps_ns[0].tolist() != stamps[-4:]


def test_jittered_frame_just_after_its_target_still_counts():
    """A 10 Hz frame 2 ms late is its target's frame, not a reason to take one 100 ms older."""
    stamps = [BASE_NS + k * 100 * MS + (2 * MS if k % 2 else 0) for k in range(10)]
    buffers = _buffers({"front_wide": stamps})
    aligned = select_frames(buffers, ["front_wide"], stamps[-1] - 2 * MS)
    np.testing.assert_array_equal(aligned.stamps_ns[0], stamps[-4:])


def test_dropped_frame_is_stale_and_names_the_camera():
    # A 30 Hz camera whose two frames around t0-0.1 s never arrived.
    stamps = [BASE_NS + k * 33_333_333 for k in range(20)]
    dropped = [stamp for stamp in stamps if stamp not in (stamps[-4], stamps[-5])]
    buffers = _buffers({"front_wide": stamps, "front_tele": dropped})
    t0 = choose_t0(buffers)
    assert select_frames(buffers, ["front_wide"], t0).stamps_ns[0, 2] == stamps[-4]
    with pytest.raises(
        FramesUnavailable,
        match=r"camera front_tele: newest frame for t0-0\.1 s is 67 ms old \(limit 60 ms\)",
    ):
        select_frames(buffers, ["front_wide", "front_tele"], t0)


def test_stalled_camera_is_stale():
    buffers = _buffers(
        {
            "front_wide": [BASE_NS + k * 100 * MS for k in range(10)],
            "front_tele": [BASE_NS + k * 100 * MS for k in range(5)],  # stopped 0.5 s ago
        }
    )
    with pytest.raises(FramesUnavailable, match="camera front_tele"):
        select_frames(buffers, ["front_wide", "front_tele"], BASE_NS + 900 * MS)


def test_missing_and_silent_cameras_are_named():
    buffers = _buffers({"front_wide": [BASE_NS], "front_tele": []})
    with pytest.raises(FramesUnavailable, match=r"no frames yet from camera.*front_tele"):
        choose_t0(buffers)
    with pytest.raises(FramesUnavailable, match="not subscribed: cross_left"):
        select_frames(buffers, ["cross_left", "front_wide"], BASE_NS)
    expected = r"camera front_wide: no buffered frame at or before t0-0\.3 s"
    with pytest.raises(FramesUnavailable, match=expected):
        select_frames(buffers, ["front_wide"], BASE_NS)
    with pytest.raises(FramesUnavailable, match="no cameras configured"):
        choose_t0({})


def test_clock_jump_back_restarts_the_camera_buffer():
    buffer = FrameBuffer()
    for k in range(10):
        buffer.add(BASE_NS + k * 100 * MS, k)
    assert buffer.add(BASE_NS + 900 * MS, "again") is AddResult.DUPLICATE
    assert buffer.add(BASE_NS + 850 * MS, "late") is AddResult.OUT_OF_ORDER
    replay_start = BASE_NS - 60_000 * MS  # rosbag looped back one minute
    assert buffer.add(replay_start, "replayed") is AddResult.CLOCK_JUMP_BACK
    assert len(buffer) == 1 and buffer.newest_stamp_ns == replay_start
    assert buffer.at_or_before(replay_start) == (replay_start, "replayed")


def test_buffer_keeps_the_newest_frames_and_looks_up_by_time():
    buffer = FrameBuffer(max_frames=3)
    for k in range(5):
        buffer.add(BASE_NS + k * 100 * MS, k)
    assert len(buffer) == 3
    assert buffer.at_or_before(BASE_NS + 150 * MS) is None  # frame 1 was evicted
    assert buffer.at_or_before(BASE_NS + 399 * MS) == (BASE_NS + 300 * MS, 3)
    assert buffer.at_or_before(BASE_NS + 400 * MS) == (BASE_NS + 400 * MS, 4)


def test_the_buffer_is_sized_by_time_so_a_100_hz_camera_still_covers_the_model_input():
    buffer = FrameBuffer(min_interval_ns=26 * MS)  # at most ~30 Hz kept
    results = [buffer.add(BASE_NS + k * 10 * MS, k) for k in range(200)]  # 2 s at 100 Hz
    assert results.count(AddResult.ACCEPTED) == 67  # every third frame
    assert results.count(AddResult.SKIPPED) == 133
    assert buffer.classify(BASE_NS + 2010 * MS) is AddResult.ACCEPTED
    assert buffer.classify(BASE_NS + 2000 * MS) is AddResult.SKIPPED
    newest = buffer.newest_stamp_ns
    assert newest == BASE_NS + 1980 * MS
    aligned = select_frames({"front": buffer}, ["front"], newest)  # t0-0.3 .. t0
    assert aligned.stamps_ns[0, 0] == newest - 300 * MS
    # Frames older than the span are gone; the count stays bounded at any rate.
    assert buffer.at_or_before(newest - 1100 * MS) is None
    assert len(buffer) <= 35


def test_the_frame_count_is_bounded_whatever_the_span():
    buffer = FrameBuffer(max_frames=5)
    for k in range(100):
        buffer.add(BASE_NS + k * MS, k)
    assert len(buffer) == 5
