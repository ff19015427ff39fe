"""Per-hop latency figures from a listener's log."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.evaluation.latency import LatencyLog, summary

MS = 1_000_000


def test_hops_of_whole_chains_and_the_overhead() -> None:
    log = LatencyLog()
    for k in range(10):
        t0 = 1_000 * MS + k * 100 * MS
        log.frame(t0, t0 + 20 * MS)
        log.conditioning(t0, t0 + 60 * MS, 55 * MS, input_wait_ns=20 * MS, model_ns=30 * MS)
        log.conditioning(t0, t0 + 61 * MS, 56 * MS, 21 * MS, 31 * MS)  # a second subscriber's
        log.reasoning(t0, t0 + 80 * MS)
        log.trajectory(t0, t0 + 75 * MS, planning_ns=10 * MS)
        log.trajectory(t0, t0 + 76 * MS, planning_ns=11 * MS)  # a second subscriber's
        log.command(t0, t0 + 90 * MS, "tracking", computed_ns=t0 + 86 * MS)
        log.command(t0, t0 + 110 * MS, "tracking", computed_ns=t0 + 106 * MS)  # the same plan's
    log.conditioning(5_000 * MS, 5_000 * MS + 70 * MS, 65 * MS, 20 * MS, 30 * MS)  # no plan came
    log.command(0, 5_000 * MS, "safe_stop", "trajectory is 0.61 s old (limit 0.50 s)")
    result = summary(log).hops
    assert result["t0 -> conditioning received (planner's input)"]["count"] == 11
    assert result["planner: planning step"]["median_ms"] == pytest.approx(10.0)
    assert result["VLA: model, up to the decision"]["median_ms"] == pytest.approx(30.0)
    assert result["VLA: decided -> conditioning published"]["median_ms"] == pytest.approx(5.0)
    assert result["conditioning -> trajectory received (planner)"]["median_ms"] == pytest.approx(
        15.0
    )
    assert result["t0 -> reasoning text received (off the control path)"] == {
        "median_ms": pytest.approx(80.0),
        "p90_ms": pytest.approx(80.0),
        "count": 10,
    }
    assert result["trajectory -> first command tracking it"]["median_ms"] == pytest.approx(15.0)
    assert result["t0 -> command (end to end)"]["median_ms"] == pytest.approx(90.0)
    assert result["overhead (end to end - model - planning)"]["median_ms"] == pytest.approx(50.0)
    # At the control bridge, before the listener's own delivery of the command.
    assert result["t0 -> command computed (control bridge)"]["median_ms"] == pytest.approx(86.0)
    assert result["overhead at the bridge (computed - model - planning)"][
        "median_ms"
    ] == pytest.approx(46.0)
    stops = summary(log).stop_reasons
    assert stops == {"trajectory is # s old (limit # s)": 1}
    assert summary(log).command_modes == {"tracking": 20, "safe_stop": 1}
    assert "t0 -> command (end to end)" in summary(log).table()


def test_the_overhead_is_taken_per_inference() -> None:
    """A slow model in one cycle is not overhead of that cycle: the median, over cycles, of
    each command's age less its own inference's model and planning time. Less the medians
    of all cycles' compute (10 + 5 ms) this log would show 22 ms, and the median age less
    the median compute 2 ms."""
    log = LatencyLog()
    # (model, planning, what the stack added) in ms
    cycles = ((10, 25, 2), (10, 5, 9), (30, 5, 6))
    for k, (model_ms, planning_ms, overhead_ms) in enumerate(cycles):
        t0 = 1_000 * MS + k * 100 * MS
        log.conditioning(t0, t0 + (model_ms + 1) * MS, 0, input_wait_ns=0, model_ns=model_ms * MS)
        planned = t0 + (model_ms + planning_ms + overhead_ms - 1) * MS
        log.trajectory(t0, planned, planning_ns=planning_ms * MS)
        log.command(t0, planned + 2 * MS, "tracking", computed_ns=planned + MS)
    hops = summary(log).hops
    at_bridge = hops["overhead at the bridge (computed - model - planning)"]
    assert at_bridge["median_ms"] == pytest.approx(6.0)
    assert at_bridge["p90_ms"] == pytest.approx(np.percentile([2, 9, 6], 90))
    assert at_bridge["count"] == 3
    assert hops["overhead (end to end - model - planning)"]["median_ms"] == pytest.approx(7.0)


def test_waiting_for_the_first_plan_is_not_falling_behind() -> None:
    log = LatencyLog()
    for mode in ("waiting", "waiting", "tracking", "safe_stop", "tracking"):
        log.command(0, 0, mode, "odometry is 0.30 s old")
    assert summary(log).stop_reasons == {"odometry is # s old": 1}


def test_an_empty_log_reports_no_figures() -> None:
    result = summary(LatencyLog())
    assert result.hops["capture -> frame received (publish, transport)"] == {"count": 0}
    assert result.hops["overhead (end to end - model - planning)"] == {"count": 0}
    assert result.hops["overhead at the bridge (computed - model - planning)"] == {"count": 0}
    assert "-" in result.table()
