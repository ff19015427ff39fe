"""The closed loop in one process: the pipeline's steps drive the closed-loop world, and the
states the model visits come back labelled by the expert (DAgger's data)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alpamayo_ros.backends import create_backend
from alpamayo_ros.core.contract import HISTORY_POSES, TRAJECTORY_STEPS
from alpamayo_ros.core.kinematics import integrate_unicycle
from alpamayo_ros.core.meta_actions import label_meta_action
from alpamayo_ros.evaluation.rollout import (
    RolloutSettings,
    roll_out,
    visited_states,
)
from alpamayo_ros.model.weights import PACKAGED_WEIGHTS

SEED = 3000003  # a cyclist to pass (held out)
TIMING = {"plan_latency_p50_s", "plan_latency_p90_s"}


def figures(result: object) -> dict[str, object]:
    metrics = dataclasses.asdict(result.metrics)  # type: ignore[attr-defined]
    return {name: value for name, value in metrics.items() if name not in TIMING}


def test_a_drive_is_the_same_twice_and_scored() -> None:
    backend = create_backend("constant_velocity")
    settings = RolloutSettings(duration_s=5.0)
    first = roll_out(backend, SEED, settings=settings)
    second = roll_out(backend, SEED, settings=settings)
    assert figures(first) == figures(second)
    # 1.5 s of the expert, then 3.5 s of plans at 10 Hz, tracked at 50 Hz.
    assert first.plans == 35
    assert first.commands_by_mode["tracking"] >= 5 * 35
    assert first.metrics.progress_m > 5.0
    assert first.samples == []  # none asked for


def test_visited_states_are_what_the_model_saw_labelled_by_the_expert() -> None:
    backend = create_backend("embedded_vla")
    result = roll_out(backend, SEED, settings=RolloutSettings(duration_s=4.0, label_every=5))
    assert result.plans == 25 and len(result.samples) == 5
    width, height = backend.image_size or (0, 0)
    for sample in result.samples:
        assert sample.images.shape == (4, 4, height, width, 3)
        assert sample.images.dtype == np.uint8 and sample.images.std() > 10.0
        assert sample.ego_xyz.shape == (HISTORY_POSES, 3)
        assert sample.ego_xyz[-1] == pytest.approx(np.zeros(3))  # the t0 frame
        assert sample.future_xyz.shape == (TRAJECTORY_STEPS, 3)
        assert sample.speed > 1.0
        assert sample.future_xyz[0, 0] == pytest.approx(sample.speed * 0.1, rel=0.2)
        future = np.c_[sample.future_acceleration, sample.future_curvature]
        assert np.isfinite(future).all()
        assert sample.decision.text
    # The labels are the expert's plans from states of one drive, so they differ.
    assert len({sample.future_xyz[-1, 0].round(2) for sample in result.samples}) > 1
    for sample in result.samples:
        rollout = integrate_unicycle(
            sample.future_acceleration, sample.future_curvature, sample.speed
        )
        assert sample.meta_action == label_meta_action(rollout)


def test_visited_states_come_from_worker_processes_in_seed_order() -> None:
    progress: list[str] = []
    samples = visited_states(
        PACKAGED_WEIGHTS, range(SEED, SEED + 2), 20, workers=2, progress=progress.append
    )
    assert samples and {sample.seed for sample in samples} == {SEED, SEED + 1}
    assert [sample.seed for sample in samples] == sorted(sample.seed for sample in samples)
    assert progress[-1].startswith("drove 2/2 scenarios closed loop")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="label_every"):
        RolloutSettings(label_every=-1)
    with pytest.raises(ValueError, match="bad rollout settings"):
        RolloutSettings(control_rate_hz=0.0)
