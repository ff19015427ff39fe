"""Training is deterministic for a seed and writes loadable weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from alpamayo_ros.model.training import TrainingConfig, train
from alpamayo_ros.model.weights import load_weights

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
