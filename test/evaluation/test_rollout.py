"""The closed loop in one process: the pipeline's steps drive the closed-loop world, and the
states the model visits come back labelled by the expert (DAgger's data)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from alpamayo_ros.backends import create_backend
from alpamayo_ros.core.contract import HISTORY_POSES, TRAJECTORY_STEPS
from alpamayo_ros.core.control import TrackerGains, VehicleParams
from alpamayo_ros.core.kinematics import integrate_unicycle
from alpamayo_ros.core.meta_actions import label_meta_action
from alpamayo_ros.core.stand_off import (
    PASSING_CLEARANCE_M,
    STAND_OFF_CLEARANCE_M,
    STAND_OFF_MAX_DECELERATION,
    STOP_LINE_CLEARANCE_M,
)
from alpamayo_ros.core.trajectory_checks import Limits
from alpamayo_ros.core.watchdog import WatchdogConfig
from alpamayo_ros.evaluation.rollout import (
    DRIVE_THREADS,
    RolloutSettings,
    roll_out,
    visited_states,
)
from alpamayo_ros.graph import default_parameter_file
from alpamayo_ros.model.weights import PACKAGED_WEIGHTS
from alpamayo_ros.pipeline.inference import InferenceStep
from alpamayo_ros.pipeline.planning import NOISE_SCALE, STAND_OFF_MEMORY_S
from alpamayo_ros.world.dataset import foresees_light_change
from alpamayo_ros.world.scenarios import make_scenario
from alpamayo_ros.world.vehicle import ActuatorLag

SEED = 3000003  # a cyclist to pass (held out)
TIMING = {"plan_latency_p50_s", "plan_latency_p90_s"}


def figures(result: object) -> dict[str, object]:
    metrics = dataclasses.asdict(result.metrics)  # type: ignore[attr-defined]
    return {name: value for name, value in metrics.items() if name not in TIMING}


def test_a_drive_is_the_same_twice_and_scored() -> None:
    backend = create_backend("constant_velocity")
    settings = RolloutSettings(duration_s=5.0)
    first = roll_out(backend, SEED, settings=settings)
    second = roll_out(backend, SEED, settings=settings)
    assert figures(first) == figures(second)
    # 1.5 s of the expert, then 3.5 s of plans at 10 Hz, tracked at 50 Hz.
    assert first.plans == 35
    assert first.commands_by_mode["tracking"] >= 5 * 35
    assert first.metrics.progress_m > 5.0
    assert first.samples == []  # none asked for


def test_visited_states_are_what_the_model_saw_labelled_by_the_expert() -> None:
    backend = create_backend("embedded_vla", cpu_threads=DRIVE_THREADS)
    result = roll_out(backend, SEED, settings=RolloutSettings(duration_s=4.0, label_every=5))
    assert result.plans == 25 and len(result.samples) == 5
    width, height = backend.image_size or (0, 0)
    for sample in result.samples:
        assert sample.images.shape == (4, 4, height, width, 3)
        assert sample.images.dtype == np.uint8 and sample.images.std() > 10.0
        assert sample.ego_xyz.shape == (HISTORY_POSES, 3)
        assert sample.ego_xyz[-1] == pytest.approx(np.zeros(3))  # the t0 frame
        assert sample.future_xyz.shape == (TRAJECTORY_STEPS, 3)
        assert sample.speed > 1.0
        assert sample.future_xyz[0, 0] == pytest.approx(sample.speed * 0.1, rel=0.2)
        future = np.c_[sample.future_acceleration, sample.future_curvature]
        assert np.isfinite(future).all()
        assert sample.decision.text
    # The labels are the expert's plans from states of one drive, so they differ.
    assert len({sample.future_xyz[-1, 0].round(2) for sample in result.samples}) > 1
    for sample in result.samples:
        rollout = integrate_unicycle(
            sample.future_acceleration, sample.future_curvature, sample.speed
        )
        assert sample.meta_action == label_meta_action(rollout)


def test_no_state_is_labelled_from_the_failure_of_a_drive_on() -> None:
    """A drive that fails (seed 3000363 with the packaged weights and defaults: a
    pedestrian crossing, hit at 4.7 s): every plan before it is labelled, none after."""
    backend = create_backend("embedded_vla", cpu_threads=DRIVE_THREADS)
    settings = RolloutSettings(duration_s=5.3, label_every=1)
    result = roll_out(backend, 3000363, settings=settings)
    failed_at = result.metrics.failed_at_s
    assert failed_at is not None and result.metrics.at_fault_collision
    assert len(result.reasoning) == result.plans  # every plan selected, each with its t0
    before = sum(t0_s < failed_at for t0_s, _ in result.reasoning)
    assert 0 < before < result.plans
    assert len(result.samples) == before


def test_no_state_is_labelled_whose_label_knows_a_light_change() -> None:
    """Seed 3000102's light turns green at 17.3 s, past its scenario's span (13.2 s). The
    expert's plan from a state after 10.9 s already drives off on that green, which no
    frame shows: a model taught so goes at a red it has waited at."""
    result = roll_out(
        create_backend("embedded_vla", cpu_threads=DRIVE_THREADS),
        3000102,
        settings=RolloutSettings(duration_s=12.0, label_every=1),
    )
    assert result.metrics.failed_at_s is None and len(result.reasoning) == result.plans
    scenario = make_scenario(3000102)
    foreseeing = [t0_s for t0_s, _ in result.reasoning if foresees_light_change(scenario, t0_s)]
    assert foreseeing and min(foreseeing) == pytest.approx(11.0)
    assert len(result.samples) == result.plans - len(foreseeing)


def test_visited_states_come_from_worker_processes_in_seed_order() -> None:
    progress: list[str] = []
    samples = visited_states(
        PACKAGED_WEIGHTS, range(SEED, SEED + 2), 20, workers=2, progress=progress.append
    )
    assert samples and {sample.seed for sample in samples} == {SEED, SEED + 1}
    assert [sample.seed for sample in samples] == sorted(sample.seed for sample in samples)
    assert progress[-1].startswith("drove 2/2 scenarios closed loop")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="label_every"):
        RolloutSettings(label_every=-1)
    with pytest.raises(ValueError, match="bad rollout settings"):
        RolloutSettings(control_rate_hz=0.0)
    with pytest.raises(ValueError, match=r"does not divide the world's 0\.1 s step"):
        RolloutSettings(control_rate_hz=30.0)


def test_the_defaults_are_the_packaged_parameters() -> None:
    """In one process the loop has no parameter file: its defaults must be the graph's."""
    document = yaml.safe_load(default_parameter_file().read_text())
    simulator = document["simulator"]["ros__parameters"]
    planner = document["diffusion_planner"]["ros__parameters"]
    bridge = document["control_bridge"]["ros__parameters"]
    inference = document["vla_inference"]["ros__parameters"]
    settings = RolloutSettings()
    assert (settings.width, settings.height) == (simulator["width"], simulator["height"])
    assert settings.control_rate_hz == simulator["control_rate_hz"] == bridge["rate_hz"]
    assert simulator["rate_hz"] == inference["rate_hz"] == 10.0  # the world's own step
    assert (settings.num_samples, settings.planner_seed) == (
        planner["num_samples"],
        planner["seed"],
    )
    assert ActuatorLag() == ActuatorLag(
        simulator["steering_lag_s"], simulator["acceleration_lag_s"]
    )
    assert (
        planner["stand_off_clearance_m"],
        planner["stand_off_max_deceleration"],
        planner["noise_scale"],
        planner["stand_off_passing_clearance_m"],
        planner["stand_off_stop_line_clearance_m"],
        planner["stand_off_memory_s"],
    ) == (
        STAND_OFF_CLEARANCE_M,
        STAND_OFF_MAX_DECELERATION,
        NOISE_SCALE,
        PASSING_CLEARANCE_M,
        STOP_LINE_CLEARANCE_M,
        STAND_OFF_MEMORY_S,
    )
    assert Limits() == Limits(
        max_abs_acceleration=planner["max_abs_acceleration"],
        max_abs_curvature=planner["max_abs_curvature"],
        max_lateral_acceleration=planner["max_lateral_acceleration"],
        max_abs_jerk=planner["max_abs_jerk"],
    )
    watchdog = WatchdogConfig()
    for name in (
        "trajectory_timeout_s",
        "odometry_timeout_s",
        "safe_stop_deceleration",
        "safe_stop_jerk",
        "odometry_loss_s",
        "emergency_deceleration",
    ):
        assert getattr(watchdog, name) == bridge[name], name
    vehicle = VehicleParams()
    assert (vehicle.wheelbase, vehicle.max_steering_angle) == (
        bridge["wheelbase"],
        bridge["max_steering_angle"],
    )
    assert TrackerGains().lookahead_time == bridge["lookahead_time"]
    step = InferenceStep(create_backend("constant_velocity"), ("front",))
    assert step.max_staleness_ns == inference["max_frame_staleness_s"] * 1e9
    assert step.max_frame_pixels == inference["max_frame_pixels"]
