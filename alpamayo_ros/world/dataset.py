"""Training/evaluation samples of the synthetic world, and a live simulation for a driver.

`make_sample(seed)` builds the scenario of the seed, simulates the expert up to t0 + 6.4 s
and returns the AR1 contract tensors at t0: four cameras x four frames (t0-0.3 .. t0)
rendered at image_size * render_scale and down-sampled with cv2.INTER_AREA (as the ROS node
resizes camera frames), 16 history poses at 10 Hz in the ego frame at t0, the expert's 64
future controls and their unicycle rollout, the meta-action labelled from that rollout and
the hindsight Chain-of-Causation decision (see simulation).

Speed (the 2-core development CPU, default 128x64 input rendered at 256x128, measured with
time.perf_counter): about 15 ms per sample in one process (simulation ~3 ms, 16 renders
~10 ms, down-sampling and labels the rest); two processes make 1000 samples in 7.5 s, so
20k samples take about 2.5 minutes. `python -m alpamayo_ros.world.dataset --benchmark`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import (
    FRAMES_PER_CAMERA,
    HISTORY_POSES,
    TRAJECTORY_STEPS,
)
from alpamayo_ros.core.kinematics import Rollout, VehicleState
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal, label_meta_action
from alpamayo_ros.core.model_io import CausalDecision
from alpamayo_ros.core.planar import Pose2D, wrap_angle
from alpamayo_ros.world.renderer import Renderer
from alpamayo_ros.world.road import Road
from alpamayo_ros.world.scenarios import MIN_SAMPLE_STEP, Scenario, make_scenario
from alpamayo_ros.world.simulation import (
    DT_S,
    Drift,
    Simulation,
    Trace,
    causal_decision,
    ego_history,
    future_rollout,
)
from alpamayo_ros.world.state import WorldState

Image = npt.NDArray[np.uint8]


# Below this speed (m/s) a car does not drift far enough to teach a recovery.
MIN_DRIFT_SPEED = 2.0
# A drift's speed error (m/s, either sign) and the acceleration added to build it (m/s^2,
# within what a car does).
DRIFT_SPEED_ERROR = (1.0, 3.0)
DRIFT_ACCELERATION = (-3.0, 2.0)


class DatasetError(ValueError):
    """Sample parameters that cannot be rendered."""


@dataclass(frozen=True)
class Sample:
    scenario_type: str
    seed: int
    images: npt.NDArray[np.uint8]  # [4 cameras (contract order), 4 frames (t0-0.3..t0), H, W, 3]
    ego_xyz: npt.NDArray[np.float64]  # [16, 3] history t0-1.5..t0 in the ego frame at t0
    ego_rotations: npt.NDArray[np.float64]  # [16, 3, 3]
    speed: float  # ego speed at t0
    future_acceleration: npt.NDArray[np.float64]  # [64] expert controls for t0..t0+6.4
    future_curvature: npt.NDArray[np.float64]  # [64]
    future_xyz: npt.NDArray[np.float64]  # [64, 3] = integrate_unicycle of the controls
    decision: CausalDecision
    meta_action: tuple[Longitudinal, Lateral]  # label_meta_action(future rollout)
    road_pose: npt.NDArray[np.float64]  # [2] road_pose(road, ego at t0): privileged, training only


@lru_cache(maxsize=1)
def _renderer() -> Renderer:
    return Renderer()


@dataclass(frozen=True)
class Labels:
    """The non-image part of a sample's supervision (cheap: no rendering)."""

    scenario_type: str
    variant: str
    seed: int
    speed: float
    future: Rollout
    decision: CausalDecision
    meta_action: tuple[Longitudinal, Lateral]


def make_labels(seed: int, scenario_type: str | None = None) -> Labels:
    """Decision and meta-action of a seed's sample without rendering it."""
    return _simulate(seed, scenario_type)[2]


@dataclass(frozen=True)
class DriftRates:
    """How often a sample's car errs before t0 (`drift_for`): `probability` of the
    samples drift off their path; `speed_probability` of those also build a speed error."""

    probability: float = 0.0
    speed_probability: float = 0.0

    def __post_init__(self) -> None:
        for name in ("probability", "speed_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise DatasetError(f"drift {name} must be in [0, 1], got {getattr(self, name)}")


NO_DRIFT = DriftRates()


def drift_for(seed: int, scenario: Scenario, rates: DriftRates) -> Drift | None:
    """At `rates` (drawn from the seed, so a sample stays a pure function of its seed and
    settings), a steering error over the 0.8-2 s before t0 that takes the car 0.3-1.2 m
    off its path (a lateral offset of about curvature * v^2 * t^2 / 2 at the expert's
    speed there), and with it, at `rates.speed_probability`, a speed error of 1-3 m/s,
    slower or faster than the expert, built up over the same time (a policy that keeps
    braking, or does not brake, gets there); none for a car too slow to drift."""
    rng = np.random.default_rng((seed, 0xD21F7))
    if not rng.random() < rates.probability:
        return None
    steps = int(rng.integers(8, 21))
    offset = rng.uniform(0.3, 1.2) * rng.choice((-1.0, 1.0))
    last = scenario.sample_step
    first = max(1, last - steps)
    speed = Simulation(scenario).run(first).ego[first].v
    if speed < MIN_DRIFT_SPEED:
        return None
    duration_s = (last - first) * DT_S
    curvature = 2.0 * offset / (speed * duration_s) ** 2
    speed_error = rng.uniform(*DRIFT_SPEED_ERROR) * rng.choice((-1.0, 1.0))
    acceleration = speed_error / duration_s if rng.random() < rates.speed_probability else 0.0
    return Drift(
        first,
        last,
        float(np.clip(curvature, -0.05, 0.05)),
        float(np.clip(acceleration, *DRIFT_ACCELERATION)),
    )


def t0_anywhere(seed: int, scenario: Scenario, probability: float) -> Scenario:
    """At `probability` (drawn from the seed, so a sample stays a pure function of its seed
    and settings), the scenario with its t0 moved anywhere in the span a closed-loop drive
    of it covers: from the first instant the expert's history allows (MIN_SAMPLE_STEP) to
    the end of the scenario's own span (its sample time + 6.4 s). Scenarios place t0 near
    their event (a cut-in, a light changing); a drive plans at every instant, also long
    before the event and after it (past the cyclist, stopped at the light, behind the car
    that cut in), and a model that never saw those states guesses there. An early t0's
    future may hold an event its frames do not show yet (a lead that has not braked); a
    drive meets that too. A light's change is different: scenarios time it past their own
    horizon on purpose, so a move that would bring a change into the future that the
    original one lacks (a red turning green while every frame shows red) is not made."""
    if not 0.0 <= probability <= 1.0:
        raise DatasetError(f"the probability of t0 anywhere must be in [0, 1], got {probability}")
    rng = np.random.default_rng((seed, 0x7005))
    if not rng.random() < probability:
        return scenario
    moved = replace(scenario, sample_step=int(rng.integers(MIN_SAMPLE_STEP, scenario.steps + 1)))
    return moved if _light_changes(moved) <= _light_changes(scenario) else scenario


def foresees_light_change(scenario: Scenario, t0_s: float) -> bool:
    """Whether the expert's 6.4 s from `t0_s` hold a light's colour change. A label made
    there knows the change that no frame shows yet: stopped at a red, the expert's plan
    already drives off on the green to come, and a model taught so goes at a red it has
    waited at for a while. Scenarios time the change past their own horizon (and
    `t0_anywhere` keeps the open-loop samples so), but a closed-loop drive is labelled up
    to its end, and its expert looks 6.4 s further."""
    return bool(_changes_between(scenario, t0_s, t0_s + TRAJECTORY_STEPS * DT_S))


def _light_changes(scenario: Scenario) -> set[tuple[str, float]]:
    """The lights' colour changes after the sample's t0 up to the scenario's end (the
    original t0 + 6.4 s, so a moved t0's window runs to the same end)."""
    return _changes_between(scenario, scenario.sample_step * DT_S, scenario.steps * DT_S)


def _changes_between(scenario: Scenario, start_s: float, end_s: float) -> set[tuple[str, float]]:
    """(light id, time) of every colour change in (start_s, end_s]."""
    return {
        (light.light_id, phase.start_time)
        for light in scenario.lights
        for phase in light.phases[1:]
        if start_s < phase.start_time <= end_s
    }


def _simulate(
    seed: int, scenario_type: str | None, drift: DriftRates = NO_DRIFT, any_time: float = 0.0
) -> tuple[Scenario, Trace, Labels]:
    scenario = t0_anywhere(seed, make_scenario(seed, scenario_type), any_time)
    trace = Simulation(scenario, drift_for(seed, scenario, drift)).run(scenario.steps)
    k0 = scenario.sample_step
    rollout = future_rollout(trace, k0)
    meta_action = label_meta_action(rollout)
    variant = int(np.random.default_rng((seed, 0x7E47)).integers(1 << 16))
    labels = Labels(
        scenario_type=scenario.scenario_type,
        variant=scenario.variant,
        seed=seed,
        speed=float(trace.ego[k0].v),
        future=rollout,
        decision=causal_decision(trace, k0, meta_action, variant),
        meta_action=meta_action,
    )
    return scenario, trace, labels


def road_pose(road: Road, ego: VehicleState) -> npt.NDArray[np.float64]:
    """Where the car is in its lane: the lateral offset from the centre of the nearest lane
    (m, left positive; off the road, from the outermost lane's) and the heading relative
    to the road there (rad). The world knows it; the model must see it in its cameras to
    steer back after an error. Training can ask for it (TrainingConfig.road_pose_weight);
    inference never gets it."""
    s, d = road.project(ego.x, ego.y)
    lane_centre = road.lane_center(road.nearest_lane(d))
    return np.array([d - lane_centre, float(wrap_angle(ego.yaw - road.pose(s)[2]))])


def make_sample(
    seed: int,
    scenario_type: str | None = None,
    image_size: tuple[int, int] = (128, 64),
    render_scale: int = 2,
    drift: DriftRates = NO_DRIFT,
    any_time: float = 0.0,
) -> Sample:
    """The sample of a seed (its scenario type drawn from the seed when not given); at the
    `drift` rates the car errs before t0 and the expert's recovery is the label
    (`drift_for`); at the `any_time` probability its t0 is anywhere in the drive
    (`t0_anywhere`)."""
    width, height = image_size
    if width < 2 or height < 2 or render_scale < 1:
        raise DatasetError(f"bad image_size {image_size} or render_scale {render_scale}")
    scenario, trace, labels = _simulate(seed, scenario_type, drift, any_time)
    k0 = scenario.sample_step
    xyz, rotations = ego_history(trace, k0, HISTORY_POSES)
    return Sample(
        scenario_type=scenario.scenario_type,
        seed=seed,
        images=render_frames(trace, k0, width, height, render_scale),
        ego_xyz=xyz,
        ego_rotations=rotations,
        speed=labels.speed,
        future_acceleration=labels.future.acceleration.copy(),
        future_curvature=labels.future.curvature.copy(),
        future_xyz=labels.future.xyz(),
        decision=labels.decision,
        meta_action=labels.meta_action,
        road_pose=road_pose(scenario.road, trace.ego[k0]),
    )


def render_frames(trace: Trace, step: int, width: int, height: int, render_scale: int = 2) -> Image:
    """Images [cameras, frames, height, width, 3] of the frames ending at `step`."""
    renderer = _renderer()
    frames = []
    for k in range(step - FRAMES_PER_CAMERA + 1, step + 1):
        ego = trace.ego[k]
        pose = Pose2D(ego.x, ego.y, ego.yaw)
        images = renderer.render_cameras(
            trace.states[k], pose, width * render_scale, height * render_scale
        )
        if render_scale != 1:
            images = np.stack(
                [
                    cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                    for image in images
                ]
            )
        frames.append(images)
    return np.ascontiguousarray(np.stack(frames, axis=1))


def generate(
    seeds: Iterable[int], scenario_types: Sequence[str] | None = None, **kw: object
) -> Iterator[Sample]:
    """Samples of the seeds; with scenario_types, seed i gets type i mod len(types)."""
    for index, seed in enumerate(seeds):
        scenario_type = scenario_types[index % len(scenario_types)] if scenario_types else None
        yield make_sample(seed, scenario_type, **kw)  # type: ignore[arg-type]


class WorldSimulation:
    """A scenario run live one 0.1 s step at a time, e.g. behind a camera driver.

    The ego is the expert. The simulation runs 6.4 s ahead of the present so that the
    decision explaining the next 6.4 s is known now; old steps are forgotten as it goes,
    so it can run indefinitely (past the scripted events the road continues straight).
    """

    def __init__(
        self, seed: int, scenario_type: str | None = None, renderer: Renderer | None = None
    ) -> None:
        self.scenario: Scenario = make_scenario(seed, scenario_type)
        self._simulation = Simulation(self.scenario)
        self._renderer = renderer if renderer is not None else _renderer()
        self._present = 0  # index of the present step in the trace
        self._simulation.run(TRAJECTORY_STEPS)

    @property
    def time(self) -> float:
        """Seconds since the scenario started."""
        return self.state.time

    @property
    def state(self) -> WorldState:
        return self._simulation.trace.states[self._present]

    def step(self) -> None:
        """Advance the present by 0.1 s."""
        self._present += 1
        if self._present > 2 * FRAMES_PER_CAMERA + HISTORY_POSES + 100:
            forget = self._present - HISTORY_POSES
            self._simulation.forget(forget)
            self._present -= forget
        self._simulation.run(self._present + TRAJECTORY_STEPS)

    def ego_pose(self, steps_ahead: int = 0) -> Pose2D:
        ego = self._simulation.trace.ego[self._present + steps_ahead]
        return Pose2D(ego.x, ego.y, ego.yaw)

    def ego_since_step(self, elapsed_s: float) -> tuple[VehicleState, float]:
        """The ego (state, yaw rate rad/s) `elapsed_s` into the present step, moved by that
        step's control with the one vehicle step, so odometry between frames lies on the
        path the world drives (at 0.1 s it is the next step)."""
        if not 0.0 <= elapsed_s <= DT_S:
            raise ValueError(f"elapsed_s must be in [0, {DT_S}], got {elapsed_s}")
        trace = self._simulation.trace
        ego, control = trace.ego[self._present], trace.controls[self._present]
        if elapsed_s > 0.0:
            ego = ego.advance(control.acceleration, control.curvature, elapsed_s)
        return ego, ego.v * control.curvature

    def render(
        self,
        cameras: tuple[str, ...],
        width: int,
        height: int,
        steps_ahead: int = 0,
    ) -> Image:
        """RGB uint8 [cameras, height, width, 3] at the present, or `steps_ahead` steps
        later: the world is scripted 6.4 s ahead, so a camera can render its next frame
        before that frame's time comes. The cameras share one scene build."""
        if not 0 <= steps_ahead <= TRAJECTORY_STEPS:
            raise ValueError(f"steps_ahead must be in [0, {TRAJECTORY_STEPS}], got {steps_ahead}")
        state = self._simulation.trace.states[self._present + steps_ahead]
        pose = self.ego_pose(steps_ahead)
        return self._renderer.render_cameras(state, pose, width, height, cameras)

    def future(self) -> Rollout:
        """The expert's next 6.4 s in the present ego frame."""
        return future_rollout(self._simulation.trace, self._present)

    def decision(self) -> CausalDecision:
        """The Chain-of-Causation decision explaining the next 6.4 s."""
        meta_action = label_meta_action(self.future())
        return causal_decision(self._simulation.trace, self._present, meta_action, 0)


def benchmark(samples: int = 100, render_repeats: int = 100) -> dict[str, float]:
    """Seconds per sample (simulation + 16 renders) and per four-camera 256x128 render."""
    make_sample(0)  # warm caches
    start = time.perf_counter()
    for seed in range(samples):
        make_sample(seed)
    per_sample = (time.perf_counter() - start) / samples
    renderer = _renderer()
    frames = []
    for seed in range(8):
        scenario = make_scenario(seed)
        trace = Simulation(scenario).run(scenario.sample_step + 1)
        ego = trace.ego[scenario.sample_step]
        frames.append((trace.states[scenario.sample_step], Pose2D(ego.x, ego.y, ego.yaw)))
    start = time.perf_counter()
    for i in range(render_repeats):
        state, pose = frames[i % len(frames)]
        renderer.render_cameras(state, pose, 256, 128)
    per_render = (time.perf_counter() - start) / render_repeats
    return {"sample_s": per_sample, "four_camera_render_s": per_render}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", action="store_true", help="time samples and renders")
    parser.add_argument("--samples", type=int, default=100)
    arguments = parser.parse_args()
    if arguments.benchmark:
        figures = benchmark(arguments.samples)
        print(f"sample: {figures['sample_s'] * 1e3:.1f} ms")
        print(f"4 cameras at 256x128: {figures['four_camera_render_s'] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
