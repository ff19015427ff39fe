"""The embedded VLA network, shaped like Alpamayo-R1 at laptop scale.

- Vision: one light CNN shared by every image (with a camera embedding), attention across
  each camera's 4 frames (motion), all cameras fused with an ego-history token into one
  token sequence by a small transformer encoder.
- Reasoning: an autoregressive transformer decoder over a word vocabulary that attends to
  that sequence (Chain-of-Causation text), classification heads for the meta-action and
  the structured decision, and a locator of the object the decision refers to.
- Action expert: a flow-matching velocity field over 64 (acceleration, curvature) controls,
  conditioned on a latent of the fused scene and the meta-action; Euler-integrated from
  noise, K samples per call.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.tokenizer import Tokenizer

EGO_FEATURES = 6  # x, y, cos yaw, sin yaw, vx, vy per history pose
CAUSE_POSITION_SCALE = 20.0  # m; the cause locator regresses positions in these units


@dataclass
class Encoding:
    tokens: Tensor  # [B, N, D] fused scene tokens
    pooled: Tensor  # [B, D]


@dataclass
class Heads:
    longitudinal: Tensor  # [B, len(Longitudinal)] logits
    lateral: Tensor  # [B, len(Lateral)]
    longitudinal_decision: Tensor  # [B, len(LongitudinalDecision)]
    lateral_decision: Tensor  # [B, len(LateralDecision)]
    cause: Tensor  # [B, len(Cause)]


HEAD_NAMES = tuple(field.name for field in fields(Heads))
# What a backend reads from the scene to decide (EmbeddedVla.decision_outputs): each head's
# logits, the action expert's condition and where the cause is.
DECISION_OUTPUTS = (*HEAD_NAMES, "condition", "cause_position")

Array = TypeVar("Array", Tensor, np.ndarray)
# Keys and values [B, heads, T, D / heads] of one attention per decoder layer.
KeysValues = Sequence[tuple[Tensor, Tensor]]
# Logits [B, V] of the next token for the newest ids [B, 1] at a text position.
TextStep = Callable[[Tensor, int], Tensor]
# Flow velocity of normalised controls x [N, horizon, 2] at Euler step k (flow time k / steps).
Velocity = Callable[[Tensor, int], Tensor]


def ego_features(xyz: Tensor, rotations: Tensor, lateral: bool = True) -> Tensor:
    """Per-pose features of the history [B, P, 6]: position, heading, finite-difference velocity.

    The model gets no speed input (as in Alpamayo-R1): it differentiates the history.
    Without `lateral`, the history is laid straight along the x axis, each pose as far
    behind the newest as the car drove: the speed profile stays, the path's shape goes.
    A policy trained on an expert who holds its lane learns from the shape that the
    curvature it has been driving goes on; in closed loop its own error then feeds itself
    (seen: the curvature it planned grew with its own drift, towards the road's edge).
    """
    if not lateral:
        xyz, rotations = _straightened(xyz, rotations)
    heading = rotations[..., :2, 0]  # (cos yaw, sin yaw)
    velocity = torch.diff(xyz[..., :2], dim=-2, prepend=xyz[..., :1, :2]) * 10.0
    velocity[..., 0, :] = velocity[..., 1, :]
    return torch.cat([xyz[..., :2] / 20.0, heading, velocity / 10.0], dim=-1)


def _straightened(xyz: Tensor, rotations: Tensor) -> tuple[Tensor, Tensor]:
    """The history [B, P, 3], [B, P, 3, 3] laid along the x axis of the newest pose:
    pose i at minus the distance driven from it to the newest, heading straight ahead."""
    driven = torch.linalg.vector_norm(torch.diff(xyz[..., :2], dim=-2), dim=-1)  # [B, P-1]
    behind = torch.flip(torch.cumsum(torch.flip(driven, [-1]), -1), [-1])
    x = torch.cat([-behind, torch.zeros_like(behind[..., :1])], dim=-1)
    straight = torch.stack([x, torch.zeros_like(x), torch.zeros_like(x)], dim=-1)
    identity = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
    return straight, identity.expand_as(rotations)


class ImageEncoder(nn.Module):
    """Patchify stem then strided convs: [N, 3, H, W] -> [N, D, H/16, W/16].

    A patch stem rather than a full-resolution first conv: 16 images per cycle must train
    and run on a 2-core CPU.
    """

    def __init__(self, patch_size: int, channels: tuple[int, ...], width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels[0], patch_size, stride=patch_size),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        ]
        for previous, out in itertools.pairwise(channels):
            layers += [
                nn.Conv2d(previous, out, 3, stride=2, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(channels[-1], width, 1))
        self.net = nn.Sequential(*layers)
        self.stride = patch_size * 2 ** (len(channels) - 1)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)


# Width of the action expert's flow-time embedding.
FLOW_TIME_DIM = 64


def sinusoidal(t: Tensor, dim: int) -> Tensor:
    """Embedding of flow time t in [0, 1], [B] -> [B, dim]."""
    half = dim // 2
    frequencies = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
    angles = t[:, None] * 1000.0 * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """[B, T, D] -> [B, heads, T, D / heads]."""
    b, t, d = x.shape
    return x.reshape(b, t, heads, d // heads).transpose(1, 2)


def memory_keys_values(decoder: nn.TransformerDecoder, memory: Tensor) -> KeysValues:
    """The cross-attention keys and values of the scene tokens [B, N, D], per layer: the
    same for every token of the text, so projected once."""
    projected = []
    for layer in decoder.layers:
        attention = layer.multihead_attn
        heads = attention.num_heads
        _, w_k, w_v = attention.in_proj_weight.chunk(3)
        _, b_k, b_v = attention.in_proj_bias.chunk(3)
        projected.append(
            (
                _split_heads(functional.linear(memory, w_k, b_k), heads),
                _split_heads(functional.linear(memory, w_v, b_v), heads),
            )
        )
    return projected


class _CachedDecoder(ABC):
    """An nn.TransformerDecoder (post-norm, ReLU, no dropout) run one token at a time:
    the cross-attention keys and values of the scene tokens are projected once
    (memory_keys_values), each layer's self-attention ones are cached as the text grows.
    Subclasses keep that cache their way."""

    def __init__(self, decoder: nn.TransformerDecoder) -> None:
        self.layers = list(decoder.layers)
        if decoder.norm is not None or any(
            layer.norm_first or layer.activation is not functional.relu for layer in self.layers
        ):
            raise ValueError("a cached decoder replays post-norm ReLU layers without a final norm")
        self.heads = self.layers[0].self_attn.num_heads
        self.memory_kv: KeysValues = []

    @abstractmethod
    def _attend_self(self, index: int, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Layer `index`'s self-attention [B, heads, 1, D / heads] of the newest token's
        query over the tokens so far, given the newest's keys and values (cached here)."""

    def step(self, x: Tensor) -> Tensor:
        """Decoder output [B, 1, D] for the embedded newest token [B, 1, D]."""
        for index, layer in enumerate(self.layers):
            attention = layer.self_attn
            q, k, v = functional.linear(x, attention.in_proj_weight, attention.in_proj_bias).chunk(
                3, dim=-1
            )
            attended = self._attend_self(
                index,
                _split_heads(q, self.heads),
                _split_heads(k, self.heads),
                _split_heads(v, self.heads),
            )
            x = layer.norm1(x + _merge_heads(attention, attended))
            cross = layer.multihead_attn
            w_q, _, _ = cross.in_proj_weight.chunk(3)
            b_q, _, _ = cross.in_proj_bias.chunk(3)
            q = _split_heads(functional.linear(x, w_q, b_q), self.heads)
            attended = functional.scaled_dot_product_attention(q, *self.memory_kv[index])
            x = layer.norm2(x + _merge_heads(cross, attended))
            x = layer.norm3(x + layer.linear2(functional.relu(layer.linear1(x))))
        return x


def _merge_heads(attention: nn.MultiheadAttention, attended: Tensor) -> Tensor:
    """[B, heads, T, D / heads] -> the attention's output projection [B, T, D]."""
    b, _, t, _ = attended.shape
    return attention.out_proj(attended.transpose(1, 2).reshape(b, t, -1))


class DecoderCache(_CachedDecoder):
    """The self-attention keys and values grow by one token per step: any text length,
    any number of scene tokens (what the exported decoder step runs)."""

    def __init__(
        self,
        decoder: nn.TransformerDecoder,
        memory: Tensor | KeysValues,
        past: KeysValues | None = None,
    ) -> None:
        """`memory`: the scene tokens [B, N, D], or their keys and values as
        memory_keys_values gives them; `past`: the self-attention keys and values of the
        tokens so far (none: the text starts). An exported decoder step is given both."""
        super().__init__(decoder)
        self.memory_kv = (
            memory_keys_values(decoder, memory) if isinstance(memory, Tensor) else list(memory)
        )
        self.self_kv: list[tuple[Tensor, Tensor] | None] = (
            list(past) if past is not None else [None] * len(self.layers)
        )

    def _attend_self(self, index: int, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        cached = self.self_kv[index]
        if cached is not None:
            k, v = torch.cat([cached[0], k], dim=2), torch.cat([cached[1], v], dim=2)
        self.self_kv[index] = (k, v)
        return functional.scaled_dot_product_attention(q, k, v)


def _zero_pair(
    shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Keys and values of one attention, zero."""
    return (
        torch.zeros(shape, dtype=dtype, device=device),
        torch.zeros(shape, dtype=dtype, device=device),
    )


class FixedDecoderCache(_CachedDecoder):
    """Every tensor a step reads or writes is allocated once, at fixed shapes: the scene's
    keys and values (copied in by `start`), the newest ids, their text position, and the
    self-attention keys and values of up to max_text_tokens tokens, written in place at that
    position and read through a mask. So each step launches the same kernels on the same
    memory, which a CUDA graph can capture once and replay (model/cuda_graphs.py)."""

    def __init__(
        self,
        model: EmbeddedVla,
        batch: int,
        scene_tokens: int,
        device: torch.device,
    ) -> None:
        super().__init__(model.decoder)
        self.model = model
        dtype = model.position_embedding.dtype
        width = model.config.width
        per_head = (batch, self.heads, model.config.max_text_tokens, width // self.heads)
        scene = (batch, self.heads, scene_tokens, width // self.heads)
        self.self_kv = [_zero_pair(per_head, dtype, device) for _ in self.layers]
        self.memory_kv = [_zero_pair(scene, dtype, device) for _ in self.layers]
        self.ids = torch.zeros(batch, 1, dtype=torch.long, device=device)
        # One dimension, not none: indexing with a 0-d tensor reads it on the host (a wait,
        # which a CUDA graph cannot capture); with a 1-d one it is a kernel.
        self.position = torch.zeros(1, dtype=torch.long, device=device)
        self._slots = torch.arange(model.config.max_text_tokens, device=device)

    def start(self, memory_kv: KeysValues) -> None:
        """A new text over the scene whose keys and values these are (as
        memory_keys_values gives them). The self-attention entries of an earlier text
        need no clearing: the mask reads only positions written since."""
        for (keys, values), (new_keys, new_values) in zip(self.memory_kv, memory_kv, strict=True):
            if new_keys.shape != keys.shape or new_values.shape != values.shape:
                raise ValueError(
                    f"scene keys and values of shape {tuple(new_keys.shape)}: this cache "
                    f"holds {tuple(keys.shape)}"
                )
            keys.copy_(new_keys)
            values.copy_(new_values)

    def next_token_logits(self) -> Tensor:
        """Logits [B, V] of the token after `ids` at text `position` (set both first)."""
        return self.model.next_token_logits(self, self.ids, self.position)

    def _attend_self(self, index: int, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        keys, values = self.self_kv[index]
        keys.index_copy_(2, self.position, k)
        values.index_copy_(2, self.position, v)
        written = (self._slots <= self.position)[None]
        return functional.scaled_dot_product_attention(q, keys, values, attn_mask=written)


class EmbeddedVla(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.vocabulary:
            raise ValueError("model config has no vocabulary")
        self.config = config
        self.tokenizer = Tokenizer(config.vocabulary)
        d = config.width
        self.image_encoder = ImageEncoder(config.patch_size, config.cnn_channels, d)
        stride = self.image_encoder.stride
        grid = (config.image_height // stride, config.image_width // stride)
        self.spatial_embedding = nn.Parameter(torch.zeros(1, grid[0] * grid[1], d))
        self.camera_embedding = nn.Parameter(torch.zeros(config.cameras, 1, d))
        self.frame_embedding = nn.Parameter(torch.zeros(config.frames, d))
        self.temporal_attention = nn.MultiheadAttention(d, config.heads, batch_first=True)
        self.temporal_norm = nn.LayerNorm(d)
        self.ego_encoder = nn.Sequential(
            nn.Linear(config.history_poses * EGO_FEATURES, 2 * d), nn.GELU(), nn.Linear(2 * d, d)
        )
        self.fusion = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, config.heads, 2 * d, 0.0, batch_first=True),
            config.fusion_layers,
        )
        if config.scene_readout:
            channels = config.scene_readout
            self.readout_projection = nn.Linear(d, channels)
            self.readout = nn.Linear(config.cameras * grid[0] * grid[1] * channels, d)
            # Starts as no change, so weights from before it was added continue as they were.
            nn.init.zeros_(self.readout.weight)
            nn.init.zeros_(self.readout.bias)
        self.heads = nn.ModuleDict(
            {
                "longitudinal": nn.Linear(d, len(Longitudinal)),
                "lateral": nn.Linear(d, len(Lateral)),
                "longitudinal_decision": nn.Linear(d, len(LongitudinalDecision)),
                "lateral_decision": nn.Linear(d, len(LateralDecision)),
                "cause": nn.Linear(d, len(Cause)),
            }
        )
        # Where the cause is: a learned query over the scene tokens.
        self.cause_query = nn.Parameter(torch.zeros(1, 1, d))
        self.cause_attention = nn.MultiheadAttention(d, config.heads, batch_first=True)
        self.cause_locator = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, 3))
        # Reasoning decoder.
        self.token_embedding = nn.Embedding(len(self.tokenizer), d)
        self.position_embedding = nn.Parameter(torch.zeros(config.max_text_tokens, d))
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, config.heads, 2 * d, 0.0, batch_first=True),
            config.decoder_layers,
        )
        self.text_head = nn.Linear(d, len(self.tokenizer))
        # Action expert.
        self.condition_dim = d + len(Longitudinal) + len(Lateral)
        controls = config.horizon * 2
        hidden = config.expert_hidden
        self.expert = nn.Sequential(
            nn.Linear(controls + FLOW_TIME_DIM + self.condition_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, controls),
        )
        for parameter in (
            self.spatial_embedding,
            self.camera_embedding,
            self.frame_embedding,
            self.cause_query,
            self.position_embedding,
        ):
            nn.init.normal_(parameter, std=0.02)

    # --- vision-language half --------------------------------------------------------------

    def encode(
        self,
        images: Tensor,
        ego_xyz: Tensor,
        ego_rotations: Tensor,
        cameras: Tensor | None = None,
    ) -> Encoding:
        """images uint8 [B, C, F, H, W, 3]; ego history in the t0 frame [B, P, 3], [B, P, 3, 3].

        `cameras`: the rig slot of each of the C cameras (default: all, in order). A camera
        that is missing is left out of the scene tokens, not shown as black pixels: every
        later stage attends over the tokens there are, and the camera embeddings say which
        views those are (the model is trained with cameras dropped at random)."""
        b, c, f, h, w, _ = images.shape
        # Converted on the images' device, in the network's precision (the ego history's
        # features in float32 first: positions need more than 16 bits).
        dtype = self.spatial_embedding.dtype
        pixels = images.reshape(b * c * f, h, w, 3).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        features = self.image_encoder(pixels.to(dtype))  # [BCF, D, H/16, W/16]
        d = features.shape[1]
        tokens = features.flatten(2).transpose(1, 2) + self.spatial_embedding  # [BCF, S, D]
        s = tokens.shape[1]
        tokens = tokens.reshape(b, c, f, s, d) + self.frame_embedding[None, None, :, None]
        # Each spatial location of the newest frame attends over its camera's 4 frames.
        per_location = tokens.permute(0, 1, 3, 2, 4).reshape(b * c * s, f, d)
        newest = per_location[:, -1:]
        attended, _ = self.temporal_attention(newest, per_location, per_location)
        grid_tokens = self.temporal_norm(newest + attended).reshape(b, c, s, d)
        embedding = self.camera_embedding if cameras is None else self.camera_embedding[cameras]
        camera_tokens = grid_tokens + embedding[None]
        ego_inputs = ego_features(
            ego_xyz.float(), ego_rotations.float(), self.config.lateral_history
        ).flatten(1)
        ego = self.ego_encoder(ego_inputs.to(dtype))[:, None]
        fused = self.fusion(torch.cat([ego, camera_tokens.reshape(b, c * s, d)], dim=1))
        pooled = fused[:, 0]
        if self.config.scene_readout:
            pooled = pooled + self.read_grid(grid_tokens, cameras)
        return Encoding(tokens=fused, pooled=pooled)

    def read_grid(self, grid_tokens: Tensor, cameras: Tensor | None) -> Tensor:
        """[B, D] from every camera's tokens [B, C, S, D] by position: each camera at its rig
        slot, a missing one as zeros (a one-hot product, which exports as plain algebra)."""
        projected = self.readout_projection(grid_tokens)
        if cameras is not None:
            slots = nn.functional.one_hot(cameras, self.config.cameras).to(projected.dtype)
            projected = torch.einsum("bcsr,ck->bksr", projected, slots)
        return self.readout(projected.flatten(1))

    def classify(self, encoding: Encoding) -> Heads:
        return Heads(**{name: head(encoding.pooled) for name, head in self.heads.items()})

    def decision_outputs(self, encoding: Encoding) -> dict[str, Tensor]:
        """DECISION_OUTPUTS [B, n] each: all a decision needs, in one pass. The cause's
        position is computed whatever the cause, so nothing waits for the cause first."""
        heads = self.classify(encoding)
        return {
            **{name: getattr(heads, name) for name in HEAD_NAMES},
            "condition": self.condition(encoding, heads),
            "cause_position": self.locate_cause(encoding),
        }

    def read_scene(
        self,
        images: Tensor,
        ego_xyz: Tensor,
        ego_rotations: Tensor,
        cameras: Tensor | None = None,
    ) -> tuple[Tensor, KeysValues]:
        """All a backend needs of the inputs (as `encode` takes them): DECISION_OUTPUTS
        side by side [B, sum of their widths], so they come back to the host in one copy,
        and the scene's keys and values for the text decoder (memory_keys_values)."""
        encoding = self.encode(images, ego_xyz, ego_rotations, cameras)
        outputs = self.decision_outputs(encoding)
        packed = torch.cat([outputs[name] for name in DECISION_OUTPUTS], dim=-1)
        return packed, memory_keys_values(self.decoder, encoding.tokens)

    def decision_widths(self) -> list[int]:
        """The width of each of DECISION_OUTPUTS in read_scene's packed row."""
        layers = [*(self.heads[name] for name in HEAD_NAMES), self.cause_locator[-1]]
        widths = [layer.out_features for layer in layers if isinstance(layer, nn.Linear)]
        assert len(widths) == len(layers)  # each head and the locator end in a linear layer
        return [*widths[:-1], self.condition_dim, widths[-1]]

    def locate_cause(self, encoding: Encoding) -> Tensor:
        """Position [B, 3] in metres, in the ego frame at t0, of the object the decision is
        about; meaningful only when the cause is an object (core.decisions.OBJECT_CAUSES)."""
        query = self.cause_query.expand(encoding.pooled.shape[0], -1, -1)
        attended, _ = self.cause_attention(query, encoding.tokens, encoding.tokens)
        features = torch.cat([attended[:, 0], encoding.pooled], dim=-1)
        return self.cause_locator(features) * CAUSE_POSITION_SCALE

    def text_logits(self, encoding: Encoding, tokens: Tensor) -> Tensor:
        """Teacher-forced next-token logits [B, T, V] for input ids [B, T]."""
        t = tokens.shape[1]
        embedded = self.token_embedding(tokens) + self.position_embedding[:t]
        mask = torch.triu(torch.full((t, t), float("-inf"), device=tokens.device), diagonal=1)
        return self.text_head(self.decoder(embedded, encoding.tokens, tgt_mask=mask))

    def next_token_logits(
        self, cache: _CachedDecoder, ids: Tensor, position: int | Tensor
    ) -> Tensor:
        """Logits [B, V] of the token after the newest ids [B, 1] at text `position`,
        growing `cache` by them."""
        embedded = self.token_embedding(ids) + self.position_embedding[position]
        return self.text_head(cache.step(embedded))[:, -1]

    def text_step(self, memory: Tensor | KeysValues) -> TextStep:
        """greedy_decode's step over the scene's tokens [B, N, D] (Encoding.tokens) or
        their keys and values (memory_keys_values), its key/value cache empty."""
        cache = DecoderCache(self.decoder, memory)
        return lambda ids, position: self.next_token_logits(cache, ids, position)

    @torch.no_grad()
    def generate_text(self, encoding: Encoding) -> list[str]:
        """Greedy decoding until <eos> (or max_text_tokens) for every batch element.

        Incremental: each step feeds only the newest token and reuses the cached keys and
        values, which text_logits (training's teacher-forced pass) would recompute.
        """
        return greedy_decode(
            self.text_step(encoding.tokens),
            encoding.tokens.shape[0],
            self.tokenizer,
            self.config.max_text_tokens,
            encoding.tokens.device,
        )

    # --- action expert ---------------------------------------------------------------------

    def condition(self, encoding: Encoding, heads: Heads) -> Tensor:
        """The latent the action expert is conditioned on: scene plus intended meta-action
        (its probabilities: meta_action_probabilities)."""
        return torch.cat(
            [encoding.pooled, heads.longitudinal.softmax(-1), heads.lateral.softmax(-1)], dim=-1
        )

    def velocity(self, x: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        """Flow velocity for normalised controls x [B, 64, 2] at flow time t [B]."""
        inputs = torch.cat([x.flatten(1), sinusoidal(t, FLOW_TIME_DIM), condition], dim=-1)
        return self.expert(inputs).reshape(x.shape)

    def flow_matching_loss(self, condition: Tensor, controls: Tensor) -> Tensor:
        """Rectified-flow loss for target controls [B, 64, 2] (physical units)."""
        target = self.normalise(controls)
        noise = torch.randn_like(target)
        t = torch.rand(target.shape[0], device=target.device)
        x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * target
        return torch.mean((self.velocity(x_t, t, condition) - (target - noise)) ** 2)

    @torch.no_grad()
    def sample_controls(
        self, condition: Tensor, num_samples: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """K control sequences per condition: [B, K, 64, 2] in physical units."""
        b = condition.shape[0]
        velocity = self.velocity_field(condition, num_samples)
        controls = sample_flow(velocity, b * num_samples, self.config, generator, condition.device)
        return controls.reshape(b, num_samples, self.config.horizon, 2)

    def velocity_field(self, condition: Tensor, num_samples: int) -> Velocity:
        """`velocity` for the Euler steps of K samples per condition [B, C] (rows in
        sample_controls' order), with what every step shares computed once: the first
        layer's terms of the condition (per sample) and of the flow times (per step) are
        constants of the loop; only the controls' term changes. In the network's
        precision; the caller integrates in float32."""
        steps = self.config.flow_steps
        first = self.expert[0]
        assert isinstance(first, nn.Linear)  # the expert's input layer, split below
        w_controls, w_time, w_condition = first.weight.split(
            [self.config.horizon * 2, FLOW_TIME_DIM, self.condition_dim], dim=1
        )
        fixed = torch.addmm(first.bias, condition, w_condition.T)
        # Each row num_samples times in a row (repeat_interleave's order, without the
        # repeat counts it would copy to the device, which a CUDA graph cannot capture).
        fixed = fixed[:, None].expand(-1, num_samples, -1).reshape(-1, fixed.shape[-1])
        times = torch.arange(steps, device=condition.device) / steps
        per_step = sinusoidal(times, FLOW_TIME_DIM).to(w_time.dtype) @ w_time.T

        def velocity(x: Tensor, step: int) -> Tensor:
            hidden = torch.addmm(fixed + per_step[step], x.flatten(1).to(fixed.dtype), w_controls.T)
            return self.expert[1:](hidden).reshape(x.shape)

        return velocity

    def normalise(self, controls: Tensor) -> Tensor:
        return controls / control_scale(self.config, controls.device)

    def denormalise(self, x: Tensor) -> Tensor:
        return x * control_scale(self.config, x.device)


def meta_action_probabilities(condition: Array) -> tuple[Array, Array]:
    """The longitudinal and lateral meta-action probabilities in a condition [..., C]
    (a tensor or an array): its last entries."""
    lateral = condition.shape[-1] - len(Lateral)
    longitudinal = lateral - len(Longitudinal)
    return condition[..., longitudinal:lateral], condition[..., lateral:]


def control_scale(config: ModelConfig, device: torch.device) -> Tensor:
    """Physical units of one normalised (acceleration, curvature) unit."""
    return torch.tensor([config.acceleration_scale, config.curvature_scale], device=device)


def greedy_decode(
    step: TextStep,
    batch: int,
    tokenizer: Tokenizer,
    max_tokens: int,
    device: torch.device | None = None,
) -> list[str]:
    """Greedy decoding from <bos> until every row wrote <eos> (or max_tokens), through
    `step`: whatever computes the next-token logits (the network with its key/value
    cache, or its exported decoder step), so every runtime writes text the same way."""
    tokens = torch.full((batch, 1), tokenizer.bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    for position in range(max_tokens - 1):
        next_id = step(tokens[:, -1:], position).argmax(-1)
        next_id = torch.where(finished, tokenizer.pad_id, next_id)
        tokens = torch.cat([tokens, next_id[:, None]], dim=1)
        finished |= next_id == tokenizer.eos_id
        if bool(finished.all()):
            break
    return [tokenizer.decode(row.tolist()) for row in tokens]


def sample_flow(
    velocity: Velocity,
    rows: int,
    config: ModelConfig,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
    noise_scale: float = 1.0,
) -> Tensor:
    """`rows` control sequences [rows, horizon, 2] in physical units: flow_noise carried
    by the flow of `velocity`, whatever computes it (the network, or its exported flow
    step)."""
    noise = flow_noise(rows, config, generator, noise_scale).to(device)
    return integrate_flow(velocity, noise, config)


def flow_noise(
    rows: int, config: ModelConfig, generator: torch.Generator | None, noise_scale: float = 1.0
) -> Tensor:
    """Where the flow of `rows` samples starts [rows, horizon, 2]: noise drawn on the CPU
    from `generator` (the same samples on every device and runtime), scaled by
    `noise_scale`. A scale below 1 (a temperature) starts the flow nearer the middle of
    its noise, so the samples spread less about the plan the model finds most likely."""
    return noise_scale * torch.randn(rows, config.horizon, 2, generator=generator)


def integrate_flow(
    velocity: Velocity, noise: Tensor, config: ModelConfig, scale: Tensor | None = None
) -> Tensor:
    """The controls [rows, horizon, 2] in physical units that the flow carries `noise` to:
    Euler-integrated in float32 from flow time 0 to 1 in the config's steps. `scale`:
    control_scale on the noise's device, made beforehand (a CUDA graph cannot copy it up
    from the host while it is captured)."""
    x = noise
    steps = config.flow_steps
    for step in range(steps):
        x = x + velocity(x, step) / steps
    return x * (control_scale(config, x.device) if scale is None else scale)
