"""Every way a weights file can be wrong gives its own message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.network import EmbeddedVla
from alpamayo_ros.model.tokenizer import Tokenizer
from alpamayo_ros.model.weights import (
    FORMAT_VERSION,
    WeightsError,
    load_weights,
    load_weights_to_continue,
    save_weights,
)

CONFIG = ModelConfig(vocabulary=Tokenizer.from_words(["go", "."]).vocabulary)


@pytest.fixture(scope="module")
def model() -> EmbeddedVla:
    torch.manual_seed(0)
    return EmbeddedVla(CONFIG).eval()


def tensors(model: EmbeddedVla) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone().contiguous() for name, t in model.state_dict().items()}


def metadata(**overrides: str) -> dict[str, str]:
    return {
        "format_version": FORMAT_VERSION,
        "model_version": "t",
        "config": CONFIG.to_json(),
    } | overrides


def test_round_trip(tmp_path: Path, model: EmbeddedVla) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(model, path, "1.2", {"epochs": 3})
    loaded, info = load_weights(path)
    assert info["model_version"] == "1.2" and json.loads(info["training"]) == {"epochs": 3}
    assert loaded.config == CONFIG and not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"weights file not found: .*alpamayo-ros train"):
        load_weights(tmp_path / "none.safetensors")


def test_not_a_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"this is not a weights file")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_weights(path)


@pytest.mark.parametrize("key", ["format_version", "model_version", "config"])
def test_missing_metadata(tmp_path: Path, model: EmbeddedVla, key: str) -> None:
    path = tmp_path / "w.safetensors"
    info = metadata()
    del info[key]
    save_file(tensors(model), str(path), metadata=info)
    with pytest.raises(WeightsError, match=f"metadata has no '{key}'"):
        load_weights(path)


def test_wrong_format_version(tmp_path: Path, model: EmbeddedVla) -> None:
    path = tmp_path / "w.safetensors"
    save_file(tensors(model), str(path), metadata=metadata(format_version="0"))
    with pytest.raises(
        WeightsError, match=rf"format version 0, this code reads version {FORMAT_VERSION}"
    ):
        load_weights(path)


def test_invalid_config(tmp_path: Path, model: EmbeddedVla) -> None:
    path = tmp_path / "w.safetensors"
    config = json.loads(CONFIG.to_json()) | {"wings": 2}
    save_file(tensors(model), str(path), metadata=metadata(config=json.dumps(config)))
    with pytest.raises(
        WeightsError, match=r"invalid model config: unknown model config field.*wings"
    ):
        load_weights(path)


def test_missing_and_unexpected_tensors(tmp_path: Path, model: EmbeddedVla) -> None:
    path = tmp_path / "w.safetensors"
    state = tensors(model)
    state["extra.weight"] = state.pop("text_head.bias")
    save_file(state, str(path), metadata=metadata())
    with pytest.raises(
        WeightsError, match=r"missing \['text_head.bias'\], unexpected \['extra.weight'\]"
    ):
        load_weights(path)


def test_training_continues_from_a_file_that_lacks_newer_parts(
    tmp_path: Path, model: EmbeddedVla
) -> None:
    path = tmp_path / "older.safetensors"
    state = tensors(model)
    older = {name: tensor for name, tensor in state.items() if not name.startswith("cause_")}
    save_file(older, str(path), metadata=metadata())
    with pytest.raises(WeightsError, match=r"missing \['cause_attention"):
        load_weights(path)  # a node never runs a half-loaded model
    continued, fresh = load_weights_to_continue(path)
    assert fresh == sorted(set(state) - set(older)) and fresh
    for name, tensor in older.items():
        assert torch.equal(continued.state_dict()[name], tensor), name


def test_continuing_still_refuses_unexpected_tensors(tmp_path: Path, model: EmbeddedVla) -> None:
    path = tmp_path / "w.safetensors"
    save_file({**tensors(model), "extra.weight": torch.zeros(1)}, str(path), metadata=metadata())
    with pytest.raises(WeightsError, match=r"unexpected \['extra.weight'\]"):
        load_weights_to_continue(path)


def test_shape_mismatch(tmp_path: Path, model: EmbeddedVla) -> None:
    path = tmp_path / "w.safetensors"
    state = tensors(model)
    state["text_head.bias"] = torch.zeros(99)
    save_file(state, str(path), metadata=metadata())
    with pytest.raises(
        WeightsError, match=r"tensor 'text_head.bias' has shape \(99,\), the config needs \(6,\)"
    ):
        load_weights(path)


def test_non_finite_values(tmp_path: Path, model: EmbeddedVla) -> None:
    path = tmp_path / "w.safetensors"
    state = tensors(model)
    state["text_head.bias"] = torch.full_like(state["text_head.bias"], float("nan"))
    save_file(state, str(path), metadata=metadata())
    with pytest.raises(WeightsError, match=r"'text_head\.bias' has non-finite values"):
        load_weights(path)
