"""Training is deterministic for a seed and writes loadable weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from alpamayo_ros.cli import parse_weights
from alpamayo_ros.core.decisions import OBJECT_CAUSES, Cause
from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.tokenizer import Tokenizer
from alpamayo_ros.model.training import (
    TrainingConfig,
    TrainingError,
    build_dataset,
    check_probabilities,
    scenario_schedule,
    train,
)
from alpamayo_ros.model.weights import load_weights
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


@pytest.mark.parametrize(("name", "value"), [("camera_dropout", 1.5), ("drift", -0.1)])
def test_probabilities_outside_0_1_are_refused(name: str, value: float) -> None:
    with pytest.raises(TrainingError, match=f"{name} must be a probability"):
        check_probabilities(TrainingConfig(**{name: value}))


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
