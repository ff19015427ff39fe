"""Closed-loop simulation of a scenario: expert ego + scripted agents, recorded per step.

Step k: the expert sees the world state W_k and ego state E_k and returns control u_k and
intent I_k; the ego integrates u_k over 0.1 s (integrate_unicycle's discretisation) into
E_{k+1}; every agent advances its script into W_{k+1}. Everything is recorded, so the
sample at t0 = k0 can take its history (E_{k0-15..k0}), frames (W and E at k0-3..k0) and
future (u_{k0..k0+63}) from one run.

The decision for step k is labelled in hindsight, like AR1's auto-labelling: the cause is the
most significant intent the expert holds within the meta-action horizon after k (a
manoeuvre over a binding constraint over visible context, the earliest on ties), and the
behaviour words of its text are the coarse classes of the meta-action labelled from the
expert's own next 6.4 s. The text therefore states what the trajectory does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import NS_PER_S, TRAJECTORY_DT_S, TRAJECTORY_STEPS
from alpamayo_ros.core.kinematics import Rollout, VehicleState, integrate_unicycle
from alpamayo_ros.core.meta_actions import (
    LabelThresholds,
    Lateral,
    Longitudinal,
    coarse_meta_action,
    label_meta_action,
)
from alpamayo_ros.core.model_io import CausalDecision
from alpamayo_ros.core.planar import yaw_to_rotation
from alpamayo_ros.world.agents import AgentState
from alpamayo_ros.world.expert import Control, Expert, Intent
from alpamayo_ros.world.reasoning_text import compose_text
from alpamayo_ros.world.scenarios import Scenario
from alpamayo_ros.world.state import WorldState

DT_S = TRAJECTORY_DT_S
WORLD_STEP_NS = round(DT_S * NS_PER_S)  # the same step in ns, for the clock
DEFAULT_THRESHOLDS = LabelThresholds()
# The ego is at rest (a stop is "remain stopped") below this speed.
STANDING_SPEED = 0.05


class SimulationError(ValueError):
    """A request for steps the simulation has not run (or can no longer give)."""


@dataclass
class Trace:
    """Everything recorded in a run; index k is time (offset + k) * 0.1 s."""

    offset: int = 0  # steps forgotten from the front (a long live run)
    ego: list[VehicleState] = field(default_factory=list)  # k = 0..N
    states: list[WorldState] = field(default_factory=list)  # k = 0..N
    controls: list[Control] = field(default_factory=list)  # k = 0..N-1
    intents: list[Intent] = field(default_factory=list)  # k = 0..N-1


@dataclass(frozen=True)
class Drift:
    """A driving error the ego makes over steps [first, last): it steers the curvature the
    expert steered at `first`, held, plus `curvature_bias`, and accelerates as the expert
    would plus `acceleration_bias`. The expert does not correct the steering meanwhile (an
    expert that kept steering would hold the car within a few tenths of a metre of its
    path, far from the states a policy that errs reaches); it is back in control after it
    and recovers, so a sample at `last` shows a car off its path and heading away from it,
    too slow or too fast, in its frames and its ego history, and the expert's way back as
    the future: the states a policy that errs visits in closed loop, labelled by the
    expert."""

    first: int
    last: int
    curvature_bias: float  # 1/m, positive to the left
    acceleration_bias: float = 0.0  # m/s^2


class Simulation:
    """Runs one scenario forward; `trace` holds every step so far."""

    def __init__(self, scenario: Scenario, drift: Drift | None = None) -> None:
        self.scenario = scenario
        self._drift = drift
        self._drift_curvature: float | None = None  # the expert's, held from its start
        road = scenario.road
        self.expert = Expert(road, scenario.ego_lane, scenario.set_speed)
        x, y, yaw = road.world_point(scenario.ego_s, road.lane_center(scenario.ego_lane))
        self._agents = scenario.agents
        self._agent_states = [agent.initial_state() for agent in scenario.agents]
        self.trace = Trace()
        self._record(VehicleState(x, y, yaw, scenario.ego_speed))

    @property
    def steps_run(self) -> int:
        """Controls recorded (and not forgotten)."""
        return len(self.trace.controls)

    def forget(self, steps: int) -> None:
        """Drop the oldest `steps` records (a live run keeps only what it still needs)."""
        steps = min(steps, self.steps_run)
        trace = self.trace
        del trace.ego[:steps], trace.states[:steps], trace.controls[:steps], trace.intents[:steps]
        trace.offset += steps

    def state(self, step: int) -> WorldState:
        return self.trace.states[step]

    def step(self) -> None:
        """Advance the world by one 0.1 s step."""
        k = self.steps_run
        t = (self.trace.offset + k) * DT_S
        control, intent = self.expert.act(self.trace.states[k], self.trace.ego[k])
        drift = self._drift
        if drift is not None and drift.first <= self.trace.offset + k < drift.last:
            if self._drift_curvature is None:
                self._drift_curvature = control.curvature
            control = Control(
                control.acceleration + drift.acceleration_bias,
                self._drift_curvature + drift.curvature_bias,
            )
        self.trace.controls.append(control)
        self.trace.intents.append(intent)
        self._agent_states = [
            agent.step(state, t, DT_S)
            for agent, state in zip(self._agents, self._agent_states, strict=True)
        ]
        self._record(self.trace.ego[k].advance(control.acceleration, control.curvature, DT_S))

    def run(self, steps: int) -> Trace:
        """Run until `steps` controls are recorded (and not forgotten)."""
        while self.steps_run < steps:
            self.step()
        return self.trace

    def _record(self, ego: VehicleState) -> None:
        t = (self.trace.offset + len(self.trace.ego)) * DT_S
        scenario = self.scenario
        self.trace.ego.append(ego)
        self.trace.states.append(
            WorldState(
                time=t,
                road=scenario.road,
                agents=tuple(self._agent_states),
                lights=tuple(light.state_at(t) for light in scenario.lights),
                appearance=scenario.appearance,
            )
        )


def future_rollout(trace: Trace, step: int) -> Rollout:
    """The expert's next 6.4 s after `step`, integrated from its controls, in the ego frame."""
    controls = trace.controls[step : step + TRAJECTORY_STEPS]
    if len(controls) < TRAJECTORY_STEPS:
        raise SimulationError(f"step {step} needs {TRAJECTORY_STEPS} future controls")
    acceleration = np.array([c.acceleration for c in controls])
    curvature = np.array([c.curvature for c in controls])
    return integrate_unicycle(acceleration, curvature, trace.ego[step].v)


def causal_decision(
    trace: Trace,
    step: int,
    meta_action: tuple[Longitudinal, Lateral],
    variant: int,
    thresholds: LabelThresholds = DEFAULT_THRESHOLDS,
) -> CausalDecision:
    """The Chain-of-Causation decision that explains the 6.4 s after `step` (hindsight)."""
    window = round(thresholds.horizon_s / DT_S)
    intents = trace.intents[step : step + window]
    if not intents:
        raise SimulationError(f"no intents recorded after step {step}")
    chosen = max(intents, key=lambda intent: intent.rank)  # first of the highest rank
    longitudinal, lateral = coarse_meta_action(*meta_action)
    ego = trace.ego[step]
    standing = ego.v < STANDING_SPEED
    text = compose_text(
        chosen.situation,
        chosen.lateral,
        longitudinal or "maintain",
        lateral or "straight",
        variant,
        standing=standing,
    )
    return CausalDecision(
        text=text,
        longitudinal_decision=chosen.longitudinal,
        lateral_decision=chosen.lateral,
        cause=chosen.cause,
        cause_object_id=chosen.object_id,
        cause_object_position=object_position(trace.states[step], chosen.object_id, ego),
    )


def decisions(trace: Trace, variant: int = 0) -> list[CausalDecision]:
    """The decision of every recorded step that has its 6.4 s future recorded."""
    result = []
    for step in range(len(trace.controls) - TRAJECTORY_STEPS + 1):
        meta_action = label_meta_action(future_rollout(trace, step))
        result.append(causal_decision(trace, step, meta_action, variant + step))
    return result


def object_position(
    state: WorldState, object_id: str, ego: VehicleState
) -> tuple[float, float, float]:
    """Position of an agent, or of the stop line a traffic light controls, in the ego frame
    (origin when unknown).

    A light's place is where its stop line crosses the ego's path (the ego's offset from
    the road's centre line), on the road: the place a stop for it is planned to. Its head
    stands 17.5 m beyond the line in this world, across the intersection, as on many real
    roads, so a planner told the head could not stop at the line without a map.
    """
    if not object_id:
        return (0.0, 0.0, 0.0)
    agent: AgentState | None = state.agent(object_id)
    if agent is not None:
        s, d, z = agent.s, agent.d, agent.height / 2.0
    else:
        light = state.light(object_id)
        if light is None:
            return (0.0, 0.0, 0.0)
        _, ego_d = state.road.project(ego.x, ego.y)
        s, d, z = light.stop_line_s, ego_d, 0.0
    x, y, _ = state.road.world_point(s, d)
    return (*ego.pose.relative_point(x, y), z)


def ego_history(
    trace: Trace, step: int, poses: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Ego positions [poses, 3] and rotations [poses, 3, 3] up to `step`, in its frame."""
    first = step - poses + 1
    if first < 0:
        raise SimulationError(f"step {step} has fewer than {poses} poses of history")
    now = trace.ego[step]
    xyz = np.zeros((poses, 3))
    yaw = np.zeros(poses)
    for i, ego in enumerate(trace.ego[first : step + 1]):
        relative = now.pose.relative(ego.pose)
        xyz[i, :2] = relative.x, relative.y
        yaw[i] = relative.yaw
    return xyz, yaw_to_rotation(yaw)


def step_grid_problem(control_rate_hz: float, camera_rate_hz: float) -> str | None:
    """Why a closed loop cannot step at these rates, or None. The car moves a whole number
    of control periods per world step (0.1 s), so the period must divide it; and every
    camera instant must be a control instant, since in lock-step a camera set is answered
    by a command at its stamp, and the control bridge commands only on the control grid."""
    control_ns = NS_PER_S / control_rate_hz
    if WORLD_STEP_NS % control_ns:
        return f"control_rate_hz {control_rate_hz:g} does not divide the world's 0.1 s step"
    if (NS_PER_S / camera_rate_hz) % control_ns:
        return (
            f"the camera period (rate_hz {camera_rate_hz:g}) is not a whole number of control "
            f"periods (control_rate_hz {control_rate_hz:g})"
        )
    return None
