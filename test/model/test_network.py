"""The embedded VLA's input and output shapes follow the Alpamayo-R1 contract."""

from __future__ import annotations

import pytest
import torch

from alpamayo_ros.core.contract import CAMERA_ORDER, FRAMES_PER_CAMERA, HISTORY_POSES
from alpamayo_ros.core.decisions import Cause
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.core.planar import yaw_to_rotation
from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.network import DecoderCache, EmbeddedVla, sample_flow
from alpamayo_ros.model.tokenizer import Tokenizer

VOCABULARY = Tokenizer.from_words(["slow", "down", "because", "of", "the", "light", "."])


@pytest.fixture(scope="module")
def model() -> EmbeddedVla:
    torch.manual_seed(0)
    return EmbeddedVla(ModelConfig(vocabulary=VOCABULARY.vocabulary)).eval()


def inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    config = ModelConfig()
    images = torch.randint(
        0,
        255,
        (batch, len(CAMERA_ORDER), FRAMES_PER_CAMERA, config.image_height, config.image_width, 3),
        dtype=torch.uint8,
    )
    xyz = torch.zeros(batch, HISTORY_POSES, 3)
    xyz[..., 0] = torch.linspace(-15.0, 0.0, HISTORY_POSES)
    rotations = torch.eye(3).expand(batch, HISTORY_POSES, 3, 3).clone()
    return images, xyz, rotations


def test_shapes_of_every_output(model: EmbeddedVla) -> None:
    with torch.no_grad():
        encoding = model.encode(*inputs(2))
        heads = model.classify(encoding)
        assert encoding.pooled.shape == (2, model.config.width)
        assert heads.longitudinal.shape == (2, len(Longitudinal))
        assert heads.lateral.shape == (2, len(Lateral))
        assert heads.cause.shape == (2, len(Cause))
        assert model.locate_cause(encoding).shape == (2, 3)
        condition = model.condition(encoding, heads)
        assert condition.shape == (2, model.condition_dim)
        controls = model.sample_controls(condition, 6, torch.Generator().manual_seed(1))
        assert controls.shape == (2, 6, 64, 2)
        texts = model.generate_text(encoding)
        assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
        logits = model.text_logits(encoding, torch.zeros(2, 5, dtype=torch.long))
        assert logits.shape == (2, 5, len(VOCABULARY))


def test_samples_are_reproducible_with_a_seeded_generator(model: EmbeddedVla) -> None:
    with torch.no_grad():
        encoding = model.encode(*inputs(1))
        condition = model.condition(encoding, model.classify(encoding))
        first = model.sample_controls(condition, 3, torch.Generator().manual_seed(7))
        again = model.sample_controls(condition, 3, torch.Generator().manual_seed(7))
        other = model.sample_controls(condition, 3, torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_sampler_is_euler_integration_of_the_velocity_field(model: EmbeddedVla) -> None:
    """The sampler computes the condition's and flow time's terms once per call; it must
    still integrate exactly the field training fits (`velocity`)."""
    condition = torch.randn(2, model.condition_dim)
    with torch.no_grad():
        sampled = model.sample_controls(condition, 3, torch.Generator().manual_seed(4))
        x = torch.randn(6, model.config.horizon, 2, generator=torch.Generator().manual_seed(4))
        steps = model.config.flow_steps
        for step in range(steps):
            t = torch.full((6,), step / steps)
            x = x + model.velocity(x, t, condition.repeat_interleave(3, dim=0)) / steps
    expected = model.denormalise(x).reshape(2, 3, model.config.horizon, 2)
    torch.testing.assert_close(sampled, expected, rtol=1e-5, atol=1e-5)


def test_the_noise_scale_scales_the_flow_start(model: EmbeddedVla) -> None:
    """With no flow, a sample is its starting noise: the scale multiplies exactly that."""

    def still(x: torch.Tensor, step: int) -> torch.Tensor:
        return torch.zeros_like(x)

    def start(scale: float) -> torch.Tensor:
        generator = torch.Generator().manual_seed(5)
        return sample_flow(still, 4, model.config, generator, noise_scale=scale)

    torch.testing.assert_close(start(0.5), 0.5 * start(1.0))


def test_flow_matching_learns_a_target_the_sampler_then_produces() -> None:
    """Trained on one braking profile, the expert's samples reproduce it: loss, velocity
    field and Euler sampler agree on the same normalisation and time convention."""
    torch.manual_seed(0)
    expert = EmbeddedVla(ModelConfig(vocabulary=VOCABULARY.vocabulary))
    condition = torch.zeros(64, expert.condition_dim)
    target = torch.zeros(64, 64, 2)
    target[..., 0] = -2.0
    target[..., 1] = 0.02
    optimizer = torch.optim.Adam(expert.expert.parameters(), 2e-3)
    for _ in range(150):
        loss = expert.flow_matching_loss(condition, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    samples = expert.sample_controls(condition[:1], 8, torch.Generator().manual_seed(0))
    assert samples[..., 0].mean() == pytest.approx(-2.0, abs=0.2)
    assert samples[..., 1].mean() == pytest.approx(0.02, abs=0.004)


def test_cached_decoding_equals_the_teacher_forced_pass(model: EmbeddedVla) -> None:
    """generate_text's key/value cache replays exactly what text_logits computes."""
    with torch.no_grad():
        encoding = model.encode(*inputs(3))
        tokens = torch.randint(0, len(model.tokenizer), (3, model.config.max_text_tokens - 1))
        reference = model.text_logits(encoding, tokens)
        cache = DecoderCache(model.decoder, encoding.tokens)
        stepwise = torch.cat(
            [
                model.text_head(
                    cache.step(
                        model.token_embedding(tokens[:, i : i + 1]) + model.position_embedding[i]
                    )
                )
                for i in range(tokens.shape[1])
            ],
            dim=1,
        )
    torch.testing.assert_close(stepwise, reference, atol=1e-4, rtol=1e-4)


def test_cache_refuses_a_decoder_it_cannot_replay() -> None:
    layer = torch.nn.TransformerDecoderLayer(16, 2, 32, 0.0, batch_first=True, norm_first=True)
    with pytest.raises(ValueError, match="post-norm ReLU"):
        DecoderCache(torch.nn.TransformerDecoder(layer, 1), torch.zeros(1, 4, 16))


def curved_history(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A history along an arc of radius 50 m ending at the origin heading +x, at 10 m/s."""
    arc = torch.linspace(-15.0, 0.0, HISTORY_POSES)
    yaw = arc / 50.0
    xyz = torch.stack([50.0 * torch.sin(yaw), 50.0 * (1.0 - torch.cos(yaw)), 0.0 * yaw], -1)
    rotations = torch.from_numpy(yaw_to_rotation(yaw.numpy())).float()
    return xyz.expand(batch, -1, -1).clone(), rotations.expand(batch, -1, -1, -1).clone()


def test_a_speed_only_history_hides_the_path_shape_and_keeps_the_speed() -> None:
    torch.manual_seed(0)
    config = ModelConfig(vocabulary=VOCABULARY.vocabulary, lateral_history=False)
    speed_only = EmbeddedVla(config).eval()
    images, straight_xyz, straight_rotations = inputs(1)
    curved_xyz, curved_rotations = curved_history(1)
    slower_xyz = straight_xyz * 0.5
    with torch.no_grad():
        straight = speed_only.encode(images, straight_xyz, straight_rotations).pooled
        # The arc's chords are a little shorter than its length: the same speed within 1e-4.
        curved = speed_only.encode(images, curved_xyz, curved_rotations).pooled
        slower = speed_only.encode(images, slower_xyz, straight_rotations).pooled
    assert torch.allclose(straight, curved, atol=1e-3)
    assert not torch.allclose(straight, slower, atol=1e-2)
    # The same network reading the path's shape tells the arc from the line.
    shaped = EmbeddedVla(ModelConfig(vocabulary=VOCABULARY.vocabulary)).eval()
    shaped.load_state_dict(speed_only.state_dict())
    with torch.no_grad():
        assert not torch.allclose(
            shaped.encode(images, straight_xyz, straight_rotations).pooled,
            shaped.encode(images, curved_xyz, curved_rotations).pooled,
            atol=1e-2,
        )


def readout_model() -> EmbeddedVla:
    """A model with a scene readout whose weights are not the no-change they start as."""
    torch.manual_seed(0)
    model = EmbeddedVla(ModelConfig(vocabulary=VOCABULARY.vocabulary, scene_readout=4)).eval()
    torch.nn.init.normal_(model.readout.weight, std=0.05)
    return model


def test_the_scene_readout_reads_each_camera_at_its_rig_slot() -> None:
    model = readout_model()
    images, xyz, rotations = inputs(1)
    with torch.no_grad():
        in_order = model.encode(images[:, [0, 2]], xyz, rotations, torch.tensor([0, 2])).pooled
        swapped = model.encode(images[:, [2, 0]], xyz, rotations, torch.tensor([2, 0])).pooled
        mislabelled = model.encode(images[:, [2, 0]], xyz, rotations, torch.tensor([0, 2]))
        all_cameras = model.encode(images, xyz, rotations).pooled
    # The same views given in another order are the same scene...
    assert torch.allclose(in_order, swapped, atol=1e-5)
    # ...and a view read at another camera's slot, or two more views, are another one.
    assert not torch.allclose(in_order, mislabelled.pooled, atol=1e-3)
    assert not torch.allclose(in_order, all_cameras, atol=1e-3)


def test_a_scene_readout_added_to_a_trained_network_starts_as_no_change() -> None:
    torch.manual_seed(0)
    without = EmbeddedVla(ModelConfig(vocabulary=VOCABULARY.vocabulary)).eval()
    added = EmbeddedVla(ModelConfig(vocabulary=VOCABULARY.vocabulary, scene_readout=4)).eval()
    missing, unexpected = added.load_state_dict(without.state_dict(), strict=False)
    assert sorted(missing) == [
        "readout.bias",
        "readout.weight",
        "readout_projection.bias",
        "readout_projection.weight",
    ]
    assert not unexpected
    scene = inputs(1)
    with torch.no_grad():
        assert torch.equal(added.encode(*scene).pooled, without.encode(*scene).pooled)
