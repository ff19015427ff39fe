import numpy as np
import pytest

from alpamayo_ros.core.stamped import (
    AddResult,
    InvalidStamp,
    as_stamp_ns,
    classify_arrival,
)

NEWEST = 5_000_000_000


@pytest.mark.parametrize(
    ("stamp", "newest", "expected"),
    [
        (NEWEST, None, AddResult.ACCEPTED),
        (NEWEST + 1, NEWEST, AddResult.ACCEPTED),
        (NEWEST, NEWEST, AddResult.DUPLICATE),
        (NEWEST - 999_999_999, NEWEST, AddResult.OUT_OF_ORDER),
        (NEWEST - 1_000_000_000, NEWEST, AddResult.CLOCK_JUMP_BACK),
    ],
)
def test_arrival_rule(stamp, newest, expected):
    assert classify_arrival(stamp, newest) is expected


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (NEWEST + 9_999_999, AddResult.SKIPPED),
        (NEWEST + 10_000_000, AddResult.ACCEPTED),
        (NEWEST, AddResult.DUPLICATE),
        (NEWEST - 1, AddResult.OUT_OF_ORDER),
    ],
)
def test_a_minimum_interval_skips_newer_samples_that_come_too_soon(stamp, expected):
    assert classify_arrival(stamp, NEWEST, min_interval_ns=10_000_000) is expected


def test_only_accepted_and_clock_jump_keep_the_sample():
    assert {result for result in AddResult if result.keeps_sample} == {
        AddResult.ACCEPTED,
        AddResult.CLOCK_JUMP_BACK,
    }


def test_stamps_must_be_integer_nanoseconds():
    assert as_stamp_ns(np.int64(7)) == 7
    with pytest.raises(InvalidStamp, match="integer nanoseconds"):
        as_stamp_ns(1.5)
