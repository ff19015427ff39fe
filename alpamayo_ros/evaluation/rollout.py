"""The closed loop in one process: the pipeline's own steps drive the closed-loop world.

The graph's closed loop (`simulate`: the simulator node and the real node processes over
DDS, in lock-step) is the reference. This is the same loop without ROS, in the order
lock-step gives it: the car moves one control period under the newest command; the
odometry goes to the inference and control steps and the control step answers it; at a
camera tick the frames are rendered and added, the inference step decides, the planning
step plans from the same t0 and noise as the planner node, and the control step tracks
the plan at once (lock-step holds the clock until it does). Nothing is serialised, so a
figure can differ from the graph's where a message rounds a field to float32.

It is what training on the model's own states needs (DAgger): every visited state, as
the model saw it, labelled by the expert planning from there
(`ClosedLoopWorld.expert_trace`), becomes a training sample. It also checks a weights file
closed loop on many seeds in a fraction of the graph's time.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from alpamayo_ros.backends import create_backend
from alpamayo_ros.core.contract import CAMERA_ORDER, NS_PER_S
from alpamayo_ros.core.control import TrackedTrajectory
from alpamayo_ros.core.kinematics import Rollout
from alpamayo_ros.core.meta_actions import label_meta_action
from alpamayo_ros.core.planar import yaw_to_quaternion
from alpamayo_ros.evaluation.closed_loop import ClosedLoopMetrics, score_world
from alpamayo_ros.perception.detectors import Detectors
from alpamayo_ros.pipeline.backend import Backend
from alpamayo_ros.pipeline.control import ControlStep
from alpamayo_ros.pipeline.inference import (
    Inference,
    InferenceStep,
    InputsUnavailable,
    planner_wait_ms,
)
from alpamayo_ros.pipeline.lockstep import LOCKSTEP_START_NS
from alpamayo_ros.pipeline.planning import PlanningStep
from alpamayo_ros.world.closed_loop import WORLD_STEP_NS, ClosedLoopWorld, Command, EgoRecord
from alpamayo_ros.world.dataset import Sample, foresees_light_change, road_pose
from alpamayo_ros.world.renderer import Renderer, default_rig
from alpamayo_ros.world.simulation import causal_decision, future_rollout, step_grid_problem


@dataclass(frozen=True)
class RolloutSettings:
    """The loop's rates and sizes: the packaged parameters' (config/alpamayo.yaml) for the
    simulator, the planner and the control bridge, as a test holds them."""

    width: int = 256  # rendered camera size, resized for the backend as the VLA node does
    height: int = 128
    control_rate_hz: float = 50.0
    num_samples: int = 6
    planner_seed: int = 0
    duration_s: float | None = None  # None: the scenario's own span
    # Every n-th plan after the handover, the state the model saw becomes a labelled
    # sample (0: none are kept), up to the drive's first failure (see RolloutResult).
    label_every: int = 0

    def __post_init__(self) -> None:
        if not (self.control_rate_hz > 0.0 and self.width > 1 and self.height > 1):
            raise ValueError(f"bad rollout settings {self}")
        # The cameras tick with the world, every 0.1 s.
        problem = step_grid_problem(self.control_rate_hz, NS_PER_S / WORLD_STEP_NS)
        if problem:
            raise ValueError(problem)
        if self.label_every < 0:
            raise ValueError(f"label_every must be >= 0, got {self.label_every}")


@dataclass
class RolloutResult:
    seed: int
    scenario_type: str
    metrics: ClosedLoopMetrics
    simulated_s: float  # the drive's span, the expert's first seconds included
    plans: int  # plans made after the handover (selected or not)
    commands_by_mode: dict[str, int]  # the control step's commands per watchdog state
    # (s since the start, watchdog mode) at every change of the commands' mode, as the
    # simulator node records them
    modes: list[tuple[float, str]]
    record: EgoRecord  # the drive, every control step
    # States labelled by the expert, those before the drive failed (an at-fault collision
    # or leaving the road): after it the car is where no drive worth learning goes, and
    # the expert's plan from a crash teaches nothing a driver needs.
    samples: list[Sample] = field(default_factory=list)
    # (s since the start at the plan's t0, its reasoning text) of every plan made
    reasoning: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class _Tally:
    """What a drive counts as it goes."""

    plans: int = 0
    commands_by_mode: dict[str, int] = field(default_factory=dict)
    modes: list[tuple[float, str]] = field(default_factory=list)
    labelled: list[tuple[float, Sample]] = field(default_factory=list)  # (t0 in s, state)
    # (s since the start at the plan's t0, its reasoning text, the selected trajectory)
    selected_plans: list[tuple[float, str, Rollout]] = field(default_factory=list)
    plan_latency_s: list[float] = field(default_factory=list)


# What a camera tick gives the control step to track: (the plan, its t0), or None.
PlanAtTick = Callable[[int], tuple[TrackedTrajectory, int] | None]


def roll_out(
    backend: Backend | None,
    seed: int,
    scenario_type: str | None = None,
    settings: RolloutSettings = RolloutSettings(),
    renderer: Renderer | None = None,
) -> RolloutResult:
    """Drive the scenario of `seed` with `backend` through the pipeline, and score it;
    with None the expert plans from the closed-loop state (the ceiling), as the simulator
    node's `planner: expert` does."""
    world = ClosedLoopWorld(seed, scenario_type, renderer, duration_s=settings.duration_s)
    tally = _Tally()
    if backend is None:
        _drive(
            world,
            settings,
            tally,
            lambda *_: None,
            lambda stamp_ns: _expert_plan(world, tally, stamp_ns),
        )
    else:
        model = _ModelPlanner(backend, world, settings, tally, seed)
        _drive(world, settings, tally, model.add_odometry, model.plan)
    return _scored(world, tally)


def _drive(
    world: ClosedLoopWorld,
    settings: RolloutSettings,
    tally: _Tally,
    add_odometry: Callable[[int, npt.NDArray[np.float64], npt.NDArray[np.float64]], None],
    plan_at_tick: PlanAtTick,
) -> None:
    """The loop: each control period the odometry goes to the planner's side and the
    control step answers it; at each camera tick the planner's plan, if any, is tracked at
    once; then the car moves under the newest command."""
    control = ControlStep(1.0 / settings.control_rate_hz)
    period_ns = round(NS_PER_S / settings.control_rate_hz)
    command: Command | None = None
    next_tick_ns = 0
    while not world.finished:
        stamp_ns = LOCKSTEP_START_NS + world.now_ns
        ego = world.ego
        position = np.array([ego.x, ego.y, 0.0])
        quaternion = yaw_to_quaternion(ego.yaw)
        add_odometry(stamp_ns, position, quaternion)
        control.add_odometry(stamp_ns, position, quaternion, ego.v)
        if control.due(stamp_ns):
            command = _issued(control, stamp_ns, tally) or command
        if world.now_ns >= next_tick_ns:
            next_tick_ns += WORLD_STEP_NS
            planned = plan_at_tick(stamp_ns)
            if planned is not None:
                plan, t0_ns = planned
                control.set_plan(plan, t0_ns, tally.plans)
                command = _issued(control, stamp_ns, tally) or command
        world.step(min(period_ns, world.duration_ns - world.now_ns), command)


def _expert_plan(
    world: ClosedLoopWorld, tally: _Tally, stamp_ns: int
) -> tuple[TrackedTrajectory, int] | None:
    """The ceiling: after the handover, the expert's plan from where the car is."""
    if world.expert_driving:
        return None
    tally.plans += 1
    return TrackedTrajectory.from_rollout(world.expert_plan()), stamp_ns


class _ModelPlanner:
    """The VLA node's and the planner node's steps: frames rendered at each camera tick,
    decided, planned from the same t0 and noise as the planner node; after the handover
    every plan is counted and every `label_every`-th state labelled."""

    def __init__(
        self,
        backend: Backend,
        world: ClosedLoopWorld,
        settings: RolloutSettings,
        tally: _Tally,
        seed: int,
    ) -> None:
        # As the VLA node, with the packaged defaults: the lane, the light ahead and the
        # clear road in the rig's front cameras.
        self.inference = InferenceStep(
            backend, CAMERA_ORDER, detectors=Detectors.for_rig(default_rig())
        )
        self.planning = PlanningStep(backend, settings.num_samples, seed=settings.planner_seed)
        self.world, self.settings, self.tally, self.seed = world, settings, tally, seed

    def add_odometry(
        self, stamp_ns: int, position: npt.NDArray[np.float64], quaternion: npt.NDArray[np.float64]
    ) -> None:
        self.inference.add_odometry(stamp_ns, position, quaternion)

    def plan(self, stamp_ns: int) -> tuple[TrackedTrajectory, int] | None:
        world, settings, tally = self.world, self.settings, self.tally
        images = world.render(CAMERA_ORDER, settings.width, settings.height)
        for camera, image in zip(CAMERA_ORDER, images, strict=True):
            self.inference.add_frame(camera, stamp_ns, image)
        decided = _decide(self.inference)
        if decided is None or world.expert_driving:
            return None
        output = decided.output
        plan = self.planning.plan(
            output.planner_input,
            decided.t0_ns,
            output.decision,
            decided.lane,
            decided.light,
            decided.free_space,
            # As the simulator node tells the planner node (a driver's cruise setting).
            set_speed=world.scenario.set_speed,
            ego_history=decided.history,
        )
        # The planner waits for the decision and what is found beside it in the same step.
        waited_ms = planner_wait_ms(decided.stage_ms)
        tally.plan_latency_s.append((waited_ms + plan.planning_ms) / 1e3)
        tally.plans += 1
        t0_s = (decided.t0_ns - LOCKSTEP_START_NS) / NS_PER_S
        labelled = settings.label_every and tally.plans % settings.label_every == 0
        if labelled and not foresees_light_change(world.scenario, t0_s):
            tally.labelled.append((t0_s, _labelled(world, decided, self.seed)))
        selected = plan.selected
        if selected is None:
            return None
        text = decided.explained().output.decision.text
        tally.selected_plans.append((t0_s, text, selected))
        return TrackedTrajectory.from_rollout(selected), decided.t0_ns


def _scored(world: ClosedLoopWorld, tally: _Tally) -> RolloutResult:
    plans = tally.selected_plans
    metrics = score_world(world, tally.plan_latency_s, [(text, plan) for _, text, plan in plans])
    failed_at = math.inf if metrics.failed_at_s is None else metrics.failed_at_s
    record = world.record()
    return RolloutResult(
        world.scenario.seed,
        world.scenario.scenario_type,
        metrics,
        world.now_ns / NS_PER_S,
        tally.plans,
        tally.commands_by_mode,
        tally.modes,
        record,
        [sample for t0_s, sample in tally.labelled if t0_s < failed_at],
        [(t0_s, text) for t0_s, text, _ in plans],
    )


def _decide(inference: InferenceStep) -> Inference | None:
    """The inference at the newest camera set, or None while the history is too short."""
    try:
        return inference.run()
    except InputsUnavailable:
        return None


def _issued(control: ControlStep, stamp_ns: int, tally: _Tally) -> Command | None:
    """The control step's command now, as the car takes it (None: not finite; the car
    keeps the previous one, as the simulator node does)."""
    output = control.command(stamp_ns)
    mode = output.state.value
    tally.commands_by_mode[mode] = tally.commands_by_mode.get(mode, 0) + 1
    if not tally.modes or tally.modes[-1][1] != mode:
        tally.modes.append(((stamp_ns - LOCKSTEP_START_NS) / NS_PER_S, mode))
    steering, acceleration = output.command.steering_angle, output.command.acceleration
    if not (math.isfinite(steering) and math.isfinite(acceleration)):
        return None
    return Command(steering, acceleration)


def _labelled(world: ClosedLoopWorld, decided: Inference, seed: int) -> Sample:
    """The state the model decided from, labelled by the expert planning from it."""
    trace = world.expert_trace()
    future = future_rollout(trace, 0)
    meta_action = label_meta_action(future)
    variant = int(np.random.default_rng((seed, decided.t0_ns, 0x7E47)).integers(1 << 16))
    inputs = decided.inputs
    return Sample(
        scenario_type=world.scenario.scenario_type,
        seed=seed,
        images=inputs.images,
        ego_xyz=inputs.ego_xyz,
        ego_rotations=inputs.ego_rotations,
        speed=float(world.ego.v),
        future_acceleration=future.acceleration.copy(),
        future_curvature=future.curvature.copy(),
        future_xyz=future.xyz(),
        decision=causal_decision(trace, 0, meta_action, variant),
        meta_action=meta_action,
        road_pose=road_pose(world.scenario.road, world.ego),
    )


# The model's math threads in every drive here, as the packaged VLA node runs it
# (config/alpamayo.yaml), whether the drives share one process or spread over worker
# processes: the thread count changes the math's rounding, and with it the drive (seed
# 3000542 hit a cone on one thread and passed on two).
DRIVE_THREADS = 1


@lru_cache(maxsize=1)
def _process_backend(weights_file: str) -> tuple[Backend, Renderer]:
    """One embedded VLA and renderer per worker process (the processes share the cores)."""
    return create_backend("embedded_vla", weights_file, DRIVE_THREADS), Renderer()


def _roll_out_in_process(arguments: tuple[str, int, RolloutSettings]) -> RolloutResult:
    weights_file, seed, settings = arguments
    backend, renderer = _process_backend(weights_file)
    return roll_out(backend, seed, None, settings, renderer)


def roll_out_embedded(
    weights_file: Path,
    seeds: Sequence[int],
    settings: RolloutSettings = RolloutSettings(),
    workers: int = 1,
    progress: Callable[[str], None] = print,
) -> list[RolloutResult]:
    """The embedded VLA with `weights_file` driving each seed, in `workers` processes;
    the results in seed order."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    jobs = [(str(weights_file), seed, settings) for seed in seeds]
    results: list[RolloutResult] = []
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for result in pool.imap(_roll_out_in_process, jobs):
            results.append(result)
            if len(results) % 10 == 0 or len(results) == len(jobs):
                passed = sum(r.metrics.passed for r in results)
                progress(
                    f"drove {len(results)}/{len(jobs)} scenarios closed loop, {passed} passed "
                    f"({time.perf_counter() - started:.0f} s)"
                )
    return results


def visited_states(
    weights_file: Path,
    seeds: range,
    label_every: int,
    workers: int,
    progress: Callable[[str], None],
) -> list[Sample]:
    """DAgger's data: the states the embedded VLA visits driving `seeds` closed loop,
    every `label_every`-th plan, each labelled by the expert planning from it."""
    settings = RolloutSettings(label_every=label_every)
    results = roll_out_embedded(weights_file, seeds, settings, workers, progress)
    return [sample for result in results for sample in result.samples]
