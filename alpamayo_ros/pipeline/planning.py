"""The planning step: K samples of the action expert integrated, scored, checked, one chosen.

Everything after the backend's `sample_controls` is the same for every backend, so a new
model inherits the safety rules and the consistency-aware ranking instead of copying them:
- integration stops at standstill unless the meta-action is a reverse one;
- samples are ranked by agreement with the decided meta-action first (the reasoning and the
  chosen trajectory must not contradict each other), then by agreement with each other;
- a sample that drives into the object the reasoning stops or yields for, passes too
  close beside the one it nudges around, or comes too near the stop line of a light it
  stops for, is refused, and when no sample is left, a braking
  candidate along the best one stops short of it, as far as its deceleration bound allows
  (core.stand_off);
- with a memory (`stand_off_memory_s` > 0), a stopped vehicle or construction the reasoning
  named in the last seconds is stopped short of, as if stopped for, while the reasoning
  keeps its lane and states no stand-off of its own, or a stop further on
  (core.object_memory);
- given the light ahead the cameras show (perception.traffic_light), the light the
  reasoning names has the cameras' colour, whatever colour the reasoning reads: a red one,
  or a yellow one the car can stop for gently, is stopped at, a green one (or a yellow too
  near to stop for) gone on at without the samples' braking, and the stop line the
  cameras show is its line, where they show one (`pipeline.traffic_lights`); the line of a red
  the cameras show is kept off whatever the reasoning names; where the chosen plan stops
  well short of the cameras' line, a plan that drives up to it is offered first
  (`approach_to_line`);
- given how far the cameras show the lane clear road (perception.free_space), a stop for a
  stopped vehicle or cones placed within road they show clear is moved to where the clear
  road ends, and a plan that drives up to it offered first, as for a line; and what
  stands, or moves no faster than the car, at the clear road's end, followed from plan to
  plan, is kept off while the reasoning keeps its lane, as well as what the reasoning
  stops for (`pipeline.clear_road`);
- given the lane the cameras show (perception.lane), while the reasoning keeps its lane the
  chosen plan's speed profile is driven along the lane's centre instead of its own path,
  when that passes the same checks (`along_lane`);
- given the set speed (a driver's cruise setting, or the road's limit from a map), where
  the reasoning tracks it naming nothing but the road, and the cameras show the corridor
  clear road as far as they look, the chosen plan's speeds are raised towards it as the
  expert gains speed, offered first (`toward_set_speed`);
- checks and selection are `core.trajectory_checks.select_trajectory`;
- the noise is a pure function of the planner's seed and the plan's t0, so a replay gives
  the same samples whatever frames were dropped before; it is scaled by a temperature.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import NS_PER_S, TRAJECTORY_DT_S, TRAJECTORY_STEPS
from alpamayo_ros.core.control import pure_pursuit_curvature, pure_pursuit_lookahead
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.ego_history import EgoHistory
from alpamayo_ros.core.kinematics import (
    Rollout,
    along_path,
    integrate_unicycle,
    stop_at_standstill,
)
from alpamayo_ros.core.meta_actions import Longitudinal, coarse_meta_action, label_meta_action
from alpamayo_ros.core.model_io import CausalDecision, ControlSamples, PlannerInput
from alpamayo_ros.core.object_memory import HOLD_S, Recalled, StandingObjectMemory, hold_problem
from alpamayo_ros.core.stand_off import (
    BESIDE_THE_CAR_M,
    EGO_HALF_WIDTH_M,
    PASSING_CLEARANCE_M,
    PASSING_TO_M,
    SEEN_PASSING_GAP_M,
    STAND_OFF_CLEARANCE_M,
    STAND_OFF_MAX_DECELERATION,
    STOP_LINE_CAUSES,
    STOP_LINE_CLEARANCE_M,
    StandOff,
    braking_for_all,
    first_violations,
    settings_problem,
)
from alpamayo_ros.core.trajectory_checks import Limits, Selection, select_trajectory
from alpamayo_ros.perception.free_space import FreeSpace, corridor_centre
from alpamayo_ros.perception.lane import LaneEstimate
from alpamayo_ros.perception.traffic_light import (
    NO_LIGHT,
    STOP_COLOURS,
    TrafficLightView,
)
from alpamayo_ros.pipeline.backend import Backend
from alpamayo_ros.pipeline.clear_road import (
    CLEAR_PAST_M,
    MOVING_AWAY_MPS,
    MOVING_HORIZON_S,
    STANDING_MPS,
    TRACK_MIN_SPAN_S,
    ClearRoadTrack,
    Followed,
    moved_to_clear_road,
    moving_where_standing,
    unknown_speed_stop_m,
)
from alpamayo_ros.pipeline.traffic_lights import (
    LIGHT_HOLD_S,
    LightPlan,
    light_corrected,
    stops_for_light,
)

# Subtracted from the score of a sample whose own meta-action contradicts the decided one,
# so that any agreeing sample ranks above every contradicting one.
CONTRADICTION_PENALTY = 1_000.0
# The temperature of the action expert's noise. The embedded VLA's samples at full noise
# spread 10 m and more sideways by 6.4 s on a straight, empty road, the chosen one often
# turning in at the start; driving it, the car veers, and the model, seeing itself veer,
# reads hazards that are not there. Half the noise, on 100 tuning seeds (3000300-3000399)
# closed loop: scenarios passed 0.28 -> 0.35, off-road 0.08 -> 0.05, the same at-fault
# collisions and progress; 0.3 passed fewer (0.33) with more at-fault collisions.
NOISE_SCALE = 0.5
# How long the planner holds the place of a stopped vehicle or construction the reasoning
# named (core.object_memory); 0 turns the memory off.
STAND_OFF_MEMORY_S = HOLD_S


# The path along a lane's centre: pure pursuit of the centre (core.control's lookahead),
# on the centre sampled every LANE_STATION_M up to LANE_PATH_M (6.4 s at 25 m/s).
LANE_STATION_M = 1.0
LANE_PATH_M = 160.0
MAX_LANE_CURVATURE = 0.3


class ModelMismatch(ValueError):
    """Conditioning produced by another model (name or version) than the planner's: its
    latent would be decoded as if it were ours, so it is refused."""


def sampling_rng(seed: int, t0_ns: int) -> np.random.Generator:
    """The noise of the plan at t0: depends on nothing but the seed and the input time."""
    if seed < 0 or t0_ns < 0:
        raise ValueError(f"seed and t0 must be non-negative, got {seed} and {t0_ns}")
    return np.random.default_rng([seed, t0_ns])


def integrate_controls(samples: ControlSamples, conditioning: PlannerInput) -> Rollout:
    """Sampled controls [K, 64] integrated from the ego speed at t0.

    Forward driving (any meta-action but reverse): a sample that brakes through zero speed
    stops there and stays stopped, and a slightly negative measured speed counts as
    standing, so no plan drives backwards because of a braking overshoot.
    """
    speed = conditioning.ego_state.speed
    acceleration = samples.acceleration
    if conditioning.meta_action.longitudinal is not Longitudinal.REVERSE:
        speed = max(speed, 0.0)
        acceleration = stop_at_standstill(acceleration, speed, TRAJECTORY_DT_S)
    return integrate_unicycle(acceleration, samples.curvature, speed, dt=TRAJECTORY_DT_S)


def consensus_scores(xyz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Scores of K trajectories [K, T, 3]: minus the mean distance to the others.

    Samples from a flow model have no likelihood at hand; the one closest to the rest is
    the mode the samples agree on, and ranks first.
    """
    if len(xyz) == 1:
        return np.zeros(1)
    distance = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1).mean(-1)  # [K, K]
    scores: npt.NDArray[np.float64] = -distance.sum(1) / (len(xyz) - 1)
    return scores


def contradicts_decision(rollouts: Rollout, conditioning: PlannerInput) -> npt.NDArray[np.bool_]:
    """[K]: whether each sample's own meta-action (labelled from its trajectory) disagrees
    with the decided one on either coarse axis."""
    meta_action = conditioning.meta_action
    decided = coarse_meta_action(meta_action.longitudinal, meta_action.lateral)
    return np.array(
        [
            coarse_meta_action(*label_meta_action(rollouts[k])) != decided
            for k in range(rollouts.batch_shape[0])
        ]
    )


def score_samples(rollouts: Rollout, conditioning: PlannerInput) -> npt.NDArray[np.float64]:
    """Consistency with the reasoning's meta-action first, then consensus."""
    penalty = CONTRADICTION_PENALTY * contradicts_decision(rollouts, conditioning)
    return consensus_scores(rollouts.xyz()) - penalty


def along_lane(
    lane: LaneEstimate,
    acceleration: npt.NDArray[np.float64],
    speed: float,
    offset: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]] | None = None,
) -> Rollout:
    """The speed profile `acceleration` [T] (from `speed`) driven along the lane's centre
    (shifted sideways by `offset(x)` m where given: `nudge_offset`).

    Why: the embedded VLA turns into a bend 20-25 m early, and its own idea of where its
    lane runs is off by a metre at 20 m (perception.lane); the markings are not. Each
    step steers by pure pursuit to the centre point a lookahead ahead, so a car off the
    centre or at an angle to it comes back within the lookahead (a metre off at 10 m/s
    turns at about 4 m/s^2 at first; the checks refuse more than their limits allow). The
    steps here place the lookahead point (midpoint heading over each arc); the returned
    trajectory is those curvatures integrated as every candidate is."""
    stations = np.arange(0.0, LANE_PATH_M, LANE_STATION_M)
    centre_x, centre_y = stations, lane.centre(stations)
    if offset is not None:
        centre_y = centre_y + offset(stations)
    curvature = np.zeros(len(acceleration))
    x = y = yaw = 0.0
    v = max(speed, 0.0)
    for k, a in enumerate(acceleration.tolist()):
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        dx, dy = centre_x - x, centre_y - y
        beyond = np.flatnonzero(
            (dx * cos_yaw + dy * sin_yaw > 0.0)
            & (dx * dx + dy * dy >= pure_pursuit_lookahead(v) ** 2)
        )
        target = int(beyond[0]) if beyond.size else len(stations) - 1
        kappa = min(
            max(
                pure_pursuit_curvature(float(dx[target]), float(dy[target]), yaw),
                -MAX_LANE_CURVATURE,
            ),
            MAX_LANE_CURVATURE,
        )
        curvature[k] = kappa
        v_next = max(v + a * TRAJECTORY_DT_S, 0.0)
        ds = 0.5 * (v + v_next) * TRAJECTORY_DT_S
        heading = yaw + 0.5 * kappa * ds
        x, y, yaw, v = (
            x + ds * math.cos(heading),
            y + ds * math.sin(heading),
            yaw + kappa * ds,
            v_next,
        )
    return integrate_unicycle(acceleration, curvature, max(speed, 0.0), dt=TRAJECTORY_DT_S)


# The approach to a light's line the cameras show, where the model's own plan stops well
# short of it (`approach_to_line`): the comfortable braking it plans the stop with, begun
# this long early (the jerk bound delays it), the gentle acceleration and the speed it
# may gain before it, the jerk bound, how far short of where it may stop the chosen plan
# must end for it to be offered, and how near counts as there. On the traffic-light set
# 3000400-3000459 it took the drives passed from 0.47 to 0.57 (docs/closed_loop.md).
APPROACH_DECELERATION = 2.0
APPROACH_BRAKE_LEAD_S = 0.5
APPROACH_ACCELERATION = 1.0
APPROACH_MAX_SPEED = 14.0
APPROACH_JERK = 8.0
APPROACH_SHORT_M = 3.0
APPROACH_DONE_M = 0.05
# The planner's own nudge round what the cameras show (`nudge_offset`): the margin beyond
# the passing gap it aims for, how long (s of driving, at least m) it takes to shift, and
# the shortest shift it begins.
NUDGE_MARGIN_M = 0.15
NUDGE_RAMP_S = 1.5
NUDGE_RAMP_M = 12.0
NUDGE_MIN_RAMP_M = 3.0
# The set speed, where the reasoning tracks it and the cameras show the corridor clear as
# far as they look (`toward_set_speed`): gained as the expert gains it (the free-road term
# of its IDM, at most this acceleration), and no faster round a bend than the expert takes
# one (this lateral acceleration, m/s^2).
SET_SPEED_ACCELERATION = 1.5
SET_SPEED_LATERAL_ACCELERATION = 2.0
# What the reasoning may name and still have the set speed gained: nothing, or the road's
# bends. With any cause of the set speed on the tuning seeds 3000100-3000399, the car
# hit 6 more pedestrians, cones and cyclists in 300 drives; with these, 1 more pedestrian
# (progress 0.906 -> 0.917, free roads 0.93 -> 1.00).
CLEAR_ROAD_CAUSES = frozenset({Cause.NONE, Cause.ROAD_GEOMETRY})


def nudge_offset(
    lane: LaneEstimate, seen: StandOff, speed: float
) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]] | None:
    """How far from the lane's centre (m, +left, as a function of x) the planner's own
    plan drives to pass what the cameras show at `seen` (its extent measured) with
    SEEN_PASSING_GAP_M and NUDGE_MARGIN_M to spare, staying in its lane; None where it
    needs no nudge, cannot pass within the lane, or is too close to begin one.

    Why: the embedded model says "nudge to the left to keep clear of the cones" and plans
    a few decimetres where a metre is needed, or drifts back towards a cyclist it is
    passing (seed 3000122, closed loop: its plan 3 s ahead moved 2.5 m either way from one
    tenth of a second to the next). Refused for passing too close, it brakes and stands
    behind what the expert goes round (cones on seeds 3000119, 3000155). The shift is a
    cosine over the NUDGE_RAMP_S (at least NUDGE_RAMP_M) before base_link comes within the
    stand-off's clearance of the thing, and held beyond (the next plan looks again). The
    lane beside is not looked along, so the car's body stays inside its lane's edges."""
    if seen.extent_y is None:
        return None
    right, left = seen.extent_y
    centre = float(lane.centre(seen.x))
    if (right + left) / 2.0 < centre:  # on the right: pass on the left
        target = left + SEEN_PASSING_GAP_M + NUDGE_MARGIN_M + EGO_HALF_WIDTH_M - centre
        if target <= 0.0:
            return None
    else:
        target = right - SEEN_PASSING_GAP_M - NUDGE_MARGIN_M - EGO_HALF_WIDTH_M - centre
        if target >= 0.0:
            return None
    if abs(target) > lane.width_m / 2.0 - EGO_HALF_WIDTH_M:
        return None
    full_at = seen.x - seen.clearance_m - pure_pursuit_lookahead(speed) / 2.0
    if full_at < NUDGE_MIN_RAMP_M:
        return None
    ramp = min(max(NUDGE_RAMP_M, NUDGE_RAMP_S * speed), full_at)
    begins = full_at - ramp

    def offset(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        along = np.clip((x - begins) / ramp, 0.0, 1.0)
        return np.asarray(target * (1.0 - np.cos(np.pi * along)) / 2.0)

    return offset


def _keeps_its_lane(decision: CausalDecision | None) -> bool:
    """Whether the reasoning keeps its lane (or a caller has none): not going round
    something, so what stands in the lane ahead is to stop short of."""
    return decision is None or decision.lateral_decision is LateralDecision.LANE_KEEPING


def _cruises_on_a_clear_road(decision: CausalDecision | None) -> bool:
    """Whether the reasoning tracks the set speed in its lane and names nothing it keeps
    it for but the road (CLEAR_ROAD_CAUSES): a cyclist, cones or a pedestrian named, it has
    seen something, and no speed is gained towards it; a lane change, a turn or a nudge is
    the model's own path, not the lane the cameras looked along."""
    return (
        decision is not None
        and decision.longitudinal_decision is LongitudinalDecision.SET_SPEED_TRACKING
        and decision.lateral_decision is LateralDecision.LANE_KEEPING
        and decision.cause in CLEAR_ROAD_CAUSES
    )


def _seen_clear_for(
    set_speed: float, free_space: FreeSpace | None, followed: Followed | None, clearance_m: float
) -> bool:
    """Whether the cameras show the corridor clear road as far as they look (nothing
    followed there, nor coasted), and look at least as far as a car at `set_speed` needs
    to stop `clearance_m` short of what they would show next (`unknown_speed_stop_m`)
    (with the packaged 7 m clearance, 10 m straight ahead without a lane is too short for
    any set speed over 4.9 m/s; and the cameras' 40 m for any over 16.2 m/s)."""
    if free_space is None or followed is not None:
        return False
    return free_space.range_x >= unknown_speed_stop_m(set_speed) + clearance_m


def _stops_for_a_light(decision: CausalDecision | None) -> bool:
    return (
        decision is not None
        and decision.cause in STOP_LINE_CAUSES
        and decision.longitudinal_decision is LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT
    )


@dataclass(frozen=True)
class Plan:
    """The candidates of one plan and the choice among them."""

    t0_ns: int
    # [K, 64]: the model's samples, then braking candidates where a stand-off needed one,
    # then the chosen one's speeds along the lane where the plan followed one
    rollouts: Rollout
    scores: npt.NDArray[np.float64]  # [K], higher ranks first
    selection: Selection
    planning_ms: float
    sampled: int  # how many of the candidates the model sampled (the first ones)
    # The remembered object the plan stopped short of instead of what the reasoning stated
    # (nothing, or a stop further on).
    recalled: Recalled | None = None
    # Whether the chosen candidate is the plan driven along the lane the cameras show.
    along_lane: bool = False
    # Whether the chosen speeds are the braking candidate's: no sample both passed the
    # checks and kept off what the reasoning (or the memory) asks to keep off.
    braked: bool = False
    # Whether what the cameras show of the light changed what the plan keeps to: a go where
    # they show red (or a yellow to stop for), the line's place, or a stop at a green.
    corrected_by_light: bool = False
    # Whether the chosen speeds are the approach to the place the cameras show (a light's
    # stop line, or where the clear road ends): the model's own stopped short of it
    # (`approach_to_line`).
    approached: bool = False
    # Where a stop for a stopped vehicle or cones was put, and where the cameras' clear road ends,
    # that it moved to (`moved_to_clear_road`): x (m) both; None where it stayed.
    moved_stop: tuple[float, float] | None = None
    moved_cause: Cause | None = None  # what the moved stop was for
    # What a stop given way to the thing the cameras follow moving on was for (a stopped
    # vehicle, cones: `moving_where_standing`); None where none was.
    moving_cause: Cause | None = None
    # Whether the plan stops at a light's line (the reasoning's stop, or the cameras').
    stops_at_light: bool = False
    # Where the thing at the clear road's end is and how fast it moves (m, m/s), where the
    # plan keeps off it (`ClearRoadTrack`); None where it does not.
    kept_off_seen: tuple[float, float] | None = None
    # Whether the chosen plan is the planner's own nudge round it (`nudge_offset`).
    nudged: bool = False
    # Whether the chosen speeds are raised towards the set speed (`toward_set_speed`).
    gained_set_speed: bool = False

    @property
    def samples(self) -> Rollout:
        """The model's own samples (what minADE scores), without the planner's own."""
        return self.rollouts[: self.sampled]

    @property
    def selected(self) -> Rollout | None:
        """The chosen trajectory, or None when no candidate passed the checks."""
        return None if self.selection.index is None else self.rollouts[self.selection.index]


class PlanningStep:
    """Samples, integrates, scores, checks and selects: what the planner node does per plan."""

    def __init__(
        self,
        backend: Backend,
        num_samples: int = 6,
        limits: Limits = Limits(),
        seed: int = 0,
        stand_off_clearance_m: float = STAND_OFF_CLEARANCE_M,
        stand_off_max_deceleration: float = STAND_OFF_MAX_DECELERATION,
        noise_scale: float = NOISE_SCALE,
        stand_off_passing_clearance_m: float = PASSING_CLEARANCE_M,
        stand_off_stop_line_clearance_m: float = STOP_LINE_CLEARANCE_M,
        stand_off_memory_s: float = STAND_OFF_MEMORY_S,
        lane_keeping: bool = True,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"need at least one sample, got {num_samples}")
        if not noise_scale > 0.0:
            raise ValueError(f"the noise scale must be > 0, got {noise_scale}")
        problem = settings_problem(
            stand_off_clearance_m,
            stand_off_max_deceleration,
            stand_off_passing_clearance_m,
            stand_off_stop_line_clearance_m,
        )
        if problem:
            raise ValueError(problem)
        if stand_off_memory_s != 0.0:
            problem = hold_problem(stand_off_memory_s)
            if problem:
                raise ValueError(problem)
        self.backend = backend
        self.num_samples = num_samples
        self.limits = limits
        self.seed = seed
        self.stand_off_clearance_m = stand_off_clearance_m
        self.stand_off_max_deceleration = stand_off_max_deceleration
        self.stand_off_passing_clearance_m = stand_off_passing_clearance_m
        self.stand_off_stop_line_clearance_m = stand_off_stop_line_clearance_m
        self.noise_scale = noise_scale
        self.lane_keeping = lane_keeping
        # None: off, and with the object rules off (no clearance to stop short with).
        remembers = stand_off_memory_s > 0.0 and stand_off_clearance_m > 0.0
        self.memory = StandingObjectMemory(stand_off_memory_s) if remembers else None
        self._light_plan: LightPlan | None = None
        self.clear_road_track = ClearRoadTrack()

    def check_model(self, name: str, version: str) -> None:
        """Refuse conditioning from a model other than this planner's backend."""
        backend = self.backend
        if (name, version) != (backend.name, backend.version):
            raise ModelMismatch(
                f"conditioning from model {name} {version}, but the planner runs "
                f"{backend.name} {backend.version}: start both nodes with the same backend "
                "and weights_file"
            )

    def _recalled(
        self,
        conditioning: PlannerInput,
        t0_ns: int,
        decision: CausalDecision | None,
        stated: StandOff | None,
    ) -> Recalled | None:
        """The remembered object this plan stops short of instead of what the reasoning
        states, if any: while the reasoning keeps its lane (a lane change or a nudge is the
        model going round it), when it states no stand-off, or a stop further on than the
        remembered place (close up, the model can place a stopped car too far: run 44 put
        seed 3000124's 22-26 m ahead for the last 2.5 s before hitting it; and a light's
        line or a pedestrian beyond a stopped car does not make the car go away). The
        memory takes in this plan's motion and decision first."""
        if self.memory is None:
            return None
        self.memory.observe(t0_ns, conditioning.ego_state, decision)
        reversing = conditioning.meta_action.longitudinal is Longitudinal.REVERSE
        if reversing or not _keeps_its_lane(decision):
            return None
        recalled = self.memory.recall()
        if recalled is None or stated is None:
            return recalled
        nearer = stated.passing_clearance_m is None and recalled.x < stated.x
        return recalled if nearer else None

    def _seen_in_lane(
        self, followed: Followed | None, speed: float, lane: LaneEstimate | None
    ) -> StandOff | None:
        """The stand-off from the thing at the clear road's end as the track follows it
        (on the lane's centre, or straight ahead), moving on at its speed (never backwards;
        standing until it has one, where it is too close to wait for it); None where there
        is none, it moves away faster than the car, or the object rules are off."""
        if followed is None or self.stand_off_clearance_m == 0.0:
            return None
        x, followed_speed, extent_y, lateral_speeds = followed
        if x <= BESIDE_THE_CAR_M and extent_y is None:  # under the car's front
            return None
        waited = speed * TRACK_MIN_SPAN_S  # travelled until its speed is known
        if followed_speed is None and x - self.stand_off_clearance_m - waited > (
            unknown_speed_stop_m(speed)
        ):
            # New, and far enough to stop for firmly once its speed is known: it may be a
            # lead driving on (braking for one at the handover, the model went on braking:
            # seed 3000393) or a car in the next lane the corridor's far end grazes for a
            # frame (3000103).
            return None
        thing_speed = 0.0 if followed_speed is None else followed_speed
        if thing_speed > speed + MOVING_AWAY_MPS:
            return None
        return StandOff(
            Cause.OTHER,
            x,
            corridor_centre(lane, x),
            self.stand_off_clearance_m,
            seen=True,
            speed_mps=0.0 if thing_speed < STANDING_MPS else thing_speed,
            horizon_s=np.inf if thing_speed < STANDING_MPS else MOVING_HORIZON_S,
            extent_y=extent_y,
            lateral_speeds_mps=lateral_speeds,
        )

    def _recent_light_plan(self, t0_ns: int) -> LightPlan | None:
        last = self._light_plan
        recent = last is not None and 0 < t0_ns - last.t0_ns <= LIGHT_HOLD_S * NS_PER_S
        return last if recent else None

    def _line_the_cameras_show(
        self, light: TrafficLightView, speed: float, stopping: bool, lane: LaneEstimate | None
    ) -> StandOff | None:
        """The stand-off from the line of a red (or a yellow the car stops for) the cameras
        show, kept beside whatever the reasoning asks; None where there is none, or the
        stop-line rule is off."""
        if light.stop_line_x is None or self.stand_off_stop_line_clearance_m == 0.0:
            return None
        if not stops_for_light(light.colour, light.stop_line_x, speed, stopping):
            return None
        x = light.stop_line_x
        return StandOff(
            Cause.TRAFFIC_LIGHT, x, corridor_centre(lane, x), self.stand_off_stop_line_clearance_m
        )

    def _stopping_for_light(self, t0_ns: int) -> bool:
        """Whether the last plan, within LIGHT_HOLD_S, stopped for a light."""
        last = self._recent_light_plan(t0_ns)
        return last is not None and last.stopping

    def _held(self, light: TrafficLightView, t0_ns: int, speed: float) -> TrafficLightView:
        """The light, with the last plan's stop line (dead-reckoned at `speed`) where the
        cameras show a red or yellow light but missed its line in these frames."""
        last = self._recent_light_plan(t0_ns)
        if light.stop_line_x is not None or light.colour not in STOP_COLOURS:
            return light
        if last is None or last.line_x is None:
            return light
        travelled = speed * (t0_ns - last.t0_ns) / NS_PER_S
        return replace(light, stop_line_x=last.line_x - travelled)

    def plan(
        self,
        conditioning: PlannerInput,
        t0_ns: int,
        decision: CausalDecision | None = None,
        lane: LaneEstimate | None = None,
        light: TrafficLightView = NO_LIGHT,
        free_space: FreeSpace | None = None,
        set_speed: float | None = None,
        ego_history: EgoHistory | None = None,
    ) -> Plan:
        """`decision`: the reasoning's structure (the conditioning message carries it), whose
        stop or yield for a standing object, nudge round one, or stop at a light's line the
        plan must respect while driving forward; None where a caller has no reasoning (then
        only a remembered object's stand-off applies). `lane`: the ego lane in the frames
        of t0, if the cameras showed one; followed while the reasoning keeps its lane.
        `light`: the light ahead in the frames of t0 (`light_corrected`). `free_space`:
        how far the lane is clear road in those frames (`moved_to_clear_road`). `set_speed`:
        the speed (m/s) the car keeps where the reasoning tracks the set speed, if known
        (`toward_set_speed`). `ego_history`: the car's last poses in the frame of t0 (the
        model's input), by which what the cameras follow is placed from plan to plan
        (`ClearRoadTrack`). Plans come in t0 order: the memory follows the car from one to
        the next."""
        if set_speed is not None and known_set_speed(set_speed) is None:
            raise ValueError("a set speed that is not known is None, not 0")
        started = time.perf_counter()
        stated = decision
        speed = conditioning.ego_state.speed
        light = self._held(light, t0_ns, speed)
        stopping = self._stopping_for_light(t0_ns)
        decision = light_corrected(decision, light, speed, stopping)
        stops_at_line = _stops_for_a_light(decision)
        self._light_plan = LightPlan(t0_ns, light.stop_line_x, stops_at_line)
        samples = self.backend.sample_controls(
            conditioning, self.num_samples, sampling_rng(self.seed, t0_ns), self.noise_scale
        )
        rollouts = integrate_controls(samples, conditioning)
        scores = score_samples(rollouts, conditioning)
        sampled = len(scores)
        forward_only = conditioning.meta_action.longitudinal is not Longitudinal.REVERSE
        stand_off = (
            StandOff.stated_by(
                decision,
                self.stand_off_clearance_m,
                self.stand_off_passing_clearance_m,
                self.stand_off_stop_line_clearance_m,
            )
            if forward_only
            else None
        )
        recalled = self._recalled(conditioning, t0_ns, decision, stand_off)
        if recalled is not None:
            stand_off = StandOff(recalled.cause, recalled.x, recalled.y, self.stand_off_clearance_m)
        moved = moved_to_clear_road(stand_off, free_space, lane) if stand_off is not None else None
        moved_stop, moved_cause = None, None
        if moved is not None and stand_off is not None:
            moved_stop, moved_cause, stand_off = (stand_off.x, moved.x), stand_off.cause, moved
        followed = self.clear_road_track.follow(t0_ns, free_space, speed, ego_history)
        seen = self._seen_in_lane(followed, speed, lane)
        moving_cause = None
        if stand_off is not None and moving_where_standing(
            stand_off, followed, self.clear_road_track, t0_ns, speed, self.stand_off_clearance_m
        ):
            # The stopped vehicle or the cones the reasoning (or the memory) puts where the
            # cameras follow a thing moving on are that thing: kept off as it moves (`seen`),
            # not stood behind (seed 3000179: a car that cut in at 8 m/s, "stopped", was
            # followed at 2-5 m/s for the rest of the drive; 3000177: another, "cones").
            if self.memory is not None and followed is not None:
                self.memory.forget_nearer_than(followed.x + CLEAR_PAST_M)
            moving_cause = stand_off.cause
            stand_off, recalled, moved_stop, moved_cause = None, None, None, None
        # What the cameras show in the lane is kept off too, beside what the reasoning (or
        # the memory) asks: passed with room where they measured how far it reaches, else
        # while the reasoning keeps its lane (not going round it).
        measured = seen is not None and seen.extent_y is not None
        if (
            measured
            and seen is not None
            and stand_off is not None
            and stand_off.passing_clearance_m is not None
            and abs(stand_off.x - seen.x) <= PASSING_TO_M
        ):
            # The thing the reasoning nudges round is (within its placement scatter) the
            # one the cameras measured: passed with room from that, not from its place.
            stand_off = None
        keep_off = () if stand_off is None else (stand_off,)
        line = self._line_the_cameras_show(light, speed, stopping, lane)
        if forward_only and line is not None and (stand_off is None or stand_off.x != line.x):
            # Whatever the reasoning (or the memory) keeps to instead: a remembered stopped
            # car moved on to where the clear road ends, or a stop for a pedestrian beyond
            # the line, is not a reason to stand past a red.
            keep_off = (*keep_off, line)
        kept_off_seen = None
        if seen is not None and forward_only and (measured or _keeps_its_lane(decision)):
            kept_off_seen, keep_off = (seen.x, seen.speed_mps), (*keep_off, seen)
        refusals = first_violations(keep_off, rollouts) if keep_off else []
        selection = select_trajectory(rollouts, scores, self.limits, forward_only, refusals)
        if keep_off and selection.index is None:
            paths = [_path_to_brake_along(rollouts, scores, selection, refusals)]
            if lane is not None and lane.holds_car():
                # Where the samples' path breaks a limit too (they swerve), the lane's
                # centre: seed 3000002 in the graph found no plan at 13.8 m/s, and the
                # bridge drove the last one into a cone.
                paths.append(along_lane(lane, np.zeros(TRAJECTORY_STEPS), speed))
            for path in paths:
                braking = braking_for_all(keep_off, path, speed, self.stand_off_max_deceleration)
                # Ranked last: chosen because no sample is left, not for its score.
                rollouts = rollouts.appended(braking)
                finite = scores[np.isfinite(scores)]
                scores = np.append(scores, (finite.min() if finite.size else 0.0) - 1.0)
                refusals.append("")
                selection = select_trajectory(rollouts, scores, self.limits, forward_only, refusals)
                if selection.index is not None:
                    break
        braked = selection.index is not None and selection.index >= sampled
        # Braking for what the cameras show: the planner's own nudge round it, at the
        # speeds of the best sample braked for, where the lane has room (`nudge_offset`).
        nudged = False
        if braked and seen is not None and kept_off_seen is not None and lane is not None:
            offset = nudge_offset(lane, seen, speed) if lane.holds_car() else None
            if offset is not None:
                speeds_of = _path_to_brake_along(rollouts, scores, selection, refusals)
                rollouts, scores, selection, refusals, nudged = _offered_first(
                    along_lane(lane, speeds_of.acceleration, speed, offset),
                    rollouts,
                    scores,
                    refusals,
                    keep_off,
                    self.limits,
                )
                braked = not nudged
        waved_on = _stops_for_a_light(stated) and not stops_at_line and forward_only
        if waved_on and not braked and selection.index is not None:
            holding = _without_braking(rollouts[selection.index], lane, speed)
            if holding is not None:
                rollouts, scores, selection, refusals, _ = _offered_first(
                    holding, rollouts, scores, refusals, keep_off, self.limits
                )
        gained = False
        if (
            set_speed is not None
            and speed < set_speed
            and _cruises_on_a_clear_road(decision)
            and forward_only
            and _seen_clear_for(set_speed, free_space, followed, self.stand_off_clearance_m)
            and not braked
            and selection.index is not None
        ):
            on_lane = lane if self.lane_keeping else None
            faster = toward_set_speed(rollouts[selection.index], on_lane, speed, set_speed)
            if faster is not None:
                rollouts, scores, selection, refusals, gained = _offered_first(
                    faster, rollouts, scores, refusals, keep_off, self.limits
                )
        approached = False
        at_line = stops_at_line and light.stop_line_x is not None and recalled is None
        if at_line or moved_stop is not None:
            rollouts, scores, selection, refusals, approached = _approach_if_it_passes(
                conditioning, rollouts, scores, selection, refusals, keep_off, self.limits
            )
            braked = braked and not approached
        keeps_lane = decision is not None and _keeps_its_lane(decision)
        follows_lane = False
        if gained and not approached and lane is not None and lane.holds_car():
            follows_lane = self.lane_keeping  # the gained plan is driven along it already
        elif self.lane_keeping and lane is not None and forward_only and keeps_lane:
            rollouts, scores, selection, follows_lane = _along_lane_if_it_passes(
                lane,
                conditioning.ego_state.speed,
                rollouts,
                scores,
                selection,
                refusals,
                keep_off,
                self.limits,
            )
            nudged = nudged and not follows_lane
        elapsed_ms = (time.perf_counter() - started) * 1e3
        return Plan(
            t0_ns,
            rollouts,
            scores,
            selection,
            elapsed_ms,
            sampled,
            recalled,
            follows_lane,
            braked,
            corrected_by_light=decision != stated and forward_only and recalled is None,
            approached=approached,
            moved_stop=moved_stop,
            moved_cause=moved_cause,
            moving_cause=moving_cause,
            stops_at_light=stops_at_line,
            kept_off_seen=kept_off_seen,
            nudged=nudged,
            gained_set_speed=gained and not approached,
        )


def approach_to_line(
    speed: float, acceleration: float, distance: float, steps: int = TRAJECTORY_STEPS
) -> npt.NDArray[np.float64]:
    """[steps]: accelerations that take a car at `speed` (accelerating at `acceleration`)
    to a stop `distance` m on, as a driver comes up to a red light's line: gaining speed
    at APPROACH_ACCELERATION while a stop at APPROACH_DECELERATION, begun
    APPROACH_BRAKE_LEAD_S later, still makes it (up to APPROACH_MAX_SPEED), then braking
    to stop there; no change faster than APPROACH_JERK."""
    dt = TRAJECTORY_DT_S
    accelerations = np.zeros(steps)
    travelled, v, previous = 0.0, speed, acceleration
    for k in range(steps):
        left = distance - travelled
        if left <= APPROACH_DONE_M:
            wanted = -v / dt
        else:
            room = max(left - v * APPROACH_BRAKE_LEAD_S, 0.0)
            cruise = min(math.sqrt(2.0 * APPROACH_DECELERATION * room), APPROACH_MAX_SPEED)
            wanted = APPROACH_ACCELERATION if v < cruise else -v * v / (2.0 * left)
        step = APPROACH_JERK * dt
        a = min(max(wanted, previous - step, -STAND_OFF_MAX_DECELERATION), previous + step)
        a = max(a, -v / dt)  # stops, never reverses
        accelerations[k] = a
        travelled += v * dt + 0.5 * a * dt * dt
        v, previous = max(v + a * dt, 0.0), a
    return accelerations


def _approach_if_it_passes(
    conditioning: PlannerInput,
    rollouts: Rollout,
    scores: npt.NDArray[np.float64],
    selection: Selection,
    refusals: list[str],
    keep_off: tuple[StandOff, ...],
    limits: Limits,
) -> tuple[Rollout, npt.NDArray[np.float64], Selection, list[str], bool]:
    """Where the plan stops at a place the cameras show (a light's line, or where the clear
    road ends) and the chosen candidate ends more than APPROACH_SHORT_M short of where it
    may stop (the model's samples brake for the line where it places it, up to 15 m
    short; for a stopped vehicle that is not there, they stand), the candidates with the
    approach to that place (`approach_to_line`, along the chosen one's path) appended,
    ranked first, and the selection among them: the approach where it passes the checks
    and every stand-off, else the choice as it was; and whether the approach is chosen.
    The place is the first stand-off's (the reasoning's, or where the memory's or the
    clear road's end moved it)."""
    if selection.index is None or not keep_off:
        return rollouts, scores, selection, refusals, False
    stop_at = keep_off[0].x - keep_off[0].clearance_m
    chosen = rollouts[selection.index]
    if stop_at <= APPROACH_DONE_M or float(chosen.x.max()) >= stop_at - APPROACH_SHORT_M:
        return rollouts, scores, selection, refusals, False
    state = conditioning.ego_state
    approach = integrate_unicycle(
        approach_to_line(state.speed, state.acceleration, stop_at), chosen.curvature, state.speed
    )
    return _offered_first(approach, rollouts, scores, refusals, keep_off, limits)


def _along_lane_if_it_passes(
    lane: LaneEstimate,
    speed: float,
    rollouts: Rollout,
    scores: npt.NDArray[np.float64],
    selection: Selection,
    refusals: list[str],
    keep_off: tuple[StandOff, ...],
    limits: Limits,
) -> tuple[Rollout, npt.NDArray[np.float64], Selection, bool]:
    """The candidates with the chosen one's speeds along the lane appended, ranked first,
    and the selection among them: that plan where it passes the checks and the stand-offs,
    else the choice as it was; and whether the lane's plan is chosen. Not for a lane the
    car is not in (`LaneEstimate.holds_car`)."""
    if selection.index is None or not lane.holds_car():
        # None chosen, or a lane the car is not in (a detector led onto the next one).
        return rollouts, scores, selection, False
    lane_plan = along_lane(lane, rollouts[selection.index].acceleration, speed)
    rollouts, scores, selection, _, chosen = _offered_first(
        lane_plan, rollouts, scores, refusals, keep_off, limits
    )
    return rollouts, scores, selection, chosen


def _without_braking(chosen: Rollout, lane: LaneEstimate | None, speed: float) -> Rollout | None:
    """The chosen candidate's speeds without their braking, driven along the lane (where
    the car is in one) or the chosen path by distance; None where it does not brake. The
    planner offers it first (`_offered_first`: it must pass the checks and the stand-offs).

    Why: for a light the reasoning stops at and the cameras show green (or a yellow too
    near to stop for gently), the model's samples still brake, since the action expert
    follows its own reasoning: seeds 3000421 and 3000424 slowed from 12 to 7-10 m/s on a
    green, and 3000421 could then stop for the yellow and stood through the red. What the
    cameras show in the lane is still kept off, so a slower car ahead is not driven at."""
    if chosen.acceleration.min() >= 0.0:
        return None
    return _driven(chosen, np.maximum(chosen.acceleration, 0.0), lane, speed)


def _driven(
    chosen: Rollout,
    acceleration: npt.NDArray[np.float64],
    lane: LaneEstimate | None,
    speed: float,
) -> Rollout:
    """The speed profile `acceleration` (from `speed`) driven along the lane where the car
    is in one, else along the `chosen` candidate's path by distance."""
    if lane is not None and lane.holds_car():
        return along_lane(lane, acceleration, speed)
    return along_path(chosen, acceleration, max(speed, 0.0))


def known_set_speed(value: float) -> float | None:
    """A set speed as a topic or a parameter gives it (m/s; 0: not known), as
    `PlanningStep.plan` takes it (None: not known); ValueError for a negative or
    non-finite one, which a caller reports and does not drive to."""
    if value == 0.0:
        return None
    if not 0.0 < value < np.inf:
        raise ValueError(f"a set speed must be m/s >= 0 (0: not known), got {value}")
    return float(value)


def toward_set_speed(
    chosen: Rollout, lane: LaneEstimate | None, speed: float, set_speed: float
) -> Rollout | None:
    """The chosen candidate's speeds raised, step by step, to at least what the expert's
    free-road term gives on the way to `set_speed` (SET_SPEED_ACCELERATION x (1 - (v /
    set_speed)^4)), driven along the lane (where the car is in one) or the chosen path by
    distance; None where the chosen speeds are that high already, or where the raised
    plan would take a bend faster than SET_SPEED_LATERAL_ACCELERATION (and than the
    chosen one does). The planner offers it first (`_offered_first`: it must pass the
    checks and the stand-offs), only where the reasoning tracks the set speed naming
    nothing but the road in its lane (`_cruises_on_a_clear_road`), below it, and the
    cameras show the corridor clear as far as they look.

    Why: "set speed tracking" is the model's decision, but the set speed is not among its
    inputs; its samples keep the speed the car has. Slowed by something it imagined, the
    car never gains it back: on seed 3000705 a car passing in the next lane was read as
    cutting in, the car slowed from 12.5 to 7 m/s and drove on at 7 on a clear road
    ("Keep the current speed because the road ahead is clear"), 0.65 of the expert's
    progress. Never slower than the chosen plan."""
    raised = chosen.acceleration.copy()
    v = max(speed, 0.0)
    for k in range(len(raised)):
        free_road = SET_SPEED_ACCELERATION * (1.0 - (v / set_speed) ** 4)
        raised[k] = max(raised[k], free_road)
        v = max(v + raised[k] * TRAJECTORY_DT_S, 0.0)
    if np.array_equal(raised, chosen.acceleration):
        return None
    faster = _driven(chosen, raised, lane, speed)
    sideways = np.abs(faster.lateral_acceleration()).max()
    if sideways > max(SET_SPEED_LATERAL_ACCELERATION, np.abs(chosen.lateral_acceleration()).max()):
        return None
    return faster


def _offered_first(
    candidate: Rollout,
    rollouts: Rollout,
    scores: npt.NDArray[np.float64],
    refusals: list[str],
    keep_off: tuple[StandOff, ...],
    limits: Limits,
) -> tuple[Rollout, npt.NDArray[np.float64], Selection, list[str], bool]:
    """The candidates with the planner's own `candidate` appended, ranked above all, its
    refusal for the stand-off, the selection among them (driving forward), and whether
    `candidate` is chosen (it passes the checks and keeps the stand-offs)."""
    rollouts = rollouts.appended(candidate)
    finite = scores[np.isfinite(scores)]
    scores = np.append(scores, (finite.max() if finite.size else 0.0) + 1.0)
    refusals = (refusals or [""] * (len(scores) - 1)) + (first_violations(keep_off, rollouts[-1:]))
    selection = select_trajectory(rollouts, scores, limits, True, refusals)
    return rollouts, scores, selection, refusals, selection.index == len(scores) - 1


def _path_to_brake_along(
    rollouts: Rollout,
    scores: npt.NDArray[np.float64],
    selection: Selection,
    refusals: list[str],
) -> Rollout:
    """The best-ranked sample refused for the stand-off alone (its path is drivable); the
    best-ranked one of all (a non-finite score ranking last) when every sample breaks a
    limit too."""
    only_stand_off = np.array(
        [v == (r,) for v, r in zip(selection.violations, refusals, strict=True)]
    )
    ranked = np.where(np.isfinite(scores), scores, -np.inf)
    if only_stand_off.any():
        ranked = np.where(only_stand_off, ranked, -np.inf)
    return rollouts[int(np.argmax(ranked))]
