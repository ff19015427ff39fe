"""The embedded VLA backend: the small trained model that ships with the package.

Runs with PyTorch on a CPU or a CUDA device, in fp32, bf16 or (CUDA only) fp16. The latent
it hands to the planner is the action expert's condition vector, so the planner node
samples from exactly what the VLA node saw; the planning step integrates, ranks and checks
the samples like any backend's.

What makes the model's outputs a decision, a text and trajectories lives once, in
EmbeddedModelBackend, for every runtime of the model (PyTorch here, ONNX Runtime in
onnx_runtime.py): they differ only in what computes the parts (the scene, one decoder
step, the flow velocity).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt
import torch

from alpamayo_ros.backends import BackendOptionError, parse_device
from alpamayo_ros.core.contract import CAMERA_ORDER, TRAJECTORY_DT_S
from alpamayo_ros.core.decisions import (
    OBJECT_CAUSES,
    Cause,
    LateralDecision,
    LongitudinalDecision,
)
from alpamayo_ros.core.kinematics import estimate_ego_state
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.core.model_io import (
    CausalDecision,
    ControlSamples,
    MetaActionEstimate,
    PlannerInput,
    ReasoningOutput,
    VlaInput,
)
from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.cuda_graphs import GraphedVla
from alpamayo_ros.model.network import (
    DECISION_OUTPUTS,
    KeysValues,
    TextStep,
    Velocity,
    flow_noise,
    greedy_decode,
    integrate_flow,
    meta_action_probabilities,
)
from alpamayo_ros.model.tokenizer import Tokenizer
from alpamayo_ros.model.weights import PACKAGED_WEIGHTS, load_weights
from alpamayo_ros.pipeline.backend import Backend, Decided

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Whatever a runtime keeps of one input's scene to write its text from.
Scene = TypeVar("Scene")
Readout = Mapping[str, npt.NDArray[np.float32]]


def torch_device(device: str) -> torch.device:
    """The device option as a torch device this machine has."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA"
        raise BackendOptionError(
            f"device {device!r}: no CUDA device is usable here (torch {torch.__version__}, "
            f"built with {build}); set device to cpu"
        )
    if index >= torch.cuda.device_count():
        raise BackendOptionError(
            f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return torch.device(kind, index)


def torch_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The precision option as a dtype that `device` runs well."""
    if precision not in DTYPES:
        raise BackendOptionError(f"precision {precision!r} is not one of {', '.join(DTYPES)}")
    if precision == "fp16" and device.type == "cpu":
        raise BackendOptionError(
            "precision 'fp16' is for CUDA devices (CPU kernels in half precision are slow "
            "or missing); on a CPU use bf16 or fp32"
        )
    return DTYPES[precision]


class EmbeddedModelBackend(Backend, Generic[Scene]):
    """The embedded VLA whatever runs it: the decision from the scene's outputs, the text
    by greedy decoding, the action expert's samples by Euler integration of its flow from
    noise the planner's generator draws. A runtime supplies the parts."""

    accepts_missing_cameras = True  # trained with cameras dropped (training.dropped_cameras)
    # Where the loops run and the noise goes: the parts take and give tensors there.
    loop_device = torch.device("cpu")

    def __init__(self, config: ModelConfig, version: str, cpu_threads: int) -> None:
        if cpu_threads > 0:
            torch.set_num_threads(cpu_threads)
        self.config = config
        self.version = version
        self.tokenizer = Tokenizer(config.vocabulary)
        self.image_size = (config.image_width, config.image_height)
        self.stage_ms = {}

    @abstractmethod
    def _read_scene(self, inputs: VlaInput) -> tuple[Readout, Scene]:
        """DECISION_OUTPUTS of the one input, on the host, without a batch axis; and what
        the text decoder needs of the scene."""

    @abstractmethod
    def _text_step(self, scene: Scene) -> TextStep:
        """A decoder step over the scene, with an empty key/value cache."""

    @abstractmethod
    def _velocity(self, latent: npt.NDArray[np.float32], num_samples: int) -> Velocity:
        """The flow velocity of `num_samples` rows conditioned on the latent."""

    def _flow(self, latent: npt.NDArray[np.float32], noise: torch.Tensor) -> torch.Tensor:
        """The controls [rows, horizon, 2] (physical units, on the host) the flow
        conditioned on the latent carries `noise` (on the host) to."""
        velocity = self._velocity(latent, noise.shape[0])
        return integrate_flow(velocity, noise.to(self.loop_device), self.config).cpu()

    @torch.no_grad()
    def decide(self, inputs: VlaInput) -> Decided:
        """Heads, cause and the action expert's condition; the reasoning text is written
        afterwards from the same scene (the condition does not read it)."""
        started = time.perf_counter()
        state = estimate_ego_state(inputs.ego_xyz, inputs.ego_rotations, dt=TRAJECTORY_DT_S)
        outputs, scene = self._read_scene(inputs)
        condition = outputs["condition"].astype(np.float32)
        longitudinal, lateral = meta_action_probabilities(condition)
        meta_action = MetaActionEstimate(
            longitudinal=Longitudinal(int(longitudinal.argmax())),
            lateral=Lateral(int(lateral.argmax())),
            longitudinal_probabilities=longitudinal.copy(),
            lateral_probabilities=lateral.copy(),
        )
        cause = Cause(int(outputs["cause"].argmax()))
        decision = CausalDecision(
            text="",
            longitudinal_decision=LongitudinalDecision(
                int(outputs["longitudinal_decision"].argmax())
            ),
            lateral_decision=LateralDecision(int(outputs["lateral_decision"].argmax())),
            cause=cause,
            **self._cause_object(cause, outputs["cause_position"]),
        )
        self.stage_ms = {"encode, heads, cause locator": (time.perf_counter() - started) * 1e3}
        return Decided(
            ReasoningOutput(decision, PlannerInput(state, meta_action, condition)),
            write_text=lambda: self._write_text(scene),
        )

    @torch.no_grad()
    def _write_text(self, scene: Scene) -> str:
        step = self._text_step(scene)
        return greedy_decode(
            step, 1, self.tokenizer, self.config.max_text_tokens, self.loop_device
        )[0]

    @staticmethod
    def _cause_object(cause: Cause, position: npt.NDArray[np.float32]) -> dict[str, object]:
        """The object the decision refers to. The model has no object tracks, so its id is
        the cause's name ("pedestrian"); no object, no id and no position."""
        if cause not in OBJECT_CAUSES:
            return {}
        x, y, z = position.tolist()
        return {"cause_object_id": cause.name.lower(), "cause_object_position": (x, y, z)}

    @torch.no_grad()
    def sample_controls(
        self,
        conditioning: PlannerInput,
        num_samples: int,
        rng: np.random.Generator,
        noise_scale: float = 1.0,
    ) -> ControlSamples:
        """K flow-matching samples of the action expert, conditioned on the latent."""
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        noise = flow_noise(num_samples, self.config, generator, noise_scale)
        host = self._flow(conditioning.latent, noise).numpy()
        return ControlSamples(host[..., 0].astype(np.float64), host[..., 1].astype(np.float64))


class EmbeddedVlaBackend(EmbeddedModelBackend[KeysValues]):
    """The model in PyTorch, on `device` in `precision`.

    On a CUDA device, with `cuda_graphs` (the default), the scene, each decoder step and
    the flow's integration are CUDA graphs (model/cuda_graphs.py), each one launch
    instead of a launch per kernel: the full rig's are captured at start-up, another
    camera set's at its first input, the flow's at the first plan of each number of
    samples. A decision then copies its images (uint8) and ego history up through pinned
    buffers without waiting, converts the images to the network's precision there, and
    waits once: for its outputs. The text decoder waits once per token (to stop at
    <eos>); the planner's samples wait for their noise (drawn on the CPU, so every device
    samples the same) and for their copy back. Without CUDA graphs the parts run kernel
    by kernel, their inputs copied up as they come. The images arrive resized: the
    inference step resizes each frame once, on arrival, with the rule training used,
    rather than all 16 frames per cycle here.
    """

    name = "embedded_vla"

    def __init__(
        self,
        weights_file: str = "",
        cpu_threads: int = 0,
        device: str = "cpu",
        precision: str = "fp32",
        cuda_graphs: bool = True,
    ) -> None:
        """`cuda_graphs`: run the parts as CUDA graphs on a CUDA device (no effect on a
        CPU)."""
        self.loop_device = torch_device(device)
        self.dtype = torch_dtype(precision, self.loop_device)
        model, metadata = load_weights(Path(weights_file) if weights_file else PACKAGED_WEIGHTS)
        super().__init__(model.config, metadata["model_version"], cpu_threads)
        self.model = model.to(device=self.loop_device, dtype=self.dtype)
        self.graphs: GraphedVla | None = None
        if cuda_graphs and self.loop_device.type == "cuda":
            self.graphs = GraphedVla(self.model)
            self.graphs.prepare()
        self._widths = np.cumsum(self.model.decision_widths())[:-1]
        self._slots: dict[tuple[int, ...], torch.Tensor] = {}

    def _read_scene(self, inputs: VlaInput) -> tuple[Readout, KeysValues]:
        arrays = (inputs.images, inputs.ego_xyz, inputs.ego_rotations)
        images, ego_xyz, ego_rotations = (torch.from_numpy(array)[None] for array in arrays)
        slots = None
        if inputs.cameras != CAMERA_ORDER:
            slots = tuple(map(CAMERA_ORDER.index, inputs.cameras))
        if self.graphs is not None:
            packed, memory = self.graphs.read_scene(images, ego_xyz, ego_rotations, slots)
        else:
            on_device, memory = self.model.read_scene(
                images.to(self.loop_device),
                ego_xyz.float().to(self.loop_device),
                ego_rotations.float().to(self.loop_device),
                None if slots is None else self._camera_slots(slots),
            )
            packed = on_device[0].float().cpu()
        outputs = np.split(packed.numpy(), self._widths)
        return dict(zip(DECISION_OUTPUTS, outputs, strict=True)), memory

    def _text_step(self, scene: KeysValues) -> TextStep:
        return self.model.text_step(scene)

    @torch.no_grad()
    def _write_text(self, scene: KeysValues) -> str:
        if self.graphs is None:
            return super()._write_text(scene)
        return self.graphs.write_text(scene, self.tokenizer, self.config.max_text_tokens)

    def _velocity(self, latent: npt.NDArray[np.float32], num_samples: int) -> Velocity:
        condition = torch.from_numpy(latent)[None].to(self.loop_device, self.dtype)
        return self.model.velocity_field(condition, num_samples)

    def _flow(self, latent: npt.NDArray[np.float32], noise: torch.Tensor) -> torch.Tensor:
        if self.graphs is None:
            return super()._flow(latent, noise)
        return self.graphs.sample_flow(torch.from_numpy(latent)[None], noise)

    def _camera_slots(self, slots: tuple[int, ...]) -> torch.Tensor:
        if slots not in self._slots:
            self._slots[slots] = torch.tensor(slots, device=self.loop_device)
        return self._slots[slots]
