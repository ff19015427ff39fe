"""Closed-loop metrics of one drive of a scenario, as AlpaSim scores a scene, and their
summary over scenarios.

Open-loop errors say how close a plan is to the expert's; a closed-loop drive says whether
the car, driven by those plans, hits something, leaves the road or runs a light, and how far
it gets. A `Drive` is what such a run leaves behind: the ego's samples, the world every
0.1 s and the expert's own drive of the same scenario. The definitions:

- World state at an ego sample time t: ``states[min(floor(t / 0.1 + 1e-9), len - 1)]``, the
  latest snapshot not after t (the world is held between its 0.1 s steps).
- Ego footprint: the box from -EGO_REAR_M to +EGO_FRONT_M along the heading and
  +-EGO_HALF_WIDTH_M across it, around base_link (the rear axle centre). Agent footprint:
  the box of the agent's length and width centred at ``road.world_point(s, d)``, heading
  along the path tangent plus the agent's relative heading.
- Collision: the footprints overlap by more than 1e-6 m^2 (``cv2.intersectConvexConvex``).
  A collision is the onset of an overlap with one agent; a contact that lasts over several
  samples is one collision. It is the ego's fault unless the ego is standing (v < 0.1 m/s)
  or the agent's centre lies behind the ego's rear axle (ego-frame x < 0): being rear-ended
  is not the ego's fault.
- Footprint distance: 0 when overlapping, else the smallest distance of a corner of either
  box to the other box (``cv2.pointPolygonTest``), which is exact for convex polygons.
- Off road: a footprint corner's lateral offset d (``road.project``) lies outside
  [road.right_edge, road.left_edge] by more than 0.05 m.
- Lane departure time: the sum of the intervals from each sample to the next during which
  the footprint's corners are not all in one lane (``road.lane_at`` differs or is None).
- Red-light violation: the front point (EGO_FRONT_M ahead of base_link) goes, between two
  consecutive samples, from s < stop_line_s to s >= stop_line_s of a light that is red at
  the later sample.
- Stop-line violation: the ego comes to rest (v < 0.1 m/s) with its front at or past a stop
  line and before the intersection's far edge (the light's pole when the road has no
  intersection) while that light is not green.
- Time to collision: for each agent whose centre, in the ego frame, is ahead (x > 0) and
  within EGO_HALF_WIDTH_M + width / 2 of the ego's axis, the gap x - EGO_FRONT_M - length / 2
  over the closing speed (ego v minus the agent's velocity along the ego heading), when
  closing faster than 0.1 m/s; constant velocities, the gap clamped at 0.
- Progress: s of base_link (``road.project``) at the last sample minus at the first sample
  at or after controlled_from_s; the expert's over the same time window, from its samples
  at round(t / 0.1) (clamped to its drive).
- Comfort: jerk is diff(acceleration) / diff(t), lateral acceleration the interval's mean
  speed times its yaw rate (wrapped diff(yaw) / diff(t)).
- Score (AlpaSim's): min(progress_ratio, 1), at least 0, and 0 after an at-fault collision or
  leaving the road. Passed: no at-fault collision, not off road, no red-light violation and
  progress_ratio >= the criteria's minimum.

Before controlled_from_s the expert drove, so only what happens at or after it counts: a
collision whose contact began before, or a comfort figure of an interval that begins before
it, is not the commands' doing; a stop line counts as crossed at the later sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.kinematics import Rollout
from alpamayo_ros.core.meta_actions import label_meta_action
from alpamayo_ros.core.planar import wrap_angle
from alpamayo_ros.world.agents import DT_S, AgentState, LightColour, LightState
from alpamayo_ros.world.closed_loop import ClosedLoopWorld
from alpamayo_ros.world.expert import EGO_FRONT_M, EGO_HALF_WIDTH_M, EGO_REAR_M
from alpamayo_ros.world.reasoning_text import is_consistent
from alpamayo_ros.world.road import Road
from alpamayo_ros.world.state import WorldState

FloatArray = npt.NDArray[np.float64]

# Below this speed the ego is standing: it cannot be at fault in a collision, and standing
# past a stop line is stopping there.
STANDING_SPEED = 0.1  # m/s
# Footprints that share less area than this only touch (float32 polygon arithmetic).
OVERLAP_AREA_M2 = 1e-6
OFF_ROAD_TOLERANCE_M = 0.05
# Slower closing is no approach: a time to collision from it would be noise.
MIN_CLOSING_SPEED = 0.1  # m/s
# An expert that moved less than this stood still; any progress then matches it.
MIN_EXPERT_PROGRESS_M = 0.5
# Sample times are multiples of 0.1 s in floating point (30 * 0.1 is 3.0000000000000004).
_TIME_TOLERANCE_S = 1e-9


class ClosedLoopError(ValueError):
    """A drive whose arrays cannot describe one run (shapes, times, nothing recorded)."""


@dataclass(frozen=True)
class Drive:
    """One closed-loop run of a scenario, as the metrics need it."""

    road: Road
    states: Sequence[WorldState]  # agents and lights every 0.1 s: states[k] is at t = k * 0.1 s
    t_s: FloatArray  # [N] ego sample times, s since the scenario started, increasing
    ego: FloatArray  # [N, 4] x, y, yaw, v of base_link (rear axle centre), road's world frame
    acceleration: FloatArray  # [N] the vehicle's actual longitudinal acceleration
    expert_ego: FloatArray  # [M, 4] the expert's own drive of the same scenario, every 0.1 s
    # The commands drove from here on (before it the expert drove): only events at or after
    # it count.
    controlled_from_s: float = 0.0
    plan_latency_s: Sequence[float] = ()  # input t0 -> trajectory, per plan
    consistency: float | None = None  # reasoning-action consistency over the drive's plans

    def __post_init__(self) -> None:
        for name in ("t_s", "ego", "acceleration", "expert_ego"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float))
        _validate(self)


@dataclass(frozen=True)
class PassCriteria:
    """What a drive free of at-fault collisions, off-road excursions and red lights must
    still reach to pass."""

    min_progress_ratio: float = 0.8


@dataclass(frozen=True)
class ClosedLoopMetrics:
    """One drive's closed-loop figures (definitions in the module docstring)."""

    collision: bool
    at_fault_collision: bool
    collision_object: str  # agent_id of the first collision ("" none)
    collision_time_s: float | None
    off_road: bool
    lane_departure_s: float  # seconds with the footprint over a lane boundary (informational)
    red_light_violation: bool  # the front crossed a stop line while its light was red
    # Came to rest with its front past a stop line, before the intersection's far edge,
    # while the light was not green.
    stop_line_violation: bool
    progress_m: float  # along the road (s of base_link), controlled_from_s .. end
    expert_progress_m: float  # the expert over the same time span
    progress_ratio: float  # progress / expert progress (1.0 when the expert stood); may exceed 1
    min_distance_m: float  # smallest footprint gap to any agent (0 touching); inf: no agents
    min_ttc_s: float  # smallest time to collision with an agent ahead in the path; inf: none
    peak_jerk: float  # max |d acceleration / dt|, m/s^3
    peak_lateral_acceleration: float  # max |v * yaw rate|, m/s^2
    plan_latency_p50_s: float | None
    plan_latency_p90_s: float | None
    consistency: float | None
    score: float  # AlpaSim scene score: min(progress_ratio, 1), 0 at fault or off the road
    # When the score was zeroed: the first at-fault collision or leaving the road (None:
    # neither happened).
    failed_at_s: float | None
    # No at-fault collision, not off road, no red-light violation, enough progress.
    passed: bool
    failures: tuple[str, ...]  # why not passed, human readable


@dataclass(frozen=True)
class _Contact:
    """The ego and one agent at one sample."""

    agent_id: str
    overlap: bool
    at_fault: bool  # of the collision, if this overlap starts one
    distance: float  # m between the footprints
    ttc: float  # s, inf when not closing in on it in the ego's path


@dataclass(frozen=True)
class _Collision:
    agent_id: str
    time_s: float
    at_fault: bool


def ego_footprint(x: float, y: float, yaw: float) -> FloatArray:
    """Corners [4, 2] of the ego's box (base_link at x, y), counter-clockwise from rear right."""
    return _box(x, y, yaw, EGO_REAR_M, EGO_FRONT_M, EGO_HALF_WIDTH_M)


def agent_footprint(road: Road, agent: AgentState) -> FloatArray:
    """Corners [4, 2] of an agent's box in the road's world frame, counter-clockwise."""
    x, y, road_yaw = road.world_point(agent.s, agent.d)
    half_length = agent.length / 2.0
    return _box(x, y, road_yaw + agent.heading, half_length, half_length, agent.width / 2.0)


def score_drive(drive: Drive, criteria: PassCriteria = PassCriteria()) -> ClosedLoopMetrics:
    """The closed-loop metrics of one drive (definitions in the module docstring)."""
    road, t = drive.road, drive.t_s
    x, y, yaw, v = drive.ego.T
    counted = t >= drive.controlled_from_s - _TIME_TOLERANCE_S
    first = int(np.argmax(counted))  # _validate guarantees a counted sample
    states = [_state_at(drive.states, time) for time in t]

    collisions: list[_Collision] = []
    touching: set[str] = set()
    min_distance, min_ttc = math.inf, math.inf
    off_road_at: float | None = None
    lane_departure = 0.0
    red_light: tuple[str, float] | None = None
    stop_line_violation = False
    front_x, front_y = x + EGO_FRONT_M * np.cos(yaw), y + EGO_FRONT_M * np.sin(yaw)
    front_s = [road.project(fx, fy)[0] for fx, fy in zip(front_x, front_y, strict=True)]
    for k, state in enumerate(states):
        ego = ego_footprint(x[k], y[k], yaw[k])
        contacts = _contacts(road, state, ego, (x[k], y[k], yaw[k], v[k]), counted[k])
        overlapping = {contact.agent_id for contact in contacts if contact.overlap}
        if counted[k]:
            for contact in contacts:
                if contact.overlap and contact.agent_id not in touching:
                    collisions.append(_Collision(contact.agent_id, float(t[k]), contact.at_fault))
                min_distance = min(min_distance, contact.distance)
                min_ttc = min(min_ttc, contact.ttc)
        touching = overlapping
        if not counted[k]:
            continue
        corner_d = [road.project(cx, cy)[1] for cx, cy in ego]
        if off_road_at is None and _off_road(road, corner_d):
            off_road_at = float(t[k])
        lanes = {road.lane_at(d) for d in corner_d}
        if k + 1 < len(t) and (len(lanes) != 1 or None in lanes):
            lane_departure += float(t[k + 1] - t[k])
        for light in state.lights:
            crossed = k > 0 and front_s[k - 1] < light.stop_line_s <= front_s[k]
            if red_light is None and crossed and light.colour is LightColour.RED:
                red_light = (light.light_id, float(t[k]))
            if v[k] < STANDING_SPEED and _past_stop_line(road, light, front_s[k]):
                stop_line_violation = True

    progress = road.project(x[-1], y[-1])[0] - road.project(x[first], y[first])[0]
    expert_progress = _expert_progress(drive, float(t[first]), float(t[-1]))
    ratio = progress / expert_progress if expert_progress >= MIN_EXPERT_PROGRESS_M else 1.0
    at_fault = next((c for c in collisions if c.at_fault), None)

    failures = []
    if at_fault is not None:
        failures.append(f"at-fault collision with {at_fault.agent_id} at {at_fault.time_s:.1f} s")
    if off_road_at is not None:
        failures.append(f"off the road at {off_road_at:.1f} s")
    if red_light is not None:
        failures.append(f"ran the red light {red_light[0]} at {red_light[1]:.1f} s")
    if ratio < criteria.min_progress_ratio:
        failures.append(f"progress {ratio:.2f} of the expert's < {criteria.min_progress_ratio:g}")
    peak_jerk, peak_lateral = _comfort(drive, counted)
    latencies = np.asarray(drive.plan_latency_s, dtype=float)
    zeroed_at = [] if off_road_at is None else [off_road_at]
    if at_fault is not None:
        zeroed_at.append(at_fault.time_s)
    return ClosedLoopMetrics(
        collision=bool(collisions),
        at_fault_collision=at_fault is not None,
        collision_object=collisions[0].agent_id if collisions else "",
        collision_time_s=collisions[0].time_s if collisions else None,
        off_road=off_road_at is not None,
        lane_departure_s=lane_departure,
        red_light_violation=red_light is not None,
        stop_line_violation=stop_line_violation,
        progress_m=progress,
        expert_progress_m=expert_progress,
        progress_ratio=ratio,
        min_distance_m=min_distance,
        min_ttc_s=min_ttc,
        peak_jerk=peak_jerk,
        peak_lateral_acceleration=peak_lateral,
        plan_latency_p50_s=float(np.percentile(latencies, 50)) if latencies.size else None,
        plan_latency_p90_s=float(np.percentile(latencies, 90)) if latencies.size else None,
        consistency=drive.consistency,
        score=0.0 if zeroed_at else float(np.clip(ratio, 0.0, 1.0)),
        failed_at_s=min(zeroed_at) if zeroed_at else None,
        passed=not failures,
        failures=tuple(failures),
    )


def score_world(
    world: ClosedLoopWorld,
    plan_latency_s: Sequence[float],
    plans: Sequence[tuple[str, Rollout]],
) -> ClosedLoopMetrics:
    """The drive a closed-loop world has recorded, scored: what the simulator node and the
    in-process loop (evaluation.rollout) both end with. `plans`: each plan's reasoning text
    and the trajectory chosen with it."""
    record = world.record()
    return score_drive(
        Drive(
            road=world.scenario.road,
            states=world.expert.states,
            t_s=record.t_s,
            ego=record.state,
            acceleration=record.acceleration,
            expert_ego=world.expert_states(),
            controlled_from_s=world.handover_ns / NS_PER_S,
            plan_latency_s=plan_latency_s,
            consistency=plan_consistency(plans),
        )
    )


def plan_consistency(plans: Sequence[tuple[str, Rollout]]) -> float | None:
    """Reasoning-action consistency over a drive's plans, each (its reasoning text, the
    trajectory chosen with it), as the open-loop evaluation scores it: the behaviour the
    text states against the meta-action labelled from the trajectory. None without plans."""
    if not plans:
        return None
    return float(np.mean([is_consistent(text, *label_meta_action(plan)) for text, plan in plans]))


def summarise(results: Sequence[ClosedLoopMetrics]) -> dict[str, float | None]:
    """Rates over scenarios: scenarios, collision_rate, at_fault_collision_rate,
    off_road_rate, red_light_violation_rate, stop_line_violation_rate, pass_rate, mean_score,
    mean_progress_ratio, mean_min_ttc (over the finite ones), peak_jerk_p90,
    plan_latency_p90_s (the 90th percentile of the drives' own p90, over drives with
    latencies) and mean_consistency (over drives with plans); a figure no drive has is
    None."""
    if not results:
        raise ClosedLoopError("no drives to summarise")

    def rate(name: str) -> float:
        return float(np.mean([getattr(result, name) for result in results]))

    ttcs = [r.min_ttc_s for r in results if math.isfinite(r.min_ttc_s)]
    latencies = [r.plan_latency_p90_s for r in results if r.plan_latency_p90_s is not None]
    consistencies = [r.consistency for r in results if r.consistency is not None]
    return {
        "scenarios": len(results),
        "collision_rate": rate("collision"),
        "at_fault_collision_rate": rate("at_fault_collision"),
        "off_road_rate": rate("off_road"),
        "red_light_violation_rate": rate("red_light_violation"),
        "stop_line_violation_rate": rate("stop_line_violation"),
        "pass_rate": rate("passed"),
        "mean_score": rate("score"),
        "mean_progress_ratio": rate("progress_ratio"),
        "mean_min_ttc": float(np.mean(ttcs)) if ttcs else None,
        "peak_jerk_p90": float(np.percentile([r.peak_jerk for r in results], 90)),
        "plan_latency_p90_s": float(np.percentile(latencies, 90)) if latencies else None,
        "mean_consistency": float(np.mean(consistencies)) if consistencies else None,
    }


def _validate(drive: Drive) -> None:
    t = drive.t_s
    if t.ndim != 1 or t.size == 0:
        raise ClosedLoopError(f"t_s must be a non-empty [N] array, got shape {t.shape}")
    n = t.size
    expected = {"ego": (n, 4), "acceleration": (n,)}
    for name, shape in expected.items():
        if getattr(drive, name).shape != shape:
            raise ClosedLoopError(
                f"{name} must have shape {shape} for {n} sample times, "
                f"got {getattr(drive, name).shape}"
            )
    if drive.expert_ego.ndim != 2 or drive.expert_ego.shape[1] != 4 or not drive.expert_ego.size:
        raise ClosedLoopError(
            f"expert_ego must be a non-empty [M, 4] array, got {drive.expert_ego.shape}"
        )
    if not len(drive.states):
        raise ClosedLoopError("a drive needs at least one world state")
    for name in ("t_s", "ego", "acceleration", "expert_ego"):
        if not np.all(np.isfinite(getattr(drive, name))):
            raise ClosedLoopError(f"{name} holds NaN or inf")
    steps = np.diff(t)
    if np.any(steps <= 0.0):
        k = int(np.argmax(steps <= 0.0)) + 1
        raise ClosedLoopError(f"t_s must increase: sample {k} at {t[k]} s follows {t[k - 1]} s")
    if t[0] < 0.0:
        raise ClosedLoopError(f"t_s starts before the scenario, at {t[0]} s")
    if t[-1] < drive.controlled_from_s - _TIME_TOLERANCE_S:
        raise ClosedLoopError(
            f"no sample at or after controlled_from_s = {drive.controlled_from_s} s "
            f"(the last is at {t[-1]} s)"
        )


def _state_at(states: Sequence[WorldState], t: float) -> WorldState:
    return states[min(math.floor(t / DT_S + 1e-9), len(states) - 1)]


def _box(
    x: float, y: float, yaw: float, back: float, front: float, half_width: float
) -> FloatArray:
    """Corners [4, 2] of a box from -back to +front along yaw, counter-clockwise."""
    along = np.array([-back, front, front, -back])
    across = np.array([-half_width, -half_width, half_width, half_width])
    cos, sin = math.cos(yaw), math.sin(yaw)
    return np.stack([x + along * cos - across * sin, y + along * sin + across * cos], axis=1)


def _contacts(
    road: Road,
    state: WorldState,
    ego: FloatArray,
    pose: tuple[float, float, float, float],
    figures: bool,
) -> list[_Contact]:
    """The ego's relation to each agent; without `figures` (a sample before the takeover)
    only the agents it overlaps matter."""
    x, y, yaw, v = pose
    cos, sin = math.cos(yaw), math.sin(yaw)
    # Polygon arithmetic in float32 around the ego: world coordinates hundreds of metres out
    # would lose the millimetres that tell touching from overlapping.
    origin = np.array([x, y])
    ego32 = (ego - origin).astype(np.float32)
    contacts = []
    for agent in state.agents:
        centre_x, centre_y, road_yaw = road.world_point(agent.s, agent.d)
        box32 = (agent_footprint(road, agent) - origin).astype(np.float32)
        overlap = cv2.intersectConvexConvex(ego32, box32)[0] > OVERLAP_AREA_M2
        ahead = (centre_x - x) * cos + (centre_y - y) * sin  # the agent in the ego frame
        aside = -(centre_x - x) * sin + (centre_y - y) * cos
        if not (overlap or figures):
            continue
        ttc = math.inf
        if ahead > 0.0 and abs(aside) <= EGO_HALF_WIDTH_M + agent.width / 2.0:
            closing = v - agent.speed * math.cos(road_yaw + agent.heading - yaw)
            if closing > MIN_CLOSING_SPEED:
                ttc = max(ahead - EGO_FRONT_M - agent.length / 2.0, 0.0) / closing
        if overlap:
            at_fault = v >= STANDING_SPEED and ahead >= 0.0
            contacts.append(_Contact(agent.agent_id, True, at_fault, 0.0, ttc))
        else:
            gap = min(_corner_distance(ego32, box32), _corner_distance(box32, ego32))
            contacts.append(_Contact(agent.agent_id, False, False, gap, ttc))
    return contacts


def _corner_distance(corners: npt.NDArray[np.float32], polygon: npt.NDArray[np.float32]) -> float:
    """Smallest distance of a corner to the polygon, 0 for a corner inside it."""
    return max(
        min(-cv2.pointPolygonTest(polygon, (float(px), float(py)), True) for px, py in corners),
        0.0,
    )


def _off_road(road: Road, corner_d: Sequence[float]) -> bool:
    low, high = road.right_edge - OFF_ROAD_TOLERANCE_M, road.left_edge + OFF_ROAD_TOLERANCE_M
    return any(not low <= d <= high for d in corner_d)


def _past_stop_line(road: Road, light: LightState, front_s: float) -> bool:
    """Whether a front at front_s stands past the light's stop line, inside the
    intersection, while the light does not let it through."""
    far_edge = road.intersection.far_edge_s if road.intersection is not None else light.s
    return light.colour is not LightColour.GREEN and light.stop_line_s <= front_s < far_edge


def _expert_progress(drive: Drive, t_first: float, t_last: float) -> float:
    expert = drive.expert_ego
    first, last = (min(max(round(t / DT_S), 0), len(expert) - 1) for t in (t_first, t_last))
    road = drive.road
    return road.project(*expert[last, :2])[0] - road.project(*expert[first, :2])[0]


def _comfort(drive: Drive, counted: npt.NDArray[np.bool_]) -> tuple[float, float]:
    """Peak |jerk| and |lateral acceleration| over the intervals that begin at a counted
    sample (0 with fewer than two samples). Jerk only while the car moves: coming to rest,
    the simulated brakes drop to holding within one step, which is not the ride."""
    intervals = counted[:-1]
    if not intervals.any():
        return 0.0, 0.0
    yaw, v = drive.ego[:, 2], drive.ego[:, 3]
    dt = np.diff(drive.t_s)[intervals]
    moving = ((v[:-1] > STANDING_SPEED) & (v[1:] > STANDING_SPEED))[intervals]
    jerk = (np.diff(drive.acceleration)[intervals] / dt)[moving]
    yaw_rate = wrap_angle(np.diff(yaw))[intervals] / dt
    mean_speed = ((v[:-1] + v[1:]) / 2.0)[intervals]
    peak_jerk = float(np.max(np.abs(jerk))) if jerk.size else 0.0
    return peak_jerk, float(np.max(np.abs(mean_speed * yaw_rate)))
