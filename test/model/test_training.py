"""Training is deterministic for a seed and writes loadable weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from alpamayo_ros.cli import main as cli
from alpamayo_ros.cli import parse_weights
from alpamayo_ros.core.decisions import OBJECT_CAUSES, Cause
from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.network import EmbeddedVla
from alpamayo_ros.model.tokenizer import Tokenizer
from alpamayo_ros.model.training import (
    RoadPoseProbe,
    TrainingConfig,
    TrainingError,
    build_dataset,
    check_config,
    losses,
    scenario_schedule,
    train,
)
from alpamayo_ros.model.weights import load_weights
from alpamayo_ros.world.dataset import DriftRates, make_sample
from alpamayo_ros.world.reasoning_text import vocabulary
from alpamayo_ros.world.scenarios import SCENARIO_TYPES

TINY = TrainingConfig(samples=32, epochs=1, batch_size=16, seed=3, workers=1)


def test_same_seed_same_weights(tmp_path: Path) -> None:
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    train(first, TINY, "test", progress=lambda _: None)
    train(second, TINY, "test", progress=lambda _: None)
    model_a, metadata = load_weights(first)
    model_b, _ = load_weights(second)
    for name, tensor in model_a.state_dict().items():
        assert torch.equal(tensor, model_b.state_dict()[name]), name
    training = json.loads(metadata["training"])
    assert training["samples"] == 32 and training["seed"] == 3
    assert metadata["model_version"] == "test"


def test_schedule_without_weights_lets_each_seed_draw_its_type() -> None:
    assert scenario_schedule(()) == (None,)


def test_schedule_repeats_weighted_types_and_keeps_the_rest_once() -> None:
    schedule = scenario_schedule((("cut_in", 3), ("free_road", 0)))
    assert schedule.count("cut_in") == 3
    assert "free_road" not in schedule
    assert all(
        schedule.count(name) == 1 for name in SCENARIO_TYPES if name not in ("cut_in", "free_road")
    )


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ((("no_such_type", 2),), "unknown scenario type"),
        ((("cut_in", -1),), "negative weight"),
        (tuple((name, 0) for name in SCENARIO_TYPES), "every scenario type has weight 0"),
    ],
)
def test_bad_schedules_are_refused(weights: tuple[tuple[str, int], ...], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        scenario_schedule(weights)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (TrainingConfig(samples=10), "10 samples make no batch of 32"),
        (TrainingConfig(epochs=0), "epochs must be >= 1, got 0"),
        (TrainingConfig(batch_size=0), "batch_size must be >= 1, got 0"),
        (TrainingConfig(workers=0), "workers must be >= 1, got 0"),
        (TrainingConfig(learning_rate=-1e-3), "learning_rate must be > 0"),
    ],
)
def test_settings_that_train_nothing_are_refused_before_any_data(
    config: TrainingConfig, message: str
) -> None:
    """Before minutes of generating data, not after (OneCycleLR refuses zero steps)."""
    with pytest.raises(TrainingError, match=message):
        check_config(config, None)


def test_a_camera_dropout_outside_0_1_is_refused() -> None:
    # The drift rates check their own bounds (world.dataset.DriftRates).
    with pytest.raises(TrainingError, match="camera_dropout must be a probability"):
        check_config(TrainingConfig(camera_dropout=1.5), None)


def test_dataset_follows_the_schedule() -> None:
    schedule = scenario_schedule((("cut_in", 2), ("cyclist", 0), ("free_road", 0)))
    config = ModelConfig(vocabulary=Tokenizer.from_words(vocabulary()).vocabulary)
    seeds = range(100, 100 + len(schedule))
    data = build_dataset(seeds, config, workers=1, progress=lambda _: None, schedule=schedule)
    assert data.scenario_types == [schedule[seed % len(schedule)] for seed in seeds]
    assert data.scenario_types.count("cut_in") == 2
    # Object causes come with the object's position; the rest have none.
    assert data.cause_known.tolist() == [Cause(c) in OBJECT_CAUSES for c in data.labels["cause"]]
    assert data.cause_known.any() and np.all(data.cause_position[~data.cause_known] == 0.0)
    assert np.all(np.abs(data.cause_position[data.cause_known, 0]) > 1.0)


def test_weights_argument_parses_and_refuses_garbage() -> None:
    assert parse_weights("cut_in=3, cyclist=2") == (("cut_in", 3), ("cyclist", 2))
    with pytest.raises(Exception, match="not name=integer"):
        parse_weights("cut_in")


def test_closed_loop_states_need_the_policy_that_drives() -> None:
    with pytest.raises(TrainingError, match="need initial weights"):
        check_config(TrainingConfig(closed_loop_scenarios=4), lambda *_: [])
    config = TrainingConfig(closed_loop_scenarios=4, init_weights=Path("w.safetensors"))
    with pytest.raises(TrainingError, match="need a closed loop"):
        check_config(config, None)
    with pytest.raises(TrainingError, match="closed_loop_label_every >= 1"):
        check_config(dataclasses.replace(config, closed_loop_label_every=0), lambda *_: [])


def test_closed_loop_states_join_the_data_after_the_open_loop_seeds(tmp_path: Path) -> None:
    """The states come from the caller's closed loop (evaluation.rollout.visited_states,
    tested there); here a stand-in hands back real samples and records what it was asked."""
    first = tmp_path / "first.safetensors"
    train(first, TINY, "test", progress=lambda _: None)
    asked: list[tuple[Path, range, int]] = []

    def visit(weights: Path, seeds: range, every: int, workers: int, progress: object) -> list:
        asked.append((weights, seeds, every))
        return [make_sample(seed) for seed in seeds]

    config = dataclasses.replace(
        TINY, init_weights=first, closed_loop_scenarios=8, closed_loop_label_every=3
    )
    summary = train(tmp_path / "second.safetensors", config, "test", lambda _: None, visit)
    assert asked == [(first, range(32, 40), 3)]  # the seeds after the open-loop ones
    assert summary["closed_loop_samples"] == 8
    # And they are in the data, after the open-loop samples.
    config_model = ModelConfig(vocabulary=Tokenizer.from_words(vocabulary()).vocabulary)
    visited = [make_sample(seed) for seed in range(32, 34)]
    data = build_dataset(range(5, 7), config_model, 1, lambda _: None, visited=visited)
    assert len(data) == 4
    assert np.array_equal(data.images[2:], np.stack([sample.images for sample in visited]))
    assert np.allclose(data.controls[3, :, 1], visited[1].future_curvature)
    _, metadata = load_weights(tmp_path / "second.safetensors")
    assert json.loads(metadata["training"])["closed_loop_scenarios"] == 8


def test_the_train_command_refuses_closed_loop_states_without_a_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "w.safetensors"
    assert cli(["train", "--output", str(output), "--closed-loop-scenarios", "2"]) == 2
    assert "closed-loop states need initial weights" in capsys.readouterr().err
    assert not output.exists()


def test_the_road_pose_probe_trains_the_encoder_and_is_not_saved(tmp_path: Path) -> None:
    model_config = ModelConfig(vocabulary=Tokenizer.from_words(vocabulary()).vocabulary)
    drifting = DriftRates(probability=1.0)
    data = build_dataset(range(4), model_config, 1, lambda _: None, drift=drifting)
    assert data.road_pose.shape == (4, 2) and np.abs(data.road_pose).max() > 0.0
    model = EmbeddedVla(model_config)
    probe = RoadPoseProbe(model_config.width, loss_weight=2.0)
    parts = losses(model, data.batch(np.arange(4)), road_pose_probe=probe)
    assert set(parts) - set(losses(model, data.batch(np.arange(4)))) == {"road_pose"}
    model.zero_grad()
    parts["road_pose"].backward()
    # The probe is linear: what it reads must be in the scene latent, so the encoder learns.
    encoder = next(model.image_encoder.parameters())
    assert encoder.grad is not None and encoder.grad.abs().sum() > 0.0
    output = tmp_path / "w.safetensors"
    train(output, dataclasses.replace(TINY, road_pose_weight=1.0), "test", lambda _: None)
    loaded, metadata = load_weights(output)  # inference needs no probe tensor
    assert json.loads(metadata["training"])["road_pose_weight"] == 1.0
    assert set(loaded.state_dict()) == set(EmbeddedVla(model_config).state_dict())


def test_a_negative_road_pose_weight_is_refused() -> None:
    with pytest.raises(TrainingError, match="road_pose_weight must be >= 0"):
        check_config(TrainingConfig(road_pose_weight=-1.0), None)


@pytest.fixture(scope="module")
def plain_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weights trained with no switch set."""
    path = tmp_path_factory.mktemp("plain") / "plain.safetensors"
    train(path, TINY, "test", lambda _: None)
    return path


@pytest.mark.parametrize(
    ("switch", "stored", "default"),
    [
        ({"speed_only_history": True}, {"lateral_history": False}, {"lateral_history": True}),
        ({"scene_readout": 4}, {"scene_readout": 4}, {"scene_readout": 0}),
    ],
    ids=["speed-only history", "scene readout"],
)
def test_a_switched_part_is_kept_in_the_weights_fresh_or_continued(
    tmp_path: Path,
    plain_weights: Path,
    switch: dict[str, object],
    stored: dict[str, object],
    default: dict[str, object],
) -> None:
    def model_config(path: Path) -> dict[str, object]:
        config = load_weights(path)[0].config
        return {name: getattr(config, name) for name in stored}

    fresh, continued = tmp_path / "fresh.safetensors", tmp_path / "continued.safetensors"
    switched = dataclasses.replace(TINY, **switch)
    train(fresh, switched, "test", lambda _: None)
    assert model_config(fresh) == stored
    assert model_config(plain_weights) == default
    # Weights trained without it are switched when training continues from them.
    continuing = dataclasses.replace(switched, init_weights=plain_weights)
    train(continued, continuing, "test", lambda _: None)
    assert model_config(continued) == stored
    training = json.loads(load_weights(continued)[1]["training"])
    assert all(training[name] == value for name, value in switch.items())
