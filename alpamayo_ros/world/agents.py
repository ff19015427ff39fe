"""Agents of the synthetic world and their scripted behaviour, advanced per 0.1 s step.

Agents live in road coordinates (s along the reference path, d to the left) because every
behaviour here is road-relative: keep a lane, brake in it, change lanes, cross the road. An
`Agent` is the immutable description (size, colour, scripts, initial state); its motion is
a pure function `step(state, t) -> state`, so a scenario can be replayed any number of
times and a snapshot (`AgentState`) is safe to hand to the expert and the renderer.

Scripts are deliberately simple and visible: a braking car shows brake lights for its whole
deceleration, a lane change moves the car sideways for seconds before it is in the new
lane, a pedestrian walks at constant speed. Whatever the expert reacts to can be seen in
the four camera frames before t0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from alpamayo_ros.core.compat import StrEnum

DT_S = 0.1

Rgb = tuple[int, int, int]


class AgentError(ValueError):
    """Agent parameters that cannot be simulated."""


class AgentKind(StrEnum):
    VEHICLE = "vehicle"
    PEDESTRIAN = "pedestrian"
    CYCLIST = "cyclist"
    CONE = "cone"


# (length, width, height) in m, length along the agent's heading.
AGENT_SIZES: dict[AgentKind, tuple[float, float, float]] = {
    AgentKind.VEHICLE: (4.6, 1.9, 1.5),
    AgentKind.PEDESTRIAN: (0.5, 0.5, 1.75),
    AgentKind.CYCLIST: (1.8, 0.6, 1.7),
    AgentKind.CONE: (0.4, 0.4, 0.7),
}
CONE_ORANGE: Rgb = (255, 110, 0)
# Deceleration (m/s^2) from which a vehicle's brake lights are lit.
BRAKE_LIGHT_DECELERATION = 0.5


class LightColour(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True, slots=True)
class AgentState:
    """Snapshot of one agent at one time step."""

    agent_id: str
    kind: AgentKind
    s: float  # m along the reference path (centre of the agent)
    d: float  # m, left of the reference path
    heading: float  # rad, relative to the path tangent (pi/2: moving to the left)
    speed: float  # m/s along the heading
    acceleration: float  # m/s^2 along the heading
    length: float
    width: float
    height: float
    colour: Rgb
    brake_lights: bool = False

    @property
    def longitudinal_speed(self) -> float:
        """Speed along the road (m/s)."""
        return self.speed * math.cos(self.heading)

    @property
    def lateral_speed(self) -> float:
        """Speed across the road, positive to the left (m/s)."""
        return self.speed * math.sin(self.heading)

    @property
    def rear_s(self) -> float:
        return self.s - self._half_extent_along_road()

    @property
    def front_s(self) -> float:
        return self.s + self._half_extent_along_road()

    @property
    def half_width_across_road(self) -> float:
        cos, sin = abs(math.cos(self.heading)), abs(math.sin(self.heading))
        return (self.width * cos + self.length * sin) / 2.0

    def _half_extent_along_road(self) -> float:
        cos, sin = abs(math.cos(self.heading)), abs(math.sin(self.heading))
        return (self.length * cos + self.width * sin) / 2.0


@dataclass(frozen=True)
class SpeedChange:
    """From `start_time`, brake or accelerate at `rate` until `final_speed` is reached."""

    start_time: float  # s
    rate: float  # m/s^2, positive
    final_speed: float = 0.0  # m/s


@dataclass(frozen=True)
class LaneChange:
    """Move sideways to `target_d` over `duration` s with a smooth (quintic) profile."""

    start_time: float
    duration: float
    target_d: float


@dataclass(frozen=True)
class Crossing:
    """Cross the road (pedestrians, crossing traffic) at constant speed from `start_time`.

    direction +1 walks to the left (d increasing), -1 to the right; the agent stops at
    `end_d`.
    """

    start_time: float
    speed: float
    direction: int
    end_d: float


@dataclass(frozen=True)
class Agent:
    """An agent's fixed description and initial state; `step` advances its state."""

    agent_id: str
    kind: AgentKind
    s: float
    d: float
    speed: float = 0.0
    colour: Rgb = CONE_ORANGE
    speed_change: SpeedChange | None = None
    lane_change: LaneChange | None = None
    crossing: Crossing | None = None
    # A vehicle standing in traffic (queue at a light) shows brake lights; a broken-down or
    # parked one does not, which is how the expert (and a model) tells them apart.
    holds_brake_when_stopped: bool = True

    def __post_init__(self) -> None:
        if self.speed < 0.0:
            raise AgentError(f"{self.agent_id}: speed must not be negative")
        if self.crossing is not None and self.crossing.direction not in (-1, 1):
            raise AgentError(f"{self.agent_id}: crossing direction must be +1 or -1")
        if self.speed_change is not None and not (
            self.speed_change.rate > 0.0 and self.speed_change.final_speed >= 0.0
        ):
            raise AgentError(f"{self.agent_id}: speed change needs a positive rate")
        if self.lane_change is not None and not self.lane_change.duration > 0.0:
            raise AgentError(f"{self.agent_id}: lane change duration must be positive")
        if self.kind is AgentKind.CONE and (self.speed or self.crossing or self.lane_change):
            raise AgentError(f"{self.agent_id}: cones do not move")

    @property
    def is_static(self) -> bool:
        return self.kind is AgentKind.CONE or (
            self.speed == 0.0
            and self.crossing is None
            and self.lane_change is None
            and self.speed_change is None
        )

    def initial_state(self) -> AgentState:
        length, width, height = AGENT_SIZES[self.kind]
        heading = 0.0
        speed = self.speed
        if self.crossing is not None:
            heading = self.crossing.direction * math.pi / 2.0
            speed = 0.0
        return AgentState(
            agent_id=self.agent_id,
            kind=self.kind,
            s=self.s,
            d=self.d,
            heading=heading,
            speed=speed,
            acceleration=0.0,
            length=length,
            width=width,
            height=height,
            colour=self.colour,
            brake_lights=self._brake_lights(speed, 0.0),
        )

    def step(self, state: AgentState, t: float, dt: float = DT_S) -> AgentState:
        """The state at t + dt, from the state at t."""
        if self.is_static:
            return state
        if self.crossing is not None:
            return self._step_crossing(state, t, dt)
        speed = state.longitudinal_speed
        acceleration = 0.0
        change = self.speed_change
        if change is not None and t >= change.start_time - 1e-9:
            missing = change.final_speed - speed
            acceleration = math.copysign(min(change.rate, abs(missing) / dt), missing)
        new_speed = speed + acceleration * dt
        s = state.s + (speed + new_speed) / 2.0 * dt
        d, lateral_speed = state.d, 0.0
        if self.lane_change is not None:
            d, lateral_speed = self._lane_change_at(t + dt)
        heading = math.atan2(lateral_speed, new_speed) if new_speed > 0.1 else 0.0
        total_speed = math.hypot(new_speed, lateral_speed)
        return replace(
            state,
            s=s,
            d=d,
            heading=heading,
            speed=total_speed,
            acceleration=acceleration,
            brake_lights=self._brake_lights(new_speed, acceleration),
        )

    def _brake_lights(self, speed: float, acceleration: float) -> bool:
        if self.kind is not AgentKind.VEHICLE:
            return False
        if acceleration <= -BRAKE_LIGHT_DECELERATION:
            return True
        return speed < 0.1 and self.holds_brake_when_stopped

    def _lane_change_at(self, t: float) -> tuple[float, float]:
        """Lateral offset and lateral speed of the lane change at time t."""
        change = self.lane_change
        assert change is not None
        phase = (t - change.start_time) / change.duration
        offset = change.target_d - self.d
        return (
            self.d + offset * smootherstep(phase),
            offset * smootherstep_derivative(phase) / change.duration,
        )

    def _step_crossing(self, state: AgentState, t: float, dt: float) -> AgentState:
        crossing = self.crossing
        assert crossing is not None
        if t < crossing.start_time - 1e-9:
            return state
        remaining = (crossing.end_d - state.d) * crossing.direction
        if remaining <= 0.0:
            return replace(state, speed=0.0, acceleration=0.0) if state.speed else state
        step = min(crossing.speed * dt, remaining)
        return replace(
            state,
            d=state.d + crossing.direction * step,
            speed=crossing.speed if step == crossing.speed * dt else 0.0,
            acceleration=0.0,
        )


@dataclass(frozen=True)
class LightPhase:
    start_time: float  # s
    colour: LightColour


@dataclass(frozen=True, slots=True)
class LightState:
    """Snapshot of a traffic light: where it stands and which lamp is lit."""

    light_id: str
    s: float  # m, arc length of the pole (far side of the intersection)
    d: float  # m, lateral offset of the pole (right of the road)
    stop_line_s: float  # m, the stop line it controls
    colour: LightColour


@dataclass(frozen=True)
class TrafficLight:
    """A traffic light as a timed state machine: phases (start time, colour) in order."""

    light_id: str
    s: float
    d: float
    stop_line_s: float
    phases: tuple[LightPhase, ...]

    def __post_init__(self) -> None:
        if not self.phases:
            raise AgentError(f"{self.light_id}: a traffic light needs at least one phase")
        times = [phase.start_time for phase in self.phases]
        if times != sorted(times):
            raise AgentError(f"{self.light_id}: phases must be in time order")

    @classmethod
    def cycle(
        cls,
        light_id: str,
        s: float,
        d: float,
        stop_line_s: float,
        first: LightColour,
        first_ends: float,
        green_s: float = 12.0,
        yellow_s: float = 3.0,
        red_s: float = 12.0,
        horizon_s: float = 120.0,
    ) -> TrafficLight:
        """The usual green -> yellow -> red -> green cycle, starting in `first` until
        `first_ends` seconds."""
        order = (LightColour.GREEN, LightColour.YELLOW, LightColour.RED)
        durations = {
            LightColour.GREEN: green_s,
            LightColour.YELLOW: yellow_s,
            LightColour.RED: red_s,
        }
        phases = [LightPhase(-math.inf, first)]
        colour, t = first, first_ends
        while t < horizon_s:
            colour = order[(order.index(colour) + 1) % 3]
            phases.append(LightPhase(t, colour))
            t += durations[colour]
        return cls(light_id, s, d, stop_line_s, tuple(phases))

    def colour_at(self, t: float) -> LightColour:
        colour = self.phases[0].colour
        for phase in self.phases:
            if phase.start_time <= t + 1e-9:
                colour = phase.colour
            else:
                break
        return colour

    def state_at(self, t: float) -> LightState:
        return LightState(self.light_id, self.s, self.d, self.stop_line_s, self.colour_at(t))


def smootherstep(phase: float) -> float:
    """Quintic 0 -> 1 ramp with zero slope and curvature at both ends (clamped)."""
    if phase <= 0.0:
        return 0.0
    if phase >= 1.0:
        return 1.0
    return phase * phase * phase * (phase * (6.0 * phase - 15.0) + 10.0)


def smootherstep_derivative(phase: float) -> float:
    if phase <= 0.0 or phase >= 1.0:
        return 0.0
    return 30.0 * phase * phase * (phase - 1.0) * (phase - 1.0)
