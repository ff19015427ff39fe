"""Closed-loop runs as a report a person looks at: one HTML page and its PNG figures.

At the top, the summary per driver (the ceiling, the floor and the model side by side).
Per run, a figure with the view from above (road edges and lane markings, the agents' paths
and where they were at the end, the expert's drive of the same scenario and the closed-loop
drive, with the handover and any collision or departure from the road marked) and the
signals over time (speed against the expert's, steering, acceleration) with the watchdog's
stopping modes shaded; then its metrics and why it failed.

The figures are drawn from the runs' results (`simulate`'s, from the graph or in one
process) and the scenario rebuilt from its seed: nothing is re-driven.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, whatever the environment says

import numpy as np
from matplotlib import pyplot
from matplotlib.axes import Axes

from alpamayo_ros.world.closed_loop import ClosedLoopWorld
from alpamayo_ros.world.simulation import DT_S

# The figures in the summary table, in order, with how they read.
SUMMARY_FIGURES = (
    ("pass_rate", "pass rate"),
    ("mean_score", "mean scene score"),
    ("at_fault_collision_rate", "at-fault collisions"),
    ("off_road_rate", "off road"),
    ("red_light_violation_rate", "red-light violations"),
    ("mean_progress_ratio", "progress / expert's"),
    ("peak_jerk_p90", "peak jerk p90 (m/s³)"),
    ("mean_consistency", "reasoning-action consistency"),
    ("plan_latency_p90_s", "plan latency p90 (s)"),
    ("lockstep_speed", "speed (x real time)"),
)
STOP_COLOURS = {"safe_stop": "#f4c542", "emergency_stop": "#e8553e", "stopped": "#aaaaaa"}


class ReportError(ValueError):
    """Results a report cannot be drawn from; the message says what is missing."""


def drive_figure(result: Mapping[str, Any]) -> bytes:
    """The PNG of one run: bird's-eye view on the left, signals over time on the right."""
    ego = result.get("ego")
    if not ego or not ego.get("t_s"):
        raise ReportError(f"run of seed {result.get('seed')} has no drive ('ego') to draw")
    world = ClosedLoopWorld(int(result["seed"]), result["scenario_type"])
    figure = pyplot.figure(figsize=(13, 5.5), layout="constrained")
    grid = figure.add_gridspec(3, 2, width_ratios=(1.35, 1))
    _road_view(figure.add_subplot(grid[:, 0]), world, result)
    axes = [figure.add_subplot(grid[row, 1]) for row in range(3)]
    _signals(axes, world, result)
    metrics = result["metrics"]
    verdict = "passed" if metrics["passed"] else "failed: " + "; ".join(metrics["failures"])
    figure.suptitle(
        f"{result['driver']}, seed {result['seed']} ({result['scenario_type']}): "
        f"score {metrics['score']:.2f}, {verdict}",
        fontsize=11,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    pyplot.close(figure)
    return buffer.getvalue()


def _road_view(axes: Axes, world: ClosedLoopWorld, result: Mapping[str, Any]) -> None:
    """The drive from above in the road's frame (along the road, left of its reference
    line), stretched across so that a lateral error of a metre shows: curves are
    straightened, and leaving the road is crossing an edge."""
    ego = result["ego"]
    road = world.scenario.road
    s_ego, d_ego = road.to_road(np.asarray(ego["x"]), np.asarray(ego["y"]))
    s_from, s_to = max(0.0, float(s_ego.min()) - 10.0), float(s_ego.max()) + 25.0
    for d in (road.right_edge, road.left_edge):
        axes.axhline(d, color="black", linewidth=1.5)
    for marking in road.markings():
        axes.axhline(marking.d, color="#999999", linestyle="--", linewidth=0.8)
    states = world.expert.states[: round(ego["t_s"][-1] / DT_S) + 1]
    for index, agent_id in enumerate(sorted({a.agent_id for st in states for a in st.agents})):
        track = np.array(
            [(agent.s, agent.d) for st in states if (agent := st.agent(agent_id)) is not None]
        )
        label = "agents (square: at the end)" if not index else None
        axes.plot(track[:, 0], track[:, 1], color="#8e44ad", linewidth=1, alpha=0.7, label=label)
        axes.plot(*track[-1], "s", color="#8e44ad", markersize=6)
        axes.annotate(agent_id, tuple(track[-1]), fontsize=7, color="#8e44ad")
    for light in states[-1].lights if states else ():
        axes.axvline(light.stop_line_s, color="#c0392b", linewidth=1, alpha=0.6)
    expert = world.expert_states()[: len(states)]
    s_expert, d_expert = road.to_road(expert[:, 0], expert[:, 1])
    axes.plot(s_expert, d_expert, color="#27ae60", linewidth=5, alpha=0.5, label="expert")
    axes.plot(s_ego, d_ego, color="#2e86de", linewidth=2, label=result["driver"])
    handover = int(np.searchsorted(ego["t_s"], world.handover_ns / 1e9))
    handover = min(handover, len(s_ego) - 1)
    axes.plot(s_ego[handover], d_ego[handover], "o", color="#2e86de", label="handover")
    collision_s = result["metrics"].get("collision_time_s")
    if collision_s is not None:
        k = min(int(np.searchsorted(ego["t_s"], collision_s)), len(s_ego) - 1)
        axes.plot(s_ego[k], d_ego[k], "X", color="#e8553e", markersize=12, label="collision")
    margin = 1.5
    axes.set_xlim(s_from, s_to)
    axes.set_ylim(
        min(road.right_edge, float(d_ego.min())) - margin,
        max(road.left_edge, float(d_ego.max())) + margin,
    )
    axes.set_xlabel("along the road (m)")
    axes.set_ylabel("left of the reference line (m)")
    axes.legend(loc="best", fontsize=8)
    axes.set_title("the drive from above, in the road's frame (stop lines: red)", fontsize=10)


def _signals(axes: Sequence[Axes], world: ClosedLoopWorld, result: Mapping[str, Any]) -> None:
    ego = result["ego"]
    t = np.asarray(ego["t_s"])
    expert = world.expert_states()
    expert_t = np.arange(len(expert)) * DT_S
    keep = expert_t <= t[-1] + 1e-9
    speed, steering, acceleration = axes
    speed.plot(expert_t[keep], expert[keep, 3], color="#27ae60", label="expert")
    speed.plot(t, ego["v"], color="#2e86de", label=result["driver"])
    speed.set_ylabel("speed (m/s)")
    speed.set_ylim(
        bottom=0.0, top=max(1.0, float(np.max(ego["v"])), float(expert[keep, 3].max())) * 1.1
    )
    speed.legend(fontsize=8, loc="best")
    steering.plot(t, np.degrees(ego["steering"]), color="#2e86de")
    steering.set_ylabel("steering (°)")
    acceleration.plot(t, ego["acceleration"], color="#2e86de")
    acceleration.set_ylabel("accel. (m/s²)")
    acceleration.set_xlabel("time since the scenario started (s)")
    modes = result.get("watchdog", [])
    for row in axes:
        row.axvline(world.handover_ns / 1e9, color="#555555", linestyle=":", linewidth=1)
        row.grid(alpha=0.3)
        for index, change in enumerate(modes):
            colour = STOP_COLOURS.get(change["mode"])
            if colour is None:  # tracking or waiting: not shaded
                continue
            end = modes[index + 1]["t_s"] if index + 1 < len(modes) else t[-1]
            row.axvspan(change["t_s"], end, color=colour, alpha=0.3)


def write_report(
    results: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Mapping[str, float | None]],
    directory: Path,
    title: str = "Closed-loop runs",
) -> Path:
    """`directory`/index.html with the summary and every run's figure beside it as PNG."""
    if not results:
        raise ReportError("no runs to report")
    directory.mkdir(parents=True, exist_ok=True)
    sections = []
    for result in results:
        name = f"{result['driver']}_{result['seed']}.png"
        (directory / name).write_bytes(drive_figure(result))
        sections.append(_run_section(result, name))
    page = _PAGE.format(
        title=html.escape(title),
        summary=_summary_table(summary),
        runs="\n".join(sections),
    )
    index = directory / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _summary_table(summary: Mapping[str, Mapping[str, float | None]]) -> str:
    drivers = list(summary)
    head = "".join(f"<th>{html.escape(driver)}</th>" for driver in drivers)
    rows = []
    for key, label in SUMMARY_FIGURES:
        cells = "".join(f"<td>{_number(summary[driver].get(key))}</td>" for driver in drivers)
        rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _run_section(result: Mapping[str, Any], image: str) -> str:
    metrics = result["metrics"]
    verdict = "passed" if metrics["passed"] else "failed: " + "; ".join(metrics["failures"])
    figures = (
        ("progress / expert's", metrics["progress_ratio"]),
        ("minimum distance (m)", metrics["min_distance_m"]),
        ("minimum time to collision (s)", metrics["min_ttc_s"]),
        ("lane departure (s)", metrics["lane_departure_s"]),
        ("peak jerk (m/s³)", metrics["peak_jerk"]),
        ("peak lateral acceleration (m/s²)", metrics["peak_lateral_acceleration"]),
        ("consistency", metrics["consistency"]),
    )
    cells = "".join(
        f"<tr><th>{label}</th><td>{_number(value)}</td></tr>" for label, value in figures
    )
    heading = f"{result['driver']}, seed {result['seed']} ({result['scenario_type']})"
    return (
        f"<section><h2>{html.escape(heading)}</h2>"
        f"<p class='{'pass' if metrics['passed'] else 'fail'}'>{html.escape(verdict)}</p>"
        f"<img src='{html.escape(image)}' alt='{html.escape(heading)}'>"
        f"<table>{cells}</table></section>"
    )


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if isinstance(value, float) else html.escape(str(value))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
img {{ max-width: 100%; }}
.pass {{ color: #1e8449; }} .fail {{ color: #c0392b; }}
</style></head>
<body><h1>{title}</h1>
{summary}
{runs}
</body></html>
"""
