"""The embedded VLA's parts over fixed buffers (model/cuda_graphs.py) compute what the
model's own paths do. Here, without a CUDA device, they run eagerly over those buffers;
capturing them as CUDA graphs is the one step this machine cannot take, and the tests at
the end, which need a CUDA device, check the captured backend against the uncaptured one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from alpamayo_ros.backends import create_backend
from alpamayo_ros.backends.embedded import EmbeddedVlaBackend
from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.evaluation.evaluate import vla_input
from alpamayo_ros.model.cuda_graphs import GraphedVla
from alpamayo_ros.model.network import (
    DecoderCache,
    EmbeddedVla,
    FixedDecoderCache,
    KeysValues,
    greedy_decode,
    memory_keys_values,
    sample_flow,
)
from alpamayo_ros.model.weights import PACKAGED_WEIGHTS, load_weights
from alpamayo_ros.world.dataset import make_sample

SEEDS = (2_000_000, 2_000_001, 2_000_002, 2_000_003)
FRONT_ONLY = ("front_wide_120fov", "front_tele_30fov")
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="captures CUDA graphs: needs a CUDA device"
)


@pytest.fixture(scope="module")
def model() -> EmbeddedVla:
    return load_weights(PACKAGED_WEIGHTS)[0].eval()


def scene_inputs(
    model: EmbeddedVla, seed: int, cameras: tuple[str, ...] = CAMERA_ORDER
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A world sample's images [1, C, F, H, W, 3] of `cameras` and its ego history."""
    config = model.config
    sample = vla_input(make_sample(seed), (config.image_width, config.image_height))
    kept = [CAMERA_ORDER.index(name) for name in cameras]
    return (
        torch.from_numpy(sample.images[kept])[None],
        torch.from_numpy(sample.ego_xyz).float()[None],
        torch.from_numpy(sample.ego_rotations).float()[None],
    )


def reference_text(model: EmbeddedVla, memory: KeysValues) -> str:
    step = model.text_step(memory)
    return greedy_decode(step, 1, model.tokenizer, model.config.max_text_tokens)[0]


@torch.no_grad()
def test_the_fixed_decoder_step_equals_the_growing_cache(model: EmbeddedVla) -> None:
    """Token by token over two scenes in turn: the second text reads none of the first's
    keys and values left in the buffers (the mask hides them)."""
    fixed = FixedDecoderCache(model, 1, 1 + 4 * 32, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    for seed, length in ((SEEDS[0], model.config.max_text_tokens - 1), (SEEDS[1], 6)):
        encoding = model.encode(*scene_inputs(model, seed))
        memory = memory_keys_values(model.decoder, encoding.tokens)
        assert memory[0][0].shape[2] == fixed.memory_kv[0][0].shape[2]
        growing = DecoderCache(model.decoder, memory)
        fixed.start(memory)
        tokens = torch.randint(0, len(model.tokenizer), (1, length), generator=generator)
        for position in range(length):
            ids = tokens[:, position : position + 1]
            fixed.ids.copy_(ids)
            fixed.position.fill_(position)
            torch.testing.assert_close(
                fixed.next_token_logits(),
                model.next_token_logits(growing, ids, position),
                atol=1e-5,
                rtol=1e-5,
            )


@torch.no_grad()
def test_the_parts_equal_the_model_for_any_camera_set(model: EmbeddedVla) -> None:
    parts = GraphedVla(model)
    parts.prepare()
    assert parts.parts() == {"scene": 1, "decoder": 1, "flow": 0}
    texts = []
    for seed in SEEDS:
        for cameras in (CAMERA_ORDER, FRONT_ONLY):
            inputs = scene_inputs(model, seed, cameras)
            slots = None if cameras == CAMERA_ORDER else tuple(map(CAMERA_ORDER.index, cameras))
            packed, memory = parts.read_scene(*inputs, slots)
            expected, expected_memory = model.read_scene(
                *inputs, None if slots is None else torch.tensor(slots)
            )
            torch.testing.assert_close(packed, expected[0], atol=1e-6, rtol=1e-6)
            for pair, expected_pair in zip(memory, expected_memory, strict=True):
                torch.testing.assert_close(pair, expected_pair, atol=1e-6, rtol=1e-6)
            text = parts.write_text(memory, model.tokenizer, model.config.max_text_tokens)
            assert text == reference_text(model, memory)
            texts.append(text)
    assert parts.parts() == {"scene": 2, "decoder": 2, "flow": 0}  # the full rig's, reused
    assert len(set(texts)) > 1  # the texts differ, so each is read from its own scene

    condition = torch.randn(1, model.condition_dim, generator=torch.Generator().manual_seed(1))
    for rows in (6, 3, 6):
        expected_controls = sample_flow(
            model.velocity_field(condition, rows),
            rows,
            model.config,
            torch.Generator().manual_seed(rows),
        )
        noise = torch.randn(
            rows, model.config.horizon, 2, generator=torch.Generator().manual_seed(rows)
        )
        torch.testing.assert_close(parts.sample_flow(condition, noise), expected_controls)
    assert parts.parts()["flow"] == 2


@torch.no_grad()
def test_an_input_of_another_shape_is_refused_not_broadcast(model: EmbeddedVla) -> None:
    parts = GraphedVla(model)
    images, ego_xyz, ego_rotations = scene_inputs(model, SEEDS[0])
    with pytest.raises(ValueError, match=r"images of shape \(1, 4, 1, "):
        parts.read_scene(images[:, :, -1:], ego_xyz, ego_rotations, None)
    with pytest.raises(ValueError, match="ego_xyz of shape"):
        parts.read_scene(images, ego_xyz[:, -1:], ego_rotations, None)
    memory = parts.read_scene(images, ego_xyz, ego_rotations, None)[1]
    with pytest.raises(ValueError, match="scene keys and values of shape"):
        parts.write_text([(keys[:, :, :1], values) for keys, values in memory], model.tokenizer, 5)
    with pytest.raises(ValueError, match="condition of shape"):
        parts.sample_flow(torch.zeros(1, 3), torch.zeros(6, model.config.horizon, 2))


def backends_agree(backend: EmbeddedVlaBackend, reference: EmbeddedVlaBackend, atol: float) -> None:
    """Decisions, texts, latents and samples of both on SEEDS, with every camera and with
    the front ones only (a second camera set), sampling 6 and 3 plans (two flows); two
    inputs decided before either text is written, so each text must read its own scene."""
    rear_and_sides = tuple(name for name in CAMERA_ORDER if name not in FRONT_ONLY)
    for seed in SEEDS:
        for missing in ((), rear_and_sides):
            inputs = [
                vla_input(make_sample(s), backend.image_size, missing) for s in (seed, seed + 7)
            ]
            ours, theirs = (
                [decided.explained() for decided in [b.decide(i) for i in inputs]]
                for b in (backend, reference)
            )
            for mine, other in zip(ours, theirs, strict=True):
                # The decisions but for where the cause is, which gets a tolerance.
                first, second = (
                    replace(d.decision, cause_object_position=()) for d in (mine, other)
                )
                assert first == second
                np.testing.assert_allclose(
                    mine.decision.cause_object_position,
                    other.decision.cause_object_position,
                    atol=atol,
                )
                np.testing.assert_allclose(
                    mine.planner_input.latent, other.planner_input.latent, atol=atol
                )
                for rows in (6, 3):
                    samples = [
                        b.sample_controls(output.planner_input, rows, np.random.default_rng(seed))
                        for b, output in ((backend, mine), (reference, other))
                    ]
                    for name in ("acceleration", "curvature"):
                        np.testing.assert_allclose(
                            getattr(samples[0], name), getattr(samples[1], name), atol=atol
                        )


def test_the_backend_over_the_parts_decides_and_samples_as_without() -> None:
    """The backend's other path (the one a CUDA device takes), here uncaptured."""
    plain = EmbeddedVlaBackend()
    over_parts = EmbeddedVlaBackend()
    over_parts.graphs = GraphedVla(over_parts.model)
    backends_agree(over_parts, plain, atol=1e-6)
    assert over_parts.graphs.parts() == {"scene": 2, "decoder": 2, "flow": 2}


@needs_cuda
def test_captured_graphs_decide_and_sample_as_the_eager_model() -> None:
    """In fp32: the same kernels on the same inputs, but for the text decoder's attention
    over its fixed cache (masked), so the texts must match too."""
    captured = create_backend("embedded_vla", device="cuda")
    eager = EmbeddedVlaBackend(device="cuda", cuda_graphs=False)
    assert isinstance(captured, EmbeddedVlaBackend) and captured.graphs is not None
    assert captured.graphs.parts() == {"scene": 1, "decoder": 1, "flow": 0}  # at start-up
    backends_agree(captured, eager, atol=1e-4)
    assert captured.graphs.parts() == {"scene": 2, "decoder": 2, "flow": 2}


@needs_cuda
def test_captured_graphs_in_half_precision_plan_as_the_eager_model() -> None:
    """In fp16 a near tie between two words may fall either way with the attention's
    kernel, so here the decisions and samples, not the texts; the cause's place, like the
    samples, within a tolerance (the kernels cuBLAS picks on the capture stream may
    differ from those on the default one)."""
    captured = create_backend("embedded_vla", device="cuda", precision="fp16")
    eager = EmbeddedVlaBackend(device="cuda", precision="fp16", cuda_graphs=False)
    for seed in SEEDS:
        outputs = [b.reason(vla_input(make_sample(seed), b.image_size)) for b in (captured, eager)]
        first, second = (
            replace(output.decision, text="", cause_object_position=()) for output in outputs
        )
        assert first == second
        np.testing.assert_allclose(
            outputs[0].decision.cause_object_position,
            outputs[1].decision.cause_object_position,
            atol=1e-3,
        )
        np.testing.assert_allclose(
            outputs[0].planner_input.latent, outputs[1].planner_input.latent, atol=1e-3
        )
        samples = [
            b.sample_controls(output.planner_input, 6, np.random.default_rng(seed))
            for b, output in zip((captured, eager), outputs, strict=True)
        ]
        np.testing.assert_allclose(samples[0].acceleration, samples[1].acceleration, atol=1e-3)
        np.testing.assert_allclose(samples[0].curvature, samples[1].curvature, atol=1e-3)


@needs_cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs a second CUDA device")
def test_captured_graphs_on_a_second_device() -> None:
    captured = create_backend("embedded_vla", device="cuda:1")
    eager = EmbeddedVlaBackend(device="cuda:1", cuda_graphs=False)
    backends_agree(captured, eager, atol=1e-4)
