"""The embedded VLA's parts over fixed buffers (model/cuda_graphs.py) compute what the
model's own paths do. Here, without a CUDA device, they run eagerly over those buffers;
capturing them as CUDA graphs is the one step this machine cannot take, and the tests at
the end, which need a CUDA device, check the captured backend against the uncaptured one.
"""

from __future__ import annotations

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
    parts = GraphedVla(model, capture=False)
    parts.prepare()
    assert parts.parts() == {"scene": 1, "decoder": 1, "flow": 0}
    front_only = ("front_wide_120fov", "front_tele_30fov")
    texts = []
    for seed in SEEDS:
        for cameras in (CAMERA_ORDER, front_only):
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


def test_the_backend_over_the_parts_decides_and_samples_as_without(model: EmbeddedVla) -> None:
    """The backend's other path (the one a CUDA device takes), here uncaptured."""
    plain = EmbeddedVlaBackend()
    over_parts = EmbeddedVlaBackend()
    over_parts.graphs = GraphedVla(over_parts.model, capture=False)
    for seed in SEEDS:
        outputs = [
            b.reason(vla_input(make_sample(seed), b.image_size)) for b in (plain, over_parts)
        ]
        assert outputs[0].decision == outputs[1].decision
        np.testing.assert_array_equal(
            outputs[0].planner_input.latent, outputs[1].planner_input.latent
        )
        samples = [
            b.sample_controls(output.planner_input, 6, np.random.default_rng(seed))
            for b, output in zip((plain, over_parts), outputs, strict=True)
        ]
        np.testing.assert_allclose(samples[0].acceleration, samples[1].acceleration, atol=1e-6)
        np.testing.assert_allclose(samples[0].curvature, samples[1].curvature, atol=1e-6)


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_captured_graphs_decide_and_sample_as_the_eager_model(precision: str) -> None:
    captured = create_backend("embedded_vla", device="cuda", precision=precision)
    eager = EmbeddedVlaBackend(device="cuda", precision=precision, cuda_graphs=False)
    assert isinstance(captured, EmbeddedVlaBackend) and captured.graphs is not None
    assert captured.graphs.parts() == {"scene": 1, "decoder": 1, "flow": 0}  # at start-up
    for seed in SEEDS:
        outputs = [b.reason(vla_input(make_sample(seed), b.image_size)) for b in (captured, eager)]
        assert outputs[0].decision.text == outputs[1].decision.text
        assert outputs[0].planner_input.meta_action == outputs[1].planner_input.meta_action
        np.testing.assert_allclose(
            outputs[0].planner_input.latent, outputs[1].planner_input.latent, atol=1e-3
        )
        samples = [
            b.sample_controls(output.planner_input, 6, np.random.default_rng(seed))
            for b, output in zip((captured, eager), outputs, strict=True)
        ]
        np.testing.assert_allclose(samples[0].acceleration, samples[1].acceleration, atol=1e-3)
        np.testing.assert_allclose(samples[0].curvature, samples[1].curvature, atol=1e-3)
    assert captured.graphs.parts() == {"scene": 1, "decoder": 1, "flow": 1}
