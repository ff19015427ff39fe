"""The cause-position error is scored only where truth and model mean the same object."""

from __future__ import annotations

import pytest

from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.model_io import CausalDecision
from alpamayo_ros.evaluation.evaluate import cause_position_error


def decision(cause: Cause, object_id: str = "", position=(0.0, 0.0, 0.0)) -> CausalDecision:
    return CausalDecision(
        text="",
        longitudinal_decision=LongitudinalDecision.YIELD,
        lateral_decision=LateralDecision.LANE_KEEPING,
        cause=cause,
        cause_object_id=object_id,
        cause_object_position=position,
    )


def test_same_object_cause_gives_the_distance() -> None:
    truth = decision(Cause.PEDESTRIAN, "pedestrian_1", (20.0, 1.0, 0.9))
    predicted = decision(Cause.PEDESTRIAN, "pedestrian", (23.0, 5.0, 0.9))
    assert cause_position_error(predicted, truth) == pytest.approx(5.0)


def test_other_cause_or_no_object_is_not_scored() -> None:
    truth = decision(Cause.PEDESTRIAN, "pedestrian_1", (20.0, 1.0, 0.9))
    assert cause_position_error(decision(Cause.CYCLIST, "cyclist", (20.0, 1.0, 0.9)), truth) is None
    assert cause_position_error(decision(Cause.NONE), truth) is None
    assert (
        cause_position_error(decision(Cause.ROAD_GEOMETRY), decision(Cause.ROAD_GEOMETRY)) is None
    )
