"""Alpamayo-R1 and 1.5 behind the pipeline, through a test double of the official API.

The official packages need Python 3.12, a 24 GB GPU and a 22 GB checkpoint, none of which
exist here: `official_double/` stands in for them, following the public call signatures
and shapes and checking its inputs as the public code expects them. The adapter's mapping
is tested for real: the frames and history it hands over, the candidates the planning step
integrates back from the latent, the reasoning it keeps and the decision parsed from it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.backends.alpamayo import (
    DATASET_CAMERA_INDEX,
    IMAGE_SIZE,
    Alpamayo15Backend,
    AlpamayoBackend,
    AlpamayoError,
)
from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.decisions import Cause, LongitudinalDecision
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.evaluation.evaluate import vla_input
from alpamayo_ros.pipeline.planning import PlanningStep, consensus_scores
from alpamayo_ros.world.dataset import make_sample

DOUBLE = Path(__file__).parent / "official_double"
# Looked up before any test puts the double on sys.path.
OFFICIAL_INSTALLED = importlib.util.find_spec("alpamayo_r1") is not None
REAL_CHECKPOINT = os.environ.get("ALPAMAYO_R1_CHECKPOINT", "")


@pytest.fixture
def official_double(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The double on sys.path in place of the official packages, fresh for each test and
    gone after it."""
    monkeypatch.syspath_prepend(str(DOUBLE))
    _forget_official_modules()
    from alpamayo_r1.models import alpamayo_r1  # the double

    yield alpamayo_r1
    _forget_official_modules()


def _forget_official_modules() -> None:
    for name in [name for name in sys.modules if name.startswith(("alpamayo_r1", "alpamayo1_5"))]:
        del sys.modules[name]


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    folder = tmp_path / "Alpamayo-R1-10B"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_the_official_call_gets_the_aligned_frames_and_history(
    official_double: object, checkpoint: Path
) -> None:
    sample = make_sample(5, "lead_vehicle")
    backend = AlpamayoBackend(str(checkpoint), device="cpu", precision="fp32")
    inputs = vla_input(sample, backend.image_size)
    backend.decide(inputs)
    call = official_double.AlpamayoR1.last_call  # type: ignore[attr-defined]
    data = call["data"]
    np.testing.assert_allclose(data["ego_history_xyz"][0, 0].numpy(), sample.ego_xyz, atol=1e-5)
    np.testing.assert_allclose(
        data["ego_history_rot"][0, 0].numpy(), sample.ego_rotations, atol=1e-6
    )
    pixels = data["tokenized_data"]["pixel_values"]  # [cameras * frames, 3, H, W]
    assert tuple(pixels.shape) == (16, 3, IMAGE_SIZE[1], IMAGE_SIZE[0])
    # Camera-major, oldest frame first: frame 5 is the second camera's second frame.
    np.testing.assert_allclose(
        pixels[5].permute(1, 2, 0).numpy() * 255.0, inputs.images[1, 1], atol=1e-3
    )
    assert call["num_traj_samples"] == 6 and call["return_extra"] is True
    assert call["max_generation_length"] == 256 and call["temperature"] == 0.6


def test_its_samples_are_the_candidates_and_its_reasoning_is_parsed(
    official_double: object, checkpoint: Path
) -> None:
    backend = AlpamayoBackend(str(checkpoint), device="cpu", precision="fp32")
    inputs = vla_input(make_sample(5, "lead_vehicle"), backend.image_size)
    output = backend.decide(inputs).explained()
    model = official_double.AlpamayoR1  # type: ignore[attr-defined]
    xyz, _, extra = model.from_pretrained(
        str(checkpoint)
    ).sample_trajectories_from_data_with_vlm_rollout(
        model.last_call["data"], num_traj_samples=6, return_extra=True
    )
    expected = xyz[0, 0].numpy().astype(np.float64)
    # The planning step integrates the latent back into the model's own trajectories.
    plan = PlanningStep(backend, num_samples=6).plan(output.planner_input, t0_ns=0)
    np.testing.assert_allclose(plan.rollouts.xyz()[..., :2], expected[..., :2], atol=0.05)
    # The reasoning of the candidate the others agree with most, read into a decision.
    chosen = int(np.argmax(consensus_scores(expected)))
    assert output.decision.text == extra["cot"][0, 0, chosen]
    assert output.decision.cause is Cause.LEAD_VEHICLE
    assert output.decision.longitudinal_decision is LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING
    meta = output.planner_input.meta_action
    assert (meta.longitudinal, meta.lateral) == (Longitudinal.MAINTAIN_SPEED, Lateral.GO_STRAIGHT)
    assert meta.lateral_probabilities.sum() == pytest.approx(1.0)
    assert meta.lateral_probabilities[Lateral.GO_STRAIGHT] < 1.0  # two samples steer
    # Asked for more than it drew, the candidates repeat in order.
    more = backend.sample_controls(output.planner_input, 8, np.random.default_rng(0))
    np.testing.assert_array_equal(more.curvature[6:], more.curvature[:2])


@pytest.mark.parametrize(
    ("seed", "scenario_type"),
    [
        (3, "lead_vehicle_braking"),
        (4, "stopped_vehicle"),
        (5, "traffic_light"),
        (6, "pedestrian_crossing"),
        (7, "cut_in"),
    ],
)
def test_its_candidates_pass_the_planners_checks_whatever_the_speed_does(
    official_double: object, checkpoint: Path, seed: int, scenario_type: str
) -> None:
    """The start speed the history gives differs from the one the model's trajectories
    imply by cm/s; the candidates must still integrate back smoothly enough to be planned."""
    backend = AlpamayoBackend(str(checkpoint), device="cpu", precision="fp32")
    output = backend.decide(vla_input(make_sample(seed, scenario_type), IMAGE_SIZE)).output
    plan = PlanningStep(backend, num_samples=6).plan(output.planner_input, t0_ns=0)
    assert plan.selection.index is not None, plan.selection


def test_the_planner_side_needs_no_model(official_double: object, checkpoint: Path) -> None:
    decider = AlpamayoBackend(str(checkpoint), device="cpu", precision="fp32")
    conditioning = decider.decide(vla_input(make_sample(6, "free_road"), IMAGE_SIZE)).output
    planner = AlpamayoBackend(str(checkpoint), device="cpu", precision="fp32")
    samples = planner.sample_controls(conditioning.planner_input, 6, np.random.default_rng(1))
    assert samples.acceleration.shape == (6, 64)
    assert "_official" not in planner.__dict__  # nothing was loaded
    assert (planner.name, planner.version) == (decider.name, "Alpamayo-R1-10B")


def test_the_r1_sized_double_has_the_model_cards_sizes(official_double: object) -> None:
    """The GPU check times a double of R1's size (tools/gpu_checks.sh): an 8.2B language
    model with Qwen3-VL-8B's 0.45B vision encoder and a 2.3B action expert, counted here
    without memory."""
    import torch
    from alpamayo_r1.models.sized import SizedAlpamayoR1, Sizes

    with torch.device("meta"):
        counts = SizedAlpamayoR1(Sizes()).parameter_counts()
    assert counts["language model"] == pytest.approx(8.2e9, rel=0.01)
    assert counts["vision"] == pytest.approx(0.45e9, rel=0.03)
    assert counts["action expert"] == pytest.approx(2.3e9, rel=0.03)
    assert (Sizes().reasoning_tokens, Sizes().flow_steps) == (40, 5)


def test_the_sized_double_does_the_models_work_and_times_its_stages(
    official_double: object, tmp_path: Path
) -> None:
    """At a CPU's size: the adapter hands it the frames and history, it encodes all 16
    frames, writes the reasoning for each sample and flows the trajectories, the stages
    reach the backend's table, and the same input gives the same candidates (its weights
    and sampling are seeded, as the worker's and the node's copies must agree; the
    worker's are compared in test/tools/test_gpu_checks.py)."""
    from alpamayo_r1.models.sized import write_checkpoint

    inputs = vla_input(make_sample(4, "free_road"), IMAGE_SIZE)
    plans = []
    # As the released code runs (the prompt encoded per sample), then shared: the same work
    # per sample, so the same candidates.
    for shared_prefill in (False, True):
        folder = tmp_path / f"Alpamayo-R1-sized-{shared_prefill}"
        checkpoint = write_checkpoint(folder, "tiny", shared_prefill=shared_prefill)
        backend = AlpamayoBackend(str(checkpoint), device="cpu", precision="fp32")
        output = backend.decide(inputs).output
        assert list(backend.stage_ms) == [
            "model",
            "model: vision",
            "model: prefill",
            "model: reasoning (6 tokens)",
            "model: trajectory (2 flow steps)",
            "mapping",
        ]
        assert all(ms > 0 for ms in backend.stage_ms.values())
        assert output.decision.text  # one of the double's texts, parsed
        plans.append(PlanningStep(backend, num_samples=6).plan(output.planner_input, t0_ns=0))
    assert plans[0].selection.index is not None, plans[0].selection
    np.testing.assert_allclose(plans[0].rollouts.xyz(), plans[1].rollouts.xyz(), atol=1e-4)
    # The candidates are the network's: different samples, at the history's speed.
    xyz = plans[0].rollouts.xyz()[: plans[0].sampled]
    assert len({round(float(y), 6) for y in xyz[:, -1, 1]}) > 1
    assert xyz[:, -1, 0] == pytest.approx(6.4 * _speed(inputs), rel=0.15)


def _speed(inputs: object) -> float:
    xyz = inputs.ego_xyz  # type: ignore[attr-defined]
    return float(np.linalg.norm(xyz[-1, :2] - xyz[-2, :2]) / 0.1)


def test_alpamayo_1_5_gets_the_camera_indices_and_the_route(
    official_double: object, checkpoint: Path
) -> None:
    backend = Alpamayo15Backend(str(checkpoint), device="cpu", precision="fp32")
    assert backend.accepts_missing_cameras and backend.name == "alpamayo1_5"
    inputs = vla_input(make_sample(5, "lead_vehicle"), IMAGE_SIZE, missing=["front_tele_30fov"])
    inputs = type(inputs)(**{**inputs.__dict__, "navigation": "Turn left onto Main St in 40 m"})
    backend.decide(inputs)
    tokenized = official_double.AlpamayoR1.last_call["data"]["tokenized_data"]  # type: ignore[attr-defined]
    expected = [DATASET_CAMERA_INDEX[name] for name in CAMERA_ORDER[:3]]
    assert tokenized["camera_indices"].tolist() == expected
    assert tokenized["navigation_text"] == "Turn left onto Main St in 40 m"
    assert tokenized["pixel_values"].shape[0] == 12


def test_what_cannot_run_says_so(checkpoint: Path) -> None:
    with pytest.raises(AlpamayoError, match="set weights_file to the local checkpoint"):
        AlpamayoBackend("")
    with pytest.raises(AlpamayoError, match="precision must be one of"):
        AlpamayoBackend(str(checkpoint), precision="int3")
    if not OFFICIAL_INSTALLED:
        backend = AlpamayoBackend(str(checkpoint), device="cpu")
        with pytest.raises(AlpamayoError, match="needs the official package alpamayo_r1"):
            backend.decide(vla_input(make_sample(5, "free_road"), IMAGE_SIZE))
    conditioning = type("Conditioning", (), {"latent": np.zeros(7, np.float32)})()
    with pytest.raises(AlpamayoError, match="not K x 64"):
        AlpamayoBackend(str(checkpoint)).sample_controls(conditioning, 6, np.random.default_rng())


@pytest.mark.skipif(
    not (OFFICIAL_INSTALLED and REAL_CHECKPOINT and Path(REAL_CHECKPOINT).is_dir()),
    reason="the official alpamayo_r1 package and a checkpoint (ALPAMAYO_R1_CHECKPOINT) are not "
    "on this machine: the double above stands in for them",
)
def test_the_real_model_where_it_is_installed() -> None:
    backend = AlpamayoBackend(REAL_CHECKPOINT, device="cuda")
    output = backend.decide(vla_input(make_sample(5, "lead_vehicle"), IMAGE_SIZE)).explained()
    assert output.decision.text
    plan = PlanningStep(backend, num_samples=6).plan(output.planner_input, t0_ns=0)
    assert plan.rollouts.xyz().shape == (6, 64, 3)
