"""The one interface the nodes call, in Alpamayo-R1 contract shapes.

A backend has two halves, like Alpamayo-R1 itself: `reason` is the vision-language part
(frames + ego history -> Chain-of-Causation reasoning, meta-action, latent conditioning) run by
the VLA node; `sample_trajectories` is the action expert (conditioning -> K trajectories)
run by the planner node. A trajectory is (acceleration, curvature) per 0.1 s step
integrated with the unicycle model, so every backend's trajectories are kinematically
consistent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import TRAJECTORY_DT_S
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import EgoState, Rollout, integrate_unicycle
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal


def fit_image(image: npt.NDArray[np.uint8], size: tuple[int, int] | None) -> npt.NDArray[np.uint8]:
    """A camera frame at the (width, height) a backend wants, area-averaged as in training.

    The one resize rule shared by the VLA node and offline evaluation, so the model sees
    the same pixels in both.
    """
    if size is None or image.shape[1::-1] == size:
        return image
    import cv2

    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class VlaInput:
    """One aligned model input at time t0."""

    t0_ns: int
    images: npt.NDArray[np.uint8]  # [cameras, frames, H, W, 3] RGB, contract camera order
    frame_stamps_ns: npt.NDArray[np.int64]  # [cameras, frames]
    ego_xyz: npt.NDArray[np.float64]  # [16, 3] in the ego frame at t0, oldest first
    ego_rotations: npt.NDArray[np.float64]  # [16, 3, 3]


@dataclass(frozen=True)
class CausalDecision:
    """Chain-of-Causation reasoning: text plus the structure it states."""

    text: str
    longitudinal_decision: LongitudinalDecision
    lateral_decision: LateralDecision
    cause: Cause
    cause_object_id: str = ""
    cause_object_position: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class MetaActionEstimate:
    longitudinal: Longitudinal
    lateral: Lateral
    # Class distributions indexed by the enum values; one-hot for hard labels.
    longitudinal_probabilities: npt.NDArray[np.float32]
    lateral_probabilities: npt.NDArray[np.float32]

    @classmethod
    def certain(cls, longitudinal: Longitudinal, lateral: Lateral) -> MetaActionEstimate:
        lon = np.zeros(len(Longitudinal), np.float32)
        lat = np.zeros(len(Lateral), np.float32)
        lon[longitudinal] = 1.0
        lat[lateral] = 1.0
        return cls(longitudinal, lateral, lon, lat)


@dataclass(frozen=True)
class PlannerInput:
    """What the action expert is conditioned on."""

    ego_state: EgoState
    meta_action: MetaActionEstimate
    latent: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))


@dataclass(frozen=True)
class ReasoningOutput:
    decision: CausalDecision
    planner_input: PlannerInput


@dataclass(frozen=True)
class SampledTrajectories:
    rollouts: Rollout  # batch [K], 64 steps; carries the controls it was integrated from
    scores: npt.NDArray[np.float64]  # [K], higher is more likely


def integrate_samples(
    acceleration: npt.NDArray[np.float64],
    curvature: npt.NDArray[np.float64],
    conditioning: PlannerInput,
) -> Rollout:
    """Sampled controls [K, 64] integrated from the ego speed at t0."""
    return integrate_unicycle(
        acceleration, curvature, conditioning.ego_state.speed, dt=TRAJECTORY_DT_S
    )


class Backend(ABC):
    name: str
    version: str
    # (width, height) the backend wants its images in; None takes them as they come.
    image_size: tuple[int, int] | None = None
    # Wall time of the stages of the last `reason` call, for diagnostics and benchmarks.
    stage_ms: dict[str, float]

    @abstractmethod
    def reason(self, inputs: VlaInput) -> ReasoningOutput:
        """Vision-language half: runs once per inference in the VLA node."""

    @abstractmethod
    def sample_trajectories(
        self, conditioning: PlannerInput, num_samples: int, rng: np.random.Generator
    ) -> SampledTrajectories:
        """Action-expert half: runs in the planner node."""
