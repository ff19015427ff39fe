"""The planning step: safe integration, reproducible noise, consistency-aware ranking,
the reasoning's stand-off, refusal of another model's conditioning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import EgoState, Rollout, integrate_unicycle
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.core.model_io import (
    CausalDecision,
    ControlSamples,
    MetaActionEstimate,
    PlannerInput,
    VlaInput,
)
from alpamayo_ros.core.trajectory_checks import check_rollout
from alpamayo_ros.perception.free_space import MAX_FREE_X_M, FreeSpace
from alpamayo_ros.perception.lane import LaneEstimate
from alpamayo_ros.perception.traffic_light import NO_LIGHT, LightSeen, TrafficLightView
from alpamayo_ros.pipeline.backend import Backend, Decided
from alpamayo_ros.pipeline.planning import (
    APPROACH_MAX_SPEED,
    CONTRADICTION_PENALTY,
    NOISE_SCALE,
    SET_SPEED_ACCELERATION,
    SET_SPEED_LATERAL_ACCELERATION,
    ModelMismatch,
    Plan,
    PlanningStep,
    along_lane,
    approach_to_line,
    integrate_controls,
    known_set_speed,
    sampling_rng,
    toward_set_speed,
)
from alpamayo_ros.pipeline.traffic_lights import light_corrected, stops_for_light

STEPS = 64


class ScriptedExpert(Backend):
    """Stands in for a model's action expert: returns the controls it is given, plus noise
    from the generator it is handed, so what the planning step does with them is visible."""

    name = "scripted"
    version = "1"
    stage_ms: dict[str, float] = {}  # noqa: RUF012

    def __init__(self, acceleration: np.ndarray, curvature: np.ndarray, noise: float = 0.0):
        self.acceleration, self.curvature, self.noise = acceleration, curvature, noise

    def decide(self, inputs: VlaInput) -> Decided:
        raise NotImplementedError("the planning step never calls decide")

    def sample_controls(
        self,
        conditioning: PlannerInput,
        num_samples: int,
        rng: np.random.Generator,
        noise_scale: float = 1.0,
    ) -> ControlSamples:
        shape = (num_samples, STEPS)
        jitter = noise_scale * self.noise * rng.standard_normal(shape)
        return ControlSamples(
            np.broadcast_to(self.acceleration, shape) + jitter,
            np.broadcast_to(self.curvature, shape).copy(),
        )


def conditioning(speed: float, longitudinal: Longitudinal) -> PlannerInput:
    return PlannerInput(
        EgoState(speed=speed, acceleration=0.0, yaw_rate=0.0, curvature=0.0),
        MetaActionEstimate.certain(longitudinal, Lateral.GO_STRAIGHT),
    )


def test_braking_to_a_stop_stays_stopped_instead_of_reversing() -> None:
    """4 m/s braking at -3 m/s^2 for 6.4 s: plain integration ends 50 m behind the car."""
    braking = ScriptedExpert(np.full(STEPS, -3.0), np.zeros(STEPS), noise=0.2)
    plan = PlanningStep(braking, 6).plan(conditioning(4.0, Longitudinal.STOP), t0_ns=10)
    assert plan.selection.index is not None and plan.selection.feasible.all()
    # Standing is zero up to the roundoff of integrating the clamped accelerations again.
    assert plan.rollouts.v.min() >= -1e-12
    assert np.all(np.diff(plan.rollouts.x, axis=-1) >= -1e-12)  # never moves backwards
    np.testing.assert_allclose(plan.rollouts.v[:, -1], 0.0, atol=1e-12)
    # It stopped where braking at about 3 m/s^2 from 4 m/s stops: v^2 / 2a = 2.7 m.
    assert np.all(np.abs(plan.rollouts.x[:, -1] - 4.0**2 / 6.0) < 0.6)


def test_a_slightly_negative_measured_speed_counts_as_standing() -> None:
    standing = ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS))
    rollouts = integrate_controls(
        standing.sample_controls(conditioning(-0.03, Longitudinal.STOP), 2, sampling_rng(0, 0)),
        conditioning(-0.03, Longitudinal.STOP),
    )
    assert rollouts.v.min() == 0.0 and np.all(rollouts.x == 0.0)


def test_a_reverse_meta_action_may_reverse() -> None:
    reversing = ScriptedExpert(np.full(STEPS, -1.0), np.zeros(STEPS))
    plan = PlanningStep(reversing, 2).plan(conditioning(0.0, Longitudinal.REVERSE), t0_ns=0)
    assert plan.rollouts.v[:, -1] == pytest.approx(-6.4)
    assert plan.selected is not None


def test_a_reversing_candidate_is_refused_while_driving_forward() -> None:
    samples = ControlSamples(np.full((1, STEPS), -3.0), np.zeros((1, STEPS)))
    from alpamayo_ros.core.kinematics import integrate_unicycle

    reversing = integrate_unicycle(samples.acceleration, samples.curvature, 4.0)[0]
    (reason,) = check_rollout(reversing)
    assert reason.startswith("reverses while driving forward: speed -15.2 m/s at t=6.4 s")
    assert check_rollout(reversing, forward_only=False) == []


def test_noise_is_a_function_of_seed_and_t0_only() -> None:
    expert = ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS), noise=0.5)
    step = PlanningStep(expert, 6, seed=3)
    ego = conditioning(8.0, Longitudinal.MAINTAIN_SPEED)
    first = step.plan(ego, t0_ns=1_700_000_000_100_000_000)
    for t0 in (5, 1_700_000_000_000_000_000):  # other plans in between change nothing
        step.plan(ego, t0_ns=t0)
    again = step.plan(ego, t0_ns=1_700_000_000_100_000_000)
    np.testing.assert_array_equal(first.rollouts.x, again.rollouts.x)
    other_t0 = step.plan(ego, t0_ns=1_700_000_000_200_000_000)
    other_seed = PlanningStep(expert, 6, seed=4).plan(ego, t0_ns=1_700_000_000_100_000_000)
    assert not np.array_equal(first.rollouts.x, other_t0.rollouts.x)
    assert not np.array_equal(first.rollouts.x, other_seed.rollouts.x)


def test_the_noise_scale_reaches_the_sampler_and_must_be_positive() -> None:
    """The same draws, scaled: the samples' spread about the scripted plan shrinks with it."""
    expert = ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS), noise=0.5)
    ego = conditioning(8.0, Longitudinal.MAINTAIN_SPEED)
    full = PlanningStep(expert, 6, noise_scale=1.0).plan(ego, t0_ns=7)
    quarter = PlanningStep(expert, 6, noise_scale=0.25).plan(ego, t0_ns=7)
    np.testing.assert_allclose(
        quarter.rollouts.acceleration, 0.25 * full.rollouts.acceleration, atol=1e-12
    )
    assert PlanningStep(expert, 6).noise_scale == NOISE_SCALE
    for bad in (0.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="noise scale must be > 0"):
            PlanningStep(expert, 6, noise_scale=bad)


def test_samples_that_contradict_the_reasoning_rank_last() -> None:
    """Half the samples brake hard, half keep speed; the reasoning says keep speed."""

    class Split(ScriptedExpert):
        def sample_controls(self, conditioning, num_samples, rng, noise_scale=1.0):  # type: ignore[override]
            acceleration = np.zeros((num_samples, STEPS))
            acceleration[: num_samples // 2] = -2.5
            return ControlSamples(acceleration, np.zeros((num_samples, STEPS)))

    plan = PlanningStep(Split(np.zeros(1), np.zeros(1)), 6).plan(
        conditioning(15.0, Longitudinal.MAINTAIN_SPEED), t0_ns=0
    )
    assert plan.selection.index is not None and plan.selection.index >= 3
    assert np.all(plan.scores[:3] < -CONTRADICTION_PENALTY / 2)
    assert np.all(plan.scores[3:] > -CONTRADICTION_PENALTY / 2)


def test_conditioning_from_another_model_is_refused() -> None:
    step = PlanningStep(ScriptedExpert(np.zeros(1), np.zeros(1)), 6)
    step.check_model("scripted", "1")
    with pytest.raises(ModelMismatch, match=r"conditioning from model embedded_vla 0\.1\.0"):
        step.check_model("embedded_vla", "0.1.0")
    with pytest.raises(ModelMismatch, match="planner runs scripted 1"):
        step.check_model("scripted", "2")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        PlanningStep(ScriptedExpert(np.zeros(1), np.zeros(1)), 0)
    with pytest.raises(ValueError, match="non-negative"):
        sampling_rng(0, -1)


def stop_for(cause: Cause, x_m: float) -> CausalDecision:
    return CausalDecision(
        "Stop behind the stopped vehicle blocking our lane.",
        LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT,
        LateralDecision.LANE_KEEPING,
        cause,
        cause.name.lower(),
        (x_m, 0.0, 0.8),
    )


def test_samples_that_drive_into_what_the_reasoning_stops_for_are_refused() -> None:
    """A stopped car 40 m ahead at 10 m/s: samples braking at 1 m/s^2 (as the embedded
    model's did) reach it; those braking at 2.5 stop 20 m short and are chosen."""

    class Split(ScriptedExpert):
        def sample_controls(self, conditioning, num_samples, rng, noise_scale=1.0):  # type: ignore[override]
            acceleration = np.full((num_samples, STEPS), -1.0)
            acceleration[num_samples // 2 :] = -2.5
            return ControlSamples(acceleration, np.zeros((num_samples, STEPS)))

    step = PlanningStep(Split(np.zeros(1), np.zeros(1)), 6, stand_off_clearance_m=10.0)
    ego = conditioning(10.0, Longitudinal.STOP)
    plan = step.plan(ego, 0, stop_for(Cause.STOPPED_VEHICLE, 40.0))
    assert plan.sampled == 6 and plan.rollouts.batch_shape == (6,)
    np.testing.assert_array_equal(plan.selection.feasible, [False] * 3 + [True] * 3)
    assert (
        "from the stopped_vehicle the reasoning stops for (clearance 10 m) at t="
        in (plan.selection.violations[0][-1])
    )
    # Without the reasoning (or with the rule off) the gentle samples would be chosen too.
    assert all(step.plan(ego, 0).selection.feasible)
    off = PlanningStep(Split(np.zeros(1), np.zeros(1)), 6, stand_off_clearance_m=0.0)
    assert all(off.plan(ego, 0, stop_for(Cause.STOPPED_VEHICLE, 40.0)).selection.feasible)


def test_when_every_sample_drives_into_it_a_braking_candidate_stops_short() -> None:
    gentle = ScriptedExpert(np.full(STEPS, -1.0), np.zeros(STEPS), noise=0.1)
    plan = PlanningStep(gentle, 6, stand_off_clearance_m=10.0).plan(
        conditioning(10.0, Longitudinal.STOP), 0, stop_for(Cause.STOPPED_VEHICLE, 40.0)
    )
    assert plan.sampled == 6 and plan.rollouts.batch_shape == (7,)
    assert plan.samples.batch_shape == (6,)
    assert plan.selection.index == 6 and not plan.selection.feasible[:6].any()
    selected = plan.selected
    assert selected is not None
    # About 30 m to the clearance's edge (the sample's last state before it) from 10 m/s:
    # 10^2 / (2 * 30) = 1.67 m/s^2.
    assert selected.acceleration[0] == pytest.approx(-100.0 / 60.0, rel=0.03)
    assert 29.0 < selected.x.max() < 30.0
    assert plan.scores[6] < plan.scores[:6].min()


def nudge_round_cones(x_m: float, y_m: float) -> CausalDecision:
    return CausalDecision(
        "Nudge to the left to keep clear of the cones narrowing the lane.",
        LongitudinalDecision.SET_SPEED_TRACKING,
        LateralDecision.IN_LANE_NUDGE,
        Cause.CONSTRUCTION,
        "construction",
        (x_m, y_m, 0.4),
    )


class Swerves(ScriptedExpert):
    """Samples at 10 m/s that move sideways by the given offsets (m) over their first 2 s
    and hold them: straight lines through the cones' stretch at those offsets."""

    def __init__(self, offsets: list[float]):
        super().__init__(np.zeros(STEPS), np.zeros(STEPS))
        self.offsets = offsets

    def sample_controls(self, conditioning, num_samples, rng, noise_scale=1.0):  # type: ignore[override]
        curvature = np.zeros((num_samples, STEPS))
        for k in range(num_samples):
            # A left-right S over 2 s: y = 2 * kappa * v^2 * (1 s)^2 / 2, heading back to 0.
            kappa = self.offsets[k % len(self.offsets)] / 100.0
            curvature[k, :10], curvature[k, 10:20] = kappa, -kappa
        return ControlSamples(np.zeros((num_samples, STEPS)), curvature)


def test_a_nudge_keeps_the_passing_clearance_where_a_sample_does_else_the_minimum() -> None:
    """Cones from 40 m on, 1.6 m right of the car: samples that end 0.1, 0.5 and 0.8 m to
    the left pass them 1.7, 2.1 and 2.4 m beside; only the last two keep the 1.8 m."""
    ego = conditioning(10.0, Longitudinal.MAINTAIN_SPEED)
    cones = nudge_round_cones(40.0, -1.6)
    plan = PlanningStep(Swerves([0.1, 0.5, 0.8]), 3).plan(ego, 0, cones)
    offsets = plan.rollouts.y[:, -1]
    np.testing.assert_allclose(offsets, [0.1, 0.5, 0.8], atol=0.02)
    np.testing.assert_array_equal(plan.selection.feasible, [False, True, True])
    assert (
        "passes 1.7 m beside the construction the reasoning nudges around"
        in (plan.selection.violations[0][-1])
    )
    # Where none keeps 1.8 m, a pass at 1.2 m or more is taken; below that, the car brakes.
    timid = PlanningStep(Swerves([-0.5, 0.1]), 2).plan(ego, 0, cones)
    np.testing.assert_array_equal(timid.selection.feasible, [False, True])
    assert "(passing clearance 1.2 m)" in timid.selection.violations[0][-1]
    straight = PlanningStep(Swerves([-0.5]), 2).plan(ego, 0, cones)
    assert straight.selection.index == 2 and straight.sampled == 2
    assert straight.selected is not None and straight.selected.x.max() < 40.0 - 7.0 + 0.5
    # Rule off: the straight samples are taken.
    off = PlanningStep(Swerves([-0.5]), 2, stand_off_passing_clearance_m=0.0)
    assert off.plan(ego, 0, cones).selection.feasible.all()


def test_a_stop_for_a_red_light_stops_the_front_short_of_its_line() -> None:
    """ "Stop at the stop line because the traffic light is red", the line 30 m ahead at
    10 m/s: samples braking at 1 m/s^2 would cross it at 6.9 m/s, so the braking candidate
    stops base_link the stop line clearance short; with the rule off they are taken."""
    gentle = ScriptedExpert(np.full(STEPS, -1.0), np.zeros(STEPS))
    red = stop_for(Cause.TRAFFIC_LIGHT, 30.0)
    plan = PlanningStep(gentle, 6).plan(conditioning(10.0, Longitudinal.STOP), 0, red)
    assert plan.selection.index == 6 and not plan.selection.feasible[:6].any()
    assert "stop line of the traffic_light" in plan.selection.violations[0][-1]
    assert plan.selected is not None
    assert 30.0 - 4.7 - 1.0 < plan.selected.x.max() < 30.0 - 4.7
    off = PlanningStep(gentle, 6, stand_off_stop_line_clearance_m=0.0)
    assert off.plan(conditioning(10.0, Longitudinal.STOP), 0, red).selection.feasible.all()


def go_for_the_light(x_m: float) -> CausalDecision:
    """What the embedded model says at a red after waiting at it: it reads it as green."""
    return dataclasses.replace(
        stop_for(Cause.TRAFFIC_LIGHT, x_m),
        text="Speed up because the traffic light ahead is green.",
        longitudinal_decision=LongitudinalDecision.SET_SPEED_TRACKING,
    )


RED = TrafficLightView(LightSeen.RED)


def test_a_go_for_a_light_the_cameras_show_red_stops_at_its_line() -> None:
    """The reasoning reads a red as green, the line 30 m ahead at 10 m/s: the samples go
    on (speeding up), so the braking candidate stops short of the line as if the reasoning
    had stopped for it. Seen green, or with no light seen, the go stands."""
    speeding = ScriptedExpert(np.full(STEPS, 1.0), np.zeros(STEPS))
    step = PlanningStep(speeding, 6)
    ego = conditioning(10.0, Longitudinal.GENTLE_ACCELERATE)
    plan = step.plan(ego, 0, go_for_the_light(30.0), light=RED)
    assert plan.corrected_by_light and plan.braked
    assert plan.selected is not None and plan.selected.x.max() < 30.0 - 4.7
    # Reversing, no stand-off is kept: nothing was corrected that the car does.
    backing = step.plan(
        conditioning(0.0, Longitudinal.REVERSE), 0, go_for_the_light(30.0), light=RED
    )
    assert not backing.corrected_by_light
    for light in (TrafficLightView(LightSeen.GREEN), NO_LIGHT):
        kept = step.plan(ego, 0, go_for_the_light(30.0), light=light)
        assert not kept.corrected_by_light and kept.selection.feasible.all()


def test_a_stop_for_a_light_the_cameras_show_green_goes_on() -> None:
    """Standing at the line, the model goes on reading the red after it turned (seed
    3000317 never moved again): with the light green in the cameras, its samples that go on
    are taken. A stop for anything else stays."""
    speeding = ScriptedExpert(np.full(STEPS, 1.0), np.zeros(STEPS))
    green = TrafficLightView(LightSeen.GREEN)
    waiting = stop_for(Cause.TRAFFIC_LIGHT, 5.5)
    plan = PlanningStep(speeding, 6).plan(
        conditioning(0.0, Longitudinal.GENTLE_ACCELERATE), 0, waiting, light=green
    )
    assert plan.corrected_by_light and not plan.braked and plan.selection.feasible.all()
    assert (
        PlanningStep(speeding, 6)
        .plan(conditioning(0.0, Longitudinal.GENTLE_ACCELERATE), 0, waiting)
        .braked
    )
    stopped_car = stop_for(Cause.STOPPED_VEHICLE, 12.0)
    assert light_corrected(stopped_car, green, 0.0) is stopped_car


def test_where_every_sample_swerves_past_a_limit_the_car_brakes_along_its_lane() -> None:
    """A stopped car 40 m on at 13.8 m/s, and every sample swerving at 0.05 1/m (9.5 m/s^2
    sideways, past the 6 m/s^2 limit), as on seed 3000002 in the graph, where no plan was
    found and the bridge drove the last one into a cone: the braking candidate along the
    samples' path breaks the limit too, so the car brakes along its lane's centre. Without
    a lane there is no plan (the bridge's watchdog stops the car)."""
    swerving = ScriptedExpert(np.zeros(STEPS), np.full(STEPS, 0.05))
    ego = conditioning(13.8, Longitudinal.MAINTAIN_SPEED)
    stopped_car = stop_for(Cause.STOPPED_VEHICLE, 40.0)
    lane = lane_to_the_left(0.0)
    plan = PlanningStep(swerving, 6).plan(ego, 0, stopped_car, lane)
    assert plan.braked and plan.selected is not None
    assert np.abs(plan.selected.y).max() < 0.1 and plan.selected.x.max() < 40.0 - 7.0 + 0.5
    assert check_rollout(plan.selected) == []
    assert PlanningStep(swerving, 6).plan(ego, 0, stopped_car).selection.index is None


def test_a_red_the_reasoning_does_not_name_is_stopped_at_its_line() -> None:
    """Close to the line the model lost the light and sped up for the road ahead (seed
    3000102 crossed on red at 3 m/s): with the cameras showing the red and its line 8 m on,
    the plan stops short of it. A reasoning that stops for, or goes round, something else
    keeps its own cause; with no line seen, or a green, the go stands."""
    road_ahead = dataclasses.replace(
        go_for_the_light(30.0),
        text="Speed up since the road ahead is clear.",
        cause=Cause.NONE,
        cause_object_position=(0.0, 0.0, 0.0),
    )
    red_line = dataclasses.replace(RED, stop_line_x=8.0)
    corrected = light_corrected(road_ahead, red_line, 2.5)
    assert corrected is not None and corrected.cause is Cause.TRAFFIC_LIGHT
    assert corrected.longitudinal_decision is LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT
    assert corrected.cause_object_position[0] == 8.0
    speeding = ScriptedExpert(np.full(STEPS, 1.0), np.zeros(STEPS))
    plan = PlanningStep(speeding, 6).plan(
        conditioning(2.5, Longitudinal.GENTLE_ACCELERATE), 0, road_ahead, light=red_line
    )
    assert plan.corrected_by_light and plan.selected is not None
    assert plan.selected.x.max() < 8.0 - 3.7
    assert light_corrected(road_ahead, RED, 2.5) is road_ahead
    assert (
        light_corrected(road_ahead, dataclasses.replace(red_line, colour=LightSeen.GREEN), 2.5)
        is road_ahead
    )
    stopped_car = stop_for(Cause.STOPPED_VEHICLE, 12.0)
    assert light_corrected(stopped_car, red_line, 2.5) is stopped_car
    nudge = dataclasses.replace(
        road_ahead, cause=Cause.CYCLIST, lateral_decision=LateralDecision.IN_LANE_NUDGE
    )
    assert light_corrected(nudge, red_line, 2.5) is nudge


def test_the_line_of_a_red_the_cameras_show_is_kept_off_whatever_else_is_stopped_for() -> None:
    """At 5 m/s the cameras show a red whose line is 15 m on: a stop for a pedestrian
    25 m on (base_link 7 m short of it puts the front 6.7 m past the line), or a follow of
    a lead the reasoning names instead, still stops short of the line. With the stop-line
    rule off, the pedestrian's stop is all there is."""
    gentle = ScriptedExpert(np.full(STEPS, 0.5), np.zeros(STEPS))
    ego = conditioning(5.0, Longitudinal.GENTLE_ACCELERATE)
    red_line = dataclasses.replace(RED, stop_line_x=15.0)
    pedestrian = stop_for(Cause.PEDESTRIAN, 25.0)
    follow = dataclasses.replace(
        pedestrian,
        cause=Cause.LEAD_VEHICLE,
        longitudinal_decision=LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING,
    )
    for decision in (pedestrian, follow):
        plan = PlanningStep(gentle, 6).plan(ego, 0, decision, light=red_line)
        assert plan.selected is not None and plan.selected.x.max() < 15.0 - 3.7, decision
    off = PlanningStep(gentle, 6, stand_off_stop_line_clearance_m=0.0)
    plan = off.plan(ego, 0, pedestrian, light=red_line)
    assert plan.selected is not None and plan.selected.x.max() > 15.0


def test_a_light_the_cameras_wave_through_is_driven_through_without_braking() -> None:
    """The model stops for a light 30 m on at 8 m/s that the cameras show green: its
    samples brake (the action expert follows its reasoning; seeds 3000421 and 3000424
    slowed to 7-10 m/s on a green). The plan drives their speeds without the braking along
    the lane. A thing the cameras show in the lane is still kept off; a red is still
    stopped for."""
    braking = ScriptedExpert(np.full(STEPS, -1.5), np.zeros(STEPS))
    ego = conditioning(8.0, Longitudinal.STOP)
    stop = stop_for(Cause.TRAFFIC_LIGHT, 30.0)
    green = TrafficLightView(LightSeen.GREEN)
    lane = lane_to_the_left(0.0)
    plan = PlanningStep(braking, 6).plan(ego, 0, stop, lane, light=green)
    assert plan.corrected_by_light and not plan.stops_at_light and plan.selected is not None
    assert plan.selected.v.min() >= 8.0 - 1e-6
    # Without a lane, along the samples' path by distance: on their 200 m circle still.
    bending = ScriptedExpert(np.full(STEPS, -1.5), np.full(STEPS, 0.005))
    blind = PlanningStep(bending, 6).plan(ego, 0, stop, light=green)
    assert blind.selected is not None and blind.selected.v.min() >= 8.0 - 1e-6
    radius = np.hypot(blind.selected.x, blind.selected.y - 200.0)
    assert np.abs(radius - 200.0).max() < 0.05
    # A car standing 35 m on in the lane (the cameras' clear road ends there): the samples
    # stop 21 m on, short of its 7 m, and are not braked for; the hold would reach it.
    step = PlanningStep(braking, 6)
    for k in range(6):  # followed over plans until its speed is known (standing)
        ahead = FreeSpace(35.0 - 0.8 * k)
        held = step.plan(ego, k * NS_PER_S // 10, stop, lane, light=green, free_space=ahead)
    assert held.kept_off_seen == (pytest.approx(31.0), pytest.approx(0.0, abs=1e-6))
    assert not held.braked and held.selected is not None and held.selected.v.min() < 1.0
    red = PlanningStep(braking, 6).plan(ego, 0, stop, lane, light=RED)
    assert red.stops_at_light and red.selected is not None and red.selected.v.min() < 1.0


def test_the_stop_line_the_cameras_show_is_stopped_at() -> None:
    """The reasoning places the line 2.6 m beyond where the cameras show it (seed 3000444,
    where the car then crept over it), or 15 m short of it (3000297, where the car crawled
    towards it): the car stops short of the cameras' line. Without one, the reasoning's."""
    red = stop_for(Cause.TRAFFIC_LIGHT, 14.6)
    for seen in (12.0, 30.0):
        assert light_corrected(
            red, dataclasses.replace(RED, stop_line_x=seen), 3.0
        ) == dataclasses.replace(red, cause_object_position=(seen, 0.0, 0.8))
    assert light_corrected(red, RED, 3.0) is red
    assert light_corrected(red, NO_LIGHT, 3.0) is red
    gentle = ScriptedExpert(np.full(STEPS, -0.5), np.zeros(STEPS))
    plan = PlanningStep(gentle, 6).plan(
        conditioning(3.0, Longitudinal.STOP),
        0,
        red,
        light=dataclasses.replace(RED, stop_line_x=12.0),
    )
    assert plan.corrected_by_light and plan.selected is not None
    assert plan.selected.x.max() < 12.0 - 4.7


def test_a_yellow_is_stopped_for_where_the_car_can_stop_gently() -> None:
    """At 12 m/s stopping at 3 m/s^2 takes 24 m: a yellow whose line is 30 m beyond the
    front is stopped for, one 20 m beyond it is driven through, as the expert does; and the
    cameras' line is the one judged. A stop the reasoning states for a yellow stays a stop
    where the car can stop gently or has begun to stop; else it goes on (seed 3000239: the
    model braked at 5 m/s^2 for a yellow 12 m on and stood through the red)."""
    yellow = TrafficLightView(LightSeen.YELLOW)
    front = 3.7
    assert stops_for_light(LightSeen.YELLOW, front + 30.0, 12.0)
    assert not stops_for_light(LightSeen.YELLOW, front + 20.0, 12.0)
    # A red where the car can stop at all (at 6 m/s^2: 12 m from 12 m/s); nearer, it is
    # through before it could stand.
    assert stops_for_light(LightSeen.RED, front + 12.5, 12.0)
    assert not stops_for_light(LightSeen.RED, front + 11.5, 12.0)
    assert stops_for_light(LightSeen.RED, front + 0.1, 0.0)
    # Already stopping for a yellow, the car goes on stopping while it can at all.
    assert stops_for_light(LightSeen.YELLOW, front + 20.0, 12.0, stopping=True)
    assert not stops_for_light(LightSeen.GREEN, front + 30.0, 12.0)
    assert not stops_for_light(LightSeen.NONE, front + 30.0, 12.0)
    go = go_for_the_light(front + 30.0)
    corrected = light_corrected(go, yellow, 12.0)
    assert corrected is not None
    assert corrected.longitudinal_decision is LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT
    assert light_corrected(go_for_the_light(front + 20.0), yellow, 12.0).longitudinal_decision is (  # type: ignore[union-attr]
        LongitudinalDecision.SET_SPEED_TRACKING
    )
    # The reasoning places it 30 m beyond the front, the cameras 20 m: too near to stop
    # for gently.
    seen_nearer = dataclasses.replace(yellow, stop_line_x=front + 20.0)
    assert light_corrected(go, seen_nearer, 12.0) is go
    far_stop = stop_for(Cause.TRAFFIC_LIGHT, front + 30.0)
    assert light_corrected(far_stop, yellow, 12.0) is far_stop
    near_stop = stop_for(Cause.TRAFFIC_LIGHT, front + 10.0)
    near_yellow = dataclasses.replace(yellow, stop_line_x=front + 10.0)
    assert light_corrected(near_stop, near_yellow, 12.0, stopping=True) is near_stop
    waved_on = light_corrected(near_stop, near_yellow, 12.0)
    assert waved_on is not None
    assert waved_on.longitudinal_decision is LongitudinalDecision.SET_SPEED_TRACKING
    # Not on the reasoning's own line (it places one up to 15 m short), nor standing.
    assert light_corrected(near_stop, yellow, 12.0) is near_stop
    assert light_corrected(stop_for(Cause.TRAFFIC_LIGHT, 4.0), near_yellow, 0.0) is not None
    assert (
        light_corrected(stop_for(Cause.TRAFFIC_LIGHT, 4.0), near_yellow, 0.0).longitudinal_decision  # type: ignore[union-attr]
        is LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT
    )
    # A red stays a stop however near (the stand-off stops the car as hard as it may).
    assert light_corrected(near_stop, RED, 12.0) is near_stop
    # Other causes are not the light's.
    lead = go_for_the_light(30.0)
    lead = dataclasses.replace(lead, cause=Cause.LEAD_VEHICLE)
    assert light_corrected(lead, RED, 10.0) is lead


def test_a_yellow_stop_once_begun_holds_and_a_missed_line_is_where_it_was() -> None:
    """At 12 m/s a yellow 30 m beyond the front is stopped for. 0.5 s later, 7 m on at the
    same speed, the line 23 m on is too near to begin a gentle stop, but the stop begun
    holds. A red whose line the cameras miss for a frame is stopped at where it was
    (dead-reckoned); after LIGHT_HOLD_S without it, at the reasoning's place."""
    speeding = ScriptedExpert(np.full(STEPS, 1.0), np.zeros(STEPS))
    ego = conditioning(12.0, Longitudinal.GENTLE_ACCELERATE)
    step = PlanningStep(speeding, 6)
    yellow = TrafficLightView(LightSeen.YELLOW, 3.7 + 30.0)
    assert step.plan(ego, 0, go_for_the_light(3.7 + 30.0), light=yellow).corrected_by_light
    nearer = dataclasses.replace(yellow, stop_line_x=3.7 + 23.0)
    held = step.plan(ego, NS_PER_S // 2, go_for_the_light(3.7 + 23.0), light=nearer)
    assert held.corrected_by_light
    fresh = PlanningStep(speeding, 6).plan(ego, 0, go_for_the_light(3.7 + 23.0), light=nearer)
    assert not fresh.corrected_by_light
    # The red line seen 20 m on, then missed for a frame 0.1 s later at 12 m/s: 18.8 m on.
    red = TrafficLightView(LightSeen.RED, 20.0)
    step = PlanningStep(speeding, 6)
    step.plan(ego, 0, go_for_the_light(25.0), light=red)
    plan = step.plan(ego, NS_PER_S // 10, go_for_the_light(25.0), light=RED)
    assert plan.corrected_by_light and plan.selected is not None
    assert plan.selected.x.max() < 18.8 - 4.7 + 1e-6
    late = step.plan(ego, 3 * NS_PER_S, go_for_the_light(25.0), light=RED)
    assert late.selected is not None and 18.8 - 4.7 < late.selected.x.max() < 25.0 - 4.7


def test_the_approach_to_a_line_stops_there_within_the_limits() -> None:
    """From standing, creeping, and 12 m/s braking, to a stop 10, 8 and 30 m on: it ends
    within half a metre short of it, never reverses, passes the planner's checks (jerk
    included) and gains speed only gently. From standing 30 m off, 6.4 s take it only part
    of the way, still moving."""
    far = integrate_unicycle(approach_to_line(0.0, 0.0, 30.0), np.zeros(STEPS), 0.0)
    assert 15.0 < far.x[-1] < 30.0 - 0.5 and far.v[-1] > 1.0
    for speed, acceleration, distance in ((0.0, 0.0, 10.0), (12.0, -1.0, 30.0), (2.0, 0.0, 8.0)):
        accelerations = approach_to_line(speed, acceleration, distance)
        path = integrate_unicycle(accelerations, np.zeros(STEPS), speed)
        assert distance - 0.5 <= path.x[-1] <= distance + 1e-9, (speed, distance)
        assert path.v[-1] < 0.05 and path.v.max() <= APPROACH_MAX_SPEED
        assert check_rollout(path) == [], (speed, distance)
        assert accelerations.max() <= 1.0 + 1e-9


def test_where_the_samples_stop_short_of_the_cameras_line_the_car_drives_up_to_it() -> None:
    """Creeping at 2 m/s, the samples stop within 2 m (the model placed the line 15 m short,
    as on seed 3000181); the cameras show it 30 m on: the approach is chosen and comes up to
    it, short of it by the clearance. Without the cameras' line, the samples' stop stands."""
    creeping = ScriptedExpert(np.full(STEPS, -1.0), np.zeros(STEPS))
    ego = conditioning(2.0, Longitudinal.STOP)
    red = stop_for(Cause.TRAFFIC_LIGHT, 15.0)
    plan = PlanningStep(creeping, 6).plan(
        ego, 0, red, light=dataclasses.replace(RED, stop_line_x=30.0)
    )
    assert plan.approached and not plan.braked and plan.selected is not None
    assert 20.0 < plan.selected.x.max() <= 30.0 - 4.7  # 6.4 s of it: nearly there
    alone = PlanningStep(creeping, 6).plan(ego, 0, red, light=RED)
    assert not alone.approached and alone.selected is not None
    assert alone.selected.x.max() < 3.0


def test_the_braking_candidate_comes_when_the_samples_that_keep_off_break_a_limit() -> None:
    """Half the samples brake at 11 m/s^2 (beyond the 9.8 bound) and stop short; the others
    brake at 1 and reach the car: none is feasible, so the braking candidate follows one of
    the drivable ones."""

    class Split(ScriptedExpert):
        def sample_controls(self, conditioning, num_samples, rng, noise_scale=1.0):  # type: ignore[override]
            acceleration = np.full((num_samples, STEPS), -1.0)
            acceleration[: num_samples // 2] = -11.0
            return ControlSamples(acceleration, np.zeros((num_samples, STEPS)))

    plan = PlanningStep(Split(np.zeros(1), np.zeros(1)), 6).plan(
        conditioning(10.0, Longitudinal.STOP), 0, stop_for(Cause.STOPPED_VEHICLE, 40.0)
    )
    assert plan.rollouts.batch_shape == (7,) and plan.selection.index == 6
    assert all("exceeds" in v[0] for v in plan.selection.violations[:3])
    assert all(v[-1].startswith("comes") for v in plan.selection.violations[3:6])


def test_no_stand_off_while_reversing() -> None:
    reversing = ScriptedExpert(np.full(STEPS, -1.0), np.zeros(STEPS))
    plan = PlanningStep(reversing, 2).plan(
        conditioning(0.0, Longitudinal.REVERSE), 0, stop_for(Cause.STOPPED_VEHICLE, 5.0)
    )
    assert plan.rollouts.batch_shape == (2,) and plan.selected is not None


KEEP_LANE = CausalDecision(
    "Keep the lane at the set speed.",
    LongitudinalDecision.SET_SPEED_TRACKING,
    LateralDecision.LANE_KEEPING,
    Cause.NONE,
)


def test_a_remembered_stopped_car_is_stopped_short_of_when_the_reasoning_forgets_it() -> None:
    """At 10 m/s, two plans stop for a stopped car 40 m ahead; 1 s later the reasoning keeps
    the lane at the set speed, or places the car further on. With the memory, the samples
    (at 10 m/s) are refused and the braking candidate stops short of where it was; without,
    or when the reasoning changes lanes (the model going round it), they are taken."""

    def remembering(memory_s: float) -> PlanningStep:
        step = PlanningStep(
            ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS)), 2, stand_off_memory_s=memory_s
        )
        for t0_ns, x_m in ((0, 40.0), (100_000_000, 39.0)):
            stop = stop_for(Cause.STOPPED_VEHICLE, x_m)
            step.plan(conditioning(10.0, Longitudinal.MAINTAIN_SPEED), t0_ns, stop)
        return step

    ego, one_second = conditioning(10.0, Longitudinal.MAINTAIN_SPEED), 1_000_000_000
    plan = remembering(5.0).plan(ego, one_second, KEEP_LANE)
    assert plan.recalled is not None and plan.recalled.cause is Cause.STOPPED_VEHICLE
    assert plan.recalled.x == pytest.approx(30.0)
    assert plan.selection.index == 2 and plan.selected is not None
    assert 30.0 - 7.0 - 1.0 < plan.selected.x.max() < 30.0 - 7.0
    assert "from the stopped_vehicle the reasoning stops for" in plan.selection.violations[0][-1]
    change = dataclasses.replace(KEEP_LANE, lateral_decision=LateralDecision.LANE_CHANGE)
    going_round = remembering(5.0).plan(ego, one_second, change)
    assert going_round.recalled is None and going_round.selection.feasible.all()
    # Stated further on than it was (close up, the model can place it too far): the
    # remembered place; stated nearer: the stated one.
    further = remembering(5.0).plan(ego, one_second, stop_for(Cause.STOPPED_VEHICLE, 40.0))
    assert further.recalled is not None and further.recalled.x == pytest.approx(30.0)
    assert further.selected is not None and further.selected.x.max() < 30.0 - 7.0
    nearer = remembering(5.0).plan(ego, one_second, stop_for(Cause.STOPPED_VEHICLE, 25.0))
    assert nearer.recalled is None
    assert nearer.selected is not None and 25.0 - 7.0 - 1.0 < nearer.selected.x.max() < 18.0
    forgetting = remembering(0.0).plan(ego, one_second, KEEP_LANE)
    assert forgetting.recalled is None and forgetting.selection.feasible.all()
    # Another kind of stop further on (a light's line beyond the car) does not move it.
    line = remembering(5.0).plan(ego, one_second, stop_for(Cause.TRAFFIC_LIGHT, 40.0))
    assert line.recalled is not None and line.recalled.x == pytest.approx(30.0)
    with pytest.raises(ValueError, match="at least 2 s"):
        PlanningStep(ScriptedExpert(np.zeros(1), np.zeros(1)), 2, stand_off_memory_s=1.0)


def lane_to_the_left(offset_m: float) -> LaneEstimate:
    """A straight lane whose centre runs `offset_m` left of the car."""
    stations = np.arange(5.0, 61.0, 2.0)
    return LaneEstimate(stations, np.full_like(stations, offset_m), 3.5)


def test_along_lane_keeps_the_speed_profile_and_comes_onto_the_centre() -> None:
    """A car 1 m right of its lane's centre, braking gently from 10 m/s: the same speeds,
    on a path that reaches the centre within 4 s, never overshoots it, and steers within
    the checks' limits."""
    acceleration = np.full(STEPS, -0.5)
    path = along_lane(lane_to_the_left(1.0), acceleration, 10.0)
    straight = integrate_controls(
        ControlSamples(acceleration[None], np.zeros((1, STEPS))),
        conditioning(10.0, Longitudinal.GENTLE_DECELERATE),
    )[0]
    np.testing.assert_allclose(path.v, straight.v)
    assert path.y[40:] == pytest.approx(1.0, abs=0.05)
    assert path.y.max() < 1.05 and (np.diff(path.y[:20]) >= 0).all()
    assert check_rollout(path) == []
    # A bend: the path turns with the lane and ends on its centre.
    stations = np.arange(5.0, 100.0, 1.0)
    bend = LaneEstimate(stations, 0.5 * 0.01 * np.maximum(stations - 20.0, 0.0) ** 2, 3.5)
    on_bend = along_lane(bend, np.zeros(STEPS), 10.0)
    assert abs(on_bend.y[-1] - bend.centre(on_bend.x[-1])) < 0.5
    assert on_bend.curvature[:10] == pytest.approx(0.0, abs=2e-3)  # straight until the bend


def test_while_the_reasoning_keeps_its_lane_the_plan_follows_the_lane_the_cameras_show() -> None:
    """The model's samples drive straight on with the lane's centre 1 m to the left: keeping
    the lane, the chosen plan is the samples' speed profile along the centre; changing lanes,
    with lane keeping off, without a lane, with a lane the car is not in, or when the path
    along it breaks a limit, it is the model's. Braking for a stand-off, the braking
    candidate's speeds go along the lane."""
    step = PlanningStep(ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS)), 3)
    ego = conditioning(10.0, Longitudinal.MAINTAIN_SPEED)
    lane = lane_to_the_left(1.0)
    plan = step.plan(ego, 0, KEEP_LANE, lane)
    assert plan.along_lane and not plan.braked and plan.selection.index == plan.sampled
    assert plan.selected is not None and plan.selected.y[-1] == pytest.approx(1.0, abs=0.05)
    np.testing.assert_allclose(plan.selected.v, plan.samples[0].v)
    change = dataclasses.replace(KEEP_LANE, lateral_decision=LateralDecision.LANE_CHANGE)
    for model_path in (
        step.plan(ego, 0, change, lane),
        PlanningStep(step.backend, 3, lane_keeping=False).plan(ego, 0, KEEP_LANE, lane),
        step.plan(ego, 0, KEEP_LANE, None),
    ):
        assert not model_path.along_lane and model_path.selection.index == 0
        assert model_path.selected is not None and model_path.selected.y[-1] == 0.0
    # A stopped car 30 m ahead in the lane's centre: every sample is refused, the braking
    # candidate stops short of it, and its speeds along the lane stop short too.
    stop = stop_for(Cause.STOPPED_VEHICLE, 30.0)
    stopping = step.plan(
        ego, 0, dataclasses.replace(stop, cause_object_position=(30.0, 1.0, 0.8)), lane
    )
    assert stopping.along_lane and stopping.braked and stopping.selected is not None
    assert 30.0 - 7.0 - 1.0 < stopping.selected.x.max() < 30.0 - 7.0
    # A lane 1.7 m to the left at 12 m/s: steering onto it breaks the lateral acceleration
    # limit, so the model's path stays the choice.
    fast = conditioning(12.0, Longitudinal.MAINTAIN_SPEED)
    swerve = step.plan(fast, 0, KEEP_LANE, lane_to_the_left(1.7))
    assert not swerve.along_lane and swerve.selection.index == 0
    assert any("lateral" in v for v in swerve.selection.violations[-1])
    # A lane whose centre is 5 m to the left is not the one the car is in: not followed.
    beside = step.plan(ego, 0, KEEP_LANE, lane_to_the_left(5.0))
    assert not beside.along_lane and beside.rollouts.batch_shape == (3,)


def test_a_stop_for_a_stopped_vehicle_in_clear_road_moves_to_where_it_ends() -> None:
    """Standing, the reasoning stops for a stopped vehicle 8 m ahead (the embedded model's
    phantom, seed 3000223); the samples stand. The cameras show the lane clear to 40 m (as
    far as they look): the stop moves there and the car drives up to it, gaining speed
    gently. Where they show something 10 m on (within CLEAR_PAST_M of the place), or the
    stop is for a pedestrian, or no clear road came, the stop stands and so does the car."""
    standing = ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS))
    ego = conditioning(0.0, Longitudinal.STOP)
    phantom = stop_for(Cause.STOPPED_VEHICLE, 8.0)
    plan = PlanningStep(standing, 6).plan(ego, 0, phantom, free_space=FreeSpace(MAX_FREE_X_M))
    assert plan.moved_stop == (8.0, MAX_FREE_X_M)
    assert plan.approached and plan.selected is not None
    assert 15.0 < plan.selected.x.max() <= MAX_FREE_X_M - 7.0
    assert plan.selected.acceleration.max() <= 1.0 + 1e-9
    for stays in (
        PlanningStep(standing, 6).plan(ego, 0, phantom, free_space=FreeSpace(10.0)),
        PlanningStep(standing, 6).plan(
            ego, 0, stop_for(Cause.PEDESTRIAN, 8.0), free_space=FreeSpace(MAX_FREE_X_M)
        ),
        PlanningStep(standing, 6).plan(ego, 0, phantom),
    ):
        assert stays.moved_stop is None and not stays.approached
        assert stays.selected is not None and stays.selected.x.max() < 0.5


def test_a_remembered_stopped_car_moves_to_where_the_cameras_show_one() -> None:
    """The memory holds a stopped car 30 m ahead (the model placed it 6 m short, as on seed
    3000205) and the reasoning keeps its lane at the set speed; the cameras show the lane
    clear up to a car at 36 m: the plan keeps off that car by the clearance (the stop on
    the centre of the lane the cameras show, 0.5 m left), not off the remembered place."""
    step = PlanningStep(ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS)), 2)
    for t0_ns, x_m in ((0, 40.0), (100_000_000, 39.0)):
        step.plan(
            conditioning(10.0, Longitudinal.MAINTAIN_SPEED),
            t0_ns,
            stop_for(Cause.STOPPED_VEHICLE, x_m),
        )
    lane = lane_to_the_left(0.5)
    plan = step.plan(
        conditioning(10.0, Longitudinal.MAINTAIN_SPEED),
        1_000_000_000,
        KEEP_LANE,
        lane,
        free_space=FreeSpace(36.0),
    )
    assert plan.recalled is not None and plan.recalled.x == pytest.approx(30.0)
    assert plan.moved_stop == (pytest.approx(30.0), 36.0)
    assert plan.moved_cause is Cause.STOPPED_VEHICLE
    assert plan.selected is not None
    end = np.hypot(plan.selected.x - 36.0, plan.selected.y - float(lane.centre(36.0)))
    assert end.min() >= 7.0 - 0.5 - 1e-9
    assert plan.selected.x.max() > 30.0 - 7.0  # further than the remembered place allowed


def test_what_the_cameras_show_in_the_lane_is_kept_off_whatever_the_reasoning_says() -> None:
    """At 8 m/s the reasoning says "speed up to follow the lead" (seed 3000100); the samples
    keep 8 m/s. The cameras show a thing 16 m ahead, closing at 4 m/s (it goes at 4 m/s):
    once its speed is known (18 m off at first, far enough to wait for it), the plan keeps
    7 m behind where it will be over the first 3 s. Moving away, or while the reasoning
    changes lanes, it is not kept off; beside a stop the reasoning states, both are, unless
    the thing moves where the reasoning puts a stopped vehicle or cones."""
    cruising = ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS))
    ego = conditioning(8.0, Longitudinal.MAINTAIN_SPEED)

    def drive(
        decision: CausalDecision, closing_mps: float, step: PlanningStep | None = None
    ) -> Plan:
        step = step or PlanningStep(cruising, 6)
        for k in range(6):
            x = 16.0 + closing_mps * 0.1 * (5 - k)  # 16 m at the last plan
            plan = step.plan(ego, k * NS_PER_S // 10, decision, free_space=FreeSpace(x))
        return plan

    plan = drive(KEEP_LANE, 4.0)
    assert plan.kept_off_seen is not None
    x, speed = plan.kept_off_seen
    assert speed == pytest.approx(4.0, abs=0.5)
    assert plan.selected is not None and plan.selection.index == 6  # the braking candidate
    behind = x + speed * plan.selected.t - plan.selected.x
    assert behind.min() >= 7.0 - 0.5 - 1e-6
    assert "thing the cameras show in the lane (clearance 7 m)" in plan.selection.violations[0][-1]
    away = drive(KEEP_LANE, -4.0)  # it pulls away at 12 m/s
    assert away.kept_off_seen is None and away.selection.index is not None
    assert away.selection.index < 6
    change = dataclasses.replace(KEEP_LANE, lateral_decision=LateralDecision.LANE_CHANGE)
    assert drive(change, 4.0).kept_off_seen is None
    # With a stop the reasoning states, both are kept off: the stop for a stopped vehicle
    # it keeps putting 12 m ahead (remembered, dead-reckoned nearer) moves to the thing the
    # cameras show standing 16 m ahead, and the car stops short of it.
    both = drive(stop_for(Cause.STOPPED_VEHICLE, 12.0), 8.0)
    assert both.kept_off_seen is not None and both.kept_off_seen[1] == 0.0
    assert both.moved_stop is not None and both.moved_stop[1] == 16.0
    assert both.selected is not None and both.selected.x.max() <= 16.0 - 7.0 + 1e-6
    # Where the thing there moves on, it is the "stopped vehicle": kept off as it moves,
    # not stood behind, and the memory forgets it.
    step = PlanningStep(cruising, 6)
    moving = drive(stop_for(Cause.STOPPED_VEHICLE, 12.0), 4.0, step)
    assert moving.kept_off_seen is not None and moving.kept_off_seen[1] > 3.0
    assert moving.moved_stop is None and moving.recalled is None
    assert moving.moving_cause is Cause.STOPPED_VEHICLE and both.moving_cause is None
    assert moving.selected is not None and moving.selected.x.max() > 16.0
    reasons = [reason for reasons in moving.selection.violations for reason in reasons]
    assert reasons and all("stopped_vehicle" not in reason for reason in reasons)
    after = step.plan(ego, 6 * NS_PER_S // 10, KEEP_LANE, free_space=FreeSpace(10.0))
    assert after.recalled is None
    # So are cones stated at it (cones stand too; without the memory, which would place
    # them nearer as the car goes on); not cones 4 m short of it, which no lane moves
    # there (beside a straight corridor they may stand in the lane); a pedestrian may walk
    # on: stopped for.
    forgetting = PlanningStep(cruising, 6, stand_off_memory_s=0.0)
    cones = drive(stop_for(Cause.CONSTRUCTION, 15.0), 4.0, forgetting)
    assert cones.moving_cause is Cause.CONSTRUCTION
    assert cones.selected is not None and cones.selected.x.max() > 16.0
    short = drive(stop_for(Cause.CONSTRUCTION, 12.0), 4.0)
    assert short.moving_cause is None
    assert short.selected is not None and short.selected.x.max() < 12.0 - 6.0
    pedestrian = drive(stop_for(Cause.PEDESTRIAN, 12.0), 4.0)
    assert pedestrian.selected is not None and pedestrian.selected.x.max() < 12.0 - 6.0


def test_a_far_end_read_as_moving_drops_a_stop_only_where_the_car_could_still_stop() -> None:
    """A stopped car 39 m ahead whose end stays on one pixel row of the tele camera for
    the plans' second reads as moving at the car's speed. At 14 m/s, were that wrong, a
    second later the car could not stop gently: the stop for the stopped vehicle stays.
    At 5 m/s it could: the stop gives way to the thing kept off as it moves."""

    def drive(speed: float) -> Plan:
        step = PlanningStep(ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS)), 6)
        ego = conditioning(speed, Longitudinal.MAINTAIN_SPEED)
        stop = stop_for(Cause.STOPPED_VEHICLE, 39.0)
        for k in range(8):
            plan = step.plan(ego, k * NS_PER_S // 10, stop, free_space=FreeSpace(39.0))
        return plan

    def kept_off_as_stopped(plan: Plan) -> bool:
        reasons = [reason for reasons in plan.selection.violations for reason in reasons]
        return any("stopped_vehicle the reasoning stops for" in reason for reason in reasons)

    fast, slow = drive(14.0), drive(5.0)
    assert fast.kept_off_seen is not None and fast.kept_off_seen[1] == pytest.approx(14.0)
    assert kept_off_as_stopped(fast)
    assert fast.selected is not None and fast.selected.x.max() <= 39.0 - 7.0 + 1e-6
    assert slow.kept_off_seen is not None and slow.kept_off_seen[1] == pytest.approx(5.0)
    assert not kept_off_as_stopped(slow)


def test_a_moving_thing_in_the_lane_does_not_drop_a_stop_further_on() -> None:
    """At 8 m/s the reasoning stops at a red light's line 25 m on; the cameras show a lead
    15 m ahead going at 4 m/s (kept off over 3 s only). The plan keeps both: its front
    stays short of the line whatever the lead does after 3 s."""
    cruising = ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS))
    ego = conditioning(8.0, Longitudinal.MAINTAIN_SPEED)
    step = PlanningStep(cruising, 6)
    red = stop_for(Cause.TRAFFIC_LIGHT, 25.0)
    for k in range(6):
        x = 15.0 + 4.0 * 0.1 * (5 - k)  # closing at 4 m/s: it goes at 4 m/s
        plan = step.plan(ego, k * NS_PER_S // 10, red, free_space=FreeSpace(x))
    assert plan.kept_off_seen is not None and plan.kept_off_seen[1] == pytest.approx(4.0, abs=0.5)
    assert plan.selected is not None
    assert plan.selected.x.max() <= 25.0 - 4.7 + 1e-6  # base_link 4.7 m short of the line


def test_a_thing_the_cameras_show_is_passed_with_room_gone_round_in_the_lane_or_stood_off() -> None:
    """At 10 m/s the reasoning nudges round cones (seed 3000122: a cyclist); the samples
    drive straight on the lane's centre. The cameras show a thing standing 20 m ahead
    (followed over six plans), on the right. Where its near edge leaves the car's body half
    a metre (1.5 m right of base_link), the samples pass it; where it reaches 1.2 m right,
    the planner's own nudge, 0.4 m left within the lane, passes it with the room; where it
    reaches past the centre, no nudge within the lane does, and the car stops 7 m short."""
    cruising = ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS))
    ego = conditioning(10.0, Longitudinal.MAINTAIN_SPEED)
    nudging = dataclasses.replace(KEEP_LANE, lateral_decision=LateralDecision.IN_LANE_NUDGE)
    lane = lane_to_the_left(0.0)

    def drive(near_edge_y: float) -> Plan:
        step = PlanningStep(cruising, 6)
        for k in range(6):
            x = 20.0 + 1.0 * (5 - k)  # standing, the car closing at 10 m/s
            seen = FreeSpace(x, MAX_FREE_X_M, (-1.75, near_edge_y))
            plan = step.plan(ego, k * NS_PER_S // 10, nudging, lane, free_space=seen)
        return plan

    room = drive(-1.5)
    assert room.kept_off_seen is not None and not room.braked and not room.nudged
    assert room.selection.index is not None and room.selection.index < room.sampled
    tight = drive(-1.2)
    assert tight.nudged and not tight.braked and tight.selected is not None
    alongside = (tight.selected.x > 20.0 - 7.0) & (tight.selected.x < 20.0 + 6.0)
    assert alongside.any()
    assert (tight.selected.y[alongside] - 0.95 - (-1.2) >= 0.5 - 1e-6).all()
    assert tight.selected.y.max() <= 1.75 - 0.95  # the body stays in the lane
    blocked = drive(0.2)
    assert blocked.braked and not blocked.nudged and blocked.selected is not None
    assert blocked.selected.x.max() <= 20.0 - 7.0 + 1e-6


def test_where_the_reasoning_tracks_the_set_speed_the_plan_gains_it_on_a_clear_lane() -> None:
    """At 7 m/s on a clear lane, the reasoning keeping the set speed (13 m/s) and the
    samples holding 7 (the model is not told the set speed; seed 3000705 drove on at 7 on
    a clear road after slowing for a car it imagined): the chosen plan gains speed as the
    expert does, never faster than SET_SPEED_ACCELERATION, up to the set speed and not
    past it, along the lane. Not where the set speed is not known, the reasoning does not
    track it or names something beside the road, changes lanes, the car is at the set
    speed already, or the cameras show something in the corridor, look nowhere, or look
    less far than a stop from the set speed needs."""
    holding = ScriptedExpert(np.zeros(STEPS), np.zeros(STEPS))
    ego = conditioning(7.0, Longitudinal.MAINTAIN_SPEED)
    lane = lane_to_the_left(0.0)
    clear = FreeSpace(MAX_FREE_X_M)
    plan = PlanningStep(holding, 3).plan(ego, 0, KEEP_LANE, lane, free_space=clear, set_speed=13.0)
    assert plan.gained_set_speed and plan.along_lane and plan.selected is not None
    speeds = plan.selected.v
    assert (np.diff(speeds) >= 0.0).all() and speeds[-1] > 12.0
    assert speeds.max() <= 13.0 and plan.selected.acceleration.max() <= SET_SPEED_ACCELERATION
    assert check_rollout(plan.selected) == []
    follow = dataclasses.replace(
        KEEP_LANE, longitudinal_decision=LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING
    )
    beside_a_cyclist = dataclasses.replace(KEEP_LANE, cause=Cause.CYCLIST)
    changing_lanes = dataclasses.replace(KEEP_LANE, lateral_decision=LateralDecision.LANE_CHANGE)
    # 13 m/s stops in 21 m at 4 m/s^2, and 7 m short of what comes next: 28 m seen clear.
    for seen, gained in ((FreeSpace(28.5, 28.5), True), (FreeSpace(27.5, 27.5), False)):
        plan_seen = PlanningStep(holding, 3).plan(
            ego, 0, KEEP_LANE, lane, free_space=seen, set_speed=13.0
        )
        assert plan_seen.gained_set_speed == gained
    something_ahead = FreeSpace(30.0)
    for kept in (
        PlanningStep(holding, 3).plan(ego, 0, KEEP_LANE, lane, free_space=clear),
        PlanningStep(holding, 3).plan(ego, 0, follow, lane, free_space=clear, set_speed=13.0),
        PlanningStep(holding, 3).plan(
            ego, 0, beside_a_cyclist, lane, free_space=clear, set_speed=13.0
        ),
        PlanningStep(holding, 3).plan(ego, 0, None, lane, free_space=clear, set_speed=13.0),
        PlanningStep(holding, 3).plan(
            ego, 0, changing_lanes, lane, free_space=clear, set_speed=13.0
        ),
        PlanningStep(holding, 3).plan(ego, 0, KEEP_LANE, lane, set_speed=13.0),  # not looked
        PlanningStep(holding, 3).plan(
            ego, 0, KEEP_LANE, lane, free_space=something_ahead, set_speed=13.0
        ),
    ):
        assert not kept.gained_set_speed and kept.selected is not None
        assert kept.selected.v == pytest.approx(7.0)
    # At the set speed already (or above it: a model braking from there keeps its brakes).
    braking = ScriptedExpert(np.full(STEPS, -1.0), np.zeros(STEPS))
    for speed in (13.0, 15.0):
        fast = conditioning(speed, Longitudinal.GENTLE_DECELERATE)
        above = PlanningStep(braking, 3).plan(
            fast, 0, KEEP_LANE, lane, free_space=clear, set_speed=13.0
        )
        assert not above.gained_set_speed and above.selected is not None
        assert above.selected.acceleration[:5] == pytest.approx(-1.0)
    # A set speed is m/s > 0; 0 from a topic or a parameter means "not known".
    assert known_set_speed(0.0) is None and known_set_speed(13.0) == 13.0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="set speed"):
            known_set_speed(bad)
        with pytest.raises(ValueError, match="set speed"):
            PlanningStep(holding, 3).plan(ego, 0, KEEP_LANE, lane, set_speed=bad)
    with pytest.raises(ValueError, match="not known is None"):
        PlanningStep(holding, 3).plan(ego, 0, KEEP_LANE, lane, set_speed=0.0)


def test_the_set_speed_is_gained_never_below_the_model_nor_round_a_bend_too_fast() -> None:
    """`toward_set_speed` raises the chosen plan's speeds only: a model speeding up harder
    keeps its own; one at the set speed already gets nothing; a bend the raised plan would
    take faster than SET_SPEED_LATERAL_ACCELERATION (and than the model's does) gets
    nothing; braking is replaced where the free-road term is higher."""
    lane = lane_to_the_left(0.0)

    def chosen(acceleration: object, curvature: float = 0.0, speed: float = 7.0) -> Rollout:
        controls = ControlSamples(
            np.broadcast_to(acceleration, (1, STEPS)).copy(), np.full((1, STEPS), curvature)
        )
        return integrate_controls(controls, conditioning(speed, Longitudinal.MAINTAIN_SPEED))[0]

    # Speeding up harder than the expert would for a second, then holding: its own first.
    spurt = np.where(np.arange(STEPS) < 10, 2.5, 0.0)
    harder = toward_set_speed(chosen(spurt), lane, 7.0, 13.0)
    assert harder is not None
    assert harder.acceleration[:10] == pytest.approx(2.5)
    assert harder.acceleration[10:].min() > 0.0 and harder.v.max() <= 13.0
    assert toward_set_speed(chosen(2.5), lane, 7.0, 13.0) is None  # faster all along
    assert toward_set_speed(chosen(0.0, speed=13.0), lane, 13.0, 13.0) is None
    braking = toward_set_speed(chosen(-1.0), lane, 7.0, 13.0)
    assert braking is not None and braking.acceleration.min() >= 0.0
    # A 100 m radius bend, no lane: 7 m/s is 0.5 m/s^2 sideways; 13 m/s would be 1.7 (kept),
    # on a 50 m one 3.4 (refused).
    wide = toward_set_speed(chosen(0.0, 0.01), None, 7.0, 13.0)
    assert wide is not None
    assert np.abs(wide.v**2 * wide.curvature).max() <= SET_SPEED_LATERAL_ACCELERATION
    assert toward_set_speed(chosen(0.0, 0.02), None, 7.0, 13.0) is None
