"""The lock-step schedule: two grids merged in time order, the clock held after each camera
set until its answer or the bound, warm-up sets held briefly and never counted."""

from __future__ import annotations

import pytest

from alpamayo_ros.pipeline.lockstep import LockStep, StartGate, Step

MS = 1_000_000
START = 1_000 * MS


def schedule(warmup_ns: int = 0) -> LockStep:
    return LockStep(START, 100 * MS, 20 * MS, answer_timeout_s=1.0, warmup_ns=warmup_ns)


def test_the_two_grids_merge_in_time_order() -> None:
    lockstep = LockStep(START, 100 * MS, 40 * MS, answer_timeout_s=1.0)
    steps = [lockstep.next_step(0) for _ in range(6)]
    assert steps == [
        Step(START, odometry_due=True, frames_due=True),
        Step(START + 40 * MS, odometry_due=True, frames_due=False),
        Step(START + 80 * MS, odometry_due=True, frames_due=False),
        Step(START + 100 * MS, odometry_due=False, frames_due=True),
        Step(START + 120 * MS, odometry_due=True, frames_due=False),
        Step(START + 160 * MS, odometry_due=True, frames_due=False),
    ]
    assert lockstep.now_ns == START + 160 * MS


def test_the_clock_holds_until_the_answer_for_the_frames() -> None:
    lockstep = schedule()
    step = lockstep.next_step(0)
    assert step is not None and step.frames_due
    lockstep.frames_sent(step.stamp_ns, wall_ns=0)
    assert lockstep.holding(0)
    assert lockstep.next_step(500 * MS) is None
    assert not lockstep.answer(step.stamp_ns - 1), "an answer to older frames releases nothing"
    assert lockstep.next_step(600 * MS) is None
    assert lockstep.answer(step.stamp_ns)
    assert not lockstep.holding(600 * MS)
    assert lockstep.next_step(600 * MS) == Step(START + 20 * MS, True, False)
    report = lockstep.report()
    assert (report.expected, report.answered, report.timeouts) == (1, 1, 0)


def test_a_missing_answer_moves_on_after_the_bound_and_is_counted() -> None:
    lockstep = schedule()
    step = lockstep.next_step(0)
    assert step is not None
    lockstep.frames_sent(step.stamp_ns, wall_ns=0)
    assert lockstep.next_step(999 * MS) is None
    assert lockstep.next_step(1_000 * MS) == Step(START + 20 * MS, True, False)
    assert lockstep.timeouts == 1
    assert not lockstep.answer(step.stamp_ns), "a late answer after the bound is not counted"
    assert lockstep.report().answered == 0


def test_warm_up_frames_are_held_briefly_not_answered() -> None:
    lockstep = schedule(warmup_ns=150 * MS)
    first = lockstep.next_step(0)
    assert first is not None
    lockstep.frames_sent(first.stamp_ns, wall_ns=0)
    assert lockstep.holding(0)
    assert lockstep.next_step(10 * MS) is None
    assert lockstep.next_step(20 * MS) is not None, "the warm-up hold is fixed, not an answer"
    steps = [lockstep.next_step(20 * MS) for _ in range(4)]
    frames = next(s for s in steps if s is not None and s.frames_due)
    assert frames.stamp_ns == START + 100 * MS
    lockstep.frames_sent(frames.stamp_ns, wall_ns=20 * MS)
    assert lockstep.next_step(41 * MS) is not None
    for _ in range(4):
        lockstep.next_step(41 * MS)
    lockstep.frames_sent(START + 200 * MS, wall_ns=41 * MS)  # past the warm-up: an answer
    assert lockstep.next_step(900 * MS) is None
    assert lockstep.report().expected == 1


def test_the_report_gives_the_speed_over_real_time() -> None:
    lockstep = schedule()
    lockstep.next_step(0)
    for _ in range(50):  # one simulated second
        step = lockstep.next_step(250 * MS)
    assert step is not None and step.stamp_ns == START + 1_000 * MS
    assert lockstep.report().speed == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("frame_ns", "odometry_ns", "timeout_s"), [(0, 20 * MS, 1.0), (100 * MS, -1, 1.0), (1, 1, 0.0)]
)
def test_bad_periods_are_refused(frame_ns: int, odometry_ns: int, timeout_s: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        LockStep(START, frame_ns, odometry_ns, timeout_s)


def test_the_start_waits_for_discovery_then_settles() -> None:
    gate = StartGate(timeout_s=5.0, settle_s=0.3)
    assert not gate.check(["/camera/image_raw"], 0)
    assert not gate.check([], 1_000 * MS), "discovered: the clock settles first"
    assert not gate.check([], 1_299 * MS)
    assert gate.check([], 1_300 * MS)
    assert gate.check(["/late"], 1_400 * MS), "once open it stays open"
    assert gate.missing == []


def test_the_start_goes_ahead_after_its_bound_and_names_what_was_missing() -> None:
    gate = StartGate(timeout_s=5.0, settle_s=0.0)
    assert not gate.check(["/odometry"], 0)
    assert not gate.check(["/odometry"], 4_999 * MS)
    assert gate.check(["/odometry"], 5_000 * MS)
    assert gate.missing == ["/odometry"]
