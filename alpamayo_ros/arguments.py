"""Number types for the command lines (`alpamayo-ros` and the model worker).

A number out of its range is refused while the arguments are parsed, with the usage and
the option's name, before any work starts: a count of zero or a negative rate would
otherwise fail deep in the work, after minutes of it, with a traceback, or run and
measure nothing.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)

# ROS 2 integer parameters are 64-bit: a seed beyond them fails in the node, not here.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _bounded(
    convert: Callable[[str], Number],
    what: str,
    low: Number,
    high: Number | None = None,
    *,
    above: bool = False,
) -> Callable[[str], Number]:
    """An argparse type: `convert`ed text, finite, at least `low` (more than it where
    `above`) and at most `high`; anything else is refused as not `what`."""

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        within = (
            (isinstance(value, int) or math.isfinite(value))
            and (value > low if above else value >= low)
            and (high is None or value <= high)
        )
        if not within:
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in its own messages
    return parse


positive_int = _bounded(int, "an integer >= 1", 1)
non_negative_int = _bounded(int, "an integer >= 0", 0)
seed = _bounded(int, f"a seed in [0, {INT64_MAX}]", 0, INT64_MAX)
positive_float = _bounded(float, "a number > 0", 0.0, above=True)
non_negative_float = _bounded(float, "a number >= 0", 0.0)
probability = _bounded(float, "a probability in [0, 1]", 0.0, 1.0)
