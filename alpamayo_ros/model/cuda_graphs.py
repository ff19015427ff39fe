"""The embedded VLA's three hot parts as CUDA graphs.

At the embedded model's size a CUDA device waits on the host: each of the scene's, the
decoder step's and the flow's hundred or so small kernels costs a launch, and the text
decoder launches its step once per token. A CUDA graph launches a captured sequence of
kernels at once; it needs every tensor it reads or writes at a fixed address and shape,
so each part here runs over buffers it owns, its inputs copied in and its outputs read
out after each replay:

- the scene: the images, the ego history -> the decision outputs and the scene's keys
  and values for the text (one graph per camera set seen);
- one decoder step over a FixedDecoderCache (one graph per scene size: a camera set);
- the whole Euler integration of the flow (one graph per number of samples).

Without `capture` (a CPU) the same parts run eagerly over the same buffers, which is how
the tests here check them against the model's own paths; captured on a CUDA device,
they replay those kernels on those buffers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import torch
from torch import Tensor

from alpamayo_ros.model.network import (
    EmbeddedVla,
    FixedDecoderCache,
    KeysValues,
    control_scale,
    greedy_decode,
    integrate_flow,
)
from alpamayo_ros.model.tokenizer import Tokenizer

Outputs = TypeVar("Outputs")
Key = TypeVar("Key", bound=Hashable)
Part = TypeVar("Part")
# Runs before capture so lazily initialised state (cuBLAS handles, workspaces) exists.
WARM_UP_RUNS = 2


class Replay(Generic[Outputs]):
    """`run`, a function of tensors it reads and writes in place, run again on each call:
    captured as a CUDA graph with `capture` (on the current CUDA device), eagerly
    without. The outputs are the same tensors every call, valid until the next one."""

    def __init__(self, run: Callable[[], Outputs], capture: bool) -> None:
        self._run = run
        self._graph: torch.cuda.CUDAGraph | None = None
        if not capture:
            return
        # Warmed up and captured on a side stream, as CUDA graph capture requires; the
        # capture's errors are this thread's own (another thread's work may go on).
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARM_UP_RUNS):
                run()
        torch.cuda.current_stream().wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph, capture_error_mode="thread_local"):
            self._outputs = run()

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def __call__(self) -> Outputs:
        if self._graph is None:
            return self._run()
        self._graph.replay()
        return self._outputs


class _Parts(Generic[Key, Part]):
    """One part per key (a shape), made on first use and kept; a lock per kind of part,
    held from filling its inputs to reading its outputs."""

    def __init__(self, make: Callable[[Key], Part]) -> None:
        self._make = make
        self._parts: dict[Key, Part] = {}
        self.lock = threading.Lock()

    def get(self, key: Key) -> Part:
        """Call with the lock held."""
        if key not in self._parts:
            self._parts[key] = self._make(key)
        return self._parts[key]

    def __len__(self) -> int:
        return len(self._parts)


class _Scene:
    """The scene part of one camera set: images, ego history -> read_scene's outputs."""

    def __init__(self, model: EmbeddedVla, cameras: Tensor | None, capture: bool) -> None:
        config = model.config
        count = config.cameras if cameras is None else len(cameras)
        device = model.spatial_embedding.device
        shape = (1, count, config.frames, config.image_height, config.image_width, 3)
        self.images = torch.zeros(shape, dtype=torch.uint8, device=device)
        self.ego_xyz = torch.zeros(1, config.history_poses, 3, device=device)
        # Identity rotations: a zero history would make the warm-up's features NaN.
        self.ego_rotations = torch.eye(3, device=device).repeat(1, config.history_poses, 1, 1)
        self.replay = Replay(
            lambda: model.read_scene(self.images, self.ego_xyz, self.ego_rotations, cameras),
            capture,
        )


class _Flow:
    """The flow part of one number of samples: condition, noise -> controls (physical)."""

    def __init__(self, model: EmbeddedVla, rows: int, capture: bool) -> None:
        config = model.config
        device = model.spatial_embedding.device
        dtype = model.spatial_embedding.dtype
        self.condition = torch.zeros(1, model.condition_dim, dtype=dtype, device=device)
        self.noise = torch.zeros(rows, config.horizon, 2, device=device)
        scale = control_scale(config, device)

        def run() -> Tensor:
            velocity = model.velocity_field(self.condition, rows)
            return integrate_flow(velocity, self.noise, config.flow_steps) * scale

        self.replay = Replay(run, capture)


class GraphedVla:
    """The network's parts for a backend (batch 1), each replayed from its buffers."""

    def __init__(self, model: EmbeddedVla, capture: bool) -> None:
        """`capture`: as CUDA graphs (the model is on a CUDA device); else eagerly."""
        self.model = model
        self.capture = capture
        self._scenes: _Parts[tuple[int, ...] | None, _Scene] = _Parts(self._scene)
        self._decoders: _Parts[int, tuple[FixedDecoderCache, Replay[Tensor]]] = _Parts(
            self._decoder
        )
        self._flows: _Parts[int, _Flow] = _Parts(self._flow)

    @torch.no_grad()
    def prepare(self) -> None:
        """Makes (captures) the full rig's scene and decoder step now, at start-up, so
        the first input does not wait for them."""
        with self._scenes.lock:
            _, memory = self._scenes.get(None).replay()
            scene_tokens = memory[0][0].shape[2]
        with self._decoders.lock:
            self._decoders.get(scene_tokens)

    @torch.no_grad()
    def read_scene(
        self,
        images: Tensor,
        ego_xyz: Tensor,
        ego_rotations: Tensor,
        cameras: tuple[int, ...] | None,
    ) -> tuple[Tensor, KeysValues]:
        """As EmbeddedVla.read_scene for one input (batch 1; `cameras` the rig slots, None
        for all), the decision outputs on the host in float32 and the keys and values
        copied out of the part's buffers (a text may be written after the next scene)."""
        with self._scenes.lock:
            scene = self._scenes.get(cameras)
            scene.images.copy_(images, non_blocking=True)
            scene.ego_xyz.copy_(ego_xyz, non_blocking=True)
            scene.ego_rotations.copy_(ego_rotations, non_blocking=True)
            packed, memory = scene.replay()
            memory = [(keys.clone(), values.clone()) for keys, values in memory]
            return packed[0].float().cpu(), memory

    @torch.no_grad()
    def write_text(self, memory: KeysValues, tokenizer: Tokenizer, max_tokens: int) -> str:
        """Greedy decoding over the scene's keys and values, a replay per token."""
        with self._decoders.lock:
            cache, replay = self._decoders.get(memory[0][0].shape[2])
            cache.start(memory)

            def step(ids: Tensor, position: int) -> Tensor:
                cache.ids.copy_(ids)
                cache.position.fill_(position)
                return replay()

            return greedy_decode(step, 1, tokenizer, max_tokens, cache.ids.device)[0]

    @torch.no_grad()
    def sample_flow(self, condition: Tensor, noise: Tensor) -> Tensor:
        """The controls [rows, horizon, 2] the flow carries `noise` [rows, horizon, 2] to,
        conditioned on `condition` [1, C], on the host."""
        with self._flows.lock:
            flow = self._flows.get(noise.shape[0])
            flow.condition.copy_(condition, non_blocking=True)
            flow.noise.copy_(noise, non_blocking=True)
            return flow.replay().cpu()

    def parts(self) -> dict[str, int]:
        """How many of each part exist (captured, with `capture`)."""
        return {
            "scene": len(self._scenes),
            "decoder": len(self._decoders),
            "flow": len(self._flows),
        }

    def _scene(self, cameras: tuple[int, ...] | None) -> _Scene:
        device = self.model.spatial_embedding.device
        slots = None if cameras is None else torch.tensor(cameras, device=device)
        return _Scene(self.model, slots, self.capture)

    def _decoder(self, scene_tokens: int) -> tuple[FixedDecoderCache, Replay[Tensor]]:
        device = self.model.spatial_embedding.device
        cache = FixedDecoderCache(self.model, 1, scene_tokens, device)
        return cache, Replay(cache.next_token_logits, self.capture)

    def _flow(self, rows: int) -> _Flow:
        return _Flow(self.model, rows, self.capture)
