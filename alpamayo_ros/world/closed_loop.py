"""A scenario whose ego is driven by commands: the world of the closed loop.

The scenario, its agents, lights and renderer are the synthetic world's own. Its agents
follow their scripts in time and do not react to the ego, exactly as they do not react to
the expert, so the world around the ego is the expert run's world step for step
(`Simulation`), and that run is also the reference the drive's progress is measured
against. Only the ego differs: the expert drives it until `handover_s` (the model needs
that much ego history before its first plan, as AlpaSim starts a scene from logged
history), and from then on the commands move it through the simulated vehicle.

Time is integer nanoseconds since the scenario started; the world changes every 0.1 s and
the car moves at whatever step the caller takes (the control period).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import (
    HISTORY_PERIOD_NS,
    HISTORY_POSES,
    NS_PER_S,
    TRAJECTORY_DT_S,
    TRAJECTORY_STEPS,
)
from alpamayo_ros.core.control import VehicleParams
from alpamayo_ros.core.kinematics import Rollout, VehicleState
from alpamayo_ros.world.expert import Expert
from alpamayo_ros.world.renderer import Renderer
from alpamayo_ros.world.scenarios import Scenario, make_scenario
from alpamayo_ros.world.simulation import (
    DT_S,
    WORLD_STEP_NS,
    Simulation,
    Trace,
    future_rollout,
)
from alpamayo_ros.world.state import WorldState
from alpamayo_ros.world.vehicle import ActuatorLag, ActuatorState, SimulatedVehicle

# The expert drives while the model gathers its first ego history.
DEFAULT_HANDOVER_NS = (HISTORY_POSES - 1) * HISTORY_PERIOD_NS


@dataclass(frozen=True)
class Command:
    """What the control bridge asks of the car."""

    steering: float  # rad, road wheel, left positive
    acceleration: float  # m/s^2


@dataclass(frozen=True)
class EgoRecord:
    """The ego at every step of a drive, as arrays [N] (time in s since the start)."""

    t_s: npt.NDArray[np.float64]
    state: npt.NDArray[np.float64]  # [N, 4] x, y, yaw, v in the scenario's world frame
    acceleration: npt.NDArray[np.float64]
    steering: npt.NDArray[np.float64]

    def columns(self) -> dict[str, list[float]]:
        """The drive as JSON-ready columns (mm, cm/s and mrad resolution), for results,
        plots and reports."""
        return {
            "t_s": self.t_s.round(3).tolist(),
            "x": self.state[:, 0].round(3).tolist(),
            "y": self.state[:, 1].round(3).tolist(),
            "yaw": self.state[:, 2].round(4).tolist(),
            "v": self.state[:, 3].round(3).tolist(),
            "steering": self.steering.round(4).tolist(),
            "acceleration": self.acceleration.round(3).tolist(),
        }


class ClosedLoopWorld:
    def __init__(
        self,
        seed: int,
        scenario_type: str | None = None,
        renderer: Renderer | None = None,
        handover_ns: int = DEFAULT_HANDOVER_NS,
        duration_s: float | None = None,
        params: VehicleParams = VehicleParams(),
        lag: ActuatorLag | None = None,
    ) -> None:
        """`duration_s` defaults to the scenario's own span (its sample time + 6.4 s)."""
        self.scenario: Scenario = make_scenario(seed, scenario_type)
        steps = self.scenario.steps if duration_s is None else math.ceil(duration_s / DT_S)
        if steps < 1:
            raise ValueError(f"a drive needs a positive duration, got {duration_s}")
        self.duration_ns = steps * WORLD_STEP_NS
        self.handover_ns = handover_ns
        # The expert's run: the world around the ego, and the reference drive. It goes on
        # 6.4 s past the drive's end, so the expert plans from any instant of the drive
        # against the world's real future (not one frozen at the end).
        self.expert: Trace = Simulation(self.scenario).run(steps + TRAJECTORY_STEPS)
        self._renderer = renderer
        self._params = params
        self.now_ns = 0
        start = self.expert.ego[0]
        first = self.expert.controls[0]
        self.vehicle = SimulatedVehicle(
            start,
            ActuatorState(math.atan(params.wheelbase * first.curvature), first.acceleration),
            params,
            lag or ActuatorLag(),
        )
        self._records: list[tuple[float, float, float, float, float, float, float]] = []
        self._record()
        # The expert as a planner from wherever the closed loop has the ego (the ceiling):
        # its own memory (a lane change it committed to) follows the closed-loop ego.
        scenario = self.scenario
        self._planner = Expert(scenario.road, scenario.ego_lane, scenario.set_speed)

    @property
    def finished(self) -> bool:
        return self.now_ns >= self.duration_ns

    @property
    def expert_driving(self) -> bool:
        """Before the handover the expert drives; the commands are ignored."""
        return self.now_ns < self.handover_ns

    @property
    def world_step(self) -> int:
        """Index of the world step in effect now (agents and lights change every 0.1 s)."""
        return self.now_ns // WORLD_STEP_NS

    @property
    def state(self) -> WorldState:
        return self.expert.states[self.world_step]

    @property
    def ego(self) -> VehicleState:
        return self.vehicle.state

    @property
    def yaw_rate(self) -> float:
        return self.vehicle.state.v * self.vehicle.curvature

    def step(self, dt_ns: int, command: Command | None) -> None:
        """Advance `dt_ns` (at most one world step, so no world step is skipped):
        the expert's motion before the handover, the command's (the last one held if
        None) after it."""
        if not 0 < dt_ns <= WORLD_STEP_NS:
            raise ValueError(f"a step must be positive and at most 0.1 s, got {dt_ns} ns")
        if self.expert_driving:
            self._follow_expert(self.now_ns + dt_ns)
        else:
            held = self.vehicle.actuators
            steering, acceleration = (
                (held.steering, held.acceleration)
                if command is None
                else (command.steering, command.acceleration)
            )
            self.vehicle.step(steering, acceleration, dt_ns / NS_PER_S)
        self.now_ns += dt_ns
        self._record()

    def _follow_expert(self, target_ns: int) -> None:
        """The ego where the expert's run has it at `target_ns` (its step's control applied
        for the time since the step, the one vehicle step)."""
        step = min(target_ns // WORLD_STEP_NS, len(self.expert.controls) - 1)
        control = self.expert.controls[step]
        elapsed_s = (target_ns - step * WORLD_STEP_NS) / NS_PER_S
        state = self.expert.ego[step]
        if elapsed_s > 0.0:
            state = state.advance(control.acceleration, control.curvature, elapsed_s)
        self.vehicle.state = state
        self.vehicle.actuators = ActuatorState(
            math.atan(self._params.wheelbase * control.curvature), control.acceleration
        )

    def expert_trace(self) -> Trace:
        """The expert's next 6.4 s from the ego now, step by step (the ego it reaches, the
        world around it, its controls and intents): what a perfect planner would do from
        the closed-loop state (the world's future is scripted), and that state's label
        when a model learns from the states it visits itself."""
        self._planner.act(self.state, self.ego)  # its memory moves on with the ego
        planner = copy.deepcopy(self._planner)
        trace, ego = Trace(), self.ego
        for ahead in range(TRAJECTORY_STEPS + 1):
            state = self.expert.states[self.world_step + ahead]
            trace.ego.append(ego)
            trace.states.append(state)
            if ahead == TRAJECTORY_STEPS:
                break
            control, intent = planner.act(state, ego)
            trace.controls.append(control)
            trace.intents.append(intent)
            ego = ego.advance(control.acceleration, control.curvature, TRAJECTORY_DT_S)
        return trace

    def expert_plan(self) -> Rollout:
        """The expert's next 6.4 s from the ego now, in the ego frame: the plan a perfect
        planner would hand the control bridge."""
        return future_rollout(self.expert_trace(), 0)

    def render(self, cameras: tuple[str, ...], width: int, height: int) -> npt.NDArray[np.uint8]:
        """RGB uint8 [cameras, height, width, 3]: the world now, seen from the ego now."""
        if self._renderer is None:
            self._renderer = Renderer()
        return self._renderer.render_cameras(self.state, self.ego.pose, width, height, cameras)

    def _record(self) -> None:
        ego, actuators = self.vehicle.state, self.vehicle.actuators
        self._records.append(
            (
                self.now_ns / NS_PER_S,
                ego.x,
                ego.y,
                ego.yaw,
                ego.v,
                actuators.acceleration,
                actuators.steering,
            )
        )

    def record(self) -> EgoRecord:
        table = np.array(self._records, dtype=np.float64)
        return EgoRecord(table[:, 0], table[:, 1:5], table[:, 5], table[:, 6])

    def expert_states(self) -> npt.NDArray[np.float64]:
        """[M, 4] the expert's x, y, yaw, v every 0.1 s: the reference drive."""
        return np.array([(e.x, e.y, e.yaw, e.v) for e in self.expert.ego], dtype=np.float64)
