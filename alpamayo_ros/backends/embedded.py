"""The embedded VLA backend: the small trained model that ships with the package.

Runs on a CPU with PyTorch. The latent it hands to the planner is the action expert's
condition vector, so the planner node samples from exactly what the VLA node saw; the
planning step integrates, ranks and checks the samples like any backend's.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

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
from alpamayo_ros.model.network import Encoding
from alpamayo_ros.model.weights import PACKAGED_WEIGHTS, load_weights
from alpamayo_ros.pipeline.backend import Backend, Decided


def camera_slots(cameras: tuple[str, ...]) -> torch.Tensor:
    """The model's slot index of each named camera (contract order)."""
    return torch.tensor([CAMERA_ORDER.index(name) for name in cameras])


class EmbeddedVlaBackend(Backend):
    name = "embedded_vla"
    accepts_missing_cameras = True  # trained with cameras dropped (training.dropped_cameras)

    def __init__(self, weights_file: str = "", cpu_threads: int = 0) -> None:
        if cpu_threads > 0:
            torch.set_num_threads(cpu_threads)
        self.model, metadata = load_weights(
            Path(weights_file) if weights_file else PACKAGED_WEIGHTS
        )
        self.version = metadata["model_version"]
        config = self.model.config
        self.image_size = (config.image_width, config.image_height)
        self.stage_ms = {}

    @torch.no_grad()
    def decide(self, inputs: VlaInput) -> Decided:
        """Heads, cause and the action expert's condition; the reasoning text is written
        afterwards from the same encoding (the condition does not read it)."""
        started = time.perf_counter()
        state = estimate_ego_state(inputs.ego_xyz, inputs.ego_rotations, dt=TRAJECTORY_DT_S)
        encoding = self.model.encode(
            torch.from_numpy(np.ascontiguousarray(inputs.images))[None],
            torch.from_numpy(inputs.ego_xyz).float()[None],
            torch.from_numpy(inputs.ego_rotations).float()[None],
            None if inputs.cameras == CAMERA_ORDER else camera_slots(inputs.cameras),
        )
        heads = self.model.classify(encoding)
        cause = Cause(int(heads.cause.argmax()))
        longitudinal = heads.longitudinal.softmax(-1)[0].numpy()
        lateral = heads.lateral.softmax(-1)[0].numpy()
        meta_action = MetaActionEstimate(
            longitudinal=Longitudinal(int(longitudinal.argmax())),
            lateral=Lateral(int(lateral.argmax())),
            longitudinal_probabilities=longitudinal.astype(np.float32),
            lateral_probabilities=lateral.astype(np.float32),
        )
        decision = CausalDecision(
            text="",
            longitudinal_decision=LongitudinalDecision(int(heads.longitudinal_decision.argmax())),
            lateral_decision=LateralDecision(int(heads.lateral_decision.argmax())),
            cause=cause,
            **self._cause_object(cause, encoding),
        )
        latent = self.model.condition(encoding, heads)[0].numpy().astype(np.float32)
        self.stage_ms = {"encode, heads, cause locator": (time.perf_counter() - started) * 1e3}
        return Decided(
            ReasoningOutput(decision, PlannerInput(state, meta_action, latent)),
            write_text=lambda: self._write_text(encoding),
        )

    @torch.no_grad()
    def _write_text(self, encoding: Encoding) -> str:
        return self.model.generate_text(encoding)[0]

    def _cause_object(self, cause: Cause, encoding: Encoding) -> dict[str, object]:
        """The object the decision refers to. The model has no object tracks, so its id is
        the cause's name ("pedestrian"); no object, no id and no position."""
        if cause not in OBJECT_CAUSES:
            return {}
        x, y, z = self.model.locate_cause(encoding)[0].tolist()
        return {"cause_object_id": cause.name.lower(), "cause_object_position": (x, y, z)}

    def sample_controls(
        self, conditioning: PlannerInput, num_samples: int, rng: np.random.Generator
    ) -> ControlSamples:
        """K flow-matching samples of the action expert, conditioned on the latent."""
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        condition = torch.from_numpy(conditioning.latent).float()[None]
        controls = self.model.sample_controls(condition, num_samples, generator)[0].numpy()
        return ControlSamples(
            controls[..., 0].astype(np.float64), controls[..., 1].astype(np.float64)
        )
