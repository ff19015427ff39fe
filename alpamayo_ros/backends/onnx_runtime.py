"""The embedded VLA in ONNX Runtime: its exported parts (model.export), run by sessions on
the CPU execution provider, or the CUDA one (device cuda).

Everything around the parts is EmbeddedModelBackend's, so the decisions, texts and samples
are the PyTorch backend's (within float rounding: the same decoding loop, integration and
noise). Without exported files given it exports the weights once, on first use, into a
cache folder named by the weights' SHA-256 ($XDG_CACHE_HOME or ~/.cache, under
alpamayo_ros/onnx/).

The parts run through I/O bindings: what the next run reads stays where the provider
computes it. The scene's keys and values for the text, and the decoder's growing
key/value cache, stay on the device (on the CUDA provider, on the GPU); only the inputs
from the host go up, and only what the host reads (the decision outputs, each token's
logits, the flow's velocity) comes back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime
import torch

from alpamayo_ros.backends import BackendOptionError, parse_device
from alpamayo_ros.backends.embedded import EmbeddedModelBackend, Readout
from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.model_io import VlaInput
from alpamayo_ros.model.export import (
    DECODER_STEP,
    FLOW_STEP,
    SCENE,
    SIGNATURES,
    Manifest,
    OnnxFilesError,
    export_onnx,
    file_sha256,
    read_manifest,
)
from alpamayo_ros.model.network import DECISION_OUTPUTS, TextStep, Velocity
from alpamayo_ros.model.weights import PACKAGED_WEIGHTS, read_metadata

# The decoder's cross-attention keys and values of one input's scene [layers, 1, heads, N, d],
# where the provider keeps them.
MemoryKeysValues = tuple[onnxruntime.OrtValue, onnxruntime.OrtValue]
CUDA_PROVIDER = "CUDAExecutionProvider"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "alpamayo_ros" / "onnx"


def cached_export(weights_file: Path, weights_sha256: str) -> Manifest:
    """The export of `weights_file` in the cache, made when it is not there (or made
    again when damaged or of an older export format). Written into a folder of its own and
    moved into place in one step, so processes starting together (the VLA and planner
    nodes) never read a half-written export; the first one in place is kept."""
    directory = cache_root() / weights_sha256
    try:
        return read_manifest(directory, weights_sha256)
    except OnnxFilesError:
        pass
    directory.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{weights_sha256[:12]}-", dir=directory.parent))
    try:
        export_onnx(weights_file, fresh)
        try:
            return read_manifest(directory, weights_sha256)  # another process was faster
        except OnnxFilesError:
            _set_aside(directory)
        fresh.rename(directory)
    except OSError:
        pass  # another process put its export in place meanwhile
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return read_manifest(directory, weights_sha256)


def _set_aside(directory: Path) -> None:
    """Remove a damaged or outdated export, first moving it out of the way in one step."""
    if directory.exists():
        trash = Path(tempfile.mkdtemp(prefix=".stale-", dir=directory.parent))
        directory.rename(trash / directory.name)
        shutil.rmtree(trash, ignore_errors=True)


def providers(device: str) -> list[str | tuple[str, dict[str, str]]]:
    """ONNX Runtime's execution providers for the device option."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    available = onnxruntime.get_available_providers()
    if CUDA_PROVIDER not in available:
        raise BackendOptionError(
            f"device {device!r}: this onnxruntime {onnxruntime.__version__} has no CUDA "
            f"execution provider (it has {', '.join(available)}; install onnxruntime-gpu), "
            "or set device to cpu"
        )
    return [(CUDA_PROVIDER, {"device_id": str(index)}), "CPUExecutionProvider"]


class OnnxVlaBackend(EmbeddedModelBackend[MemoryKeysValues]):
    """`onnx_dir`: a folder export_onnx wrote from these weights; empty: the cache's."""

    name = "embedded_vla_onnx"

    def __init__(
        self,
        weights_file: str = "",
        cpu_threads: int = 0,
        device: str = "cpu",
        precision: str = "fp32",
        onnx_dir: str = "",
    ) -> None:
        weights = Path(weights_file) if weights_file else PACKAGED_WEIGHTS
        read_metadata(weights)  # an embedded VLA weights file, or a WeightsError saying why
        weights_sha256 = file_sha256(weights)
        execution_providers = self._execution_providers(device, precision, weights_sha256)
        manifest = (
            read_manifest(Path(onnx_dir), weights_sha256)
            if onnx_dir
            else cached_export(weights, weights_sha256)
        )
        super().__init__(manifest.config, manifest.model_version, cpu_threads)
        # Where outputs that the next run reads are kept (bind_output's device).
        self._kept_on = parse_device(device)
        # Only the scene (16 images) is worth splitting over threads: a decoder or flow
        # step is too small to gain from a thread pool's hand-offs (measured on 2 cores).
        threads = {SCENE: cpu_threads, DECODER_STEP: 1, FLOW_STEP: 1}
        self.sessions = {
            part: _session(manifest, part, _options(threads[part]), execution_providers)
            for part in SIGNATURES
        }
        # The flow time of each Euler step, as the network computes them.
        steps = self.config.flow_steps
        self._flow_times = (torch.arange(steps) / steps).numpy()

    def _execution_providers(
        self, device: str, precision: str, weights_sha256: str
    ) -> list[str | tuple[str, dict[str, str]]]:
        """The providers the sessions run on, for these options and weights."""
        if precision != "fp32":
            raise BackendOptionError(
                f"precision {precision!r}: the ONNX export is fp32; the embedded_vla backend "
                "runs bf16 and fp16"
            )
        return providers(device)

    def _read_scene(self, inputs: VlaInput) -> tuple[Readout, MemoryKeysValues]:
        slots = np.array([CAMERA_ORDER.index(name) for name in inputs.cameras], np.int64)
        binding = self.sessions[SCENE].io_binding()
        binding.bind_cpu_input("images", np.ascontiguousarray(inputs.images))
        binding.bind_cpu_input("cameras", slots)
        binding.bind_cpu_input("ego_xyz", inputs.ego_xyz.astype(np.float32))
        binding.bind_cpu_input("ego_rotations", inputs.ego_rotations.astype(np.float32))
        for name in DECISION_OUTPUTS:
            binding.bind_output(name, "cpu")
        for name in ("memory_keys", "memory_values"):
            binding.bind_output(name, *self._kept_on)
        self.sessions[SCENE].run_with_iobinding(binding)
        *decision, keys, values = binding.get_outputs()
        readout = {
            name: output.numpy()[0] for name, output in zip(DECISION_OUTPUTS, decision, strict=True)
        }
        return readout, (keys, values)

    def _text_step(self, scene: MemoryKeysValues) -> TextStep:
        keys, values = scene
        session = self.sessions[DECODER_STEP]
        layers, batch, heads, _, width = keys.shape()
        nothing_yet = np.zeros((layers, batch, heads, 0, width), np.float32)
        past: list[onnxruntime.OrtValue] = []

        def step(ids: torch.Tensor, position: int) -> torch.Tensor:
            binding = session.io_binding()
            binding.bind_cpu_input("token", ids.numpy())
            binding.bind_cpu_input("position", np.array(position, np.int64))
            binding.bind_ortvalue_input("memory_keys", keys)
            binding.bind_ortvalue_input("memory_values", values)
            for name, index in (("past_keys", 0), ("past_values", 1)):
                if past:
                    binding.bind_ortvalue_input(name, past[index])
                else:
                    binding.bind_cpu_input(name, nothing_yet)
            binding.bind_output("logits", "cpu")
            binding.bind_output("present_keys", *self._kept_on)
            binding.bind_output("present_values", *self._kept_on)
            session.run_with_iobinding(binding)
            logits, *present = binding.get_outputs()
            past[:] = present
            return torch.from_numpy(logits.numpy())

        return step

    def _velocity(self, latent: npt.NDArray[np.float32], num_samples: int) -> Velocity:
        session = self.sessions[FLOW_STEP]
        condition = np.repeat(latent.astype(np.float32)[None], num_samples, axis=0)
        times = np.repeat(self._flow_times[:, None], num_samples, axis=1)

        def velocity(x: torch.Tensor, step: int) -> torch.Tensor:
            feed = {"x": x.numpy(), "t": times[step], "condition": condition}
            (result,) = session.run(None, feed)
            return torch.from_numpy(result)

        return velocity


def _options(threads: int) -> onnxruntime.SessionOptions:
    """`threads` 0: ONNX Runtime's default. Idle workers sleep rather than spin: each
    session has its own pool, and spinning ones take the cores from the session running
    and from the other nodes."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _session(
    manifest: Manifest,
    part: str,
    options: onnxruntime.SessionOptions,
    execution_providers: list[str | tuple[str, dict[str, str]]],
) -> onnxruntime.InferenceSession:
    path = manifest.path(part)
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=execution_providers)
    except Exception as error:  # onnxruntime raises its own, untyped, exceptions
        raise OnnxFilesError(f"{path}: ONNX Runtime cannot load it ({error})") from None
    inputs, outputs = SIGNATURES[part]
    given = (
        tuple(node.name for node in session.get_inputs()),
        tuple(node.name for node in session.get_outputs()),
    )
    if given != (inputs, outputs):
        raise OnnxFilesError(
            f"{path}: takes {given[0]} and gives {given[1]}, not the {part} graph's "
            f"{inputs} and {outputs}"
        )
    return session
