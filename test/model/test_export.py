"""The ONNX export of the embedded VLA's parts: each graph computes what the network does,
the decoder step with its cache and the flow step driven by the network's own loops, and the
manifest refuses files that are not the weights' or not whole.

A small random model: the export is the same code for any config, and its graphs are
compared with the network itself (the packaged model's are in test/backends).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from alpamayo_ros.core.contract import FRAMES_PER_CAMERA, HISTORY_POSES
from alpamayo_ros.core.planar import yaw_to_rotation
from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.export import (
    DECODER_STEP,
    EXPORT_FORMAT,
    FLOW_STEP,
    MANIFEST,
    OPSET,
    SCENE,
    SIGNATURES,
    OnnxFilesError,
    export_onnx,
    file_sha256,
    read_manifest,
)
from alpamayo_ros.model.network import (
    DECISION_OUTPUTS,
    DecoderCache,
    EmbeddedVla,
    greedy_decode,
    sample_flow,
)
from alpamayo_ros.model.tokenizer import Tokenizer
from alpamayo_ros.model.weights import load_weights, save_weights

VOCABULARY = Tokenizer.from_words(["slow", "down", "because", "of", "the", "light", "."])
CONFIG = ModelConfig(
    vocabulary=VOCABULARY.vocabulary,
    width=32,
    heads=2,
    cnn_channels=(8, 16),
    fusion_layers=1,
    decoder_layers=3,
    expert_hidden=64,
    max_text_tokens=12,
)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(EmbeddedVla(CONFIG), path, "test-1", {"note": "random"})
    return path


@pytest.fixture(scope="module")
def exported(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("onnx")
    export_onnx(weights, directory)
    return directory


@pytest.fixture(scope="module")
def model(weights: Path) -> EmbeddedVla:
    return load_weights(weights)[0]


def session(directory: Path, part: str) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(
        str(directory / f"{part}.onnx"), providers=["CPUExecutionProvider"]
    )


def scene_inputs(cameras: list[int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    shape = (len(cameras), FRAMES_PER_CAMERA, CONFIG.image_height, CONFIG.image_width, 3)
    xyz = np.zeros((HISTORY_POSES, 3), np.float32)
    xyz[:, 0] = np.linspace(-12.0, 0.0, HISTORY_POSES)
    return {
        "images": rng.integers(0, 256, shape, dtype=np.uint8),
        "cameras": np.array(cameras, np.int64),
        "ego_xyz": xyz,
        "ego_rotations": np.repeat(np.eye(3, dtype=np.float32)[None], HISTORY_POSES, axis=0),
    }


def test_manifest_names_the_model_the_weights_and_every_graph(
    exported: Path, weights: Path
) -> None:
    manifest = json.loads((exported / MANIFEST).read_text())
    assert manifest["model_name"] == "embedded_vla"
    assert manifest["model_version"] == "test-1"
    assert manifest["weights_sha256"] == file_sha256(weights)
    assert manifest["opset"] == OPSET and manifest["format"] == EXPORT_FORMAT
    assert ModelConfig.from_json(json.dumps(manifest["config"])) == CONFIG
    for part, (inputs, outputs) in SIGNATURES.items():
        entry = manifest["parts"][part]
        graph = session(exported, part)
        assert [node.name for node in graph.get_inputs()] == entry["inputs"] == list(inputs)
        assert [node.name for node in graph.get_outputs()] == entry["outputs"] == list(outputs)
        assert entry["sha256"] == file_sha256(exported / entry["file"])


@pytest.mark.parametrize("cameras", [[0, 1, 2, 3], [0, 2]], ids=["all", "two"])
def test_scene_graph_computes_what_the_network_does(
    exported: Path, model: EmbeddedVla, cameras: list[int]
) -> None:
    inputs = scene_inputs(cameras)
    results = session(exported, SCENE).run(None, inputs)
    outputs = dict(zip(SIGNATURES[SCENE][1], results, strict=True))
    tensors = {name: torch.from_numpy(value)[None] for name, value in inputs.items()}
    with torch.no_grad():
        encoding = model.encode(
            tensors["images"],
            tensors["ego_xyz"],
            tensors["ego_rotations"],
            tensors["cameras"][0],
        )
        expected = {
            "tokens": encoding.tokens,
            "pooled": encoding.pooled,
            **model.decision_outputs(encoding),
        }
        cache = DecoderCache(model.decoder, encoding.tokens)
    expected["memory_keys"] = torch.stack([k for k, _ in cache.memory_kv])
    expected["memory_values"] = torch.stack([v for _, v in cache.memory_kv])
    assert outputs["tokens"].shape[1] == 1 + len(cameras) * 4 * 8  # the ego, 4 x 8 per camera
    assert set(DECISION_OUTPUTS) <= set(outputs)
    for name, value in expected.items():
        np.testing.assert_allclose(outputs[name], value.numpy(), atol=1e-4, err_msg=name)


def test_a_speed_only_history_is_exported_as_the_network_reads_it(tmp_path: Path) -> None:
    """A model that reads the history as a speed profile (ModelConfig.lateral_history
    False): the scene graph straightens a curved history as the network does."""
    torch.manual_seed(1)
    config = dataclasses.replace(CONFIG, lateral_history=False)
    weights = tmp_path / "speed_only.safetensors"
    save_weights(EmbeddedVla(config), weights, "test-1", {"note": "random"})
    export_onnx(weights, tmp_path / "onnx")
    model = load_weights(weights)[0]
    inputs = scene_inputs([0, 1, 2, 3])
    yaw = np.linspace(-0.3, 0.0, HISTORY_POSES)
    inputs["ego_xyz"] = np.stack(
        [40.0 * np.sin(yaw), 40.0 * (1.0 - np.cos(yaw)), np.zeros_like(yaw)], -1
    ).astype(np.float32)
    inputs["ego_rotations"] = yaw_to_rotation(yaw).astype(np.float32)
    (pooled,) = session(tmp_path / "onnx", SCENE).run(["pooled"], inputs)
    tensors = {name: torch.from_numpy(value)[None] for name, value in inputs.items()}
    with torch.no_grad():
        expected = model.encode(
            tensors["images"], tensors["ego_xyz"], tensors["ego_rotations"]
        ).pooled
    np.testing.assert_allclose(pooled, expected.numpy(), atol=1e-4)


def test_decoder_step_with_its_cache_writes_the_networks_text(
    exported: Path, model: EmbeddedVla
) -> None:
    """greedy_decode through the exported step, its cache fed back, writes what the
    network writes; each step's logits match the network's teacher-forced pass."""
    keys, values = session(exported, SCENE).run(
        ["memory_keys", "memory_values"], scene_inputs([0, 1, 2, 3])
    )
    step_graph = session(exported, DECODER_STEP)
    feed = {
        "memory_keys": keys,
        "memory_values": values,
        "past_keys": keys[..., :0, :],
        "past_values": values[..., :0, :],
    }
    logits_per_step = []

    def step(ids: torch.Tensor, position: int) -> torch.Tensor:
        feed.update(token=ids.numpy(), position=np.array(position, np.int64))
        logits, feed["past_keys"], feed["past_values"] = step_graph.run(None, feed)
        logits_per_step.append(logits)
        return torch.from_numpy(logits)

    text = greedy_decode(step, 1, model.tokenizer, CONFIG.max_text_tokens)
    inputs = {k: torch.from_numpy(v)[None] for k, v in scene_inputs([0, 1, 2, 3]).items()}
    with torch.no_grad():
        encoding = model.encode(inputs["images"], inputs["ego_xyz"], inputs["ego_rotations"])
        assert text == model.generate_text(encoding)
        written = len(logits_per_step)
        assert feed["past_keys"].shape[3] == written
        ids = torch.tensor([[model.tokenizer.bos_id, *np.argmax(logits_per_step, -1)[:-1, 0]]])
        reference = model.text_logits(encoding, ids)[0]
    np.testing.assert_allclose(np.concatenate(logits_per_step), reference.numpy(), atol=1e-4)


def test_flow_step_integrates_to_the_networks_samples(exported: Path, model: EmbeddedVla) -> None:
    condition = torch.randn(1, model.condition_dim, generator=torch.Generator().manual_seed(2))
    flow = session(exported, FLOW_STEP)
    rows = 5
    times = torch.arange(CONFIG.flow_steps) / CONFIG.flow_steps

    def velocity(x: torch.Tensor, step: int) -> torch.Tensor:
        (result,) = flow.run(
            None,
            {
                "x": x.numpy(),
                "t": np.full(rows, float(times[step]), np.float32),
                "condition": condition.expand(rows, -1).numpy(),
            },
        )
        return torch.from_numpy(result)

    exported_samples = sample_flow(velocity, rows, CONFIG, torch.Generator().manual_seed(9))
    with torch.no_grad():
        samples = model.sample_controls(condition, rows, torch.Generator().manual_seed(9))[0]
    torch.testing.assert_close(exported_samples, samples, atol=1e-5, rtol=1e-4)


def test_files_from_other_weights_are_refused(exported: Path) -> None:
    with pytest.raises(OnnxFilesError, match="stale files"):
        read_manifest(exported, "0" * 64)


def test_a_missing_or_damaged_file_is_named(exported: Path, weights: Path, tmp_path: Path) -> None:
    sha = file_sha256(weights)
    copy = tmp_path / "onnx"
    shutil.copytree(exported, copy)
    assert read_manifest(copy, sha).config == CONFIG
    (copy / "flow_step.onnx").unlink()
    with pytest.raises(OnnxFilesError, match=r"flow_step\.onnx: missing ONNX file"):
        read_manifest(copy, sha)
    shutil.copy(exported / "flow_step.onnx", copy)
    with (copy / "scene.onnx").open("r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(OnnxFilesError, match=r"scene\.onnx: damaged"):
        read_manifest(copy, sha)
    (copy / MANIFEST).write_text("{not json")
    with pytest.raises(OnnxFilesError, match="not a readable export manifest"):
        read_manifest(copy, sha)
    (copy / MANIFEST).unlink()
    with pytest.raises(OnnxFilesError, match="no ONNX export manifest"):
        read_manifest(copy, sha)


def test_an_older_export_format_is_refused(exported: Path, weights: Path, tmp_path: Path) -> None:
    copy = tmp_path / "onnx"
    shutil.copytree(exported, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["format"] = "0"
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(OnnxFilesError, match="export format 0"):
        read_manifest(copy, file_sha256(weights))


def test_a_scene_readout_is_exported_reading_each_camera_at_its_slot(tmp_path: Path) -> None:
    """The readout places the cameras given by their rig slots; the graph takes any subset,
    in any order, as the network does."""
    torch.manual_seed(2)
    model = EmbeddedVla(dataclasses.replace(CONFIG, scene_readout=4))
    torch.nn.init.normal_(model.readout.weight, std=0.05)
    weights = tmp_path / "readout.safetensors"
    save_weights(model, weights, "test-1", {"note": "random"})
    export_onnx(weights, tmp_path / "onnx")
    model = load_weights(weights)[0]
    graph = session(tmp_path / "onnx", SCENE)
    for cameras in ([0, 1, 2, 3], [3, 1]):
        inputs = scene_inputs(cameras)
        (pooled,) = graph.run(["pooled"], inputs)
        tensors = {name: torch.from_numpy(value) for name, value in inputs.items()}
        with torch.no_grad():
            expected = model.encode(
                tensors["images"][None],
                tensors["ego_xyz"][None],
                tensors["ego_rotations"][None],
                tensors["cameras"],
            ).pooled
        np.testing.assert_allclose(pooled, expected.numpy(), atol=1e-4, err_msg=str(cameras))
