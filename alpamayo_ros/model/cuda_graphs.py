"""The embedded VLA's three hot parts as CUDA graphs.

At the embedded model's size a CUDA device waits on the host: each of the scene's, the
decoder step's and the flow's hundred or so small kernels costs a launch, and the text
decoder launches its step once per token. A CUDA graph launches a captured sequence of
kernels at once; it needs every tensor it reads or writes at a fixed address and shape,
so each part here runs over buffers it owns, its inputs copied in (from the host through
pinned twins, without waiting) and its outputs read out after each replay:

- the scene: the images, the ego history -> the decision outputs and the scene's keys
  and values for the text (one graph per camera set seen);
- one decoder step over a FixedDecoderCache (one graph per scene size: a camera set);
- the whole Euler integration of the flow (one graph per number of samples).

Without a CUDA device the same parts run eagerly over the same buffers, which is how the
tests here check them against the model's own paths; on one, they are captured once and
replayed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
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
# One capture at a time in the process: a capture synchronises the device and must see
# only its own kernels on its stream.
_CAPTURING = threading.Lock()


class Replay(Generic[Outputs]):
    """`run`, a function of tensors it reads and writes in place, run again on each call:
    on a CUDA `device`, captured once as a CUDA graph there and replayed; else (None) run
    eagerly. Read the outputs before the next call: they are the same tensors every time,
    overwritten by each call (run eagerly too, so that a caller who keeps them past the
    next call fails its tests here as it would on a device)."""

    def __init__(self, run: Callable[[], Outputs], device: torch.device | None) -> None:
        self._run = run
        self._device = device
        self._graph: torch.cuda.CUDAGraph | None = None
        self._outputs: Outputs | None = None
        if device is None:
            return
        with _CAPTURING, torch.cuda.device(device):
            # Warmed up, then captured, on a stream of its own, as capture requires; its
            # errors are this thread's (another thread's work may go on meanwhile).
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(WARM_UP_RUNS):
                    run()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
                self._outputs = run()
            self._graph = graph

    def __call__(self) -> Outputs:
        if self._graph is None:
            outputs = self._run()
            if self._outputs is None:
                self._outputs = outputs
            else:
                _copy_into(self._outputs, outputs)
            return self._outputs
        with torch.cuda.device(self._device):
            self._graph.replay()
        assert self._outputs is not None  # captured with the graph
        return self._outputs


def _copy_into(kept: object, new: object) -> None:
    """Copies each tensor of `new` into its place in `kept` (tensors, nested in tuples and
    lists, of the same structure)."""
    if isinstance(kept, Tensor) and isinstance(new, Tensor):
        kept.copy_(new)
    elif isinstance(kept, tuple | list) and isinstance(new, tuple | list):
        for mine, theirs in zip(kept, new, strict=True):
            _copy_into(mine, theirs)
    else:
        raise TypeError(f"outputs of another structure: {type(kept)} and {type(new)}")


class _Input:
    """A part's input buffer on the device, filled from the host: on a CUDA device through
    a pinned twin without waiting. The part's outputs are read back (a wait) before its
    lock is let go, so the twin is free again by the next fill."""

    def __init__(self, name: str, like: Tensor) -> None:
        self.name = name
        self.tensor = like
        self._pinned = (
            torch.empty(like.shape, dtype=like.dtype).pin_memory()
            if like.device.type == "cuda"
            else None
        )

    def fill(self, host: Tensor) -> None:
        """Copies `host` (its own shape, any dtype) in; a tensor of another shape is
        refused, not broadcast."""
        if host.shape != self.tensor.shape:
            raise ValueError(
                f"{self.name} of shape {tuple(host.shape)}: this part takes "
                f"{tuple(self.tensor.shape)}"
            )
        if self._pinned is None:
            self.tensor.copy_(host)
            return
        self._pinned.copy_(host)
        self.tensor.copy_(self._pinned, non_blocking=True)


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

    def __init__(
        self, model: EmbeddedVla, slots: tuple[int, ...] | None, graph: torch.device | None
    ) -> None:
        config = model.config
        device = model.spatial_embedding.device
        count = config.cameras if slots is None else len(slots)
        shape = (1, count, config.frames, config.image_height, config.image_width, 3)
        self.images = _Input("images", torch.zeros(shape, dtype=torch.uint8, device=device))
        poses = config.history_poses
        self.ego_xyz = _Input("ego_xyz", torch.zeros(1, poses, 3, device=device))
        # A car standing at the origin, heading along x, until the first input.
        rotations = torch.eye(3, device=device).repeat(1, poses, 1, 1)
        self.ego_rotations = _Input("ego_rotations", rotations)
        cameras = None if slots is None else torch.tensor(slots, device=device)
        self.replay = Replay(
            lambda: model.read_scene(
                self.images.tensor, self.ego_xyz.tensor, self.ego_rotations.tensor, cameras
            ),
            graph,
        )


class _Flow:
    """The flow part of one number of samples: condition, noise -> controls (physical)."""

    def __init__(self, model: EmbeddedVla, rows: int, graph: torch.device | None) -> None:
        config = model.config
        device = model.spatial_embedding.device
        dtype = model.spatial_embedding.dtype
        self.condition = _Input(
            "condition", torch.zeros(1, model.condition_dim, dtype=dtype, device=device)
        )
        self.noise = _Input("noise", torch.zeros(rows, config.horizon, 2, device=device))
        scale = control_scale(config, device)

        def run() -> Tensor:
            velocity = model.velocity_field(self.condition.tensor, rows)
            return integrate_flow(velocity, self.noise.tensor, config, scale)

        self.replay = Replay(run, graph)


class GraphedVla:
    """The network's parts for a backend (batch 1), each replayed from its buffers: as
    CUDA graphs where the model is on a CUDA device, eagerly elsewhere."""

    def __init__(self, model: EmbeddedVla) -> None:
        self.model = model
        self.device = model.spatial_embedding.device
        self._graph = self.device if self.device.type == "cuda" else None
        self._scenes: _Parts[tuple[int, ...] | None, _Scene] = _Parts(self._scene)
        self._decoders: _Parts[int, tuple[FixedDecoderCache, Replay[Tensor]]] = _Parts(
            self._decoder
        )
        self._flows: _Parts[int, _Flow] = _Parts(self._flow)

    @torch.no_grad()
    def prepare(self) -> None:
        """Makes (captures) the full rig's scene and decoder step now, at start-up, so
        the first input does not wait for them."""
        with self._on_device(), self._scenes.lock:
            _, memory = self._scenes.get(None).replay()
            scene_tokens = memory[0][0].shape[2]
        with self._on_device(), self._decoders.lock:
            self._decoders.get(scene_tokens)

    @torch.no_grad()
    def read_scene(
        self,
        images: Tensor,
        ego_xyz: Tensor,
        ego_rotations: Tensor,
        slots: tuple[int, ...] | None,
    ) -> tuple[Tensor, KeysValues]:
        """As EmbeddedVla.read_scene for one input on the host (batch 1; `slots`: the rig
        slot of each camera, None for all): the decision outputs on the host in float32,
        and the scene's keys and values copied out of the part's buffers (its text may be
        written after the next input's scene)."""
        with self._on_device(), self._scenes.lock:
            scene = self._scenes.get(slots)
            scene.images.fill(images)
            scene.ego_xyz.fill(ego_xyz)
            scene.ego_rotations.fill(ego_rotations)
            packed, memory = scene.replay()
            memory = [(keys.clone(), values.clone()) for keys, values in memory]
            return packed[0].float().cpu(), memory

    @torch.no_grad()
    def write_text(self, memory: KeysValues, tokenizer: Tokenizer, max_tokens: int) -> str:
        """Greedy decoding over the scene's keys and values, a replay per token."""
        with self._on_device(), self._decoders.lock:
            cache, replay = self._decoders.get(memory[0][0].shape[2])
            cache.start(memory)

            def step(ids: Tensor, position: int) -> Tensor:
                cache.ids.copy_(ids)
                cache.position.fill_(position)
                return replay()

            return greedy_decode(step, 1, tokenizer, max_tokens, self.device)[0]

    @torch.no_grad()
    def sample_flow(self, condition: Tensor, noise: Tensor) -> Tensor:
        """The controls [rows, horizon, 2] (physical units, on the host) the flow
        conditioned on `condition` [1, C] carries `noise` [rows, horizon, 2] to, both on
        the host."""
        with self._on_device(), self._flows.lock:
            flow = self._flows.get(noise.shape[0])
            flow.condition.fill(condition)
            flow.noise.fill(noise)
            return flow.replay().cpu()

    def parts(self) -> dict[str, int]:
        """How many of each part exist (captured, on a CUDA device)."""
        return {
            "scene": len(self._scenes),
            "decoder": len(self._decoders),
            "flow": len(self._flows),
        }

    @contextlib.contextmanager
    def _on_device(self) -> Iterator[None]:
        """The model's CUDA device as the current one (cuda:N, whatever the thread's)."""
        if self._graph is None:
            yield
            return
        with torch.cuda.device(self._graph):
            yield

    def _scene(self, slots: tuple[int, ...] | None) -> _Scene:
        return _Scene(self.model, slots, self._graph)

    def _decoder(self, scene_tokens: int) -> tuple[FixedDecoderCache, Replay[Tensor]]:
        cache = FixedDecoderCache(self.model, 1, scene_tokens, self.device)
        return cache, Replay(cache.next_token_logits, self._graph)

    def _flow(self, rows: int) -> _Flow:
        return _Flow(self.model, rows, self._graph)
