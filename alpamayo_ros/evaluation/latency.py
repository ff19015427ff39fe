"""Where the time goes between a camera frame's capture (t0) and the control command that
tracks the plan made from it, hop by hop, from what a listener on the running graph saw.

Pure bookkeeping: `LatencyLog` takes arrival times and stamps (integer ns on one clock) and
`summary` turns them into median / p90 per hop, the model's own time and the stack's
overhead (end to end minus model and planner compute).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

MS_PER_NS = 1e-6


@dataclass
class LatencyLog:
    frame_age_ms: list[float] = field(default_factory=list)  # arrival - capture stamp
    reasoning_at: dict[int, int] = field(default_factory=dict)  # t0 -> arrival
    reasoning_published_ms: list[float] = field(default_factory=list)  # node's own latency
    trajectory_at: dict[int, int] = field(default_factory=dict)
    command_at: dict[int, int] = field(default_factory=dict)  # plan t0 -> first tracking
    model_ms: list[float] = field(default_factory=list)  # reported by the VLA node
    planning_ms: list[float] = field(default_factory=list)  # reported by the planner
    safe_stop_commands: int = 0
    commands: int = 0

    def frame(self, stamp_ns: int, arrival_ns: int) -> None:
        self.frame_age_ms.append((arrival_ns - stamp_ns) * MS_PER_NS)

    def reasoning(self, t0_ns: int, arrival_ns: int, node_latency_ns: int) -> None:
        self.reasoning_at.setdefault(t0_ns, arrival_ns)
        self.reasoning_published_ms.append(node_latency_ns * MS_PER_NS)

    def trajectory(self, t0_ns: int, arrival_ns: int) -> None:
        self.trajectory_at.setdefault(t0_ns, arrival_ns)

    def command(self, plan_t0_ns: int, arrival_ns: int, tracking: bool) -> None:
        self.commands += 1
        if tracking:
            self.command_at.setdefault(plan_t0_ns, arrival_ns)
        else:
            self.safe_stop_commands += 1


def _stats(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {
        "median_ms": float(np.median(values)),
        "p90_ms": float(np.percentile(values, 90)),
        "count": len(values),
    }


def summary(log: LatencyLog) -> dict[str, dict[str, float | int]]:
    """Median and p90 per hop over the inferences whose whole chain was seen."""
    hops: dict[str, list[float]] = defaultdict(list)
    for t0, reasoned in log.reasoning_at.items():
        hops["t0 -> reasoning received"].append((reasoned - t0) * MS_PER_NS)
        planned = log.trajectory_at.get(t0)
        if planned is None:
            continue
        hops["reasoning -> trajectory received"].append((planned - reasoned) * MS_PER_NS)
        commanded = log.command_at.get(t0)
        if commanded is None:
            continue
        hops["trajectory -> first command tracking it"].append((commanded - planned) * MS_PER_NS)
        hops["t0 -> command (end to end)"].append((commanded - t0) * MS_PER_NS)
    result = {
        "capture -> frame received (render, publish, transport)": _stats(log.frame_age_ms),
        "t0 -> reasoning published (VLA node's own latency)": _stats(log.reasoning_published_ms),
        **{name: _stats(values) for name, values in hops.items()},
        "model: reasoning half": _stats(log.model_ms),
        "model: planning step": _stats(log.planning_ms),
    }
    end_to_end = result.get("t0 -> command (end to end)", {})
    if "median_ms" in end_to_end and log.model_ms and log.planning_ms:
        compute = float(np.median(log.model_ms) + np.median(log.planning_ms))
        result["overhead (end to end - model - planning)"] = {
            "median_ms": float(end_to_end["median_ms"]) - compute,
            "count": int(end_to_end["count"]),
        }
    result["commands"] = {"count": log.commands, "safe_stop": log.safe_stop_commands}
    return result


def table(result: dict[str, dict[str, float | int]]) -> str:
    width = max(map(len, result)) + 2
    lines = [f"{'hop':<{width}}{'median ms':>10}{'p90 ms':>9}{'count':>7}"]
    for name, values in result.items():
        if name == "commands":
            continue
        median = f"{values['median_ms']:.1f}" if "median_ms" in values else "-"
        p90 = f"{values['p90_ms']:.1f}" if "p90_ms" in values else "-"
        lines.append(f"{name:<{width}}{median:>10}{p90:>9}{values['count']:>7}")
    commands = result["commands"]
    lines.append(
        f"control commands: {commands['count']}, of them not tracking (waiting or safe stop): "
        f"{commands['safe_stop']}"
    )
    return "\n".join(lines)
