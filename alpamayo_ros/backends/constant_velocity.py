"""Constant-velocity kinematic baseline: the reference every model is compared against.

It ignores the cameras: the ego keeps its current speed and heading. Its reasoning says so
and its meta-action is labelled from its own trajectory, so it is consistent by construction.
"""

from __future__ import annotations

import numpy as np

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import TRAJECTORY_DT_S, TRAJECTORY_STEPS
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import (
    constant_velocity_controls,
    estimate_ego_state,
    integrate_unicycle,
)
from alpamayo_ros.core.meta_actions import Longitudinal, label_meta_action
from alpamayo_ros.core.model_io import (
    CausalDecision,
    ControlSamples,
    MetaActionEstimate,
    PlannerInput,
    ReasoningOutput,
    VlaInput,
)
from alpamayo_ros.pipeline.backend import Backend, Decided

_TEXT = {
    Longitudinal.STOP: "Remain stopped since the vehicle is at standstill.",
    Longitudinal.MAINTAIN_SPEED: (
        "Maintain speed and heading since the baseline assumes the scene does not change."
    ),
}


class ConstantVelocityBackend(Backend):
    name = "constant_velocity"
    version = "1"
    accepts_missing_cameras = True  # it reads no image
    stage_ms: dict[str, float] = {}  # noqa: RUF012 - nothing worth timing separately

    def __init__(self, weights_file: str = "", cpu_threads: int = 0) -> None:
        """`cpu_threads` is accepted for a uniform interface: this baseline computes little."""
        if weights_file:
            raise ConfigurationError(
                f"backend constant_velocity has no weights, but weights_file={weights_file!r}"
            )

    def decide(self, inputs: VlaInput) -> Decided:
        state = estimate_ego_state(inputs.ego_xyz, inputs.ego_rotations, dt=TRAJECTORY_DT_S)
        acceleration, curvature = constant_velocity_controls(state, TRAJECTORY_STEPS)
        rollout = integrate_unicycle(acceleration, curvature, state.speed, dt=TRAJECTORY_DT_S)
        longitudinal, lateral = label_meta_action(rollout)
        stopped = longitudinal == Longitudinal.STOP
        decision = CausalDecision(
            text=_TEXT.get(longitudinal, _TEXT[Longitudinal.MAINTAIN_SPEED]),
            longitudinal_decision=(
                LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT
                if stopped
                else LongitudinalDecision.SET_SPEED_TRACKING
            ),
            lateral_decision=LateralDecision.LANE_KEEPING,
            cause=Cause.NONE,
        )
        meta_action = MetaActionEstimate.certain(longitudinal, lateral)
        return Decided(ReasoningOutput(decision, PlannerInput(state, meta_action)))

    def sample_controls(
        self,
        conditioning: PlannerInput,
        num_samples: int,
        rng: np.random.Generator,
        noise_scale: float = 1.0,
    ) -> ControlSamples:
        acceleration, curvature = constant_velocity_controls(
            conditioning.ego_state, TRAJECTORY_STEPS
        )
        return ControlSamples(
            np.repeat(acceleration[None], num_samples, axis=0),
            np.repeat(curvature[None], num_samples, axis=0),
        )
