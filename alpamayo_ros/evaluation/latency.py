"""Where the time goes between a camera frame's capture (t0) and the control command that
tracks the plan made from it, hop by hop, from what a listener on the running graph saw.

Pure bookkeeping: `LatencyLog` takes arrival times and stamps (integer ns on one clock) and
`summary` turns them into median / p90 per hop, the model's own time and the stack's
overhead: per inference, end to end minus that inference's model and planning time (both
carried by the messages), so the overhead is what the stack adds to this very cycle.
`busy_cores` is the unrelated load the stack must keep up under.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

MS_PER_NS = 1e-6
OVERHEAD = "overhead (end to end - model - planning)"
OVERHEAD_AT_BRIDGE = "overhead at the bridge (computed - model - planning)"


@dataclass
class LatencyLog:
    frame_age_ms: list[float] = field(default_factory=list)  # probe arrival - capture stamp
    conditioning_at: dict[int, int] = field(default_factory=dict)  # t0 -> arrival
    # The VLA's own time from its decision to publishing the conditioning (alignment,
    # building the message): its latency less input wait and model.
    publishing_ms: list[float] = field(default_factory=list)
    input_wait_ms: list[float] = field(default_factory=list)  # t0 -> VLA model started
    model_ms: dict[int, float] = field(default_factory=dict)  # t0 -> the VLA's model time
    reasoning_at: dict[int, int] = field(default_factory=dict)  # t0 -> reasoning text arrival
    trajectory_at: dict[int, int] = field(default_factory=dict)
    planning_ms: dict[int, float] = field(default_factory=dict)  # t0 -> the planner's time
    # plan t0 -> (arrival of the first command tracking it, when the control bridge
    # computed that command: its header stamp, where known)
    command_at: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    # Sampled from the nodes' diagnostics (once a second each):
    publish_delay_ms: list[float] = field(default_factory=list)  # camera: capture -> publish
    decode_ms: list[float] = field(default_factory=list)  # VLA: decode and resize one frame
    command_modes: Counter[str] = field(default_factory=Counter)
    # Commands that were not tracking after the first one that was (the stack fell behind
    # or an input failed), counted by the reason the control bridge gave.
    stop_reasons: Counter[str] = field(default_factory=Counter)

    def frame(self, stamp_ns: int, arrival_ns: int) -> None:
        self.frame_age_ms.append((arrival_ns - stamp_ns) * MS_PER_NS)

    def conditioning(
        self,
        t0_ns: int,
        arrival_ns: int,
        node_latency_ns: int,
        input_wait_ns: int,
        model_ns: int,
    ) -> None:
        """One planner conditioning with the VLA node's own timing of it (InferenceInfo)."""
        if t0_ns in self.conditioning_at:
            return
        self.conditioning_at[t0_ns] = arrival_ns
        self.publishing_ms.append((node_latency_ns - input_wait_ns - model_ns) * MS_PER_NS)
        self.input_wait_ms.append(input_wait_ns * MS_PER_NS)
        self.model_ms[t0_ns] = model_ns * MS_PER_NS

    def reasoning(self, t0_ns: int, arrival_ns: int) -> None:
        """The reasoning text of one inference (off the path to the control command)."""
        self.reasoning_at.setdefault(t0_ns, arrival_ns)

    def trajectory(self, t0_ns: int, arrival_ns: int, planning_ns: int) -> None:
        """The selected trajectory of one inference, with the planner's time for it."""
        if t0_ns in self.trajectory_at:
            return
        self.trajectory_at[t0_ns] = arrival_ns
        self.planning_ms[t0_ns] = planning_ns * MS_PER_NS

    def command(
        self,
        plan_t0_ns: int,
        arrival_ns: int,
        mode: str,
        reason: str = "",
        computed_ns: int | None = None,
    ) -> None:
        """One control command; `mode` is "tracking" or why not ("waiting", "safe_stop");
        `computed_ns` its stamp, when the control bridge computed it."""
        tracking = mode == "tracking"
        if not tracking and self.command_modes["tracking"] > 0:
            # "odometry is 0.23 s old (limit 0.20 s)" -> "odometry is ... old": one bucket.
            self.stop_reasons[re.sub(r"-?\d+(\.\d+)?", "#", reason)] += 1
        self.command_modes[mode] += 1
        if tracking:
            self.command_at.setdefault(plan_t0_ns, (arrival_ns, computed_ns))


def _stats(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {
        "median_ms": float(np.median(values)),
        "p90_ms": float(np.percentile(values, 90)),
        "count": len(values),
    }


Stats = dict[str, float | int]


@dataclass(frozen=True)
class LatencySummary:
    """Per-hop figures in the order a frame travels, and what the control bridge did."""

    hops: dict[str, Stats]
    command_modes: dict[str, int]  # commands per mode
    stop_reasons: dict[str, int]  # not tracking once tracking had begun, by reason

    def as_dict(self) -> dict[str, object]:
        return {
            "hops": self.hops,
            "command_modes": self.command_modes,
            "stops_after_tracking_began": self.stop_reasons,
        }

    def table(self) -> str:
        width = max(map(len, self.hops)) + 2
        lines = [f"{'hop':<{width}}{'median ms':>10}{'p90 ms':>9}{'count':>7}"]
        for name, values in self.hops.items():
            median = f"{values['median_ms']:.1f}" if "median_ms" in values else "-"
            p90 = f"{values['p90_ms']:.1f}" if "p90_ms" in values else "-"
            lines.append(f"{name:<{width}}{median:>10}{p90:>9}{values['count']:>7}")
        modes = ", ".join(f"{mode} {n}" for mode, n in self.command_modes.items())
        lines.append(f"control commands: {sum(self.command_modes.values())} ({modes or 'none'})")
        stops = sum(self.stop_reasons.values())
        lines.append(f"not tracking once tracking had begun: {stops}")
        lines.extend(f"  {n:>5}  {reason}" for reason, n in self.stop_reasons.items())
        return "\n".join(lines)


def summary(log: LatencyLog) -> LatencySummary:
    """Median and p90 per hop; the chained hops over the inferences whose whole chain was
    seen."""
    chained: dict[str, list[float]] = defaultdict(list)
    for t0, conditioned in log.conditioning_at.items():
        chained["t0 -> conditioning received (planner's input)"].append(
            (conditioned - t0) * MS_PER_NS
        )
        planned = log.trajectory_at.get(t0)
        if planned is None:
            continue
        chained["conditioning -> trajectory received (planner)"].append(
            (planned - conditioned) * MS_PER_NS
        )
        command = log.command_at.get(t0)
        if command is None:
            continue
        commanded, computed = command
        compute_ms = log.model_ms[t0] + log.planning_ms[t0]
        chained["trajectory -> first command tracking it"].append((commanded - planned) * MS_PER_NS)
        chained["t0 -> command (end to end)"].append((commanded - t0) * MS_PER_NS)
        chained[OVERHEAD].append((commanded - t0) * MS_PER_NS - compute_ms)
        if computed is not None:
            chained["t0 -> command computed (control bridge)"].append((computed - t0) * MS_PER_NS)
            chained[OVERHEAD_AT_BRIDGE].append((computed - t0) * MS_PER_NS - compute_ms)
    hops = {
        "camera: capture -> publish": _stats(log.publish_delay_ms),
        "capture -> frame received (publish, transport)": _stats(log.frame_age_ms),
        "VLA: decode and resize one frame": _stats(log.decode_ms),
        "VLA: t0 -> model started (frames in, camera set complete)": _stats(log.input_wait_ms),
        "VLA: model, up to the decision": _stats(list(log.model_ms.values())),
        "VLA: decided -> conditioning published": _stats(log.publishing_ms),
        "t0 -> conditioning received (planner's input)": _stats(
            chained["t0 -> conditioning received (planner's input)"]
        ),
        "planner: planning step": _stats(list(log.planning_ms.values())),
        **{
            name: _stats(chained[name])
            for name in (
                "conditioning -> trajectory received (planner)",
                "trajectory -> first command tracking it",
                "t0 -> command computed (control bridge)",
                "t0 -> command (end to end)",
            )
        },
        "t0 -> reasoning text received (off the control path)": _stats(
            [(arrival - t0) * MS_PER_NS for t0, arrival in log.reasoning_at.items()]
        ),
        # The listener's own delivery of the command counts in the first, not the second.
        **{name: _stats(chained[name]) for name in (OVERHEAD, OVERHEAD_AT_BRIDGE)},
    }
    return LatencySummary(hops, dict(log.command_modes), dict(log.stop_reasons.most_common()))


@contextlib.contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """`count` unrelated processes that each keep one core busy while the block runs."""
    processes = [
        multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
            process.join()


def _spin() -> None:
    while True:
        pass
