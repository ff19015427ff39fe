"""Results as a report a person looks at: one HTML page and its PNG figures.

Three kinds, one page layout:
- closed-loop runs (`simulate`, `scenario`, the demo): the summary per driver (the ceiling,
  the floor and the model side by side); per run, the view from above (road edges and lane
  markings, the agents' paths and where they were at the end, the expert's drive of the
  same scenario and the closed-loop drive, with the handover and any collision or departure
  from the road marked) and the signals over time (speed against the expert's, steering,
  acceleration) with the watchdog's stopping modes shaded; then its metrics, why it
  failed, and the reasoning as it changed. Drawn from the runs' results and the scenario
  rebuilt from its seed: nothing is re-driven;
- a recorded drive (`evaluate --bag`): the logged path from above with the plans made along
  it (candidates and the selected one), the displacement errors and meta-actions over time
  against the logged ones, the latency of each stage as histograms, and the reasoning as it
  changed;
- open-loop seeds (`evaluate --seeds`): the figures per scenario type, side by side.
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
import numpy.typing as npt
from matplotlib import pyplot
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.core.planar import Pose2D
from alpamayo_ros.evaluation.metrics import METRICS, SampleResult
from alpamayo_ros.evaluation.recorded import SUMMARY_FIGURES as RECORDING_FIGURES
from alpamayo_ros.evaluation.recorded import RecordingResult
from alpamayo_ros.pipeline.lockstep import LOCKSTEP_START_NS
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


class ReportError(ConfigurationError):
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
    return _png(figure)


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
    return _write_page(directory, title, _table(summary, SUMMARY_FIGURES), sections)


def _write_page(directory: Path, title: str, summary: str, sections: Sequence[str]) -> Path:
    page = _PAGE.format(title=html.escape(title), summary=summary, runs="\n".join(sections))
    index = directory / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    pyplot.close(figure)
    return buffer.getvalue()


# Every n-th plan is drawn over the logged path: all of them would hide it.
PLANS_DRAWN_EVERY = 5
REASONING_ROWS = 60


def write_recording_report(
    results: Sequence[RecordingResult], directory: Path, title: str = "Recorded drive"
) -> Path:
    """`directory`/index.html: the summary per backend, and per backend its drive figure,
    its latency histograms and its reasoning as it changed."""
    if not results or not any(result.cycles for result in results):
        raise ReportError("no plans to report: the recording is shorter than the history")
    directory.mkdir(parents=True, exist_ok=True)
    summaries = {result.backend: result.summary() for result in results}
    sections = []
    for result in results:
        drive, latency = f"{result.backend}_drive.png", f"{result.backend}_latency.png"
        (directory / drive).write_bytes(recording_figure(result))
        (directory / latency).write_bytes(latency_figure(result))
        sections.append(_recording_section(result, drive, latency))
    table = _table(summaries, tuple(RECORDING_FIGURES.items()))
    return _write_page(directory, title, table, sections)


def recording_figure(result: RecordingResult) -> bytes:
    """The logged path from above with the plans along it, and the errors and
    meta-actions over time against the logged ones."""
    if not result.cycles:
        raise ReportError(f"{result.backend} made no plan to draw")
    figure = pyplot.figure(figsize=(13, 6), layout="constrained")
    grid = figure.add_gridspec(3, 2, width_ratios=(1, 1.2))
    _plans_from_above(figure.add_subplot(grid[:, 0]), result)
    t0 = np.array([cycle.t0_s for cycle in result.cycles])
    errors = figure.add_subplot(grid[0, 1])
    for name, label in (("ade_3s", "ADE 3 s"), ("min_ade_6_4s", "minADE 6.4 s")):
        values = [
            getattr(c, name) if getattr(c, name) is not None else np.nan for c in result.cycles
        ]
        errors.plot(t0, values, label=label)
    errors.set_ylabel("error (m)")
    errors.legend(fontsize=8, loc="best")
    for row, (axis, names) in enumerate(
        (("longitudinal", [m.name for m in Longitudinal]), ("lateral", [m.name for m in Lateral])),
        start=1,
    ):
        axes = figure.add_subplot(grid[row, 1], sharex=errors)
        index = {name: k for k, name in enumerate(names)}
        model = [index[cycle.meta_action[row - 1]] for cycle in result.cycles]
        logged = [
            index[cycle.logged_meta_action[row - 1]] if cycle.logged_meta_action else np.nan
            for cycle in result.cycles
        ]
        axes.step(t0, logged, where="post", color="#27ae60", linewidth=4, alpha=0.5, label="logged")
        axes.step(t0, model, where="post", color="#2e86de", label=result.backend)
        axes.set_yticks(range(len(names)), [name.lower() for name in names], fontsize=7)
        axes.set_ylabel(axis, fontsize=9)
        axes.legend(fontsize=8, loc="best")
    axes.set_xlabel("t0 (s since the recording's start)")
    for axes in figure.axes[1:]:
        axes.grid(alpha=0.3)
    summary = result.summary()
    figure.suptitle(
        f"{result.backend}: ADE 3 s {_number(summary['ade_3s'])} m, minADE 6.4 s "
        f"{_number(summary['min_ade_6_4s'])} m over {len(result.cycles)} plans",
        fontsize=11,
    )
    return _png(figure)


def _plans_from_above(axes: Axes, result: RecordingResult) -> None:
    """The logged path in the odometry frame, and every few plans where they would have
    taken the car (the candidates and the selected one placed at their t0 pose)."""
    path = result.logged_path
    axes.plot(path[:, 0], path[:, 1], color="#27ae60", linewidth=6, alpha=0.4, label="logged")
    for k, cycle in enumerate(result.cycles[::PLANS_DRAWN_EVERY]):
        origin = Pose2D(*cycle.pose)
        for index, candidate in enumerate(cycle.candidates_xy):
            axes.plot(
                *_placed(origin, candidate),
                color="#999999",
                linewidth=0.6,
                alpha=0.6,
                label="candidates" if not (k or index) else None,
            )
        axes.plot(
            *_placed(origin, cycle.selected_xy),
            color="#2e86de",
            linewidth=1,
            alpha=0.8,
            label=f"selected plan (every {PLANS_DRAWN_EVERY}th)" if not k else None,
        )
        axes.plot(*origin.transform_point(0.0, 0.0), ".", color="#2e86de", markersize=4)
    axes.plot(path[0, 0], path[0, 1], "o", color="black", label="start")
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_xlabel("x, odometry frame (m)")
    axes.set_ylabel("y (m)")
    axes.legend(fontsize=8, loc="best")
    axes.grid(alpha=0.3)
    axes.set_title("the drive from above", fontsize=10)


def _placed(
    origin: Pose2D, path_xy: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A path in the ego frame at t0 (`origin` in the odometry frame), in the odometry
    frame, as plot's x and y."""
    xy = np.array([origin.transform_point(x, y) for x, y in path_xy])
    return xy[:, 0], xy[:, 1]


def latency_figure(result: RecordingResult) -> bytes:
    """A histogram of each stage's wall time per cycle."""
    stages = sorted({stage for cycle in result.cycles for stage in cycle.stage_ms})
    if not stages:
        raise ReportError(f"{result.backend} timed no stage")
    figure, axes = pyplot.subplots(
        1, len(stages), figsize=(3.2 * len(stages), 2.8), layout="constrained", squeeze=False
    )
    for row, stage in zip(axes[0], stages, strict=True):
        values = [cycle.stage_ms[stage] for cycle in result.cycles if stage in cycle.stage_ms]
        row.hist(values, bins=30, color="#2e86de")
        row.axvline(float(np.percentile(values, 90)), color="#e8553e", linestyle="--")
        row.set_title(f"{stage} (p90 dashed)", fontsize=9)
        row.set_xlabel("ms")
    figure.suptitle(f"{result.backend}: wall time per cycle and stage", fontsize=11)
    return _png(figure)


def _recording_section(result: RecordingResult, drive: str, latency: str) -> str:
    reasoning = [
        (cycle.t0_s, cycle.reasoning, " / ".join(cycle.meta_action).lower())
        for cycle in result.cycles
    ]
    return (
        f"<section><h2>{html.escape(result.backend)}</h2>"
        f"<img src='{html.escape(drive)}' alt='{html.escape(result.backend)} drive'>"
        f"<img src='{html.escape(latency)}' alt='{html.escape(result.backend)} latency'>"
        f"{_reasoning_table(reasoning)}</section>"
    )


# The open-loop figures drawn per scenario type, with how they read.
OPEN_LOOP_FIGURES = (
    ("min_ade_6_4s", "minADE 6.4 s (m)"),
    ("ade_6_4s", "ADE 6.4 s, selected (m)"),
    ("longitudinal_correct", "longitudinal accuracy"),
    ("consistent", "reasoning-action consistency"),
)


def write_open_loop_report(
    results: Mapping[str, Sequence[SampleResult]],
    summary: Mapping[str, Mapping[str, Mapping[str, float | None]]],
    directory: Path,
    title: str = "Open-loop evaluation",
) -> Path:
    """`directory`/index.html: the overall figures per backend, and bars per scenario
    type for each backend side by side."""
    if not any(results.values()):
        raise ReportError("no samples to report")
    directory.mkdir(parents=True, exist_ok=True)
    overall = {name: groups["overall"] for name, groups in summary.items()}
    figures = (*((name, name.replace("_", " ")) for name in METRICS), ("count", "samples"))
    (directory / "by_type.png").write_bytes(open_loop_figure(summary))
    section = "<section><h2>Per scenario type</h2><img src='by_type.png' alt='per type'></section>"
    return _write_page(directory, title, _table(overall, figures), [section])


def open_loop_figure(summary: Mapping[str, Mapping[str, Mapping[str, float | None]]]) -> bytes:
    backends = list(summary)
    types = sorted({group for groups in summary.values() for group in groups} - {"overall"})
    figure, axes = pyplot.subplots(
        len(OPEN_LOOP_FIGURES),
        1,
        figsize=(12, 2.4 * len(OPEN_LOOP_FIGURES)),
        layout="constrained",
        sharex=True,
    )
    width = 0.8 / len(backends)
    positions = np.arange(len(types))
    for row, (key, label) in zip(axes, OPEN_LOOP_FIGURES, strict=True):
        for k, backend in enumerate(backends):
            values = [summary[backend].get(t, {}).get(key) for t in types]
            heights = [np.nan if value is None else value for value in values]
            row.bar(positions + k * width, heights, width, label=backend)
        row.set_ylabel(label, fontsize=9)
        row.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    axes[-1].set_xticks(positions + 0.4 - width / 2, types, rotation=20, fontsize=8)
    return _png(figure)


def _table(columns: Mapping[str, Mapping[str, Any]], figures: Sequence[tuple[str, str]]) -> str:
    """One column per driver or backend, one row per figure."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in columns)
    rows = []
    for key, label in figures:
        cells = "".join(f"<td>{_number(column.get(key))}</td>" for column in columns.values())
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
    reasoning = [(line["t_s"], line["text"], None) for line in result.get("reasoning", ())]
    # The drive's own time, as the figure's; the graph's clock (the bag's stamps, the
    # demo's t0) starts LOCKSTEP_START_NS later.
    clock_s = LOCKSTEP_START_NS / NS_PER_S
    return (
        f"<section><h2>{html.escape(heading)}</h2>"
        f"<p class='{'pass' if metrics['passed'] else 'fail'}'>{html.escape(verdict)}</p>"
        f"<img src='{html.escape(image)}' alt='{html.escape(heading)}'>"
        f"<table>{cells}</table>"
        f"{_reasoning_table(reasoning, f't0 (s into the drive; its stamp is {clock_s:g} s more)')}"
        "</section>"
    )


def _reasoning_table(
    lines: Sequence[tuple[float, str, str | None]], time_heading: str = "t0 (s)"
) -> str:
    """The reasoning as it changed: (t0 in s, text, meta-action, or None where the
    result has none: no column) where the text differs from the one before, up to
    REASONING_ROWS rows; nothing without reasoning."""
    with_meta = any(meta_action is not None for _, _, meta_action in lines)
    rows: list[str] = []
    previous = None
    for t0_s, text, meta_action in lines:
        if text != previous and len(rows) < REASONING_ROWS:
            meta = f"<td>{html.escape(meta_action or '')}</td>" if with_meta else ""
            rows.append(
                f"<tr><td>{t0_s:.1f}</td><td class='text'>{html.escape(text)}</td>{meta}</tr>"
            )
        previous = text
    if not rows:
        return ""
    meta_heading = "<th>meta-action</th>" if with_meta else ""
    return (
        f"<h3>Reasoning as it changed</h3><table><tr><th>{html.escape(time_heading)}</th>"
        f"<th>reasoning</th>{meta_heading}</tr>{''.join(rows)}</table>"
    )


def _number(value: object) -> str:
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
td.text {{ text-align: left; }}
.pass {{ color: #1e8449; }} .fail {{ color: #c0392b; }}
</style></head>
<body><h1>{title}</h1>
{summary}
{runs}
</body></html>
"""
