"""The committed embedded VLA weights: they load, and they beat the constant-velocity
baseline on a fixed held-out set by a clear margin (untrained weights fail this)."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.backends import create_backend
from alpamayo_ros.core.model_io import PlannerInput
from alpamayo_ros.evaluation.evaluate import evaluate, vla_input
from alpamayo_ros.evaluation.metrics import aggregate
from alpamayo_ros.model.weights import PACKAGED_WEIGHTS, read_metadata
from alpamayo_ros.pipeline.planning import PlanningStep
from alpamayo_ros.world.dataset import make_sample

HELD_OUT_SEEDS = range(2_000_000, 2_000_048)  # never used for training (seeds < 1e6)


@pytest.fixture(scope="module")
def summary() -> dict[str, dict[str, float]]:
    backends = [create_backend("embedded_vla"), create_backend("constant_velocity")]
    results = evaluate(backends, HELD_OUT_SEEDS)
    return {name: aggregate(rows)["overall"] for name, rows in results.items()}


def test_packaged_weights_say_how_they_were_trained() -> None:
    metadata = read_metadata(PACKAGED_WEIGHTS)
    assert metadata["model_version"] != "dev"
    assert '"samples"' in metadata["training"] and '"epochs"' in metadata["training"]


def test_trajectories_beat_the_baseline(summary) -> None:
    ours, baseline = summary["embedded_vla"], summary["constant_velocity"]
    assert ours["min_ade_6_4s"] < 0.5 * baseline["min_ade_6_4s"], (ours, baseline)
    assert ours["ade_6_4s"] < 0.7 * baseline["ade_6_4s"], (ours, baseline)


def test_meta_actions_and_reasoning(summary) -> None:
    ours, baseline = summary["embedded_vla"], summary["constant_velocity"]
    assert ours["longitudinal_correct"] >= baseline["longitudinal_correct"] + 0.2
    assert ours["lateral_correct"] >= 0.8
    assert ours["consistent"] >= 0.8


def test_samples_differ_but_stay_feasible() -> None:
    backend = create_backend("embedded_vla")
    output = backend.reason(vla_input(make_sample(HELD_OUT_SEEDS[0]), backend.image_size))
    assert isinstance(output.planner_input, PlannerInput)
    samples = backend.sample_controls(output.planner_input, 6, np.random.default_rng(0))
    assert samples.acceleration.shape == samples.curvature.shape == (6, 64)
    assert np.ptp(samples.acceleration, axis=0).max() > 0.0
    assert np.all(np.abs(samples.curvature) < 0.33)
    plan = PlanningStep(backend, 6).plan(output.planner_input, t0_ns=HELD_OUT_SEEDS[0])
    assert plan.scores.shape == (6,) and plan.selection.feasible.all()
    # Integrated from the ego speed at t0.
    speed = output.planner_input.ego_state.speed
    rollouts = plan.rollouts
    np.testing.assert_allclose(rollouts.v[:, 0], speed + 0.1 * rollouts.acceleration[:, 0])


def test_same_generator_state_gives_the_same_samples() -> None:
    backend = create_backend("embedded_vla")
    output = backend.reason(vla_input(make_sample(HELD_OUT_SEEDS[1]), backend.image_size))
    first, again, other = (
        backend.sample_controls(output.planner_input, 6, np.random.default_rng(seed))
        for seed in (5, 5, 6)
    )
    np.testing.assert_array_equal(first.acceleration, again.acceleration)
    assert not np.array_equal(first.acceleration, other.acceleration)


def test_cause_object_is_located() -> None:
    """Where the truth and the model name the same object cause, the model puts it within a
    few metres, far closer than always answering the average position of such objects."""
    backend = create_backend("embedded_vla")
    predicted, truth = [], []
    for seed in HELD_OUT_SEEDS:
        sample = make_sample(seed)
        decision = backend.reason(vla_input(sample, backend.image_size)).decision
        if not sample.decision.cause_object_id:
            assert not decision.cause_object_id or decision.cause != sample.decision.cause
            continue
        if decision.cause == sample.decision.cause:
            assert decision.cause_object_id == decision.cause.name.lower()
            predicted.append(decision.cause_object_position)
            truth.append(sample.decision.cause_object_position)
    predicted, truth = np.array(predicted), np.array(truth)
    assert len(truth) >= 30
    error = np.linalg.norm(predicted - truth, axis=1)
    constant_error = np.linalg.norm(truth - truth.mean(0), axis=1)
    assert np.median(error) < 0.4 * np.median(constant_error), (error, constant_error)


def test_the_planner_input_is_ready_before_the_reasoning_text() -> None:
    """The embedded model decides first and writes its text afterwards, so the VLA node
    sends the planner its input without waiting for the text; what it sends is what the
    whole reasoning gives."""
    backend = create_backend("embedded_vla")
    inputs = vla_input(make_sample(HELD_OUT_SEEDS[2]), backend.image_size)
    decided = backend.decide(inputs)
    assert decided.output.decision.text == "" and decided.write_text is not None
    whole = backend.reason(inputs)
    np.testing.assert_array_equal(decided.output.planner_input.latent, whole.planner_input.latent)
    assert decided.output.planner_input.meta_action.longitudinal == (
        whole.planner_input.meta_action.longitudinal
    )
    explained = decided.explained()
    assert explained.decision.text == whole.decision.text != ""
    assert explained.decision.cause == whole.decision.cause
