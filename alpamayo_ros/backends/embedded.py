"""The embedded VLA backend: the small trained model that ships with the package.

Runs on a CPU with PyTorch. The latent it hands to the planner is the action expert's
condition vector, so the planner node samples from exactly what the VLA node saw.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from alpamayo_ros.backends.base import (
    Backend,
    CausalDecision,
    MetaActionEstimate,
    PlannerInput,
    ReasoningOutput,
    SampledTrajectories,
    VlaInput,
    integrate_samples,
)
from alpamayo_ros.core.contract import TRAJECTORY_DT_S
from alpamayo_ros.core.decisions import (
    OBJECT_CAUSES,
    Cause,
    LateralDecision,
    LongitudinalDecision,
)
from alpamayo_ros.core.kinematics import estimate_ego_state
from alpamayo_ros.core.meta_actions import (
    Lateral,
    Longitudinal,
    coarse_meta_action,
    label_meta_action,
)
from alpamayo_ros.model.network import Encoding
from alpamayo_ros.model.weights import PACKAGED_WEIGHTS, load_weights

# Added to the score of a sample whose own meta-action contradicts the decided one, so that
# any agreeing sample ranks above every contradicting one.
CONTRADICTION_PENALTY = 1_000.0


def consensus_scores(xyz: np.ndarray) -> np.ndarray:
    """Scores of K sampled trajectories [K, T, 3]: minus the mean distance to the others.

    Samples from a flow model have no likelihood at hand; the one closest to the rest is
    the mode the samples agree on, and ranks first.
    """
    if len(xyz) == 1:
        return np.zeros(1)
    distance = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1).mean(-1)  # [K, K]
    return -distance.sum(1) / (len(xyz) - 1)


class EmbeddedVlaBackend(Backend):
    name = "embedded_vla"

    def __init__(self, weights_file: str = "") -> None:
        self.model, metadata = load_weights(
            Path(weights_file) if weights_file else PACKAGED_WEIGHTS
        )
        self.version = metadata["model_version"]
        config = self.model.config
        self.image_size = (config.image_width, config.image_height)
        self.stage_ms = {}

    @torch.no_grad()
    def reason(self, inputs: VlaInput) -> ReasoningOutput:
        started = time.perf_counter()
        state = estimate_ego_state(inputs.ego_xyz, inputs.ego_rotations, dt=TRAJECTORY_DT_S)
        encoding = self.model.encode(
            torch.from_numpy(np.ascontiguousarray(inputs.images))[None],
            torch.from_numpy(inputs.ego_xyz).float()[None],
            torch.from_numpy(inputs.ego_rotations).float()[None],
        )
        heads = self.model.classify(encoding)
        cause = Cause(int(heads.cause.argmax()))
        cause_object = self._cause_object(cause, encoding)
        encoded = time.perf_counter()
        text = self.model.generate_text(encoding)[0]
        self.stage_ms = {
            "encode, heads, cause locator": (encoded - started) * 1e3,
            "reasoning text": (time.perf_counter() - encoded) * 1e3,
        }
        longitudinal = heads.longitudinal.softmax(-1)[0].numpy()
        lateral = heads.lateral.softmax(-1)[0].numpy()
        meta_action = MetaActionEstimate(
            longitudinal=Longitudinal(int(longitudinal.argmax())),
            lateral=Lateral(int(lateral.argmax())),
            longitudinal_probabilities=longitudinal.astype(np.float32),
            lateral_probabilities=lateral.astype(np.float32),
        )
        decision = CausalDecision(
            text=text,
            longitudinal_decision=LongitudinalDecision(int(heads.longitudinal_decision.argmax())),
            lateral_decision=LateralDecision(int(heads.lateral_decision.argmax())),
            cause=cause,
            **cause_object,
        )
        latent = self.model.condition(encoding, heads)[0].numpy().astype(np.float32)
        return ReasoningOutput(decision, PlannerInput(state, meta_action, latent))

    def _cause_object(self, cause: Cause, encoding: Encoding) -> dict[str, object]:
        """The object the decision refers to. The model has no object tracks, so its id is
        the cause's name ("pedestrian"); no object, no id and no position."""
        if cause not in OBJECT_CAUSES:
            return {}
        x, y, z = self.model.locate_cause(encoding)[0].tolist()
        return {"cause_object_id": cause.name.lower(), "cause_object_position": (x, y, z)}

    def sample_trajectories(
        self, conditioning: PlannerInput, num_samples: int, rng: np.random.Generator
    ) -> SampledTrajectories:
        """K samples scored by agreement: with the decided meta-action first (the reasoning
        and the chosen trajectory must not contradict each other), then with each other."""
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        condition = torch.from_numpy(conditioning.latent).float()[None]
        controls = self.model.sample_controls(condition, num_samples, generator)[0].numpy()
        rollouts = integrate_samples(
            controls[..., 0].astype(np.float64), controls[..., 1].astype(np.float64), conditioning
        )
        decided = coarse_meta_action(
            conditioning.meta_action.longitudinal, conditioning.meta_action.lateral
        )
        contradicts = np.array(
            [
                coarse_meta_action(*label_meta_action(rollouts[k])) != decided
                for k in range(num_samples)
            ]
        )
        scores = consensus_scores(rollouts.xyz()) - CONTRADICTION_PENALTY * contradicts
        return SampledTrajectories(rollouts, scores)
