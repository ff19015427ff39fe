"""The constant-velocity baseline: straight ahead at the current speed, said and labelled so."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.backends import available_backends, create_backend
from alpamayo_ros.configuration import UnknownName
from alpamayo_ros.core.contract import (
    CAMERA_ORDER,
    FRAMES_PER_CAMERA,
    HISTORY_POSES,
    TRAJECTORY_DT_S,
    TRAJECTORY_STEPS,
)
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal, label_meta_action
from alpamayo_ros.core.model_io import VlaInput
from alpamayo_ros.pipeline.planning import PlanningStep


def history_input(speed: float, yaw_rate: float = 0.0) -> VlaInput:
    """Ego history at constant speed and yaw rate, in the t0 frame (last pose at origin)."""
    t = (np.arange(HISTORY_POSES) - (HISTORY_POSES - 1)) * 0.1
    yaw = yaw_rate * t
    if yaw_rate:
        radius = speed / yaw_rate
        x, y = radius * np.sin(yaw), radius * (1 - np.cos(yaw))
    else:
        x, y = speed * t, np.zeros_like(t)
    rotations = np.array(
        [[[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]] for a in yaw]
    )
    return VlaInput(
        t0_ns=10**9,
        images=np.zeros((len(CAMERA_ORDER), FRAMES_PER_CAMERA, 8, 8, 3), np.uint8),
        frame_stamps_ns=np.zeros((len(CAMERA_ORDER), FRAMES_PER_CAMERA), np.int64),
        ego_xyz=np.stack([x, y, np.zeros_like(t)], axis=1),
        ego_rotations=rotations,
        cameras=CAMERA_ORDER,
    )


def test_registry_names_the_baseline_and_rejects_unknown_names() -> None:
    assert "constant_velocity" in available_backends()
    with pytest.raises(UnknownName, match=r"unknown backend 'nope' \(known: .*constant_velocity"):
        create_backend("nope")


def test_moving_ego_keeps_speed_and_heading() -> None:
    backend = create_backend("constant_velocity")
    output = backend.reason(history_input(speed=12.0))
    assert output.planner_input.ego_state.speed == pytest.approx(12.0, abs=1e-6)
    assert output.decision.longitudinal_decision is LongitudinalDecision.SET_SPEED_TRACKING
    assert output.decision.lateral_decision is LateralDecision.LANE_KEEPING
    assert output.decision.cause is Cause.NONE
    assert output.planner_input.meta_action.longitudinal is Longitudinal.MAINTAIN_SPEED
    assert output.planner_input.meta_action.lateral is Lateral.GO_STRAIGHT

    plan = PlanningStep(backend, 6).plan(output.planner_input, t0_ns=0)
    rollout = plan.rollouts
    assert rollout.batch_shape == (6,) and rollout.t.shape[-1] == TRAJECTORY_STEPS
    np.testing.assert_allclose(rollout.t[0], TRAJECTORY_DT_S * np.arange(1, TRAJECTORY_STEPS + 1))
    np.testing.assert_allclose(rollout.x[:, -1], 12.0 * 6.4, rtol=1e-6)
    np.testing.assert_allclose(rollout.y, 0.0, atol=1e-9)
    assert plan.selection.index is not None and plan.selection.feasible.all()


def test_turning_ego_still_goes_straight_and_labels_agree() -> None:
    """The baseline ignores yaw rate by definition; its labels describe its own path."""
    backend = create_backend("constant_velocity")
    output = backend.reason(history_input(speed=8.0, yaw_rate=0.2))
    rollout = PlanningStep(backend, 1).plan(output.planner_input, t0_ns=0).rollouts[0]
    meta = output.planner_input.meta_action
    assert (meta.longitudinal, meta.lateral) == label_meta_action(rollout)


def test_standstill_is_a_stop() -> None:
    output = create_backend("constant_velocity").reason(history_input(speed=0.0))
    assert output.planner_input.meta_action.longitudinal is Longitudinal.STOP
    assert output.decision.longitudinal_decision is LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT
    assert "stopped" in output.decision.text
