"""The arrival rule shared by every timestamped buffer (odometry, camera frames).

Sensor streams arrive late, twice, or restart (a looping rosbag); the rule for what a buffer
does with such a sample lives here once so all buffers agree.
"""

from __future__ import annotations

import operator
from enum import Enum

# A stamp this much older than the newest one is a clock restart, not a late message.
CLOCK_JUMP_BACK_THRESHOLD_NS = 1_000_000_000


class InvalidStamp(ValueError):
    """A stamp that is not an integer number of nanoseconds (e.g. float seconds)."""


class AddResult(Enum):
    """What a buffer did with a sample."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # same stamp as the newest: ignored
    OUT_OF_ORDER = "out_of_order"  # older than the newest by < 1 s: dropped
    CLOCK_JUMP_BACK = "clock_jump_back"  # older by >= 1 s: buffer cleared, sample kept
    REJECTED_NONFINITE = "rejected_nonfinite"  # NaN/inf or degenerate content: dropped
    SKIPPED = "skipped"  # newer, but closer to the newest than the buffer's interval: dropped

    @property
    def keeps_sample(self) -> bool:
        """Whether the buffer stores the sample (after clearing, for a clock jump)."""
        return self in (AddResult.ACCEPTED, AddResult.CLOCK_JUMP_BACK)


def as_stamp_ns(stamp_ns: int) -> int:
    """Return the stamp as int; refuses floats, which would silently lose ns precision."""
    try:
        return operator.index(stamp_ns)
    except TypeError as error:
        raise InvalidStamp(f"stamp must be integer nanoseconds, got {stamp_ns!r}") from error


def classify_arrival(stamp_ns: int, newest_ns: int | None, min_interval_ns: int = 0) -> AddResult:
    """Classify a stamp against the newest one already buffered (None: empty buffer).

    A buffer with a `min_interval_ns` keeps a stream no faster than it is used, so a fast
    sensor cannot fill its memory or the consumer's time.
    """
    if newest_ns is None or stamp_ns >= newest_ns + max(min_interval_ns, 1):
        return AddResult.ACCEPTED
    if stamp_ns > newest_ns:
        return AddResult.SKIPPED
    if stamp_ns == newest_ns:
        return AddResult.DUPLICATE
    if newest_ns - stamp_ns >= CLOCK_JUMP_BACK_THRESHOLD_NS:
        return AddResult.CLOCK_JUMP_BACK
    return AddResult.OUT_OF_ORDER
