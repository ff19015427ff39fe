"""Expert driver: the rule-based policy whose controls and reasons the model learns.

Per 0.1 s step it maps the world state (ground truth of what the cameras show) and its own
ego state to one (acceleration, curvature) control, the Alpamayo-R1 action space, and an
`Intent`: the decision it is executing and its cause. It is deterministic and has no hidden
randomness; its only memory is the lane change it committed to, which the ego history shows.

Longitudinal: the most restrictive of
  * free driving towards the set speed, limited before curves (lateral acceleration bound)
    and when squeezing past a cyclist (IDM free-road term),
  * IDM car following of moving vehicles/cyclists in the ego's path (cut-ins included, by
    their lateral motion towards the lane),
  * constant-deceleration stops before static constraints: red light (yellow: stop when
    that needs at most YELLOW_STOP_DECELERATION, else go), pedestrians whose walk enters the
    path, stopped vehicles, a blocked work zone. A stop starts when it needs
    STOP_BRAKING_START m/s^2 and then holds exactly that deceleration to the stop point.
Deceleration is bounded at NORMAL_DECELERATION_LIMIT, or EMERGENCY_DECELERATION_LIMIT when
the kinematics demand more.

Lateral: pure pursuit of a reference offset d_ref(s) along the road: the lane centre, plus a
smooth nudge (in-lane or out-of-lane) around cyclists and cones, or a committed lane change
around a stopped vehicle when a free left lane exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from alpamayo_ros.core.control import pure_pursuit_curvature, pure_pursuit_lookahead
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import VehicleState
from alpamayo_ros.world.agents import (
    BRAKE_LIGHT_DECELERATION,
    DT_S,
    AgentKind,
    AgentState,
    LightColour,
    smootherstep,
)
from alpamayo_ros.world.reasoning_text import Situation
from alpamayo_ros.world.road import Road
from alpamayo_ros.world.state import WorldState

# Ego footprint relative to base_link (rear axle centre), m.
EGO_FRONT_M = 3.7
EGO_REAR_M = 0.9
EGO_HALF_WIDTH_M = 0.95


class ExpertError(ValueError):
    """Expert parameters that cannot drive."""


@dataclass(frozen=True)
class ExpertConfig:
    max_acceleration: float = 1.5  # m/s^2, IDM a
    comfortable_deceleration: float = 2.0  # m/s^2, IDM b
    time_headway: float = 1.4  # s, IDM T
    standstill_gap: float = 3.0  # m, IDM s0 and the gap kept to standing vehicles
    free_deceleration_limit: float = 2.0  # m/s^2, slowing to a lower target speed
    stop_braking_start: float = 1.5  # m/s^2, needed deceleration that starts a stop
    stop_approach_gain: float = 1.0  # 1/s, creeping towards a stop point below the curve
    stop_hold_gap: float = 0.3  # m; closer than this to a stop point, hold
    normal_deceleration_limit: float = 4.0
    emergency_deceleration_limit: float = 6.0
    yellow_stop_deceleration: float = 3.0  # stop for yellow if this suffices
    lateral_acceleration_limit: float = 2.0  # m/s^2 in curves
    curve_deceleration: float = 1.5  # m/s^2 used to plan slowing before a curve
    lead_range: float = 80.0  # m
    pedestrian_range: float = 60.0  # m
    pedestrian_horizon: float = 3.0  # s of a pedestrian's walk checked against the path
    pedestrian_margin: float = 1.0  # m beside the ego's body a pedestrian must keep
    pedestrian_stop_gap: float = 3.0  # m between the ego front and a pedestrian's line
    path_margin: float = 0.3  # m lateral margin when checking vehicles in the path
    cut_in_horizon: float = 1.5  # s of a vehicle's lateral motion checked against the path
    in_lane_nudge: float = 0.7  # m, keeps the ego inside its lane
    out_of_lane_nudge: float = 1.6  # m, into the adjacent lane
    cyclist_clearance: float = 0.9  # m passing clearance at full speed
    cyclist_min_clearance: float = 0.5  # m passing clearance at reduced speed
    cyclist_passing_speed_margin: float = 4.0  # m/s above the cyclist when squeezing past
    cone_clearance: float = 0.5  # m between the ego and the cone line
    lane_change_duration: float = 3.5  # s
    lane_change_trigger_margin: float = 15.0  # m added to the lane-change length
    curve_info_curvature: float = 0.004  # 1/m, a curve worth mentioning
    max_curvature: float = 0.2  # 1/m command bound

    def __post_init__(self) -> None:
        if not 0.0 < self.normal_deceleration_limit <= self.emergency_deceleration_limit:
            raise ExpertError("need 0 < normal <= emergency deceleration limit")
        if not self.max_acceleration > 0.0 or not self.comfortable_deceleration > 0.0:
            raise ExpertError("IDM acceleration and deceleration must be positive")


@dataclass(frozen=True)
class Control:
    acceleration: float  # m/s^2
    curvature: float  # 1/m


# Ranks of an intent, to pick the one that explains a horizon (see simulation).
RANK_NONE = 0
RANK_CONTEXT = 1  # something visible that shapes the drive without constraining it now
RANK_CONSTRAINT = 2  # the binding longitudinal constraint
RANK_MANOEUVRE = 3  # a lateral manoeuvre around an obstacle


@dataclass(frozen=True)
class Intent:
    """What the expert does at one step and why."""

    longitudinal: LongitudinalDecision
    lateral: LateralDecision
    cause: Cause
    situation: Situation
    object_id: str = ""
    rank: int = RANK_NONE


@dataclass(frozen=True)
class _Constraint:
    acceleration: float
    decision: LongitudinalDecision
    cause: Cause
    situation: Situation
    object_id: str
    emergency: bool = False


@dataclass(frozen=True)
class _LaneChange:
    s_start: float
    d_start: float
    target_lane: int
    length: float
    object_id: str


@dataclass(frozen=True)
class _Nudge:
    """A lateral offset held while passing an obstacle spanning [rear_s, front_s]."""

    rear_s: float
    front_s: float
    speed: float  # m/s of the obstacle along the road (the offset moves with it)
    offset: float
    lateral: LateralDecision
    cause: Cause
    situation: Situation
    object_id: str
    passing_speed: float | None = None  # m/s limit while passing


class Expert:
    """Deterministic driver for one scenario (road, starting lane and set speed)."""

    def __init__(
        self, road: Road, lane: int, set_speed: float, config: ExpertConfig = ExpertConfig()
    ) -> None:
        if not road.has_lane(lane):
            raise ExpertError(f"lane {lane} does not exist on a {road.lane_count}-lane road")
        if not set_speed > 0.0:
            raise ExpertError(f"set speed must be positive, got {set_speed}")
        self.road = road
        self.set_speed = set_speed
        self.config = config
        self._lane = lane
        self._lane_change: _LaneChange | None = None

    @property
    def lane(self) -> int:
        """The lane the expert drives in (the target lane once a lane change completes)."""
        return self._lane

    def act(self, world: WorldState, ego: VehicleState) -> tuple[Control, Intent]:
        road, config = self.road, self.config
        s, d = road.project(ego.x, ego.y)
        v = max(ego.v, 0.0)
        front = s + EGO_FRONT_M
        if (
            self._lane_change is not None
            and s >= self._lane_change.s_start + self._lane_change.length
        ):
            self._lane = self._lane_change.target_lane
            self._lane_change = None
        lane_centre = road.lane_center(self._lane)
        agents = world.agents

        if self._lane_change is None:
            self._lane_change = self._plan_lane_change(agents, s, d, front, v, lane_centre)
        nudges, cone_stop = self._plan_nudges(agents, s, front, v, lane_centre)

        def path_offset(s_query: float) -> float:
            return self._base_offset(s_query, lane_centre) + _nudge_offset(
                nudges, s_query, s, v, self._ramp_length(v)
            )

        curvature = self._pure_pursuit(ego, s, v, path_offset)
        constraints = self._constraints(world, s, front, v, path_offset, nudges)
        if cone_stop is not None:
            constraints.append(cone_stop)
        binding = min(constraints, key=lambda constraint: constraint.acceleration)
        limit = (
            config.emergency_deceleration_limit
            if any(c.emergency for c in constraints)
            else config.normal_deceleration_limit
        )
        acceleration = min(max(binding.acceleration, -limit), config.max_acceleration)
        acceleration = max(acceleration, -v / DT_S)
        if v == 0.0 and acceleration <= 0.0:
            curvature = 0.0
        intent = self._intent(world, s, front, v, binding, constraints, nudges)
        return Control(acceleration, curvature), intent

    # ------------------------------------------------------------------ lateral plan
    def _ramp_length(self, v: float) -> float:
        return nudge_ramp_length(v)

    def _base_offset(self, s_query: float, lane_centre: float) -> float:
        change = self._lane_change
        if change is None:
            return lane_centre
        target = self.road.lane_center(change.target_lane)
        phase = (s_query - change.s_start) / change.length
        return change.d_start + (target - change.d_start) * smootherstep(phase)

    def _left_lane_free(self, agents: tuple[AgentState, ...], s_from: float, s_to: float) -> bool:
        left = self._lane + 1
        if not self.road.has_lane(left):
            return False
        centre = self.road.lane_center(left)
        for agent in agents:
            if agent.kind in (AgentKind.VEHICLE, AgentKind.CYCLIST, AgentKind.CONE):
                in_lane = abs(agent.d - centre) < self.road.lane_width / 2.0 + agent.width / 2.0
                if in_lane and agent.front_s > s_from and agent.rear_s < s_to:
                    return False
        return True

    def _plan_lane_change(
        self,
        agents: tuple[AgentState, ...],
        s: float,
        d: float,
        front: float,
        v: float,
        lane_centre: float,
    ) -> _LaneChange | None:
        """Commit to a left lane change around a stopped vehicle when the left lane is free."""
        config = self.config
        length = max(30.0, config.lane_change_duration * v)
        trigger = length + config.lane_change_trigger_margin
        for agent in agents:
            if not _is_stopped_vehicle(agent) or abs(agent.d - lane_centre) > 1.0:
                continue
            gap = agent.rear_s - front
            # Too close to finish the change before it: stop behind instead.
            if length * 0.8 <= gap <= trigger and self._left_lane_free(
                agents, s - 20.0, agent.front_s + 10.0
            ):
                return _LaneChange(s, d, self._lane + 1, length, agent.agent_id)
        return None

    def _plan_nudges(
        self, agents: tuple[AgentState, ...], s: float, front: float, v: float, lane_centre: float
    ) -> tuple[list[_Nudge], _Constraint | None]:
        config = self.config
        half_lane = self.road.lane_width / 2.0
        nudges: list[_Nudge] = []
        cone_stop: _Constraint | None = None
        cones = [
            agent
            for agent in agents
            if agent.kind is AgentKind.CONE
            and lane_centre - half_lane - 0.5 < agent.d < lane_centre
            and agent.front_s > s - EGO_REAR_M - 5.0
            and agent.rear_s - front < config.lead_range
        ]
        if cones:
            inner = max(cone.d + cone.width / 2.0 for cone in cones)
            needed = inner + config.cone_clearance + EGO_HALF_WIDTH_M - lane_centre
            rear = min(cone.rear_s for cone in cones)
            first = min(cones, key=lambda cone: cone.s)
            zone = max(cone.front_s for cone in cones)
            if needed <= 0.05:
                pass
            elif needed <= config.in_lane_nudge:
                nudges.append(
                    _Nudge(
                        rear,
                        zone,
                        0.0,
                        config.in_lane_nudge,
                        LateralDecision.IN_LANE_NUDGE,
                        Cause.CONSTRUCTION,
                        Situation.CONES,
                        first.agent_id,
                    )
                )
            elif self._left_lane_free(agents, s - 20.0, zone + 10.0):
                nudges.append(
                    _Nudge(
                        rear,
                        zone,
                        0.0,
                        max(config.out_of_lane_nudge, needed),
                        LateralDecision.OUT_OF_LANE_NUDGE,
                        Cause.CONSTRUCTION,
                        Situation.CONES,
                        first.agent_id,
                    )
                )
            else:
                cone_stop = _Constraint(
                    self._stop_acceleration(v, rear - 2.0 - front),
                    LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT,
                    Cause.CONSTRUCTION,
                    Situation.CONES,
                    first.agent_id,
                    emergency=self._needs_emergency(v, rear - 2.0 - front),
                )
        for agent in agents:
            if agent.kind is not AgentKind.CYCLIST or abs(agent.d - lane_centre) > half_lane:
                continue
            if agent.front_s < s - EGO_REAR_M - 5.0 or agent.rear_s - front > 60.0:
                continue
            if agent.d > lane_centre:  # riding left of centre: no room to pass in the lane
                continue
            clearance = (lane_centre + config.in_lane_nudge - EGO_HALF_WIDTH_M) - (
                agent.d + agent.width / 2.0
            )
            common = (agent.rear_s, agent.front_s, agent.longitudinal_speed)
            if clearance >= config.cyclist_clearance:
                nudges.append(
                    _Nudge(
                        *common,
                        config.in_lane_nudge,
                        LateralDecision.IN_LANE_NUDGE,
                        Cause.CYCLIST,
                        Situation.CYCLIST_PASS,
                        agent.agent_id,
                    )
                )
            elif self._left_lane_free(agents, s - 20.0, agent.front_s + 30.0):
                nudges.append(
                    _Nudge(
                        *common,
                        config.out_of_lane_nudge,
                        LateralDecision.OUT_OF_LANE_NUDGE,
                        Cause.CYCLIST,
                        Situation.CYCLIST_PASS,
                        agent.agent_id,
                    )
                )
            elif clearance >= config.cyclist_min_clearance:
                nudges.append(
                    _Nudge(
                        *common,
                        config.in_lane_nudge,
                        LateralDecision.IN_LANE_NUDGE,
                        Cause.CYCLIST,
                        Situation.CYCLIST_PASS,
                        agent.agent_id,
                        passing_speed=agent.longitudinal_speed
                        + config.cyclist_passing_speed_margin,
                    )
                )
        return nudges, cone_stop

    def _pure_pursuit(
        self, ego: VehicleState, s: float, v: float, path_offset: Callable[[float], float]
    ) -> float:
        lookahead = pure_pursuit_lookahead(v)
        s_target = s + lookahead
        x, y, _ = self.road.world_point(s_target, path_offset(s_target))
        curvature = pure_pursuit_curvature(x - ego.x, y - ego.y, ego.yaw)
        bound = self.config.max_curvature
        return min(max(curvature, -bound), bound)

    # -------------------------------------------------------------- longitudinal plan
    def _target_speed(self, s: float, nudges: list[_Nudge]) -> tuple[float, Situation | None, str]:
        """Set speed, lowered ahead of curves and while squeezing past a cyclist; with the
        reason and the object causing it."""
        config = self.config
        target, reason, object_id = self.set_speed, None, ""
        for start, end, curvature in self.road.curves():
            if end < s or start > s + 150.0:
                continue
            curve_speed = math.sqrt(config.lateral_acceleration_limit / abs(curvature))
            allowed = math.sqrt(
                curve_speed * curve_speed + 2.0 * config.curve_deceleration * max(start - s, 0.0)
            )
            if allowed < target:
                target, reason = allowed, Situation.CURVE
        for nudge in nudges:
            if nudge.passing_speed is None:
                continue
            # Slow down in time to pass at passing_speed, not earlier.
            distance = max(nudge.rear_s - (s + EGO_FRONT_M) - 10.0, 0.0)
            allowed = math.sqrt(nudge.passing_speed**2 + 2.0 * config.curve_deceleration * distance)
            if allowed < target:
                target, reason, object_id = allowed, nudge.situation, nudge.object_id
        return target, reason, object_id

    def _free_acceleration(self, v: float, target: float) -> float:
        config = self.config
        free = config.max_acceleration * (1.0 - (v / target) ** 4)
        return max(free, -config.free_deceleration_limit)

    def _idm_acceleration(self, v: float, target: float, gap: float, lead_speed: float) -> float:
        config = self.config
        dynamic = v * config.time_headway + v * (v - lead_speed) / (
            2.0 * math.sqrt(config.max_acceleration * config.comfortable_deceleration)
        )
        desired = config.standstill_gap + max(0.0, dynamic)
        return config.max_acceleration * (1.0 - (v / target) ** 4 - (desired / max(gap, 0.1)) ** 2)

    def _stop_acceleration(self, v: float, gap: float) -> float:
        """Acceleration that stops the front exactly `gap` metres ahead."""
        config = self.config
        if gap <= config.stop_hold_gap:
            return -v / DT_S
        needed = v * v / (2.0 * gap)
        if needed >= config.stop_braking_start:
            return -needed
        allowed = math.sqrt(2.0 * config.stop_braking_start * gap)
        return config.stop_approach_gain * (allowed - v)

    def _needs_emergency(self, v: float, gap: float) -> bool:
        return v * v / (2.0 * max(gap, 0.1)) > self.config.normal_deceleration_limit

    def _constraints(
        self,
        world: WorldState,
        s: float,
        front: float,
        v: float,
        path_offset: Callable[[float], float],
        nudges: list[_Nudge],
    ) -> list[_Constraint]:
        config = self.config
        target, reason, reason_object = self._target_speed(s, nudges)
        free_decision = (
            LongitudinalDecision.SET_SPEED_TRACKING
            if reason is None
            else LongitudinalDecision.SPEED_ADAPTATION
        )
        free_cause = {None: Cause.NONE, Situation.CURVE: Cause.ROAD_GEOMETRY}.get(
            reason, Cause.CYCLIST
        )
        constraints = [
            _Constraint(
                self._free_acceleration(v, target),
                free_decision,
                free_cause,
                reason or Situation.CLEAR,
                reason_object,
            )
        ]
        passed = {nudge.object_id for nudge in nudges}
        for agent in world.agents:
            if agent.kind in (AgentKind.VEHICLE, AgentKind.CYCLIST):
                if agent.agent_id not in passed:
                    constraint = self._lead_constraint(agent, s, front, v, target, path_offset)
                    if constraint is not None:
                        constraints.append(constraint)
            elif agent.kind is AgentKind.PEDESTRIAN:
                constraint = self._pedestrian_constraint(agent, front, v, path_offset)
                if constraint is not None:
                    constraints.append(constraint)
        for light in world.lights:
            gap = light.stop_line_s - front - config.stop_hold_gap
            if gap < -config.stop_hold_gap or gap > 150.0:
                continue
            stop = light.colour is LightColour.RED or (
                light.colour is LightColour.YELLOW
                and gap >= v * v / (2.0 * config.yellow_stop_deceleration)
            )
            if stop:
                situation = (
                    Situation.LIGHT_RED
                    if light.colour is LightColour.RED
                    else Situation.LIGHT_YELLOW_STOP
                )
                constraints.append(
                    _Constraint(
                        self._stop_acceleration(v, gap),
                        LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT,
                        Cause.TRAFFIC_LIGHT,
                        situation,
                        light.light_id,
                        emergency=self._needs_emergency(v, gap),
                    )
                )
        return constraints

    def _in_path(
        self, agent: AgentState, path_offset: Callable[[float], float], horizon: float
    ) -> bool:
        """Whether the agent's lateral extent, over `horizon` s of its lateral motion,
        overlaps the ego's path corridor at the agent's position."""
        centre = path_offset(agent.s)
        reach = agent.half_width_across_road + EGO_HALF_WIDTH_M + self.config.path_margin
        low, high = sorted((agent.d, agent.d + agent.lateral_speed * horizon))
        return low < centre + reach and high > centre - reach

    def _lead_constraint(
        self,
        agent: AgentState,
        s: float,
        front: float,
        v: float,
        target: float,
        path_offset: Callable[[float], float],
    ) -> _Constraint | None:
        config = self.config
        gap = agent.rear_s - front
        if gap < -1.0 or gap > config.lead_range:
            return None
        merging = abs(agent.lateral_speed) > 0.2
        horizon = config.cut_in_horizon if merging else 0.0
        if not self._in_path(agent, path_offset, horizon):
            return None
        lead_speed = agent.longitudinal_speed
        if agent.kind is AgentKind.CYCLIST:
            cause, situation = Cause.CYCLIST, Situation.CYCLIST_FOLLOW
            decision = LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING
        elif merging:
            cause, situation = Cause.CUT_IN, Situation.CUT_IN
            decision = LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING
        elif _is_stopped_vehicle(agent):
            cause, situation = Cause.STOPPED_VEHICLE, Situation.STOPPED_WAIT
            if self.road.has_lane(self._lane + 1):
                situation = Situation.STOPPED_BLOCKED
            decision = LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT
        elif lead_speed < 0.3:
            cause, situation = Cause.LEAD_VEHICLE, Situation.LEAD_STOPPED
            decision = LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING
        elif agent.brake_lights:
            cause, situation = Cause.LEAD_VEHICLE, Situation.LEAD_BRAKING
            decision = LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING
        else:
            cause, situation = Cause.LEAD_VEHICLE, Situation.LEAD
            decision = LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING
        if lead_speed < 0.3:
            stop_gap = gap - config.standstill_gap
            return _Constraint(
                self._stop_acceleration(v, stop_gap),
                decision,
                cause,
                situation,
                agent.agent_id,
                emergency=self._needs_emergency(v, stop_gap),
            )
        closing = max(v - lead_speed, 0.0)
        emergency = closing * closing / (2.0 * max(gap - config.standstill_gap, 0.1)) > (
            config.normal_deceleration_limit
        )
        acceleration = self._idm_acceleration(v, target, gap, lead_speed)
        if agent.acceleration < -BRAKE_LIGHT_DECELERATION:
            # IDM only sees the gap shrink; a driver reacts to the brake lights and plans to
            # stop behind where the lead would stop if it kept braking.
            lead_stops_in = lead_speed * lead_speed / (2.0 * -agent.acceleration)
            stop_gap = gap + lead_stops_in - config.standstill_gap
            acceleration = min(acceleration, self._stop_acceleration(v, stop_gap))
            emergency = emergency or self._needs_emergency(v, stop_gap)
        return _Constraint(
            acceleration,
            decision,
            cause,
            situation,
            agent.agent_id,
            emergency=emergency,
        )

    def _pedestrian_constraint(
        self,
        agent: AgentState,
        front: float,
        v: float,
        path_offset: Callable[[float], float],
    ) -> _Constraint | None:
        config = self.config
        line = agent.s - agent.length / 2.0
        if line < front - 0.5 or line - front > config.pedestrian_range:
            return None
        centre = path_offset(agent.s)
        reach = EGO_HALF_WIDTH_M + config.pedestrian_margin + agent.width / 2.0
        low, high = sorted((agent.d, agent.d + agent.lateral_speed * config.pedestrian_horizon))
        if not (low < centre + reach and high > centre - reach):
            return None
        gap = line - config.pedestrian_stop_gap - front
        return _Constraint(
            self._stop_acceleration(v, gap),
            LongitudinalDecision.YIELD,
            Cause.PEDESTRIAN,
            Situation.PEDESTRIAN_CROSSING,
            agent.agent_id,
            emergency=self._needs_emergency(v, gap),
        )

    # ------------------------------------------------------------------------ intent
    def _intent(
        self,
        world: WorldState,
        s: float,
        front: float,
        v: float,
        binding: _Constraint,
        constraints: list[_Constraint],
        nudges: list[_Nudge],
    ) -> Intent:
        config = self.config
        free = constraints[0]
        constrained = (
            binding is not free or binding.decision is LongitudinalDecision.SPEED_ADAPTATION
        )
        if self._lane_change is not None:
            return Intent(
                binding.decision,
                LateralDecision.LANE_CHANGE,
                Cause.STOPPED_VEHICLE,
                Situation.STOPPED_PASS,
                self._lane_change.object_id,
                RANK_MANOEUVRE,
            )
        ramp = self._ramp_length(v)
        for nudge in nudges:
            here = _nudge_offset([nudge], s, s, v, ramp)
            ahead = _nudge_offset([nudge], s + 2.0 * ramp, s, v, ramp)
            if here > 0.02 or ahead > 0.02:
                return Intent(
                    binding.decision,
                    nudge.lateral,
                    nudge.cause,
                    nudge.situation,
                    nudge.object_id,
                    RANK_MANOEUVRE,
                )
        if constrained:
            return Intent(
                binding.decision,
                LateralDecision.LANE_KEEPING,
                binding.cause,
                binding.situation,
                binding.object_id,
                RANK_CONSTRAINT,
            )
        # Nothing constrains the drive: mention what is visible and relevant, if anything.
        for light in world.lights:
            gap = light.stop_line_s - front
            if -config.stop_hold_gap < gap < 60.0:
                situation = (
                    Situation.LIGHT_YELLOW_GO
                    if light.colour is LightColour.YELLOW
                    else Situation.LIGHT_GREEN
                    if light.colour is LightColour.GREEN
                    else Situation.LIGHT_RED
                )
                return self._context_intent(Cause.TRAFFIC_LIGHT, situation, light.light_id)
        for agent in world.agents:
            if agent.kind is not AgentKind.PEDESTRIAN:
                continue
            on_road = self.road.right_edge - 0.5 < agent.d < self.road.left_edge + 0.5
            if on_road and front - 2.0 < agent.s < front + 40.0:
                return self._context_intent(
                    Cause.PEDESTRIAN, Situation.PEDESTRIAN_CLEARED, agent.agent_id
                )
        horizon = max(30.0, 3.0 * v)
        if self.road.max_abs_curvature(s, s + horizon) >= config.curve_info_curvature:
            return self._context_intent(Cause.ROAD_GEOMETRY, Situation.CURVE, "")
        return Intent(
            LongitudinalDecision.SET_SPEED_TRACKING,
            LateralDecision.LANE_KEEPING,
            Cause.NONE,
            Situation.CLEAR,
        )

    @staticmethod
    def _context_intent(cause: Cause, situation: Situation, object_id: str) -> Intent:
        return Intent(
            LongitudinalDecision.SET_SPEED_TRACKING,
            LateralDecision.LANE_KEEPING,
            cause,
            situation,
            object_id,
            RANK_CONTEXT,
        )


def nudge_ramp_length(v: float) -> float:
    """Distance (m) over which a nudge is applied or released. 0.7 m over it turns the
    heading by ~0.09 rad at ~2.8 m/s^2 lateral acceleration: a visible, labelled steer that
    stays comfortable."""
    return max(12.0, 1.2 * v)


def obstacle_closing_ratio(obstacle_speed: float, v: float) -> float:
    """Fraction of the ego's travel by which it closes in on an obstacle ahead."""
    return max(1.0 - obstacle_speed / max(v, 2.0), 0.3)


def _is_stopped_vehicle(agent: AgentState) -> bool:
    """A standing vehicle without brake lights: parked or broken down, not in a queue."""
    return agent.kind is AgentKind.VEHICLE and agent.speed < 0.1 and not agent.brake_lights


def _nudge_offset(
    nudges: list[_Nudge], s_query: float, s_ego: float, v: float, ramp: float
) -> float:
    """Largest nudge offset at s_query; moving obstacles are predicted to where they will be
    when the ego gets there."""
    offset = 0.0
    for nudge in nudges:
        closing = obstacle_closing_ratio(nudge.speed, v)
        advance = nudge.speed * max(s_query - s_ego, 0.0) / max(v, 2.0)
        full_from = nudge.rear_s + advance - EGO_FRONT_M - 3.0
        release_at = nudge.front_s + advance + EGO_REAR_M + 3.0
        # The obstacle moves on while the ego closes in: a ramp of `ramp` metres relative to
        # it spans ramp / closing metres of the ego's path, so shorten it to keep the steer.
        relative = ramp * closing
        weight = smootherstep((s_query - (full_from - relative)) / relative) * (
            1.0 - smootherstep((s_query - release_at) / relative)
        )
        offset = max(offset, nudge.offset * weight)
    return offset
