"""Lock-step time: simulated time that advances only once the stack has answered.

A node that owns time in a replay or a simulation (the camera driver playing a recording,
the simulator) publishes /clock itself and every other node runs on `use_sim_time`. It steps
through the instants it has something to publish at (odometry ticks and camera ticks, two
grids merged), and after each camera set it holds the clock until the stack has answered
those frames (the planner's trajectory stamped with their time, or its candidates saying
that none was feasible) or a bounded wall time has passed, which is counted. During the
warm-up (the first frames, before the model has the ego history it needs) no answer can
come: each camera set is held for a short fixed wall time instead, long enough for the stack
to take the frames in. So a run goes as fast as the stack allows, never faster than it can
answer, and the same inputs give the same outputs whatever the machine's load.

The schedule is pure: the node asks `next_step(wall_ns)` on a fast wall timer and publishes
what the step says is due. What counts as the answer is the node's to say (`expect` and
`answer` take stamps): the camera driver waits for the trajectory (or the candidates with
none selected); the simulator, which moves the car by the control bridge's commands, waits
after every step for the command computed from that step's odometry, and after a camera
set for the command that tracks the plan made from it (or, with no feasible plan, for the
step's command and the candidates).
"""

from __future__ import annotations

from dataclasses import dataclass

from alpamayo_ros.core.contract import NS_PER_S

# Lock-step time starts here: not at 0, which a use_sim_time node reads as "no clock yet".
LOCKSTEP_START_NS = NS_PER_S


@dataclass(frozen=True)
class Step:
    """One simulated instant: publish /clock at `stamp_ns`, then the odometry and/or the
    camera frames it says are due."""

    stamp_ns: int
    odometry_due: bool
    frames_due: bool


@dataclass(frozen=True)
class LockStepReport:
    """What a lock-step run did, for diagnostics and the command line."""

    simulated_s: float
    wall_s: float
    expected: int  # steps held for an answer
    answered: int
    timeouts: int  # answers that did not come within the bound

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second (3.0: three times faster than real time)."""
        return self.simulated_s / self.wall_s if self.wall_s > 0 else 0.0


class LockStep:
    """The instants of two grids (odometry at `odometry_period_ns`, cameras at
    `frame_period_ns`, both from `start_ns`) in time order, held after each camera set."""

    def __init__(
        self,
        start_ns: int,
        frame_period_ns: int,
        odometry_period_ns: int,
        answer_timeout_s: float,
        warmup_ns: int = 0,
        warmup_hold_s: float = 0.02,
    ) -> None:
        if frame_period_ns <= 0 or odometry_period_ns <= 0:
            raise ValueError("lock-step periods must be positive")
        if not answer_timeout_s > 0.0:
            raise ValueError(f"answer timeout must be positive seconds, got {answer_timeout_s}")
        self._start_ns = start_ns
        self._frame_period_ns = frame_period_ns
        self._odometry_period_ns = odometry_period_ns
        self._answer_timeout_ns = round(answer_timeout_s * NS_PER_S)
        self._answers_from_ns = start_ns + warmup_ns
        self._warmup_hold_ns = round(warmup_hold_s * NS_PER_S)
        self._hold_until_ns = 0  # wall time a warm-up hold ends
        self._frame_index = 0
        self._odometry_index = 0
        self.now_ns: int | None = None  # the last instant handed out
        self._awaiting_ns: int | None = None  # frames sent at this stamp, not answered yet
        self._waiting_since_ns = 0  # wall time the hold began
        self._first_wall_ns: int | None = None
        self._last_wall_ns = 0
        self.expected = 0
        self.answered_sets = 0
        self.timeouts = 0

    def holding(self, wall_ns: int) -> bool:
        """Whether the clock is held at `wall_ns`: for an answer whose bound has not passed
        (a passed bound is counted in `timeouts` and releases it), or in a warm-up hold."""
        if self._first_wall_ns is None:
            self._first_wall_ns = wall_ns
        self._last_wall_ns = wall_ns
        if wall_ns < self._hold_until_ns:
            return True
        if self._awaiting_ns is not None:
            if wall_ns - self._waiting_since_ns < self._answer_timeout_ns:
                return True
            self.timeouts += 1
            self._awaiting_ns = None
        return False

    def next_step(self, wall_ns: int) -> Step | None:
        """The next instant, or None while the clock is held."""
        if self.holding(wall_ns):
            return None
        frame_ns = self._start_ns + self._frame_index * self._frame_period_ns
        odometry_ns = self._start_ns + self._odometry_index * self._odometry_period_ns
        stamp_ns = min(frame_ns, odometry_ns)
        step = Step(stamp_ns, odometry_due=odometry_ns == stamp_ns, frames_due=frame_ns == stamp_ns)
        self._frame_index += step.frames_due
        self._odometry_index += step.odometry_due
        self.now_ns = stamp_ns
        return step

    def warming_up(self, stamp_ns: int) -> bool:
        """Frames stamped `stamp_ns` come before the model can answer any."""
        return stamp_ns < self._answers_from_ns

    def frames_sent(self, stamp_ns: int, wall_ns: int) -> None:
        """Camera frames stamped `stamp_ns` went out: hold the clock for their answer (in
        the warm-up, for the fixed hold)."""
        if self.warming_up(stamp_ns):
            self._hold_until_ns = wall_ns + self._warmup_hold_ns
        else:
            self.expect(stamp_ns, wall_ns)

    def expect(self, stamp_ns: int, wall_ns: int) -> None:
        """Hold the clock until an answer stamped `stamp_ns` or later (or the bound)."""
        self.expected += 1
        self._awaiting_ns = stamp_ns
        self._waiting_since_ns = wall_ns

    def answer(self, stamp_ns: int) -> bool:
        """An output for inputs stamped `stamp_ns` arrived; True when it releases the
        clock (an answer to older frames, late after a timeout, does not)."""
        if self._awaiting_ns is None or stamp_ns < self._awaiting_ns:
            return False
        self._awaiting_ns = None
        self.answered_sets += 1
        return True

    def report(self) -> LockStepReport:
        simulated_ns = 0 if self.now_ns is None else self.now_ns - self._start_ns
        first = self._first_wall_ns if self._first_wall_ns is not None else self._last_wall_ns
        return LockStepReport(
            simulated_s=simulated_ns / NS_PER_S,
            wall_s=(self._last_wall_ns - first) / NS_PER_S,
            expected=self.expected,
            answered=self.answered_sets,
            timeouts=self.timeouts,
        )


class StartGate:
    """When a lock-step run may start: once the graph is discovered (what the node waits
    for names itself: the VLA node's subscriptions to the cameras and the odometry, the
    planner's to the set speed, the answers' publisher) or `timeout_s` has passed, and
    then after `settle_s` more, while the node publishes the start instant (or one just
    before it) on /clock, so every use_sim_time node has the clock before the first
    stamped input (one that arrived before it would look to come from the future and be
    refused)."""

    def __init__(self, timeout_s: float, settle_s: float) -> None:
        self._timeout_ns = round(timeout_s * NS_PER_S)
        self._settle_ns = round(settle_s * NS_PER_S)
        self._first_ns: int | None = None
        self._discovered_ns: int | None = None
        self.open = False
        self.missing: list[str] = []  # what was still undiscovered when the bound passed

    def check(self, undiscovered: list[str], wall_ns: int) -> bool:
        """Whether the run may start now (it stays open once it is)."""
        if self.open:
            return True
        if self._first_ns is None:
            self._first_ns = wall_ns
        if self._discovered_ns is None:
            timed_out = wall_ns - self._first_ns >= self._timeout_ns
            if undiscovered and not timed_out:
                return False
            self.missing = list(undiscovered)
            self._discovered_ns = wall_ns
        self.open = wall_ns - self._discovered_ns >= self._settle_ns
        return self.open
