"""Displacement metrics and aggregation against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.evaluation.metrics import SampleResult, aggregate, average_displacement, min_ade


def straight(offset_y: float, steps: int = 64) -> np.ndarray:
    x = np.arange(1, steps + 1, dtype=float)
    return np.stack([x, np.full(steps, offset_y), np.zeros(steps)], axis=1)


def test_ade_is_the_mean_planar_distance_over_the_horizon() -> None:
    truth = straight(0.0)
    drifting = truth.copy()
    drifting[:, 1] = np.arange(64) * 0.1  # lateral error grows 0.1 m per step
    assert average_displacement(drifting, truth, 30) == pytest.approx(np.mean(np.arange(30) * 0.1))
    assert average_displacement(drifting, truth, 64) == pytest.approx(3.15)
    off_ground = truth.copy()
    off_ground[:, 2] = 5.0  # height is not part of the planar error
    assert average_displacement(off_ground, truth, 64) == 0.0


def test_min_ade_takes_the_best_candidate() -> None:
    candidates = np.stack([straight(2.0), straight(-0.5), straight(1.0)])
    assert min_ade(candidates, straight(0.0), 64) == pytest.approx(0.5)


def test_aggregate_overall_and_per_type() -> None:
    def result(
        kind: str, error: float, consistent: bool, cause_error: float | None
    ) -> SampleResult:
        return SampleResult(
            kind,
            0,
            error,
            error,
            error,
            error,
            True,
            True,
            consistent,
            consistent,
            True,
            cause_error,
        )

    summary = aggregate(
        [result("a", 1.0, True, 4.0), result("a", 3.0, False, None), result("b", 2.0, True, None)]
    )
    assert summary["overall"]["min_ade_6_4s"] == pytest.approx(2.0)
    assert summary["a"]["min_ade_6_4s"] == pytest.approx(2.0)
    assert summary["a"]["consistent"] == pytest.approx(0.5)
    assert summary["b"]["count"] == 1 and summary["overall"]["count"] == 3
    # A metric only some samples have is averaged over those, and absent where none has it.
    assert summary["overall"]["cause_position_error_m"] == pytest.approx(4.0)
    assert summary["b"]["cause_position_error_m"] is None
