"""The double at Alpamayo-R1's size: a random-initialised network that does the work the
released model does, for timing the adapter and the model worker where the real
checkpoint cannot be had (issue 12's GPU check; 22 GB and a licence away).

The shapes of the work follow the public model card and the paper's latency table:
- vision: a ViT over each of the 16 frames (16-pixel patches, 2x2 patches merged into
  one language-model token: 180 tokens per 320x576 frame), Qwen3-VL-8B's encoder sizes
  (0.45B parameters);
- the language model: a Qwen3-8B-sized decoder (8.2B: 36 layers, width 4096, 32 query and
  8 key/value heads of 128, SwiGLU 12288, vocabulary 151936) that reads the prompt, the
  vision tokens and the 16-pose history, then writes `reasoning_tokens` tokens for each of
  the K samples (top-p sampling). As the released code runs it (a generate call that
  returns K sequences expands its inputs first), the frames are encoded and the prompt
  prefilled once per sample; `shared_prefill` does both once for all K, as an optimised
  deployment would;
- the action expert: the same depth and key/value layout, narrower (width 2048, SwiGLU
  8192: 2.3B), whose 64 trajectory tokens attend to the language model's cache at every
  layer, integrated over `flow_steps` Euler steps of flow matching.
Its weights are random, so what it computes means nothing: the K controls are reduced to
gentle arcs at the history's speed (each sample's mean acceleration and curvature,
bounded), and each arc gets the double's scripted reasoning for its direction, so the
adapter's mapping and the planner's checks have something to work on. The compute is the
model's; its stages are timed (synchronised on a GPU) into `extra["stage_ms"]`.

No code of the official packages is copied here; the layer shapes are public sizes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .api import Call, OfficialRollout, reasoning_for

HORIZON = 64
DT_S = 0.1
MAX_ACCELERATION = 0.5  # m/s^2, the arcs' bound
MAX_CURVATURE = 0.008  # 1/m
WEIGHTS_SEED = 20251100


@dataclass(frozen=True)
class Sizes:
    """Layer sizes; the defaults are Alpamayo-R1's (about 8.2B + 2.3B parameters)."""

    patch: int = 16
    merge: int = 2  # patches merged per side into one language-model token
    vision_width: int = 1152
    vision_layers: int = 27
    vision_heads: int = 16
    vision_mlp: int = 4304
    max_patches: int = 20 * 36  # a 320x576 frame
    vocabulary: int = 151936
    width: int = 4096
    layers: int = 36
    heads: int = 32
    kv_heads: int = 8
    head_dim: int = 128
    mlp: int = 12288
    expert_width: int = 2048
    expert_heads: int = 16
    expert_mlp: int = 8192
    reasoning_tokens: int = 40
    flow_steps: int = 5
    rope_theta: float = 1_000_000.0
    shared_prefill: bool = False  # True: vision and prefill once for all K samples

    @classmethod
    def tiny(cls) -> Sizes:
        """The same network, small enough for a CPU test."""
        return cls(
            vision_width=32,
            vision_layers=1,
            vision_heads=2,
            vision_mlp=64,
            vocabulary=97,
            width=64,
            layers=2,
            heads=4,
            kv_heads=2,
            head_dim=16,
            mlp=128,
            expert_width=32,
            expert_heads=2,
            expert_mlp=64,
            reasoning_tokens=6,
            flow_steps=2,
        )


PRESETS = {"r1": Sizes, "tiny": Sizes.tiny}


def write_checkpoint(
    folder: Path, preset: str, device: str = "cpu", shared_prefill: bool = False
) -> Path:
    """A checkpoint folder the double loads as the sized model: its config.json holds the
    sizes and the device to build the weights on (building 11B parameters on the CPU and
    moving them would take minutes of a GPU lease)."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = replace(PRESETS[preset](), shared_prefill=shared_prefill)
    config = {"sized_standin": asdict(sizes), "init_device": device}
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    return folder


class RmsNorm(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: Tensor) -> Tensor:
        # In the input's dtype, as Qwen3's own norm: autocast would return float32 and
        # leave every projection a cast to make.
        return F.rms_norm(x, (x.shape[-1],), self.weight, eps=1e-6).to(x.dtype)


def rotary(positions: Tensor, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos and sin [T, head_dim] of the rotary position embedding."""
    inverse = theta ** (-torch.arange(0, head_dim, 2, device=positions.device) / head_dim)
    angles = positions.float()[:, None] * inverse[None]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos.to(x.dtype)) + (turned * sin.to(x.dtype))


class SwiGlu(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(width, hidden, bias=False)
        self.up = nn.Linear(width, hidden, bias=False)
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class DecoderLayer(nn.Module):
    """A Qwen3-style layer: grouped-query attention with per-head norms and rotary
    positions, then SwiGLU, each pre-normed."""

    def __init__(self, width: int, heads: int, sizes: Sizes, mlp: int) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, sizes.kv_heads, sizes.head_dim
        self.attention_norm = RmsNorm(width)
        self.q = nn.Linear(width, heads * sizes.head_dim, bias=False)
        self.k = nn.Linear(width, sizes.kv_heads * sizes.head_dim, bias=False)
        self.v = nn.Linear(width, sizes.kv_heads * sizes.head_dim, bias=False)
        self.o = nn.Linear(heads * sizes.head_dim, width, bias=False)
        self.q_norm, self.k_norm = RmsNorm(sizes.head_dim), RmsNorm(sizes.head_dim)
        self.mlp_norm = RmsNorm(width)
        self.mlp = SwiGlu(width, mlp)

    def project(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values [B, heads, T, head_dim] of the normed input."""
        batch, length, _ = x.shape
        h = self.attention_norm(x)

        def heads(t: Tensor, count: int) -> Tensor:
            return t.view(batch, length, count, self.head_dim).transpose(1, 2)

        q = rotate(self.q_norm(heads(self.q(h), self.heads)), cos, sin)
        k = rotate(self.k_norm(heads(self.k(h), self.kv_heads)), cos, sin)
        return q, k, heads(self.v(h), self.kv_heads)

    def finish(self, x: Tensor, attended: Tensor) -> Tensor:
        batch, _, length, _ = attended.shape
        x = x + self.o(attended.transpose(1, 2).reshape(batch, length, -1))
        return x + self.mlp(self.mlp_norm(x))


class KvCache:
    """Each layer's keys and values [K, kv_heads, capacity, head_dim], written in place."""

    def __init__(self, sizes: Sizes, batch: int, capacity: int, like: Tensor) -> None:
        shape = (sizes.layers, batch, sizes.kv_heads, capacity, sizes.head_dim)
        self.keys = torch.empty(shape, dtype=like.dtype, device=like.device)
        self.values = torch.empty_like(self.keys)
        self.length = 0

    def write(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Stores this step's keys and values at the end; returns all of the layer's."""
        end = self.length + k.shape[2]
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]


class VisionEncoder(nn.Module):
    """A ViT per frame, its 2x2 neighbouring patches merged into one language token."""

    def __init__(self, sizes: Sizes) -> None:
        super().__init__()
        self.sizes = sizes
        width = sizes.vision_width
        self.patches = nn.Conv2d(3, width, sizes.patch, stride=sizes.patch)
        self.position = nn.Parameter(torch.zeros(sizes.max_patches, width))
        layer = nn.TransformerEncoderLayer(
            width,
            sizes.vision_heads,
            sizes.vision_mlp,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, sizes.vision_layers, enable_nested_tensor=False)
        merged = width * sizes.merge**2
        self.merger = nn.Sequential(
            nn.LayerNorm(merged),
            nn.Linear(merged, merged),
            nn.GELU(),
            nn.Linear(merged, sizes.width),
        )

    def forward(self, frames: Tensor) -> Tensor:
        """[N, 3, H, W] in 0..1 -> [N * H/32 * W/32, width] language tokens."""
        grid = self.patches(frames)  # [N, C, H/16, W/16]
        count, channels, rows, columns = grid.shape
        tokens = grid.flatten(2).transpose(1, 2) + self.position[: rows * columns]
        tokens = self.blocks(tokens)
        m = self.sizes.merge
        tokens = tokens.view(count, rows // m, m, columns // m, m, channels)
        tokens = tokens.permute(0, 1, 3, 2, 4, 5).reshape(-1, m * m * channels)
        return self.merger(tokens)


class SizedAlpamayoR1(OfficialRollout):
    """The official class's rollout over a network of the given sizes."""

    def __init__(self, sizes: Sizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.tokenizer = object()
        self.vision = VisionEncoder(sizes)
        self.embed = nn.Embedding(sizes.vocabulary, sizes.width)
        self.history = nn.Linear(12, sizes.width)  # one token per pose: xyz and rotation
        self.layers = nn.ModuleList(
            DecoderLayer(sizes.width, sizes.heads, sizes, sizes.mlp) for _ in range(sizes.layers)
        )
        self.norm = RmsNorm(sizes.width)
        self.lm_head = nn.Linear(sizes.width, sizes.vocabulary, bias=False)
        self.expert_in = nn.Linear(2 + sizes.expert_width, sizes.expert_width)
        self.expert_layers = nn.ModuleList(
            DecoderLayer(sizes.expert_width, sizes.expert_heads, sizes, sizes.expert_mlp)
            for _ in range(sizes.layers)
        )
        self.expert_norm = RmsNorm(sizes.expert_width)
        self.expert_out = nn.Linear(sizes.expert_width, 2)

    @classmethod
    def build(cls, sizes: Sizes, dtype: torch.dtype, device: str) -> SizedAlpamayoR1:
        """Random weights, made in `dtype` on `device` without a first initialisation:
        matrices normal(0, 0.02), as language models start; norms one; biases zero. The
        same in every process (a worker's and the node's), as a checkpoint's would be."""
        with torch.device("meta"):
            model = cls(sizes).to(dtype)
        model = model.to_empty(device=device)
        generator = torch.Generator(device).manual_seed(WEIGHTS_SEED)
        norms = (RmsNorm, nn.LayerNorm)
        with torch.no_grad():
            for module in model.modules():
                for name, parameter in module.named_parameters(recurse=False):
                    if parameter.ndim > 1:
                        parameter.normal_(0.0, 0.02, generator=generator)
                    elif isinstance(module, norms) and name == "weight":
                        parameter.fill_(1.0)
                    else:
                        parameter.zero_()
        return model.eval()

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of the vision encoder, the language model and the action expert."""

        def count(*modules: nn.Module) -> int:
            return sum(p.numel() for m in modules for p in m.parameters())

        return {
            "vision": count(self.vision),
            "language model": count(self.embed, self.history, self.layers, self.norm, self.lm_head),
            "action expert": count(
                self.expert_in, self.expert_layers, self.expert_norm, self.expert_out
            ),
        }

    # ---------------------------------------------------------------- the official API
    def rollout(self, call: Call) -> tuple[Tensor, Tensor, dict[str, Any]]:
        history_xyz, history_rot = call.data["ego_history_xyz"], call.data["ego_history_rot"]
        tokenized = call.data["tokenized_data"]
        parameter = next(self.parameters())
        stages: dict[str, float] = {}
        clock = _StageClock(parameter.device, stages)

        samples = call.samples * call.sets
        encoded = 1 if self.sizes.shared_prefill else samples  # prompts encoded and prefilled
        frames = tokenized["pixel_values"].to(parameter.dtype)
        vision = self.vision(frames.repeat(encoded, 1, 1, 1)).view(encoded, -1, self.sizes.width)
        clock.lap("vision")
        poses = torch.cat([history_xyz[0, 0], history_rot[0, 0].flatten(1)], dim=-1)
        text = self.embed(tokenized["input_ids"][0])[None].expand(encoded, -1, -1)
        history = self.history(poses.to(parameter.dtype))[None].expand(encoded, -1, -1)
        prompt = torch.cat([text, vision, history], dim=1)
        cache = KvCache(
            self.sizes,
            samples,
            prompt.shape[1] + self.sizes.reasoning_tokens,
            parameter,
        )
        logits = self._language_step(prompt, cache).expand(samples, -1)
        clock.lap("prefill")
        for _ in range(self.sizes.reasoning_tokens):
            token = _top_p_sample(logits, call.top_p, call.temperature)
            logits = self._language_step(self.embed(token)[:, None], cache)
        clock.lap(f"reasoning ({self.sizes.reasoning_tokens} tokens)")
        controls = self._flow(cache, samples)
        clock.lap(f"trajectory ({self.sizes.flow_steps} flow steps)")

        step = history_xyz[0, 0, -1, :2] - history_xyz[0, 0, -2, :2]
        speed = torch.linalg.norm(step.float()) / DT_S
        xyz, rotations, curvature = _arcs(controls, speed)
        texts = [reasoning_for(c) for c in curvature.tolist()]
        shape = (1, call.sets, call.samples)
        return (
            xyz.reshape(*shape, HORIZON, 3),
            rotations.reshape(*shape, HORIZON, 3, 3),
            {
                "cot": [
                    [texts[s * call.samples : (s + 1) * call.samples] for s in range(call.sets)]
                ],
                "stage_ms": stages,
            },
        )

    def _language_step(self, x: Tensor, cache: KvCache) -> Tensor:
        """Logits of the last of the new tokens x [B, T, width], which are appended to the
        cache (a shared prefill, batch 1, is stored for every sample)."""
        start = cache.length
        positions = torch.arange(start, start + x.shape[1], device=x.device)
        cos, sin = rotary(positions, self.sizes.head_dim, self.sizes.rope_theta)
        for index, layer in enumerate(self.layers):
            q, k, v = layer.project(x, cos, sin)
            keys, values = cache.write(index, k, v)
            if keys.shape[0] != q.shape[0]:  # the shared prefill
                keys, values = keys[:1], values[:1]
            attended = F.scaled_dot_product_attention(
                q, keys, values, is_causal=x.shape[1] > 1, enable_gqa=True
            )
            x = layer.finish(x, attended)
        cache.length += x.shape[1]
        return self.lm_head(self.norm(x[:, -1]))

    def _flow(self, cache: KvCache, samples: int) -> Tensor:
        """The action expert: noise [K, 64, 2] to controls over Euler steps, its 64 tokens
        attending to themselves and to the language model's cache at each layer (with no
        mask: the release's 4D float mask may pick a slower attention kernel, so this
        stage is, if anything, a little quicker than the release's)."""
        sizes = self.sizes
        dtype = cache.keys.dtype
        x = torch.randn(samples, HORIZON, 2, device=cache.keys.device)
        positions = torch.arange(cache.length, cache.length + HORIZON, device=x.device)
        cos, sin = rotary(positions, sizes.head_dim, sizes.rope_theta)
        for step in range(sizes.flow_steps):
            t = torch.full((samples, HORIZON, 1), step / sizes.flow_steps, device=x.device)
            time_features = _time_embedding(t, sizes.expert_width)
            h = self.expert_in(torch.cat([x, time_features], dim=-1).to(dtype))
            for index, layer in enumerate(self.expert_layers):
                q, k, v = layer.project(h, cos, sin)
                keys = torch.cat([cache.keys[index, :, :, : cache.length], k], dim=2)
                values = torch.cat([cache.values[index, :, :, : cache.length], v], dim=2)
                attended = F.scaled_dot_product_attention(q, keys, values, enable_gqa=True)
                h = layer.finish(h, attended)
            velocity = self.expert_out(self.expert_norm(h)).float()
            x = x + velocity / sizes.flow_steps
        return x


class _StageClock:
    """Wall time per stage, the GPU's work finished at each lap."""

    def __init__(self, device: torch.device, stages: dict[str, float]) -> None:
        self.device, self.stages = device, stages
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.stages[name] = (now - self.last) * 1e3
        self.last = now


def _top_p_sample(logits: Tensor, top_p: float, temperature: float) -> Tensor:
    """One token per row, from the smallest set of tokens holding `top_p` of the mass."""
    probabilities = torch.softmax(logits.float() / max(temperature, 1e-5), dim=-1)
    ordered, order = probabilities.sort(dim=-1, descending=True)
    outside = ordered.cumsum(dim=-1) - ordered > top_p
    ordered = ordered.masked_fill(outside, 0.0)
    chosen = torch.multinomial(ordered, 1)
    return order.gather(-1, chosen)[:, 0]


def _time_embedding(t: Tensor, width: int) -> Tensor:
    half = width // 2
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = t * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _arcs(controls: Tensor, speed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Positions [K, 64, 3], rotations [K, 64, 3, 3] and curvature [K] of arcs at each
    sample's mean acceleration and curvature (bounded), from the history's speed."""
    mean = controls.float().mean(dim=1)
    acceleration = MAX_ACCELERATION * torch.tanh(mean[:, 0])
    curvature = MAX_CURVATURE * torch.tanh(mean[:, 1])
    t = DT_S * torch.arange(1, HORIZON + 1, device=controls.device)
    velocity = (speed + acceleration[:, None] * t).clamp(min=0.0)
    distance = torch.cumsum(velocity * DT_S, dim=1)
    yaw = curvature[:, None] * distance
    # Position integrated step by step along the heading (first order, as the 0.1 s steps
    # of a gentle arc allow).
    xyz = torch.zeros(*yaw.shape, 3, device=controls.device)
    xyz[..., 0] = torch.cumsum(velocity * DT_S * torch.cos(yaw), dim=1)
    xyz[..., 1] = torch.cumsum(velocity * DT_S * torch.sin(yaw), dim=1)
    cos, sin = torch.cos(yaw), torch.sin(yaw)
    rotations = torch.zeros(*yaw.shape, 3, 3, device=controls.device)
    rotations[..., 0, 0], rotations[..., 0, 1] = cos, -sin
    rotations[..., 1, 0], rotations[..., 1, 1] = sin, cos
    rotations[..., 2, 2] = 1.0
    return xyz, rotations, curvature


def load(checkpoint: Path, dtype: torch.dtype) -> SizedAlpamayoR1 | None:
    """The sized model when the checkpoint's config.json asks for it, else None."""
    config = json.loads((checkpoint / "config.json").read_text())
    if "sized_standin" not in config:
        return None
    sizes = Sizes(**config["sized_standin"])
    return SizedAlpamayoR1.build(sizes, dtype, config.get("init_device", "cpu"))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write a checkpoint folder of the sized double.")
    parser.add_argument("folder", type=Path, help="the checkpoint folder to write")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="r1", help="the sizes")
    parser.add_argument("--device", default="cpu", help="where the weights are built (cuda)")
    parser.add_argument(
        "--shared-prefill",
        action="store_true",
        help="encode the frames and prefill once for all samples, not once per sample as "
        "the released code does",
    )
    arguments = parser.parse_args()
    folder = write_checkpoint(
        arguments.folder, arguments.preset, arguments.device, arguments.shared_prefill
    )
    print(folder)
