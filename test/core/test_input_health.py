"""Per-input faults named for diagnostics: silent streams, future and disordered stamps,
clock jumps, invalid samples, rates; a simulated clock that stands still."""

from __future__ import annotations

import pytest

from alpamayo_ros.core.input_health import (
    Fault,
    HealthLimits,
    InputHealth,
    LastingWait,
    Level,
    StillClock,
    StreamHealth,
)
from alpamayo_ros.core.stamped import AddResult

MS = 1_000_000
S = 1_000 * MS
START = 100 * S


def feed(stream: StreamHealth, rate_hz: float, seconds: float, start: int = START) -> int:
    """Messages at `rate_hz` received at their stamps; returns the last time."""
    period = round(S / rate_hz)
    now = start
    for k in range(round(seconds * rate_hz)):
        now = start + k * period
        assert stream.received(now, now)
    return now


def test_healthy_inputs_report_ok() -> None:
    health = InputHealth(
        [StreamHealth("front", HealthLimits()), StreamHealth("odometry", HealthLimits())]
    )
    now = feed(health["front"], 10, 1.0)
    feed(health["odometry"], 50, 1.0)
    report = health.report(now)
    assert report.level is Level.OK and report.message == ""


def test_a_silent_stream_is_an_error_naming_it_and_how_long() -> None:
    health = InputHealth([StreamHealth("front", HealthLimits(silent_after_s=0.5))])
    last = feed(health["front"], 10, 1.0)
    assert health.report(last + 400 * MS).level is Level.OK
    report = health.report(last + 2 * S)
    assert report.level is Level.ERROR
    assert report.message == "front: silent (nothing for 2.0 s)"
    # It comes back: healthy at once.
    assert health["front"].received(last + 2 * S, last + 2 * S)
    assert health.report(last + 2 * S).level is Level.OK


def test_a_stamp_from_the_future_is_refused_and_reported_with_its_count() -> None:
    stream = StreamHealth("front", HealthLimits(max_future_s=0.2, hold_s=3.0))
    health = InputHealth([stream])
    assert not stream.received(START + 10 * S, START)
    assert not stream.received(START + 10 * S, START + 100 * MS)
    assert stream.received(START + 300 * MS, START + 200 * MS)  # within the allowance
    report = health.report(START + 300 * MS)
    assert report.level is Level.ERROR
    assert report.message == "front: stamp in the future (9.90 s ahead; 2 so far)"
    assert report.counts == {"front stamp in the future": 2}
    # Held for hold_s after the last one, then gone (the stream still receiving).
    assert stream.received(START + 3 * S, START + 3 * S)
    assert health.report(START + 100 * MS + 3 * S + 1).level is Level.OK


@pytest.mark.parametrize(
    ("result", "fault", "level"),
    [
        (AddResult.OUT_OF_ORDER, Fault.OUT_OF_ORDER, Level.WARN),
        (AddResult.DUPLICATE, Fault.DUPLICATE, Level.WARN),
        (AddResult.CLOCK_JUMP_BACK, Fault.CLOCK_JUMP_BACK, Level.WARN),
        (AddResult.REJECTED_NONFINITE, Fault.INVALID, Level.ERROR),
    ],
)
def test_a_buffer_verdict_becomes_a_named_fault(result, fault, level) -> None:
    health = InputHealth([StreamHealth("odometry", HealthLimits())])
    health["odometry"].record_arrival(result, START, START, START - 1, "position.x is nan")
    report = health.report(START)
    assert report.level is level
    assert report.message == f"odometry: {fault.label} (position.x is nan; 1 so far)"


def test_an_arrival_fault_says_how_its_stamp_relates_to_the_newest() -> None:
    stream = StreamHealth("odometry", HealthLimits())
    stream.record_arrival(AddResult.OUT_OF_ORDER, START, START - 30_000_000, START)
    stream.record_arrival(AddResult.DUPLICATE, START, START, START)
    message = InputHealth([stream]).report(START).message
    assert "stamp out of order (0.030 s older than the newest; 1 so far)" in message
    assert "duplicate stamp (same stamp as the previous; 1 so far)" in message


def test_accepted_and_skipped_samples_are_no_fault() -> None:
    health = InputHealth([StreamHealth("odometry", HealthLimits())])
    health["odometry"].record_arrival(AddResult.ACCEPTED, START, START, None)
    health["odometry"].record_arrival(AddResult.SKIPPED, START, START, START - 1)
    assert health.report(START).level is Level.OK


def test_a_stream_slower_than_its_consumer_needs_is_an_error() -> None:
    health = InputHealth([StreamHealth("odometry", HealthLimits(), min_rate_hz=4.0)])
    now = feed(health["odometry"], 50, 1.0)
    now = feed(health["odometry"], 2, 1.0, start=now + 500 * MS)  # two samples at 2 Hz
    report = health.report(now)
    assert report.level is Level.ERROR
    assert report.message == (
        "odometry: rate too low (0.50 s between samples, needs at least 4.0 Hz)"
    )
    health = InputHealth([StreamHealth("odometry", HealthLimits(), min_rate_hz=4.0)])
    assert health.report(feed(health["odometry"], 50, 1.0)).level is Level.OK


def test_errors_come_before_warnings_and_the_level_is_the_worst() -> None:
    health = InputHealth(
        [StreamHealth("front", HealthLimits()), StreamHealth("odometry", HealthLimits())]
    )
    health["front"].record(Fault.TOO_FAST, START, "100 Hz")
    health["odometry"].record(Fault.INVALID, START, "orientation is a zero quaternion")
    report = health.report(START)
    assert report.level is Level.ERROR
    assert report.message.startswith("odometry: invalid")
    assert "front: faster than used" in report.message


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="silent_after_s"):
        HealthLimits(silent_after_s=0.0)


def test_a_stream_that_never_sent_anything_is_silent_once_watched_long_enough() -> None:
    health = InputHealth([StreamHealth("front", HealthLimits(silent_after_s=0.5))])
    assert health.report(START).level is Level.OK  # watched from here
    report = health.report(START + S)
    assert report.level is Level.ERROR
    assert report.message == "front: silent (nothing received for 1.0 s)"


def test_a_slow_stream_reports_its_rate_even_while_silent() -> None:
    health = InputHealth(
        [StreamHealth("odometry", HealthLimits(silent_after_s=0.5), min_rate_hz=4.0)]
    )
    now = feed(health["odometry"], 2, 1.0)
    for later in (now + 400 * MS, now + 600 * MS):
        assert "odometry: rate too low" in health.report(later).message


def test_simulated_time_that_stands_still_past_the_bound_is_named() -> None:
    """Lock-step holds of less than the bound say nothing; a longer one does, until the
    clock moves again (steady time on the second argument)."""
    clock = StillClock(warn_after_s=15.0)
    assert clock.describe(1 * S, START) == ""  # first read: watched from here
    assert clock.describe(2 * S, START + S) == ""  # it moved
    assert clock.describe(2 * S, START + 15 * S) == ""
    assert "stood still for over 15 s" in clock.describe(2 * S, START + 16 * S)
    assert clock.describe(3 * S, START + 17 * S) == ""  # it moved again
    assert clock.still_for_s(3 * S, START + 20 * S) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="warn_after_s"):
        StillClock(0.0)


def test_a_start_instant_held_while_the_graph_comes_up_is_no_fault() -> None:
    """A simulator holds its start instant until the models are loaded, which may take a
    minute on a busy machine; no /clock at all (time 0) is named."""
    held = StillClock(warn_after_s=15.0)
    assert held.describe(1 * S, START) == ""
    assert held.describe(1 * S, START + 60 * S) == ""
    missing = StillClock(warn_after_s=15.0)
    assert missing.describe(0, START) == ""
    assert "none received in 15 s" in missing.describe(0, START + 15 * S)
    # Then the first /clock, its start instant held: no fault either.
    assert missing.describe(1 * S, START + 16 * S) == ""
    assert missing.describe(1 * S, START + 60 * S) == ""


def test_a_wait_is_news_only_once_it_lasts() -> None:
    """A camera set waiting 20 ms for its odometry says nothing; one still waiting after
    0.3 s does, and a wait that ended starts afresh."""
    wait = LastingWait(warn_after_s=0.3)
    assert not wait.lasted(START)
    assert not wait.lasted(START + 20 * MS)
    assert wait.lasted(START + 300 * MS)
    wait.over()
    assert not wait.lasted(START + 400 * MS)
    assert not wait.lasted(START + 600 * MS)
    assert wait.lasted(START + 700 * MS)
