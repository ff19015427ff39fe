"""Seeded driving scenarios: road, agents, traffic lights, ego start and the sample time.

`make_scenario(seed, type)` is a pure function of its arguments (numpy Generators seeded
from the seed), so a dataset is reproducible from its seed list. Each type is parameterised
at random (speeds, distances, lanes, curvature, timing) and timed so that its event (a
braking lead, a cut-in, a crossing pedestrian, a light ...) has begun or is imminent at the
sample time t0: whatever the expert does in the 6.4 s after t0 can be inferred from the
four frames before t0 and the ego history. Choices the expert makes (stop or change lanes,
nudge in or out of the lane) follow from what is visible: whether a left lane exists and is
free, how far a cyclist rides from the lane edge, how far cones encroach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from alpamayo_ros.core.contract import HISTORY_POSES, TRAJECTORY_STEPS
from alpamayo_ros.core.control import pure_pursuit_lookahead
from alpamayo_ros.world.agents import (
    AGENT_SIZES,
    CONE_ORANGE,
    Agent,
    AgentKind,
    Crossing,
    LaneChange,
    LightColour,
    Rgb,
    SpeedChange,
    TrafficLight,
)
from alpamayo_ros.world.expert import (
    EGO_FRONT_M,
    EGO_HALF_WIDTH_M,
    ExpertConfig,
    nudge_ramp_length,
    obstacle_closing_ratio,
)
from alpamayo_ros.world.road import Intersection, Road, Segment
from alpamayo_ros.world.state import Appearance

SCENARIO_TYPES: tuple[str, ...] = (
    "free_road",
    "lead_vehicle",
    "lead_vehicle_braking",
    "stopped_vehicle",
    "cut_in",
    "pedestrian_crossing",
    "cyclist",
    "traffic_light",
    "construction",
)
INTERACTIVE_TYPES: tuple[str, ...] = tuple(t for t in SCENARIO_TYPES if t != "free_road")

# The earliest sample time: 16 history poses (1.5 s) plus a warm-up of the expert.
MIN_SAMPLE_STEP = 20
MAX_SAMPLE_STEP = 150
VEHICLE_LENGTH_M = AGENT_SIZES[AgentKind.VEHICLE][0]
# The expert every scenario is timed for.
EXPERT = ExpertConfig()

# The colours a vehicle is painted in (a detector must see each of them).
VEHICLE_COLOURS: tuple[Rgb, ...] = (
    (200, 200, 205),
    (240, 240, 240),
    (30, 30, 35),
    (170, 25, 25),
    (35, 65, 165),
    (25, 95, 55),
    (215, 185, 45),
    (120, 120, 130),
    (105, 65, 35),
    (70, 150, 200),
)
_CLOTHING_COLOURS: tuple[Rgb, ...] = (
    (200, 40, 40),
    (40, 80, 200),
    (230, 200, 40),
    (40, 160, 70),
    (150, 60, 170),
    (240, 130, 30),
    (30, 170, 190),
    (220, 220, 220),
)


class ScenarioError(ValueError):
    """An unknown scenario type or an invalid seed."""


@dataclass(frozen=True)
class Scenario:
    seed: int
    scenario_type: str
    variant: str  # the branch of the type, e.g. "red" or "lane_change"
    road: Road
    agents: tuple[Agent, ...]
    lights: tuple[TrafficLight, ...]
    ego_lane: int
    ego_s: float  # m, base_link on the reference path at t = 0
    ego_speed: float  # m/s at t = 0
    set_speed: float  # m/s
    sample_step: int  # index of t0 (time = 0.1 s * index)
    appearance: Appearance

    @property
    def steps(self) -> int:
        """Steps to simulate for a sample: up to t0 + 6.4 s."""
        return self.sample_step + TRAJECTORY_STEPS


def parse_seeds(text: str) -> list[int]:
    """'11,12,13' or ranges '100-199' (inclusive), comma-separated; an inverted range
    ('5-3') or a negative seed is refused (ValueError), not read as no seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last if dash else first)  # '1-' has no end
        except ValueError:
            raise ValueError(f"not a seed or seed range: {part!r}") from None
        if high < low:
            raise ValueError(f"inverted seed range {part.strip()!r}: write {high}-{low}")
        seeds += range(low, high + 1)
    return seeds


def make_scenario(seed: int, scenario_type: str | None = None) -> Scenario:
    """The scenario of a seed; its type is drawn from the seed when not given.

    make_scenario(seed) equals make_scenario(seed, <the type it drew>).
    """
    if seed < 0:
        raise ScenarioError(f"seed must be non-negative, got {seed}")
    if scenario_type is None:
        type_rng = np.random.default_rng((seed, 0x7E))
        scenario_type = SCENARIO_TYPES[int(type_rng.integers(len(SCENARIO_TYPES)))]
    if scenario_type not in SCENARIO_TYPES:
        raise ScenarioError(f"unknown scenario type {scenario_type!r}; known: {SCENARIO_TYPES}")
    rng = np.random.default_rng((seed, SCENARIO_TYPES.index(scenario_type) + 1))
    builder = _Builder(seed, scenario_type, rng)
    _BUILDERS[scenario_type](builder)
    return builder.build()


class _Builder:
    """Collects one scenario's parts; helpers keep ids and colours consistent."""

    def __init__(self, seed: int, scenario_type: str, rng: np.random.Generator) -> None:
        self.seed = seed
        self.scenario_type = scenario_type
        self.rng = rng
        self.variant = "default"
        self.road = Road((Segment(500.0),))
        self.agents: list[Agent] = []
        self.lights: list[TrafficLight] = []
        self.ego_lane = 0
        self.ego_speed = 12.0
        self.set_speed = 12.0
        self.sample_step = MIN_SAMPLE_STEP
        self._counts: dict[str, int] = {}
        self.appearance = _appearance(rng)

    # ------------------------------------------------------------------ parameters
    def uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    def chance(self, probability: float) -> bool:
        return bool(self.rng.random() < probability)

    def integer(self, low: int, high: int) -> int:
        """Uniform integer in [low, high]."""
        return int(self.rng.integers(low, high + 1))

    def choose(self, options: tuple[Rgb, ...]) -> Rgb:
        return options[int(self.rng.integers(len(options)))]

    def sample_at(self, seconds: float) -> None:
        self.sample_step = int(np.clip(round(seconds * 10.0), MIN_SAMPLE_STEP, MAX_SAMPLE_STEP))

    def lanes(self, low: int, high: int) -> int:
        count = self.integer(low, high)
        self.road = Road(self.road.segments, lane_count=count)
        return count

    def ego(self, lane: int, set_speed: float, speed: float | None = None) -> None:
        self.ego_lane = lane
        self.set_speed = set_speed
        self.ego_speed = set_speed if speed is None else speed

    @property
    def ego_front(self) -> float:
        return EGO_FRONT_M

    def lane_centre(self, lane: int) -> float:
        return self.road.lane_center(lane)

    # ---------------------------------------------------------------------- agents
    def next_id(self, kind: str) -> str:
        self._counts[kind] = self._counts.get(kind, 0) + 1
        return f"{kind}_{self._counts[kind]}"

    def vehicle(self, rear_gap: float, lane_d: float, speed: float, **scripts: object) -> Agent:
        """A vehicle whose rear is `rear_gap` m ahead of the ego's front at t = 0."""
        agent = Agent(
            self.next_id("vehicle"),
            AgentKind.VEHICLE,
            s=self.ego_front + rear_gap + VEHICLE_LENGTH_M / 2.0,
            d=lane_d,
            speed=speed,
            colour=self.choose(VEHICLE_COLOURS),
            **scripts,  # type: ignore[arg-type]
        )
        self.agents.append(agent)
        return agent

    def distractors(self, count: int, exclude_lanes: set[int]) -> None:
        """Vehicles cruising in other lanes: visible traffic the expert must ignore."""
        lanes = [lane for lane in range(self.road.lane_count) if lane not in exclude_lanes]
        self.rng.shuffle(lanes)
        for lane in lanes[:count]:
            self.vehicle(
                self.uniform(-25.0, 60.0),
                self.lane_centre(lane),
                self.set_speed * self.uniform(0.8, 1.15),
            )

    def build(self) -> Scenario:
        return Scenario(
            seed=self.seed,
            scenario_type=self.scenario_type,
            variant=self.variant,
            road=self.road,
            agents=tuple(self.agents),
            lights=tuple(self.lights),
            ego_lane=self.ego_lane,
            ego_s=0.0,
            ego_speed=self.ego_speed,
            set_speed=self.set_speed,
            sample_step=self.sample_step,
            appearance=self.appearance,
        )


def _stop_sample_time(b: _Builder, braking_starts: float, speed: float) -> float:
    """A sample time around a constant-deceleration stop that starts at `braking_starts`:
    before or early in the braking, late in it, or standing, a third each."""
    stopped = braking_starts + speed / EXPERT.stop_braking_start
    phase = b.integer(0, 2)
    if phase == 0:
        return braking_starts + b.uniform(-1.5, 2.0)
    if phase == 1:
        return b.uniform(braking_starts + 2.0, stopped)
    return stopped + b.uniform(0.0, 3.0)


def _appearance(rng: np.random.Generator) -> Appearance:
    def jitter(colour: Rgb, amount: float) -> Rgb:
        noise = rng.uniform(-amount, amount, 3)
        return tuple(int(np.clip(c + n, 0, 255)) for c, n in zip(colour, noise, strict=True))  # type: ignore[return-value]

    grounds: tuple[Rgb, ...] = ((90, 125, 70), (110, 120, 65), (125, 110, 80), (80, 110, 80))
    ground = grounds[int(rng.integers(len(grounds)))]
    grey = float(rng.uniform(60.0, 100.0))
    return Appearance(
        sky_top=jitter((110, 160, 220), 20.0),
        sky_horizon=jitter((190, 210, 235), 15.0),
        ground=jitter(ground, 12.0),
        asphalt=jitter((grey, grey, grey + 4.0), 4.0),  # type: ignore[arg-type]
        marking=jitter((235, 235, 225), 10.0),
    )


def _curvy_road(b: _Builder, probability: float, max_curvature: float, first: float) -> bool:
    """Replace the straight road by straight-arc-straight with `probability`."""
    if not b.chance(probability):
        return False
    curvature = b.uniform(0.006, max_curvature) * (1.0 if b.chance(0.5) else -1.0)
    arc = min(b.uniform(60.0, 150.0), 1.5 / abs(curvature))
    b.road = Road(
        (Segment(first), Segment(arc, curvature), Segment(400.0)), lane_count=b.road.lane_count
    )
    return True


# ------------------------------------------------------------------------- scenario types
def _free_road(b: _Builder) -> None:
    lanes = b.lanes(1, 3)
    lane = b.integer(0, lanes - 1)
    set_speed = b.uniform(10.0, 15.0)
    launch = b.chance(0.3)  # pulling away from low speed
    b.ego(lane, set_speed, set_speed * (b.uniform(0.0, 0.5) if launch else b.uniform(0.75, 1.02)))
    event = b.uniform(2.0, 6.0)  # s until the curve starts
    if _curvy_road(b, 0.6, 0.02, max(10.0, b.ego_speed * event)):
        b.variant = "curve"
        b.sample_at(event + b.uniform(-2.5, 1.0))
    else:
        b.variant = "straight"
        b.sample_at(b.uniform(2.0, 5.0))
    if launch:
        b.variant += "_launch"
        b.sample_at(b.uniform(2.0, 3.5))
    if lanes > 1 and b.chance(0.6):
        b.distractors(b.integer(1, lanes - 1), {lane})
    if b.chance(0.3):  # a pedestrian standing on the verge, not crossing
        b.agents.append(
            Agent(
                b.next_id("pedestrian"),
                AgentKind.PEDESTRIAN,
                s=b.uniform(20.0, 60.0),
                d=b.road.right_edge - b.uniform(1.5, 3.0),
                colour=b.choose(_CLOTHING_COLOURS),
            )
        )


def _lead_vehicle(b: _Builder) -> None:
    lanes = b.lanes(1, 3)
    lane = b.integer(0, lanes - 1)
    set_speed = b.uniform(10.0, 15.0)
    lead_speed = set_speed * b.uniform(0.35, 0.9)
    config = EXPERT
    speed_change = None
    roll = b.rng.random()
    if roll < 0.4:
        b.variant = "approach"
        b.ego(lane, set_speed)
        gap = b.uniform(35.0, 80.0)
    else:
        b.variant = "follow"
        b.ego(lane, set_speed, lead_speed * b.uniform(0.95, 1.1))
        gap = (config.standstill_gap + lead_speed * config.time_headway) * b.uniform(0.9, 1.3)
        if roll > 0.75:  # the lead pulls away and the ego follows it up to the set speed
            b.variant = "lead_accelerates"
            starts = b.uniform(0.5, 2.0)
            speed_change = SpeedChange(starts, b.uniform(1.0, 2.0), set_speed * b.uniform(1.0, 1.2))
    _curvy_road(b, 0.3, 0.008, b.uniform(40.0, 120.0))
    b.vehicle(gap, b.lane_centre(lane), lead_speed, speed_change=speed_change)
    if lanes > 1 and b.chance(0.5):
        b.distractors(1, {lane})
    b.sample_at(b.uniform(2.0, 4.5))


def _lead_vehicle_braking(b: _Builder) -> None:
    lanes = b.lanes(1, 3)
    lane = b.integer(0, lanes - 1)
    set_speed = b.uniform(10.0, 15.0)
    lead_speed = set_speed * b.uniform(0.8, 1.0)
    b.ego(lane, set_speed, lead_speed)
    config = EXPERT
    gap = (config.standstill_gap + lead_speed * config.time_headway) * b.uniform(0.9, 1.4)
    brake_time = b.uniform(2.0, 4.5)
    final_speed = 0.0 if b.chance(0.7) else lead_speed * b.uniform(0.2, 0.5)
    b.variant = "to_stop" if final_speed == 0.0 else "slow_down"
    b.vehicle(
        gap,
        b.lane_centre(lane),
        lead_speed,
        speed_change=SpeedChange(brake_time, b.uniform(3.0, 6.0), final_speed),
    )
    # t0 after the brake lights came on, so the braking is visible in the frames.
    b.sample_step = max(MIN_SAMPLE_STEP, math.ceil(brake_time * 10.0) + b.integer(2, 9))


def _stopped_vehicle(b: _Builder) -> None:
    lanes = b.lanes(1, 3)
    lane = b.integer(0, lanes - 1)
    set_speed = b.uniform(10.0, 14.0)
    b.ego(lane, set_speed)
    config = EXPERT
    v = set_speed
    event = b.uniform(2.5, 5.5)  # s until the expert acts
    left = lane + 1 < lanes
    blocked = left and b.chance(0.35)
    if left and not blocked:
        b.variant = "lane_change"
        trigger = max(30.0, config.lane_change_duration * v) + config.lane_change_trigger_margin
        gap = trigger + v * event
    else:
        b.variant = "blocked" if blocked else "no_left_lane"
        braking_gap = config.standstill_gap + v * v / (2.0 * config.stop_braking_start)
        gap = braking_gap + v * event
    # Parked or broken down: no brake lights, unlike a car queueing at a light.
    b.vehicle(gap, b.lane_centre(lane), 0.0, holds_brake_when_stopped=False)
    if blocked:
        b.vehicle(
            gap + b.uniform(-6.0, 8.0),
            b.lane_centre(lane + 1),
            0.0,
            holds_brake_when_stopped=False,
        )
    if b.variant == "lane_change":
        b.sample_at(event + b.uniform(-1.5, 1.0))
    else:
        b.sample_at(_stop_sample_time(b, event, v))


def _cut_in(b: _Builder) -> None:
    lanes = b.lanes(2, 3)
    lane = b.integer(0, lanes - 1)
    sides = [side for side in (1, -1) if 0 <= lane + side < lanes]
    side = sides[b.integer(0, len(sides) - 1)]
    b.variant = "from_left" if side > 0 else "from_right"
    set_speed = b.uniform(10.0, 15.0)
    b.ego(lane, set_speed)
    cutter_speed = set_speed * b.uniform(0.6, 0.95)
    start = b.uniform(2.0, 4.0)
    gap_at_start = b.uniform(8.0, 22.0)
    gap = gap_at_start + (set_speed - cutter_speed) * start
    b.vehicle(
        gap,
        b.lane_centre(lane + side),
        cutter_speed,
        lane_change=LaneChange(start, b.uniform(2.5, 4.0), b.lane_centre(lane)),
    )
    b.sample_at(start + b.uniform(0.3, 1.5))


def _pedestrian_crossing(b: _Builder) -> None:
    lanes = b.lanes(1, 2)
    lane = b.integer(0, lanes - 1)
    set_speed = b.uniform(10.0, 14.0)
    b.ego(lane, set_speed)
    config = EXPERT
    road = b.road
    from_right = b.chance(0.5)
    b.variant = "from_right" if from_right else "from_left"
    walk_speed = b.uniform(0.8, 1.5)
    walk_start = b.uniform(1.5, 3.0)
    if from_right:
        start_d, direction, end_d = road.right_edge - b.uniform(0.8, 2.0), 1, road.left_edge + 1.5
    else:
        start_d, direction, end_d = road.left_edge + b.uniform(0.8, 2.0), -1, road.right_edge - 1.5
    corridor = 0.95 + config.pedestrian_margin + 0.25
    entry_d = b.lane_centre(lane) - direction * corridor
    enters = walk_start + max(0.0, (entry_d - start_d) * direction) / walk_speed
    arrive = enters + b.uniform(-1.0, 3.0)
    v = set_speed
    line = b.ego_front + config.pedestrian_stop_gap + v * arrive
    line = max(line, b.ego_front + v * walk_start + v * v / 6.0 + 5.0)
    s = line + AGENT_SIZES[AgentKind.PEDESTRIAN][0] / 2.0
    b.agents.append(
        Agent(
            b.next_id("pedestrian"),
            AgentKind.PEDESTRIAN,
            s=s,
            d=start_d,
            colour=b.choose(_CLOTHING_COLOURS),
            crossing=Crossing(walk_start, walk_speed, direction, end_d),
        )
    )
    if b.chance(0.6):
        b.road = Road(road.segments, lane_count=road.lane_count, crosswalk_s=s)
    b.sample_at(walk_start + b.uniform(0.3, 7.0))


def _cyclist(b: _Builder) -> None:
    lanes = b.lanes(1, 3)
    lane = b.integer(0, lanes - 1)
    set_speed = b.uniform(10.0, 14.0)
    b.ego(lane, set_speed)
    config = EXPERT
    v = set_speed
    cyclist_speed = b.uniform(3.0, 6.0)
    offset = -b.uniform(0.85, 1.6)  # from the lane centre; the cyclist is 0.6 m wide
    # What the expert will do follows from the visible offset and lanes (see expert).
    clearance = config.in_lane_nudge - EGO_HALF_WIDTH_M - offset - 0.3
    passing = cyclist_speed + config.cyclist_passing_speed_margin
    if clearance >= config.cyclist_clearance:
        b.variant, gap_at_event = "in_lane", _nudge_onset_gap(v, cyclist_speed)
    elif lane + 1 < lanes:
        b.variant, gap_at_event = "out_of_lane", _nudge_onset_gap(v, cyclist_speed)
    elif clearance >= config.cyclist_min_clearance:
        b.variant = "squeeze"
        gap_at_event = 10.0 + max(v * v - passing * passing, 0.0) / (
            2.0 * config.curve_deceleration
        )
    else:
        b.variant, gap_at_event = "follow", 45.0
    event = b.uniform(2.5, 5.0)
    gap = gap_at_event + (v - cyclist_speed) * event
    b.agents.append(
        Agent(
            b.next_id("cyclist"),
            AgentKind.CYCLIST,
            s=b.ego_front + gap + AGENT_SIZES[AgentKind.CYCLIST][0] / 2.0,
            d=b.lane_centre(lane) + offset,
            speed=cyclist_speed,
            colour=b.choose(_CLOTHING_COLOURS),
        )
    )
    _curvy_road(b, 0.2, 0.006, b.uniform(80.0, 150.0))
    b.sample_at(event + b.uniform(-1.5, 0.5))


def _nudge_onset_gap(v: float, obstacle_speed: float) -> float:
    """Gap (obstacle rear to ego front, m) at which the expert starts a nudge."""
    closing = obstacle_closing_ratio(obstacle_speed, v)
    return (pure_pursuit_lookahead(v) + nudge_ramp_length(v)) * closing + 3.0


def _traffic_light(b: _Builder) -> None:
    lanes = b.lanes(1, 3)
    lane = b.integer(0, lanes - 1)
    set_speed = b.uniform(10.0, 14.0)
    b.ego(lane, set_speed)
    config = EXPERT
    v = set_speed
    roll = b.rng.random()
    queue = False
    launch_at: float | None = None
    if roll < 0.35:
        b.variant = "red"
        braking_gap = config.stop_hold_gap + v * v / (2.0 * config.stop_braking_start)
        event = b.uniform(1.5, 6.0)
        stop_line = b.ego_front + braking_gap + v * event
        b.sample_at(_stop_sample_time(b, event, v))
        first, first_ends = LightColour.RED, b.sample_step / 10.0 + 6.4 + b.uniform(2.0, 8.0)
        queue = True
    elif roll < 0.5:
        b.variant = "red_to_green"  # waiting at the line; the light has just turned green
        b.ego(lane, set_speed, 0.0)
        stop_line = b.ego_front + config.stop_hold_gap + b.uniform(0.0, 0.7)
        launch_at = b.uniform(1.5, 4.0)
        b.sample_at(launch_at + b.uniform(0.3, 1.5))
        first, first_ends = LightColour.RED, launch_at
        queue = True
    elif roll < 0.75:
        b.variant = "green"
        crossing_time = b.uniform(2.5, 7.0)
        stop_line = b.ego_front + v * crossing_time
        b.sample_at(crossing_time + b.uniform(-4.0, 0.5))
        first, first_ends = LightColour.GREEN, b.sample_step / 10.0 + 6.4 + b.uniform(3.0, 10.0)
    else:
        yellow_at = b.uniform(2.5, 4.0)
        stop_distance = v * v / (2.0 * config.yellow_stop_deceleration)
        gap = b.uniform(0.4, 1.6) * stop_distance
        b.variant = "yellow_go" if gap < stop_distance else "yellow_stop"
        stop_line = b.ego_front + config.stop_hold_gap + v * yellow_at + gap
        b.sample_step = max(MIN_SAMPLE_STEP, math.ceil(yellow_at * 10.0) + b.integer(1, 8))
        first, first_ends = LightColour.GREEN, yellow_at
    intersection = Intersection(stop_line + 2.0 + 7.0, half_width=7.0, stop_line_gap=2.0)
    b.road = Road((Segment(600.0),), lane_count=lanes, intersection=intersection)
    red_s = 30.0  # long enough that no sample horizon sees red turn green
    light = TrafficLight.cycle(
        "traffic_light_1",
        s=intersection.far_edge_s + 1.5,
        d=b.road.right_edge - 1.5,
        stop_line_s=intersection.stop_line_s,
        first=first,
        first_ends=first_ends,
        red_s=red_s,
    )
    b.lights.append(light)
    if queue:
        for other in range(lanes):
            if other != lane and b.chance(0.5):
                launch = None
                if launch_at is not None:
                    launch = SpeedChange(
                        launch_at + b.uniform(0.3, 1.2), b.uniform(1.2, 2.0), set_speed
                    )
                b.agents.append(
                    Agent(
                        b.next_id("vehicle"),
                        AgentKind.VEHICLE,
                        s=intersection.stop_line_s - VEHICLE_LENGTH_M / 2.0 - b.uniform(0.5, 2.0),
                        d=b.lane_centre(other),
                        colour=b.choose(VEHICLE_COLOURS),
                        speed_change=launch,
                    )
                )
        if launch_at is None and b.chance(0.5):  # crossing traffic on the other road's green
            direction = 1 if b.chance(0.5) else -1
            speed = b.uniform(8.0, 12.0)
            middle = b.road.left_edge / 2.0 + b.road.right_edge / 2.0
            passes_at = b.sample_step / 10.0 + b.uniform(-1.0, 2.0)
            b.agents.append(
                Agent(
                    b.next_id("vehicle"),
                    AgentKind.VEHICLE,
                    s=intersection.s - direction * 1.75,
                    d=middle - direction * speed * passes_at,
                    colour=b.choose(VEHICLE_COLOURS),
                    crossing=Crossing(0.0, speed, direction, middle + direction * 120.0),
                )
            )
    elif lanes > 1 and b.chance(0.5):
        b.distractors(1, {lane})


def _construction(b: _Builder) -> None:
    lanes = b.lanes(1, 3)
    set_speed = b.uniform(10.0, 14.0)
    b.ego(0, set_speed)
    encroachment = b.uniform(0.45, 1.0 if lanes == 1 else 1.6)
    b.variant = "in_lane" if encroachment <= 1.0 else "out_of_lane"
    event = b.uniform(2.5, 5.0)
    start = b.ego_front + _nudge_onset_gap(set_speed, 0.0) + set_speed * event
    cone_half = AGENT_SIZES[AgentKind.CONE][1] / 2.0
    taper = [0.25, 0.6, 1.0]
    positions = [(start + 4.0 * i, fraction * encroachment) for i, fraction in enumerate(taper)]
    run = b.uniform(15.0, 40.0)
    spacing = b.uniform(3.5, 5.0)
    taper_end = positions[-1][0]
    s = taper_end + spacing
    while s < taper_end + run:
        positions.append((s, encroachment))
        s += spacing
    for cone_s, inner in positions:
        b.agents.append(
            Agent(
                b.next_id("cone"),
                AgentKind.CONE,
                s=cone_s,
                d=b.road.right_edge + inner - cone_half,
                colour=CONE_ORANGE,
            )
        )
    b.sample_at(event + b.uniform(-1.5, 1.0))


_BUILDERS = {
    "free_road": _free_road,
    "lead_vehicle": _lead_vehicle,
    "lead_vehicle_braking": _lead_vehicle_braking,
    "stopped_vehicle": _stopped_vehicle,
    "cut_in": _cut_in,
    "pedestrian_crossing": _pedestrian_crossing,
    "cyclist": _cyclist,
    "traffic_light": _traffic_light,
    "construction": _construction,
}
assert set(_BUILDERS) == set(SCENARIO_TYPES)
assert MIN_SAMPLE_STEP >= HISTORY_POSES
