"""Selection of the model's camera frames: per camera, the newest frame at or before each of
t0-0.3, -0.2, -0.1 s and t0.

Frames are chosen by TIME, not as "the last 4 in the buffer": a 30 Hz camera's last four
frames span 0.1 s, not the 0.3 s the model was trained on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from alpamayo_ros.core.contract import FRAME_OFFSETS_NS, NS_PER_S
from alpamayo_ros.core.stamped import (
    AddResult,
    as_stamp_ns,
    classify_arrival,
)

Payload = TypeVar("Payload")

# A selected frame older than its target by more than this means the camera dropped or
# stalled: it flags one missing frame of synchronised 10 Hz cameras and two in a row of a
# 30 Hz camera. Unsynchronised 10 Hz cameras lag up to 100 ms by design and need ~150 ms.
DEFAULT_MAX_STALENESS_NS = 60_000_000

# Camera stamps jitter by a few ms around their nominal period, so a frame stamped this
# little after a target still counts as that target's frame; otherwise half the frames of
# a 10 Hz camera would miss their target by a hair and be replaced by one 100 ms older.
# Must stay well below half a frame period so that targets keep distinct frames.
DEFAULT_JITTER_TOLERANCE_NS = 20_000_000


class FramesUnavailable(RuntimeError):
    """The cameras cannot provide a complete, fresh set of frames; the message names them."""


# How far back a camera's buffer reaches from its newest frame: the model's 0.3 s of frames,
# the staleness limit, and up to 0.64 s by which this camera may run ahead of the slowest
# (t0 is the newest time every camera has a frame).
FRAME_SPAN_NS = 1_000_000_000

# The most frames one camera's buffer holds, whatever the span and the rate: the memory
# bound (the buffer's minimum interval normally keeps it far below).
MAX_BUFFERED_FRAMES = 64


class FrameBuffer(Generic[Payload]):
    """The frames of one camera over the last `span_ns` before its newest, oldest first.

    Sized by time, not count, so it covers the model's input at any camera rate; frames
    closer than `min_interval_ns` to the newest are skipped (AddResult.SKIPPED), so a fast
    camera neither fills memory nor costs the consumer a decode per frame.
    """

    def __init__(
        self,
        span_ns: int = FRAME_SPAN_NS,
        min_interval_ns: int = 0,
        max_frames: int = MAX_BUFFERED_FRAMES,
    ) -> None:
        self._span_ns = span_ns
        self._min_interval_ns = min_interval_ns
        self._frames: deque[tuple[int, Payload]] = deque(maxlen=max_frames)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def newest_stamp_ns(self) -> int | None:
        return self._frames[-1][0] if self._frames else None

    def classify(self, stamp_ns: int) -> AddResult:
        """What `add` would do with a frame at `stamp_ns`: callers skip decoding frames
        the buffer would not keep."""
        return classify_arrival(as_stamp_ns(stamp_ns), self.newest_stamp_ns, self._min_interval_ns)

    def add(self, stamp_ns: int, payload: Payload) -> AddResult:
        stamp_ns = as_stamp_ns(stamp_ns)
        result = self.classify(stamp_ns)
        if result is AddResult.CLOCK_JUMP_BACK:
            self._frames.clear()
        if result.keeps_sample:
            self._frames.append((stamp_ns, payload))
            while self._frames[0][0] < stamp_ns - self._span_ns:
                self._frames.popleft()
        return result

    def at_or_before(self, stamp_ns: int) -> tuple[int, Payload] | None:
        """The newest frame stamped at or before stamp_ns, if any is buffered."""
        return next((frame for frame in reversed(self._frames) if frame[0] <= stamp_ns), None)


@dataclass(frozen=True)
class AlignedFrames(Generic[Payload]):
    """Frames per camera (camera_order) and per target time t0+offset, oldest first."""

    t0_ns: int
    camera_order: tuple[str, ...]
    stamps_ns: NDArray[np.int64]  # [cameras, targets]
    payloads: tuple[tuple[Payload, ...], ...]  # [cameras][targets]

    def max_skew_ns(self) -> int:
        """Largest spread of stamps across cameras for one target time."""
        return int(np.max(np.ptp(self.stamps_ns, axis=0)))


def choose_t0(buffers: Mapping[str, FrameBuffer[Payload]]) -> int:
    """The newest time at which every camera has a frame: the min of the newest stamps."""
    if not buffers:
        raise FramesUnavailable("no cameras configured")
    newest = {camera: buffer.newest_stamp_ns for camera, buffer in buffers.items()}
    empty = sorted(camera for camera, stamp in newest.items() if stamp is None)
    if empty:
        raise FramesUnavailable(f"no frames yet from camera(s): {', '.join(empty)}")
    return min(stamp for stamp in newest.values() if stamp is not None)


def select_frames(
    buffers: Mapping[str, FrameBuffer[Payload]],
    camera_order: Sequence[str],
    t0_ns: int,
    offsets_ns: Sequence[int] = FRAME_OFFSETS_NS,
    max_staleness_ns: int = DEFAULT_MAX_STALENESS_NS,
    jitter_tolerance_ns: int = DEFAULT_JITTER_TOLERANCE_NS,
) -> AlignedFrames[Payload]:
    """For each camera and target t0+offset, the newest frame at or before the target
    (up to `jitter_tolerance_ns` after it)."""
    t0_ns = as_stamp_ns(t0_ns)
    missing = [camera for camera in camera_order if camera not in buffers]
    if missing:
        raise FramesUnavailable(f"camera(s) not subscribed: {', '.join(missing)}")
    stamps = np.empty((len(camera_order), len(offsets_ns)), dtype=np.int64)
    payloads = []
    for row, camera in enumerate(camera_order):
        camera_payloads = []
        for column, offset_ns in enumerate(offsets_ns):
            target_ns = t0_ns + offset_ns
            frame = buffers[camera].at_or_before(target_ns + jitter_tolerance_ns)
            if frame is None:
                raise FramesUnavailable(
                    f"camera {camera}: no buffered frame at or before "
                    f"t0{offset_ns / NS_PER_S:+.1f} s"
                )
            staleness_ns = target_ns - frame[0]
            if staleness_ns > max_staleness_ns:
                raise FramesUnavailable(
                    f"camera {camera}: newest frame for t0{offset_ns / NS_PER_S:+.1f} s is "
                    f"{staleness_ns / 1e6:.0f} ms old (limit {max_staleness_ns / 1e6:.0f} ms); "
                    "dropped or stalled"
                )
            stamps[row, column] = frame[0]
            camera_payloads.append(frame[1])
        payloads.append(tuple(camera_payloads))
    return AlignedFrames(t0_ns, tuple(camera_order), stamps, tuple(payloads))
