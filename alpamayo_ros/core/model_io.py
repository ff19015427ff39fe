"""What goes into and comes out of a driving model, in Alpamayo-R1 contract shapes.

These are the domain types every layer shares: the world labels its scenarios with a
CausalDecision, backends produce ReasoningOutput and ControlSamples, the pipeline turns them
into plans, and the ROS conversions map them to messages. None of them knows ROS or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import EgoState
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal


@dataclass(frozen=True)
class VlaInput:
    """One aligned model input at time t0."""

    t0_ns: int
    images: npt.NDArray[np.uint8]  # [cameras, frames, H, W, 3] RGB, contract camera order
    frame_stamps_ns: npt.NDArray[np.int64]  # [cameras, frames]
    ego_xyz: npt.NDArray[np.float64]  # [16, 3] in the ego frame at t0, oldest first
    ego_rotations: npt.NDArray[np.float64]  # [16, 3, 3]
    # The cameras of `images`, in contract order: all of them, or those still sending
    # when the backend can run without some (Backend.accepts_missing_cameras).
    cameras: tuple[str, ...]
    # The route ahead as text ("Turn left onto Main St in 40 m"), for a model that
    # conditions on it (Alpamayo 1.5); "" when none is given.
    navigation: str = ""


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
class ControlSamples:
    """K sampled control sequences of the action expert, 0.1 s steps from t0: [K, 64] each.

    Not yet integrated: the planning step integrates, scores and checks every backend's
    samples the same way.
    """

    acceleration: npt.NDArray[np.float64]  # m/s^2
    curvature: npt.NDArray[np.float64]  # 1/m

    def __post_init__(self) -> None:
        if np.shape(self.acceleration) != np.shape(self.curvature) or np.ndim(self.curvature) != 2:
            raise ValueError(
                "control samples need acceleration and curvature of one shape [K, T], got "
                f"{np.shape(self.acceleration)} and {np.shape(self.curvature)}"
            )
