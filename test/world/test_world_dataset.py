"""Samples: AR1 contract shapes, determinism, exact kinematics, labels that match the
future, causes that match the scenario, and text that states what the trajectory does."""

from __future__ import annotations

import collections
import dataclasses
import itertools

import numpy as np
import pytest

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.decisions import OBJECT_CAUSES, Cause
from alpamayo_ros.core.kinematics import VehicleState, integrate_unicycle
from alpamayo_ros.core.meta_actions import label_meta_action
from alpamayo_ros.world.dataset import (
    NO_DRIFT,
    DatasetError,
    DriftRates,
    Sample,
    WorldSimulation,
    drift_for,
    foresees_light_change,
    generate,
    make_labels,
    make_sample,
    road_pose,
    t0_anywhere,
)
from alpamayo_ros.world.reasoning_text import coarse_meta_action, is_consistent
from alpamayo_ros.world.road import Road, Segment
from alpamayo_ros.world.scenarios import MIN_SAMPLE_STEP, SCENARIO_TYPES, make_scenario
from alpamayo_ros.world.simulation import Simulation, decisions, future_rollout

EXPECTED_CAUSE = {
    "lead_vehicle": {Cause.LEAD_VEHICLE},
    "lead_vehicle_braking": {Cause.LEAD_VEHICLE},
    "stopped_vehicle": {Cause.STOPPED_VEHICLE},
    "cut_in": {Cause.CUT_IN},
    "pedestrian_crossing": {Cause.PEDESTRIAN},
    "cyclist": {Cause.CYCLIST},
    "traffic_light": {Cause.TRAFFIC_LIGHT},
    "construction": {Cause.CONSTRUCTION},
    "free_road": {Cause.NONE, Cause.ROAD_GEOMETRY},
}


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return [make_sample(seed, kind) for seed, kind in enumerate(SCENARIO_TYPES)]


def test_sample_has_the_contract_shapes(samples: list[Sample]) -> None:
    for sample in samples:
        assert sample.images.shape == (len(CAMERA_ORDER), 4, 64, 128, 3)
        assert sample.images.dtype == np.uint8
        assert sample.ego_xyz.shape == (16, 3) and sample.ego_rotations.shape == (16, 3, 3)
        assert sample.future_acceleration.shape == sample.future_curvature.shape == (64,)
        assert sample.future_xyz.shape == (64, 3)
        assert (
            sample.decision.text and sample.decision.cause in EXPECTED_CAUSE[sample.scenario_type]
        )


def test_same_seed_same_sample_and_different_seeds_differ() -> None:
    first, second, other = make_sample(3), make_sample(3), make_sample(4)
    for name in ("images", "ego_xyz", "ego_rotations", "future_acceleration", "future_xyz"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert first.decision == second.decision and first.meta_action == second.meta_action
    assert not np.array_equal(first.images, other.images)
    assert not np.array_equal(first.future_xyz, other.future_xyz)


def test_future_is_the_integrated_controls_and_the_label_is_of_it(samples: list[Sample]) -> None:
    for sample in samples:
        rollout = integrate_unicycle(
            sample.future_acceleration, sample.future_curvature, sample.speed
        )
        np.testing.assert_allclose(sample.future_xyz, rollout.xyz(), atol=1e-6)
        assert sample.meta_action == label_meta_action(rollout)


def test_simulated_future_matches_the_unicycle_rollout() -> None:
    scenario = make_scenario(5, "cyclist")
    trace = Simulation(scenario).run(scenario.steps)
    k0 = scenario.sample_step
    now = trace.ego[k0]
    cos, sin = np.cos(now.yaw), np.sin(now.yaw)
    simulated = np.array(
        [
            (cos * (e.x - now.x) + sin * (e.y - now.y), -sin * (e.x - now.x) + cos * (e.y - now.y))
            for e in trace.ego[k0 + 1 : k0 + 65]
        ]
    )
    sample = make_sample(5, "cyclist")
    np.testing.assert_allclose(sample.future_xyz[:, :2], simulated, atol=1e-6)


def test_history_is_10_hz_and_ends_at_the_origin(samples: list[Sample]) -> None:
    for sample in samples:
        np.testing.assert_allclose(sample.ego_xyz[-1], 0.0, atol=1e-12)
        np.testing.assert_allclose(sample.ego_rotations[-1], np.eye(3), atol=1e-12)
        # The poses are the simulated ego every 0.1 s up to t0, seen from t0.
        scenario = make_scenario(sample.seed, sample.scenario_type)
        trace = Simulation(scenario).run(scenario.sample_step)
        now = trace.ego[scenario.sample_step]
        cos, sin = np.cos(now.yaw), np.sin(now.yaw)
        for pose, ego in zip(sample.ego_xyz, trace.ego[scenario.sample_step - 15 :], strict=True):
            dx, dy = ego.x - now.x, ego.y - now.y
            assert pose[:2] == pytest.approx((cos * dx + sin * dy, -sin * dx + cos * dy), abs=1e-9)
        # The last step covers about speed * 0.1 s (exactly, with the previous speed).
        last_step = float(np.linalg.norm(sample.ego_xyz[-1] - sample.ego_xyz[-2]))
        assert last_step == pytest.approx(sample.speed * 0.1, abs=0.1 * 0.1 * 6.0 / 2 + 1e-9)


def test_labels_match_the_scenario() -> None:
    causes: dict[str, collections.Counter[Cause]] = collections.defaultdict(collections.Counter)
    longitudinal: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for kind, seed in itertools.product(SCENARIO_TYPES, range(20)):
        labels = make_labels(seed, kind)
        causes[kind][labels.decision.cause] += 1
        longitudinal[kind][coarse_meta_action(*labels.meta_action)[0]] += 1
    for kind, counter in causes.items():
        matching = sum(counter[cause] for cause in EXPECTED_CAUSE[kind])
        assert matching >= 0.8 * 20, (kind, counter)
    braking = longitudinal["lead_vehicle_braking"]
    assert braking["decelerate"] + braking["stop"] >= 18, braking
    assert longitudinal["traffic_light"]["stop"] > 0


def test_text_states_the_labelled_behaviour_on_200_seeds() -> None:
    consistent = [
        is_consistent(labels.decision.text, *labels.meta_action)
        for labels in (make_labels(seed) for seed in range(200))
    ]
    assert np.mean(consistent) >= 0.95


def test_object_causes_and_only_they_name_an_object_on_200_seeds() -> None:
    for seed in range(200):
        decision = make_labels(seed).decision
        has_object = decision.cause in OBJECT_CAUSES
        assert bool(decision.cause_object_id) == has_object, (seed, decision)
        assert (np.linalg.norm(decision.cause_object_position) > 1.0) == has_object, seed


def test_generate_cycles_types() -> None:
    kinds = [
        s.scenario_type for s in generate(range(3), ("cut_in", "cyclist"), image_size=(32, 16))
    ]
    assert kinds == ["cut_in", "cyclist", "cut_in"]


def test_bad_image_size() -> None:
    with pytest.raises(DatasetError):
        make_sample(0, image_size=(1, 16))


def test_world_simulation_runs_live() -> None:
    world = WorldSimulation(11, "traffic_light")
    first = world.render(("front_wide_120fov",), 64, 32)[0]
    poses = []
    for _ in range(250):  # long enough to forget old steps
        world.step()
        poses.append(world.ego_pose())
    assert world.time == pytest.approx(25.0)
    assert first.shape == (32, 64, 3)
    assert not np.array_equal(first, world.render(("front_wide_120fov",), 64, 32)[0])
    steps = np.hypot(np.diff([p.x for p in poses]), np.diff([p.y for p in poses]))
    ego, _ = world.ego_since_step(0.0)
    assert steps.max() < 1.6 and ego.v >= 0.0
    assert world.decision().text
    assert len(world.future().x) == 64


def test_the_ego_between_steps_lies_on_the_step_the_world_drives() -> None:
    world = WorldSimulation(4, "lead_vehicle_braking")
    for _ in range(30):
        world.step()
    present = world.ego_pose()
    start, _ = world.ego_since_step(0.0)
    halfway, _ = world.ego_since_step(0.05)
    end, _ = world.ego_since_step(0.1)
    next_frame = world.render(("front_wide_120fov",), 64, 32, steps_ahead=1)[0]
    world.step()
    assert start.pose == present
    reached = world.ego_pose()
    assert (end.x, end.y, end.yaw) == pytest.approx((reached.x, reached.y, reached.yaw))
    assert np.hypot(halfway.x - start.x, halfway.y - start.y) > 0.1  # it is driving
    # A frame rendered one step ahead is the frame of that step.
    np.testing.assert_array_equal(next_frame, world.render(("front_wide_120fov",), 64, 32)[0])


def test_every_step_has_a_decision() -> None:
    scenario = make_scenario(2, "pedestrian_crossing")
    trace = Simulation(scenario).run(100)
    every = decisions(trace)
    assert len(every) == 100 - 64 + 1
    assert {decision.cause for decision in every} >= {Cause.PEDESTRIAN}
    assert all(decision.text.endswith(".") for decision in every)


DRIFTING = DriftRates(probability=1.0)


def test_a_t0_anywhere_spans_the_drive_and_its_label_is_the_experts_from_there() -> None:
    moved = []
    for seed in range(500, 540):
        scenario = make_scenario(seed)
        anywhere = t0_anywhere(seed, scenario, 1.0)
        assert anywhere == t0_anywhere(seed, scenario, 1.0), "a pure function of the seed"
        assert t0_anywhere(seed, scenario, 0.0) == scenario
        assert MIN_SAMPLE_STEP <= anywhere.sample_step <= scenario.steps
        assert dataclasses.replace(anywhere, sample_step=scenario.sample_step) == scenario
        moved.append(anywhere.sample_step - scenario.sample_step)
    # Before the event and after it, not only near it.
    assert min(moved) < -10 and max(moved) > 30
    # The sample is taken there: the frames and the label are the expert's at the new t0.
    seed = next(seed for seed in range(500, 540) if seed_moves_lead_vehicle_braking(seed))
    scenario = t0_anywhere(seed, make_scenario(seed, "lead_vehicle_braking"), 1.0)
    sample = make_sample(seed, "lead_vehicle_braking", any_time=1.0)
    assert not np.array_equal(sample.images, make_sample(seed, "lead_vehicle_braking").images)
    expert = Simulation(scenario).run(scenario.steps)
    k0 = scenario.sample_step
    assert sample.speed == pytest.approx(expert.ego[k0].v)
    rollout = future_rollout(expert, k0)
    np.testing.assert_allclose(sample.future_acceleration, rollout.acceleration)
    with pytest.raises(DatasetError, match="t0 anywhere must be in"):
        t0_anywhere(500, make_scenario(500), 1.5)


def seed_moves_lead_vehicle_braking(seed: int) -> bool:
    scenario = make_scenario(seed, "lead_vehicle_braking")
    return abs(t0_anywhere(seed, scenario, 1.0).sample_step - scenario.sample_step) > 10


def test_a_t0_anywhere_brings_no_light_change_into_the_future_its_frames_cannot_show() -> None:
    """Scenarios time a light's change past their horizon: a red that turns green within
    the label would teach driving off at a red."""
    moved = kept = 0
    for seed in range(600, 660):
        scenario = make_scenario(seed, "traffic_light")
        anywhere = t0_anywhere(seed, scenario, 1.0)
        t0_s, end_s = anywhere.sample_step / 10.0, anywhere.steps / 10.0
        for light in anywhere.lights:
            changes = [p.start_time for p in light.phases[1:] if t0_s < p.start_time <= end_s]
            original = [
                p.start_time
                for p in light.phases[1:]
                if scenario.sample_step / 10.0 < p.start_time <= scenario.steps / 10.0
            ]
            assert set(changes) <= set(original), (seed, changes, original)
        moved += anywhere.sample_step != scenario.sample_step
        kept += anywhere.sample_step == scenario.sample_step
    assert moved > 10 and kept > 5  # moves are made where they can be, refused elsewhere


@pytest.mark.parametrize(
    ("probability", "speed_probability", "name"),
    [(-0.1, 0.0, "probability"), (1.5, 0.0, "probability"), (0.5, 1.5, "speed_probability")],
)
def test_drift_rates_outside_0_1_are_refused(
    probability: float, speed_probability: float, name: str
) -> None:
    with pytest.raises(DatasetError, match=f"drift {name} must be in \\[0, 1\\]"):
        DriftRates(probability, speed_probability)


def test_a_drift_takes_the_car_off_its_path_and_the_label_brings_it_back() -> None:
    drifted = []
    for seed in range(300, 340):
        scenario = make_scenario(seed, "free_road")
        drift = drift_for(seed, scenario, DRIFTING)
        assert drift == drift_for(seed, scenario, DRIFTING), "a pure function of the seed"
        assert drift_for(seed, scenario, NO_DRIFT) is None
        if drift is None:
            continue
        assert drift.last == scenario.sample_step and 8 <= drift.last - drift.first <= 20
        expert = Simulation(scenario).run(scenario.steps)
        perturbed = Simulation(scenario, drift).run(scenario.steps)
        assert perturbed.ego[drift.first] == expert.ego[drift.first], "the same until it drifts"
        k0 = drift.last
        road = scenario.road
        lane = road.lane_center(scenario.ego_lane)
        off = abs(road.project(perturbed.ego[k0].x, perturbed.ego[k0].y)[1] - lane)
        back = abs(road.project(perturbed.ego[k0 + 30].x, perturbed.ego[k0 + 30].y)[1] - lane)
        heading = abs(road_pose(road, perturbed.ego[k0])[1])
        drifted.append((off, back, heading))
    assert len(drifted) >= 30
    offsets = np.array(drifted)
    # Off the lane centre by about the drawn 0.3-1.2 m at t0, heading away from it (the
    # expert does not fight the error while it lasts), and most of the way back 3 s later
    # under the expert.
    assert 0.5 < np.median(offsets[:, 0]) < 1.3
    assert np.median(offsets[:, 2]) > 0.05
    assert np.median(offsets[:, 1]) < 0.5 * np.median(offsets[:, 0])
    sample, plain = (
        make_sample(301, "free_road", drift=DRIFTING),
        make_sample(301, "free_road"),
    )
    assert not np.array_equal(sample.ego_xyz, plain.ego_xyz)


def test_a_speed_drift_leaves_the_car_too_slow_or_too_fast_and_the_label_recovers() -> None:
    errors = []
    for seed in range(300, 340):
        scenario = make_scenario(seed, "free_road")
        drift = drift_for(seed, scenario, DriftRates(1.0, speed_probability=0.5))
        if drift is None:
            continue
        # The same steering error as without a speed error.
        assert drift.curvature_bias == drift_for(seed, scenario, DRIFTING).curvature_bias
        if drift.acceleration_bias == 0.0:
            continue
        expert = Simulation(scenario).run(scenario.steps)
        drifted = Simulation(scenario, drift).run(scenario.steps)
        k0 = drift.last
        at_t0 = drifted.ego[k0].v - expert.ego[k0].v
        later = drifted.ego[k0 + 30].v - expert.ego[k0 + 30].v
        errors.append((at_t0, later, drift.acceleration_bias))
    assert 10 <= len(errors) <= 30, len(errors)
    at_t0, later, bias = np.array(errors).T
    # The speed error has the sign of the drift and about its size (1-3 m/s, less where
    # the acceleration was clipped), and the expert takes most of it back within 3 s.
    assert np.all(np.sign(at_t0) == np.sign(bias))
    assert 0.8 < np.median(np.abs(at_t0)) < 3.0
    assert np.median(np.abs(later)) < 0.5 * np.median(np.abs(at_t0))
    assert {bool(b > 0) for b in bias} == {True, False}


def test_the_road_pose_is_the_offset_from_the_nearest_lane_centre_and_the_heading_error() -> None:
    road = Road((Segment(50.0), Segment(60.0, 0.02)), lane_count=2)

    def pose_at(s: float, d: float, heading: float) -> np.ndarray:
        x, y, yaw = road.world_point(s, d)
        return road_pose(road, VehicleState(x, y, yaw + heading, 10.0))

    assert pose_at(20.0, 0.0, 0.0) == pytest.approx([0.0, 0.0], abs=1e-9)
    assert pose_at(20.0, 3.5 + 0.4, -0.05) == pytest.approx([0.4, -0.05], abs=1e-6)
    assert pose_at(80.0, 3.5 - 0.6, 0.1) == pytest.approx([-0.6, 0.1], abs=1e-6)  # on the arc
    # Off the road the offset is from the outermost lane's centre, as far as it goes.
    assert pose_at(20.0, -3.0, 0.0) == pytest.approx([-3.0, 0.0], abs=1e-6)
    assert pose_at(20.0, 9.0, 0.0) == pytest.approx([5.5, 0.0], abs=1e-6)
    # A sample carries it: on the expert's path nothing to correct, after a drift the error.
    assert make_sample(301, "free_road").road_pose == pytest.approx([0.0, 0.0], abs=0.05)
    drifted = make_sample(301, "free_road", drift=DRIFTING).road_pose
    assert abs(drifted[0]) > 0.1


def test_a_label_foresees_a_light_change_within_its_6_4_s() -> None:
    lights = make_scenario(3000102)  # red, green at 17.33 s, yellow at 29.33 s
    assert not foresees_light_change(lights, 10.9)
    assert foresees_light_change(lights, 11.0)
    assert foresees_light_change(lights, 17.3)
    assert not foresees_light_change(lights, 17.4)  # green now; yellow beyond 6.4 s
    assert foresees_light_change(lights, 23.0)
    assert not foresees_light_change(make_scenario(3000103, "free_road"), 5.0)


def test_a_lights_place_is_where_its_stop_line_crosses_the_cars_path() -> None:
    """A stop for a light is planned to its stop line (core.stand_off), so the label
    places the light there, straight ahead on the road, not at its head 17.5 m beyond."""
    checked = 0
    for seed in range(40):
        labels = make_labels(seed, "traffic_light")
        if labels.decision.cause is not Cause.TRAFFIC_LIGHT:
            continue
        scenario = make_scenario(seed, "traffic_light")
        ego = Simulation(scenario).run(scenario.steps).ego[scenario.sample_step]
        ego_s, _ = scenario.road.project(ego.x, ego.y)
        (light,) = scenario.lights
        x, y, z = labels.decision.cause_object_position
        # The road is straight: the line is stop_line_s - s ahead, at the car's offset.
        assert x == pytest.approx(light.stop_line_s - ego_s, abs=0.05), seed
        assert abs(y) < 0.05 and z == 0.0, seed
        checked += 1
    assert checked >= 10
