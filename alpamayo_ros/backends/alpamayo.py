"""NVIDIA Alpamayo-R1 and Alpamayo 1.5 behind the same nodes as the embedded model.

The official packages (`alpamayo_r1`, `alpamayo1_5`: Python 3.12, transformers,
flash-attn, a GPU with 24 GB) load a local checkpoint; where they cannot live in the ROS
node's interpreter (Humble and JetPack 6 are Python 3.10), this backend runs in a model
worker process of their own environment (`backends.worker`). Only their public API is used:
`<Model>.from_pretrained`, `helper.create_message`, `helper.get_processor`, the processor's
`apply_chat_template`, `helper.to_device` and `sample_trajectories_from_data_with_vlm_rollout`.

In: the aligned frames (4 per camera at t0-0.3 .. t0, the official camera order; 1.5 also
takes which cameras they are, as dataset camera indices, and a route as navigation text)
and the 16-pose ego history in the t0 frame ([1, 1, 16, 3] positions and [1, 1, 16, 3, 3]
rotations). Out, per the pipeline's contract:
- its K trajectories ([1, 1, K, 64, 3] and rotations) become the planner's candidates: the
  latent carries them as the (acceleration, curvature) controls that integrate back to them
  from the start speed they imply (core.kinematics.controls_from_paths), so the planning
  step checks and selects them as it does every backend's samples, and the planner needs
  no model at all;
- the reasoning is that of the candidate the others agree with most (the planner's own
  consensus ranking), parsed into decisions and a cause by the project's rule parser
  (world.reasoning_text.parse_decision), and its meta-action is labelled from that
  candidate by the training labels' rules; the meta-action distribution is how the K
  candidates' labels fall.
The model loads on the first `decide`: the planner node's instance only decodes latents.
"""

from __future__ import annotations

import importlib
import inspect
import time
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from alpamayo_ros.backends import PRECISIONS
from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import TRAJECTORY_DT_S, TRAJECTORY_STEPS
from alpamayo_ros.core.kinematics import (
    controls_from_paths,
    estimate_ego_state,
    integrate_unicycle,
)
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal, label_meta_action
from alpamayo_ros.core.model_io import (
    ControlSamples,
    MetaActionEstimate,
    PlannerInput,
    ReasoningOutput,
    VlaInput,
)
from alpamayo_ros.core.planar import rotation_to_yaw
from alpamayo_ros.pipeline.backend import Backend, Decided
from alpamayo_ros.pipeline.planning import consensus_scores
from alpamayo_ros.world.reasoning_text import parse_decision

# The dataset's camera indices (PhysicalAI-AV), which Alpamayo 1.5 takes with the frames.
DATASET_CAMERA_INDEX = {
    "cross_left_120fov": 0,
    "front_wide_120fov": 1,
    "cross_right_120fov": 2,
    "rear_left_70fov": 3,
    "rear_tele_30fov": 4,
    "rear_right_70fov": 5,
    "front_tele_30fov": 6,
}
# The official processors resize to about this (width, height); the VLA node resizes once.
IMAGE_SIZE = (576, 320)


class AlpamayoError(ConfigurationError):
    """The official package or checkpoint cannot be used; the message says what to do."""


@dataclass(frozen=True)
class OfficialRelease:
    """Where one release's public API lives."""

    package: str  # the Python package
    model_module: str
    model_class: str
    takes_camera_indices: bool  # its create_message takes which cameras the frames are
    takes_navigation: bool  # it conditions on a route as text


ALPAMAYO_R1 = OfficialRelease(
    "alpamayo_r1", "alpamayo_r1.models.alpamayo_r1", "AlpamayoR1", False, False
)
ALPAMAYO_1_5 = OfficialRelease(
    "alpamayo1_5", "alpamayo1_5.models.alpamayo1_5", "Alpamayo1_5", True, True
)


class _Official(NamedTuple):
    """The loaded release: torch, its helper module, the model, its processor, and the
    device and dtype it runs on."""

    torch: Any
    helper: Any
    model: Any
    processor: Any
    device: Any
    dtype: Any


class _Sampled(NamedTuple):
    xyz: npt.NDArray[np.float64]  # [K, 64, 3]
    rotations: npt.NDArray[np.float64]  # [K, 64, 3, 3]
    texts: list[str]
    stage_ms: dict[str, float]


class AlpamayoBackend(Backend):
    """One official release; `weights_file` is the local checkpoint folder (or a model id
    the official loader resolves). `device` and `precision` are the nodes' parameters, at
    their defaults (cpu, fp32) as every backend; on a GPU: cuda and bf16, as NVIDIA runs
    it."""

    release: OfficialRelease = ALPAMAYO_R1
    image_size = IMAGE_SIZE

    def __init__(
        self,
        weights_file: str = "",
        cpu_threads: int = 0,
        device: str = "cpu",
        precision: str = "fp32",
        num_samples: int = 6,
        top_p: float = 0.98,
        temperature: float = 0.6,
        max_generation_length: int = 256,
        seed: int = 42,
    ) -> None:
        if not weights_file:
            raise AlpamayoError(
                f"backend {self.release.package}: set weights_file to the local checkpoint "
                "(e.g. the folder of nvidia/Alpamayo-R1-10B from Hugging Face)"
            )
        if precision not in PRECISIONS:  # the machine's support is checked at loading
            raise AlpamayoError(f"precision must be one of {', '.join(PRECISIONS)}: {precision!r}")
        if num_samples < 1:
            raise AlpamayoError(f"num_samples must be at least 1, got {num_samples}")
        self.checkpoint = weights_file
        self.name = self.release.package
        # The planner compares this with the conditioning's: the same checkpoint folder.
        self.version = Path(weights_file).name or weights_file
        self.accepts_missing_cameras = self.release.takes_camera_indices
        self.device, self.precision = device, precision
        self.num_samples = num_samples
        self.sampling = {
            "top_p": top_p,
            "temperature": temperature,
            "max_generation_length": max_generation_length,
        }
        self.seed = seed
        self.cpu_threads = cpu_threads
        self.stage_ms: dict[str, float] = {}

    # -------------------------------------------------------------- the official API
    @cached_property
    def _official(self) -> _Official:
        """The official API and the model, loaded once, on the device and in the precision
        the embedded backends would check them for."""
        try:
            import torch

            helper = importlib.import_module(f"{self.release.package}.helper")
            model_class = getattr(
                importlib.import_module(self.release.model_module), self.release.model_class
            )
        except ImportError as error:
            raise AlpamayoError(
                f"backend {self.release.package} needs the official package "
                f"{self.release.package} ({error}); install it in this environment, or run "
                "this backend in a model worker of an environment that has it"
            ) from None
        from alpamayo_ros.backends.embedded import torch_device, torch_dtype

        device = torch_device(self.device)
        dtype = torch_dtype(self.precision, device)
        if self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        model = model_class.from_pretrained(self.checkpoint, dtype=dtype).to(device)
        model.eval()
        return _Official(torch, helper, model, helper.get_processor(model.tokenizer), device, dtype)

    def _sample(self, inputs: VlaInput) -> _Sampled:
        """The release's K trajectories for the input: positions [K, 64, 3], rotations
        [K, 64, 3, 3], the reasoning of each, and the stages it timed, if it says."""
        torch, helper, model, processor, device, dtype = self._official
        # [cameras, frames, H, W, 3] -> [cameras * frames, 3, H, W], as the dataset loader.
        frames = torch.from_numpy(np.ascontiguousarray(inputs.images)).permute(0, 1, 4, 2, 3)
        message_options: dict[str, Any] = {}
        if self.release.takes_camera_indices:
            message_options["camera_indices"] = torch.tensor(
                [DATASET_CAMERA_INDEX[name] for name in inputs.cameras], dtype=torch.int64
            )
        if self.release.takes_navigation and inputs.navigation:
            message_options.update(self._navigation_option(helper.create_message, inputs))
        messages = helper.create_message(frames.flatten(0, 1), **message_options)
        tokenized = processor.apply_chat_template(
            messages,
            tokenize=True,
            add_generation_prompt=False,
            continue_final_message=True,
            return_dict=True,
            return_tensors="pt",
        )
        data = helper.to_device(
            {
                "tokenized_data": tokenized,
                "ego_history_xyz": torch.from_numpy(inputs.ego_xyz).float()[None, None],
                "ego_history_rot": torch.from_numpy(inputs.ego_rotations).float()[None, None],
            },
            device,
        )
        on_gpu = device.type == "cuda"
        if on_gpu:
            torch.cuda.manual_seed_all(self.seed)
        else:
            torch.manual_seed(self.seed)
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=dtype, enabled=on_gpu),
        ):
            xyz, rotations, extra = model.sample_trajectories_from_data_with_vlm_rollout(
                data=data, num_traj_samples=self.num_samples, return_extra=True, **self.sampling
            )
        texts = [str(text) for text in np.asarray(extra["cot"]).reshape(-1)]
        xyz = xyz.detach().float().cpu().numpy().astype(np.float64)
        rotations = rotations.detach().float().cpu().numpy().astype(np.float64)
        if xyz.shape[-2:] != (TRAJECTORY_STEPS, 3) or len(texts) != xyz[0, 0].shape[0]:
            raise AlpamayoError(
                f"{self.release.package} returned trajectories {xyz.shape} with "
                f"{len(texts)} reasoning texts; expected [1, 1, K, 64, 3] and K texts"
            )
        # The released models time nothing; a model that reports its stages in ms (the
        # test double at R1's size does) has them in the benchmark's table.
        stage_ms = {f"model: {name}": float(ms) for name, ms in extra.get("stage_ms", {}).items()}
        return _Sampled(xyz[0, 0], rotations[0, 0], texts, stage_ms)

    def _navigation_option(self, create_message: Any, inputs: VlaInput) -> dict[str, str]:
        """The route as create_message's navigation keyword (found by name: the one
        parameter with "nav" in it)."""
        names = [name for name in inspect.signature(create_message).parameters if "nav" in name]
        if len(names) != 1:
            raise AlpamayoError(
                f"{self.release.package}.helper.create_message has no single navigation "
                f"parameter (parameters with 'nav': {names})"
            )
        return {names[0]: inputs.navigation}

    # ------------------------------------------------------------- the pipeline's side
    def decide(self, inputs: VlaInput) -> Decided:
        started = time.perf_counter()
        xyz, rotations, texts, model_stage_ms = self._sample(inputs)
        sampled = time.perf_counter()
        yaw = np.unwrap(rotation_to_yaw(rotations), axis=-1)
        # The start speed the trajectories themselves imply: the history's own estimate
        # differs by cm/s, which the exact inverse would turn into jerk no plan passes.
        speed, acceleration, curvature = controls_from_paths(xyz[..., 0], xyz[..., 1], yaw)
        history = estimate_ego_state(inputs.ego_xyz, inputs.ego_rotations, dt=TRAJECTORY_DT_S)
        state = replace(history, speed=speed)
        rollouts = integrate_unicycle(acceleration, curvature, speed, dt=TRAJECTORY_DT_S)
        chosen = int(np.argmax(consensus_scores(xyz)))
        labels = [label_meta_action(rollouts[k]) for k in range(len(texts))]
        longitudinal, lateral = labels[chosen]
        meta_action = MetaActionEstimate(
            longitudinal,
            lateral,
            _distribution([label[0] for label in labels], len(Longitudinal)),
            _distribution([label[1] for label in labels], len(Lateral)),
        )
        latent = np.stack([acceleration, curvature], axis=-1).astype(np.float32).reshape(-1)
        self.stage_ms = {
            "model": (sampled - started) * 1e3,
            **model_stage_ms,
            "mapping": (time.perf_counter() - sampled) * 1e3,
        }
        decision = parse_decision(texts[chosen])
        return Decided(ReasoningOutput(decision, PlannerInput(state, meta_action, latent)))

    def sample_controls(
        self,
        conditioning: PlannerInput,
        num_samples: int,
        rng: np.random.Generator,
        noise_scale: float = 1.0,
    ) -> ControlSamples:
        """The model's own candidates, decoded from the latent (drawn at `decide`, so `rng`
        and `noise_scale` have nothing to add); asked for more than it drew, they repeat in
        order."""
        controls = np.asarray(conditioning.latent, dtype=np.float64)
        if controls.size == 0 or controls.size % (2 * TRAJECTORY_STEPS):
            raise AlpamayoError(
                f"{self.name}: conditioning latent of {controls.size} values is not K x 64 "
                "(acceleration, curvature) controls"
            )
        controls = controls.reshape(-1, TRAJECTORY_STEPS, 2)
        chosen = controls[np.arange(num_samples) % len(controls)]
        return ControlSamples(chosen[..., 0], chosen[..., 1])


class Alpamayo15Backend(AlpamayoBackend):
    release = ALPAMAYO_1_5


def _distribution(
    labels: list[Longitudinal] | list[Lateral], classes: int
) -> npt.NDArray[np.float32]:
    counts = np.bincount([int(label) for label in labels], minlength=classes)
    distribution: npt.NDArray[np.float32] = (counts / counts.sum()).astype(np.float32)
    return distribution
