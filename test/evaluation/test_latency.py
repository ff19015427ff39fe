"""Per-hop latency figures from a listener's log."""

from __future__ import annotations

import pytest

from alpamayo_ros.evaluation.latency import LatencyLog, summary, table

MS = 1_000_000


def test_hops_of_whole_chains_and_the_overhead() -> None:
    log = LatencyLog()
    for k in range(10):
        t0 = 1_000 * MS + k * 100 * MS
        log.frame(t0, t0 + 20 * MS)
        log.reasoning(t0, t0 + 60 * MS, node_latency_ns=55 * MS)
        log.trajectory(t0, t0 + 75 * MS)
        log.command(t0, t0 + 90 * MS, tracking=True)
        log.command(t0, t0 + 110 * MS, tracking=True)  # later commands of the same plan
        log.model_ms.append(30.0)
        log.planning_ms.append(10.0)
    log.reasoning(5_000 * MS, 5_000 * MS + 70 * MS, 65 * MS)  # its plan never came
    log.command(0, 5_000 * MS, tracking=False)
    result = summary(log)
    assert result["t0 -> reasoning received"]["count"] == 11
    assert result["reasoning -> trajectory received"]["median_ms"] == pytest.approx(15.0)
    assert result["trajectory -> first command tracking it"]["median_ms"] == pytest.approx(15.0)
    assert result["t0 -> command (end to end)"]["median_ms"] == pytest.approx(90.0)
    assert result["overhead (end to end - model - planning)"]["median_ms"] == pytest.approx(50.0)
    assert result["commands"] == {"count": 21, "safe_stop": 1}
    assert "t0 -> command (end to end)" in table(result)


def test_an_empty_log_reports_no_figures() -> None:
    result = summary(LatencyLog())
    assert result["capture -> frame received (render, publish, transport)"] == {"count": 0}
    assert "overhead (end to end - model - planning)" not in result
    assert "-" in table(result)
