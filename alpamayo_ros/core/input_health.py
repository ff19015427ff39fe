"""Health of a node's input streams: what is wrong with each input now, named, with counts.

A node that cannot produce an output must say which input is to blame: a camera that went
silent, stamps from the future or out of order, a clock that jumped back, a sample with a
NaN in a named field, a stream too slow for what it feeds or faster than it is used. Each
stream records its faults here as they happen (with the receive time on the node's clock);
`InputHealth.report` turns them into one level and message for /diagnostics. A fault that
happened stays reported for `hold_s`, so a 1 Hz diagnostics publisher cannot miss it; a
silent stream and a rate fault are reported for as long as they last.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.stamped import AddResult


class Level(IntEnum):
    """Severity, ordered as diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2


class Fault(Enum):
    """What can be wrong with an input, and how bad it is."""

    SILENT = ("silent", Level.ERROR)
    # An input the consumer can do without (a camera, for a model that runs on the others):
    # silent, and left out until it sends again. Silent as well when all such inputs are.
    LEFT_OUT = ("silent, left out", Level.WARN)
    FUTURE_STAMP = ("stamp in the future", Level.ERROR)
    OUT_OF_ORDER = ("stamp out of order", Level.WARN)
    DUPLICATE = ("duplicate stamp", Level.WARN)
    CLOCK_JUMP_BACK = ("clock jumped back", Level.WARN)
    INVALID = ("invalid", Level.ERROR)
    TOO_LARGE = ("frame too large", Level.ERROR)
    TOO_FAST = ("faster than used", Level.WARN)
    RATE_TOO_LOW = ("rate too low", Level.ERROR)

    def __init__(self, label: str, level: Level) -> None:
        self.label = label
        self.level = level


# What a buffer's verdict on a sample means as a fault.
ARRIVAL_FAULTS: Mapping[AddResult, Fault] = {
    AddResult.DUPLICATE: Fault.DUPLICATE,
    AddResult.OUT_OF_ORDER: Fault.OUT_OF_ORDER,
    AddResult.CLOCK_JUMP_BACK: Fault.CLOCK_JUMP_BACK,
    AddResult.REJECTED_NONFINITE: Fault.INVALID,
}

# Stamps kept per stream to measure its rate.
RATE_WINDOW = 20


@dataclass(frozen=True)
class HealthLimits:
    """When an input counts as silent, from the future, too slow or too fast."""

    silent_after_s: float = 0.5  # math.inf: silence is another component's concern
    max_future_s: float = 0.2
    hold_s: float = 3.0

    def __post_init__(self) -> None:
        for name in ("silent_after_s", "max_future_s", "hold_s"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class ActiveFault:
    stream: str
    fault: Fault
    detail: str

    def describe(self) -> str:
        return f"{self.stream}: {self.fault.label}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class HealthReport:
    level: Level
    message: str  # the active faults, worst first; "" when all inputs are healthy
    counts: dict[str, int]  # "<stream> <fault label>" -> times it happened


class StreamHealth:
    """One input stream: its arrivals, its rate and the faults it had."""

    def __init__(
        self,
        name: str,
        limits: HealthLimits,
        min_rate_hz: float = 0.0,
        max_rate_hz: float = 0.0,
        optional: bool = False,
    ) -> None:
        """`min_rate_hz` / `max_rate_hz`: below, the stream cannot feed its consumer
        (RATE_TOO_LOW); above, frames are skipped (TOO_FAST); 0 checks nothing.
        `optional`: the consumer runs without it while it is silent (LEFT_OUT)."""
        self.name = name
        self.optional = optional
        self.limits = limits
        self.min_rate_hz = min_rate_hz
        self.max_rate_hz = max_rate_hz
        self.counts: Counter[Fault] = Counter()
        self._last: dict[Fault, tuple[int, str]] = {}  # fault -> (when, detail)
        self._received_ns: int | None = None
        self._watched_since_ns: int | None = None
        self._stamps: deque[int] = deque(maxlen=RATE_WINDOW)

    def received(self, stamp_ns: int, now_ns: int) -> bool:
        """A message stamped `stamp_ns` arrived at `now_ns` (node clock). False, with the
        fault recorded, when its stamp lies in the future: it must not be used."""
        self._received_ns = now_ns
        ahead_ns = stamp_ns - now_ns
        if ahead_ns > self.limits.max_future_s * NS_PER_S:
            self.record(Fault.FUTURE_STAMP, now_ns, f"{ahead_ns / NS_PER_S:.2f} s ahead")
            return False
        if self._stamps and stamp_ns < self._stamps[-1]:
            self._stamps.clear()  # a restart or a stray stamp: measure the rate afresh
        self._stamps.append(stamp_ns)
        return True

    def record(self, fault: Fault, now_ns: int, detail: str = "") -> None:
        self.counts[fault] += 1
        self._last[fault] = (now_ns, detail)

    def record_arrival(
        self,
        result: AddResult,
        now_ns: int,
        stamp_ns: int,
        newest_ns: int | None,
        detail: str | None = None,
    ) -> None:
        """A buffer's verdict on a sample stamped `stamp_ns` (`newest_ns`: the stream's
        newest before it), recorded when it is a fault. The detail is by default how the
        stamp relates to the newest, worked out only for a fault."""
        fault = ARRIVAL_FAULTS.get(result)
        if fault is None:
            return
        if detail is None:
            if newest_ns is None or stamp_ns > newest_ns:
                detail = ""
            elif stamp_ns == newest_ns:
                detail = "same stamp as the previous"
            else:
                detail = f"{(newest_ns - stamp_ns) / NS_PER_S:.3f} s older than the newest"
        self.record(fault, now_ns, detail)

    def rate_hz(self) -> float | None:
        """Messages per second over the recent stamps; None before there are three."""
        if len(self._stamps) < 3:
            return None
        span_ns = self._stamps[-1] - self._stamps[0]
        return (len(self._stamps) - 1) * NS_PER_S / span_ns if span_ns > 0 else None

    def active(self, now_ns: int) -> list[ActiveFault]:
        """The faults to report at `now_ns`. A stream that never sent anything counts as
        silent from the first time its health is asked for."""
        if self._received_ns is None and self._watched_since_ns is None:
            self._watched_since_ns = now_ns
        found = []
        silent_ns = now_ns - (
            self._received_ns if self._received_ns is not None else self._watched_since_ns or 0
        )
        silent = silent_ns > self.limits.silent_after_s * NS_PER_S
        if silent:
            what = "nothing received" if self._received_ns is None else "nothing"
            fault = Fault.LEFT_OUT if self.optional else Fault.SILENT
            found.append(ActiveFault(self.name, fault, f"{what} for {silent_ns / NS_PER_S:.1f} s"))
        # Too slow is judged by the newest interval: a consumer that needs samples at
        # least this close cannot wait for a window of them.
        if self.min_rate_hz and len(self._stamps) >= 2:
            interval_ns = self._stamps[-1] - self._stamps[-2]
            if interval_ns * self.min_rate_hz > NS_PER_S:
                found.append(
                    ActiveFault(
                        self.name,
                        Fault.RATE_TOO_LOW,
                        f"{interval_ns / NS_PER_S:.2f} s between samples, needs at least "
                        f"{self.min_rate_hz:.1f} Hz",
                    )
                )
        if silent:
            return found  # what it did before it went silent says nothing more
        hold_ns = self.limits.hold_s * NS_PER_S
        for fault, (when_ns, detail) in self._last.items():
            if now_ns - when_ns > hold_ns:
                continue
            found.append(ActiveFault(self.name, fault, f"{detail}; {self.counts[fault]} so far"))
        return found


class InputHealth:
    """The health of every input of one node."""

    def __init__(self, streams: Iterable[StreamHealth]) -> None:
        self.streams = {stream.name: stream for stream in streams}

    def __getitem__(self, name: str) -> StreamHealth:
        return self.streams[name]

    def report(self, now_ns: int) -> HealthReport:
        faults = [fault for stream in self.streams.values() for fault in stream.active(now_ns)]
        optional = {name for name, stream in self.streams.items() if stream.optional}
        left_out = {active.stream for active in faults if active.fault is Fault.LEFT_OUT}
        if optional and left_out == optional:  # nothing left to run on
            faults = [
                ActiveFault(active.stream, Fault.SILENT, active.detail)
                if active.fault is Fault.LEFT_OUT
                else active
                for active in faults
            ]
        faults.sort(key=lambda active: -active.fault.level)
        return HealthReport(
            level=max((active.fault.level for active in faults), default=Level.OK),
            message="; ".join(active.describe() for active in faults),
            counts={
                f"{stream.name} {fault.label}": count
                for stream in self.streams.values()
                for fault, count in stream.counts.items()
            },
        )


class StillClock:
    """Whether simulated time (/clock, under use_sim_time) stands still for too long, by
    the steady clock. A node on simulated time does nothing timed while it stands (the
    control bridge sends no command) and, by its inputs, sees nothing wrong: past
    `warn_after_s` the stillness is a fault to name. Two kinds count: no /clock at all
    (time reads 0: use_sim_time with nothing publishing it), and time that moved and then
    stopped (a paused or ended replay or simulation, a player that died). Time held at the
    first instant it was read does not: a simulator or a lock-step replay holds its start
    instant until the graph is up, which takes as long as the models take to load. Lock-step
    holds for an answer stay within their bound."""

    def __init__(self, warn_after_s: float) -> None:
        if not warn_after_s > 0.0:
            raise ValueError(f"warn_after_s must be positive, got {warn_after_s}")
        self.warn_after_s = warn_after_s
        self._sim_ns: int | None = None
        self._since_ns = 0  # steady time simulated time last moved (or was first read)
        self._moved = False  # since it was first read

    def still_for_s(self, sim_ns: int, steady_ns: int) -> float:
        """Seconds simulated time has read `sim_ns` (0 when it has just moved)."""
        if sim_ns != self._sim_ns:
            # From its first instant on (the first /clock after none is not a move).
            self._moved = self._sim_ns not in (None, 0)
            self._sim_ns, self._since_ns = sim_ns, steady_ns
        return (steady_ns - self._since_ns) / NS_PER_S

    def describe(self, sim_ns: int, steady_ns: int) -> str:
        """The fault's words, or "" while simulated time moves (or holds its first instant)."""
        still_s = self.still_for_s(sim_ns, steady_ns)
        if still_s < self.warn_after_s:
            return ""
        bound = f"{self.warn_after_s:g} s"
        if sim_ns == 0:
            return f"/clock: none received in {bound} (nothing publishes /clock?)"
        if not self._moved:
            return ""
        return (
            f"/clock: simulated time has stood still for over {bound} (a paused or ended "
            "replay or simulation, or its publisher gone)"
        )


class LastingWait:
    """A wait that is news only once it lasts: a node's output that waits a moment for an
    input it is about to get (a camera set for the odometry sample past its t0) is
    healthy, and only a wait of `warn_after_s` or more is worth a WARN (shorter, a healthy
    stream would flash one whenever a once-a-second diagnostics publish fell in it)."""

    def __init__(self, warn_after_s: float) -> None:
        if not warn_after_s > 0.0:
            raise ValueError(f"warn_after_s must be positive, got {warn_after_s}")
        self._warn_after_ns = round(warn_after_s * NS_PER_S)
        self._since_ns: int | None = None

    def lasted(self, now_ns: int) -> bool:
        """Still waiting at `now_ns` (steady time): whether the wait has lasted the bound."""
        if self._since_ns is None:
            self._since_ns = now_ns
        return now_ns - self._since_ns >= self._warn_after_ns

    def over(self) -> None:
        """The input came: the next wait starts afresh."""
        self._since_ns = None
