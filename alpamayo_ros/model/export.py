"""ONNX export of the embedded VLA's parts, for runtimes other than PyTorch.

Three graphs, each what one backend call runs, with the loops between them left to the
caller (network.greedy_decode, network.sample_flow), so every runtime decodes and samples
through the same code:

- scene.onnx: one input (images [cameras, frames, H, W, 3] uint8 as the VLA node aligns
  them, the cameras' rig slots, the ego history) -> scene tokens, pooled scene, the heads'
  logits, the action expert's condition, the cause's position, and the decoder's
  cross-attention keys and values of the scene (projected once per input, not per token).
- decoder_step.onnx: one token of the reasoning text -> next-token logits and the
  self-attention key/value cache grown by that token (empty before the first).
- flow_step.onnx: the action expert's flow velocity at one Euler step.

manifest.json names the model, its version, the SHA-256 of the weights file it came from
and of each graph, the opset and every graph's inputs and outputs, so a runtime can refuse
files that do not belong to the weights it is given.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.network import (
    DECISION_OUTPUTS,
    DecoderCache,
    EmbeddedVla,
    KeysValues,
    memory_keys_values,
)
from alpamayo_ros.model.weights import load_weights

# Bumped when a graph's inputs, outputs or meaning change: older exports are then refused
# (an export cache makes them again).
EXPORT_FORMAT = "1"
OPSET = 18
MODEL_NAME = "embedded_vla"
MANIFEST = "manifest.json"

SCENE = "scene"
DECODER_STEP = "decoder_step"
FLOW_STEP = "flow_step"
# Inputs and outputs of each part, in the order the graphs take and give them.
SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    SCENE: (
        ("images", "cameras", "ego_xyz", "ego_rotations"),
        ("tokens", "pooled", *DECISION_OUTPUTS, "memory_keys", "memory_values"),
    ),
    DECODER_STEP: (
        ("token", "position", "past_keys", "past_values", "memory_keys", "memory_values"),
        ("logits", "present_keys", "present_values"),
    ),
    FLOW_STEP: (("x", "t", "condition"), ("velocity",)),
}


class OnnxFilesError(ConfigurationError):
    """Exported files that are missing, damaged, or not from the weights in use."""


@dataclass(frozen=True)
class Manifest:
    directory: Path
    model_version: str
    weights_sha256: str
    config: ModelConfig

    def path(self, part: str) -> Path:
        return self.directory / f"{part}.onnx"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_onnx(weights_file: Path, directory: Path) -> Manifest:
    """The three graphs of `weights_file` and their manifest, written into `directory`
    (created; files of an earlier export there are replaced). Takes tens of seconds."""
    weights_file, directory = Path(weights_file), Path(directory)
    if importlib.util.find_spec("onnxscript") is None:
        raise ConfigurationError(
            "exporting to ONNX needs the onnxscript package (requirements.txt pins it)"
        )
    model, metadata = load_weights(weights_file)
    directory.mkdir(parents=True, exist_ok=True)
    parts = {}
    with torch.no_grad():
        for part, (module, example, dynamic) in _exportable_parts(model).items():
            inputs, outputs = SIGNATURES[part]
            path = directory / f"{part}.onnx"
            torch.onnx.export(
                module.eval(),
                example,
                str(path),
                input_names=list(inputs),
                output_names=list(outputs),
                opset_version=OPSET,
                dynamo=True,
                dynamic_shapes=dynamic,
                external_data=False,
                verbose=False,
            )
            parts[part] = {
                "file": path.name,
                "sha256": file_sha256(path),
                "inputs": list(inputs),
                "outputs": list(outputs),
            }
    manifest = {
        "format": EXPORT_FORMAT,
        "model_name": MODEL_NAME,
        "model_version": metadata["model_version"],
        "weights_sha256": file_sha256(weights_file),
        "config": json.loads(metadata["config"]),
        "opset": OPSET,
        "exporter": f"torch {torch.__version__} (torch.export)",
        "parts": parts,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return read_manifest(directory, manifest["weights_sha256"])


def read_manifest(directory: Path, weights_sha256: str) -> Manifest:
    """The export in `directory`, checked against the weights' hash and its own file
    hashes; OnnxFilesError says what is wrong and how to fix it."""
    directory = Path(directory)
    path = directory / MANIFEST
    fix = f"export again with export_onnx(weights, {str(directory)!r})"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        config = ModelConfig.from_json(json.dumps(manifest["config"]))
        parts = manifest["parts"]
        ready = Manifest(directory, manifest["model_version"], manifest["weights_sha256"], config)
        fmt = manifest["format"]
    except FileNotFoundError:
        raise OnnxFilesError(f"{path}: no ONNX export manifest ({fix})") from None
    except (ValueError, KeyError, TypeError) as error:
        raise OnnxFilesError(f"{path}: not a readable export manifest ({error}); {fix}") from None
    if fmt != EXPORT_FORMAT:
        raise OnnxFilesError(
            f"{path}: export format {fmt}, this code runs format {EXPORT_FORMAT}; {fix}"
        )
    if ready.weights_sha256 != weights_sha256:
        raise OnnxFilesError(
            f"{path}: exported from weights {ready.weights_sha256[:12]}, not from the weights "
            f"in use ({weights_sha256[:12]}); stale files, {fix}"
        )
    for part, (inputs, outputs) in SIGNATURES.items():
        entry = parts.get(part, {})
        graph = ready.path(part)
        if entry.get("inputs") != list(inputs) or entry.get("outputs") != list(outputs):
            raise OnnxFilesError(f"{path}: part {part!r} missing or with other inputs; {fix}")
        if not graph.is_file():
            raise OnnxFilesError(f"{graph}: missing ONNX file; {fix}")
        if file_sha256(graph) != entry.get("sha256"):
            raise OnnxFilesError(f"{graph}: damaged (its hash differs from the manifest); {fix}")
    return ready


def _exportable_parts(
    model: EmbeddedVla,
) -> dict[str, tuple[nn.Module, tuple[Tensor, ...], Any]]:
    """Each part as a module, example inputs and its dynamic axes. The examples are
    distinct tensors (the exporter merges inputs given the same one) of sizes other than
    0 and 1 (which it would fix)."""
    config = model.config
    d, heads = config.width, config.heads
    layers = config.decoder_layers
    stride = model.image_encoder.stride
    per_camera = (config.image_height // stride) * (config.image_width // stride)
    cameras = torch.export.Dim("cameras", min=1, max=config.cameras)
    scene_tokens = torch.export.Dim("scene_tokens", min=2, max=1 + config.cameras * per_camera)
    past = torch.export.Dim("past", min=0, max=config.max_text_tokens - 1)
    rows = torch.export.Dim("rows", min=1)
    generator = torch.Generator().manual_seed(0)

    def random(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    images = torch.randint(
        0,
        256,
        (config.cameras, config.frames, config.image_height, config.image_width, 3),
        dtype=torch.uint8,
        generator=generator,
    )
    tokens = 1 + config.cameras * per_camera
    kv_shape = (layers, 1, heads, tokens, d // heads)
    past_shape = (layers, 1, heads, 3, d // heads)
    return {
        SCENE: (
            _Scene(model),
            (
                images,
                torch.arange(config.cameras),
                random(config.history_poses, 3),
                random(config.history_poses, 3, 3),
            ),
            ({0: cameras}, {0: cameras}, None, None),
        ),
        DECODER_STEP: (
            _DecoderStep(model),
            (
                torch.tensor([[model.tokenizer.bos_id]]),
                torch.tensor(3),
                random(*past_shape),
                random(*past_shape),
                random(*kv_shape),
                random(*kv_shape),
            ),
            (None, None, {3: past}, {3: past}, {3: scene_tokens}, {3: scene_tokens}),
        ),
        FLOW_STEP: (
            _FlowStep(model),
            (
                random(6, config.horizon, 2),
                torch.rand(6, generator=generator),
                random(6, model.condition_dim),
            ),
            ({0: rows}, {0: rows}, {0: rows}),
        ),
    }


def _pairs(keys: Tensor, values: Tensor) -> KeysValues:
    """Per-layer (keys, values) of tensors stacked over the layers."""
    return list(zip(keys.unbind(0), values.unbind(0), strict=True))


def _stacked(pairs: KeysValues) -> tuple[Tensor, Tensor]:
    return torch.stack([k for k, _ in pairs]), torch.stack([v for _, v in pairs])


class _Scene(nn.Module):
    def __init__(self, model: EmbeddedVla) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, images: Tensor, cameras: Tensor, ego_xyz: Tensor, ego_rotations: Tensor
    ) -> tuple[Tensor, ...]:
        encoding = self.model.encode(images[None], ego_xyz[None], ego_rotations[None], cameras)
        outputs = self.model.decision_outputs(encoding)
        memory = memory_keys_values(self.model.decoder, encoding.tokens)
        return (
            encoding.tokens,
            encoding.pooled,
            *(outputs[name] for name in DECISION_OUTPUTS),
            *_stacked(memory),
        )


class _DecoderStep(nn.Module):
    def __init__(self, model: EmbeddedVla) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        token: Tensor,
        position: Tensor,
        past_keys: Tensor,
        past_values: Tensor,
        memory_keys: Tensor,
        memory_values: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        cache = DecoderCache(
            self.model.decoder,
            _pairs(memory_keys, memory_values),
            _pairs(past_keys, past_values),
        )
        logits = self.model.next_token_logits(cache, token, position)
        present = [pair for pair in cache.self_kv if pair is not None]
        return (logits, *_stacked(present))


class _FlowStep(nn.Module):
    def __init__(self, model: EmbeddedVla) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        return self.model.velocity(x, t, condition)
