"""Open-loop evaluation of a recorded drive: what the car really did next is the truth.

A recording (a bag, or videos or image folders with a poses file) is played in lock-step
in one process, on the camera driver's own schedule (pipeline.lockstep: odometry and camera
ticks merged, each camera set answered before time moves on), through the pipeline's
inference and planning steps, so every cycle sees exactly what the graph's lock-step replay
gives the VLA node and the planner. At each plan's t0 the logged ego path of the next 6.4 s,
in the ego frame at t0, is the ground truth, as driving_log_replayer_v2 scores a recorded
drive against its own future:

- displacement: minADE over the K candidates, ADE and FDE of the selected one, at 3 s and
  6.4 s (a cycle whose future the recording does not hold that far is left out of those);
- meta-actions: the model's against those labelled from the logged path by the same rules
  (core.meta_actions) as the training labels;
- reasoning-action consistency: the reasoning text against the selected trajectory;
- latency: the wall time of each stage of each cycle, as percentiles.

Each plan is made with the set speed the recording logged last at or before its t0 (the
planner's /planning/set_speed, which the graph's replays give the planner node too: the
camera driver republishes it as logged, `alpamayo-ros replay` plays it with the rest); a
recording without it is planned with none.

Nothing here imports ROS: the recording is read through a camera source (sensors/).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import NS_PER_S, TRAJECTORY_DT_S, TRAJECTORY_STEPS
from alpamayo_ros.core.kinematics import Rollout
from alpamayo_ros.core.meta_actions import LabelThresholds, label_meta_action
from alpamayo_ros.core.planar import Pose2D, quaternion_to_yaw, wrap_angle
from alpamayo_ros.evaluation.evaluate import PROGRESS_PERIOD_S
from alpamayo_ros.evaluation.metrics import score_plan
from alpamayo_ros.perception.detectors import Detectors
from alpamayo_ros.pipeline.backend import Backend
from alpamayo_ros.pipeline.inference import InferenceStep, InputsUnavailable, planner_wait_ms
from alpamayo_ros.pipeline.lockstep import LOCKSTEP_START_NS, LockStep
from alpamayo_ros.pipeline.planning import PlanningStep, known_set_speed
from alpamayo_ros.sensors.base import CameraSource, EgoPose
from alpamayo_ros.world.renderer import default_rig

STEP_NS = round(TRAJECTORY_DT_S * NS_PER_S)
# Latency percentiles reported per stage.
PERCENTILES = (50, 90, 99)
# The summary's figures (`summarize`) beside the latency per stage, in the order a table
# shows them; what a scenario file's conditions on a recording may name.
# The summary's figures with what they mean, in the order the command line, the report
# and scenario files' conditions know them.
SUMMARY_FIGURES: dict[str, str] = {
    "cycles": "plans scored",
    "scored_6_4s": "plans with 6.4 s of logged future",
    "min_ade_3s": "minADE 3 s (m)",
    "min_ade_6_4s": "minADE 6.4 s (m)",
    "ade_3s": "ADE 3 s, selected (m)",
    "ade_6_4s": "ADE 6.4 s, selected (m)",
    "fde_3s": "FDE 3 s, selected (m)",
    "fde_6_4s": "FDE 6.4 s, selected (m)",
    "planned_rate": "plans with a feasible candidate",
    "longitudinal_accuracy": "longitudinal meta-action accuracy",
    "lateral_accuracy": "lateral meta-action accuracy",
    "consistent_rate": "reasoning-action consistency",
    "plan_latency_p50_ms": "t0 to plan p50 (ms)",
    "plan_latency_p90_ms": "t0 to plan p90 (ms)",
    "speed": "replay speed (x real time)",
}


class RecordingError(ConfigurationError):
    """A recording that cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class ReplaySettings:
    """The replayed graph's rates and sizes (config/alpamayo.yaml's camera driver, VLA
    node and planner)."""

    rate_hz: float = 10.0  # camera ticks
    odometry_rate_hz: float = 50.0
    num_samples: int = 6
    planner_seed: int = 0

    def __post_init__(self) -> None:
        if not (self.rate_hz > 0.0 and self.odometry_rate_hz > 0.0 and self.num_samples > 0):
            raise ValueError(f"bad replay settings {self}")


@dataclass(frozen=True)
class CycleResult:
    """One plan scored against the logged future; a figure the recording cannot give
    (its future ends too soon) is None."""

    t0_s: float  # since the recording's start
    planned: bool  # some candidate passed the checks
    min_ade_3s: float | None
    min_ade_6_4s: float | None
    ade_3s: float | None  # of the selected candidate (the top-ranked when none passed)
    ade_6_4s: float | None
    fde_3s: float | None
    fde_6_4s: float | None
    meta_action: tuple[str, str]  # the model's (longitudinal, lateral)
    logged_meta_action: tuple[str, str] | None  # labelled from the logged path
    consistent: bool  # the reasoning text agrees with the selected trajectory
    reasoning: str
    stage_ms: dict[str, float]  # wall time per stage, planning included
    set_speed: float | None  # m/s, as the recording logged it at t0; None: not known
    gained_set_speed: bool  # the plan's speeds were raised towards it
    # For the report: the ego pose at t0 in the odometry frame (x, y, yaw), the candidates,
    # the selected and the logged paths in the ego frame at t0 ([K, 64, 2], [64, 2] and up
    # to [64, 2]).
    pose: tuple[float, float, float]
    candidates_xy: npt.NDArray[np.float64] = field(repr=False)
    selected_xy: npt.NDArray[np.float64] = field(repr=False)
    logged_xy: npt.NDArray[np.float64] = field(repr=False)

    @property
    def longitudinal_correct(self) -> bool | None:
        if self.logged_meta_action is None:
            return None
        return self.meta_action[0] == self.logged_meta_action[0]

    @property
    def lateral_correct(self) -> bool | None:
        if self.logged_meta_action is None:
            return None
        return self.meta_action[1] == self.logged_meta_action[1]

    def as_dict(self, with_paths: bool = False) -> dict[str, object]:
        """JSON-ready; the paths only when asked for."""
        row = asdict(self)
        for name in ("candidates_xy", "selected_xy", "logged_xy"):
            row.pop(name)
        row["longitudinal_correct"] = self.longitudinal_correct
        row["lateral_correct"] = self.lateral_correct
        if with_paths:
            row["selected_xy"] = np.round(self.selected_xy, 3).tolist()
            row["logged_xy"] = np.round(self.logged_xy, 3).tolist()
        return row


@dataclass(frozen=True)
class RecordingResult:
    backend: str
    cycles: list[CycleResult]
    logged_path: npt.NDArray[np.float64]  # [N, 3] x, y, yaw of the ego at 10 Hz (odom frame)
    recorded_s: float  # simulated time replayed
    wall_s: float

    @property
    def speed(self) -> float:
        """Recorded seconds per wall second."""
        return self.recorded_s / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, object]:
        return summarize(self.cycles, self.speed)


def evaluate_recording(
    backend: Backend,
    source: CameraSource,
    cameras: Sequence[str],
    settings: ReplaySettings = ReplaySettings(),
    progress: Callable[[str], None] | None = None,
    on_cycle: Callable[[CycleResult], None] | None = None,
) -> RecordingResult:
    """Replay `source` (which must know the ego pose) through `backend` in lock-step and
    score every plan against the logged future; `on_cycle` sees each as it is scored,
    `progress` gets a line every few seconds."""
    # The lane, the light ahead and the clear road in the rig's front cameras (those the
    # recording has), as the VLA node finds them with the packaged rig.
    inference = InferenceStep(
        backend, cameras, rate_hz=settings.rate_hz, detectors=Detectors.for_rig(default_rig())
    )
    planning = PlanningStep(backend, settings.num_samples, seed=settings.planner_seed)
    frame_period_ns = round(NS_PER_S / settings.rate_hz)
    # Answers come at once here: no warm-up hold, every camera set answered as it is done.
    lockstep = LockStep(
        LOCKSTEP_START_NS, frame_period_ns, round(NS_PER_S / settings.odometry_rate_hz), 1.0
    )
    cycles: list[CycleResult] = []
    logged: list[tuple[float, float, float]] = []
    last_odometry_ns: int | None = None
    unavailable = ""  # why the newest camera set could not be decided, if it could not

    def add_odometry(stamp_ns: int) -> None:
        nonlocal last_odometry_ns
        if last_odometry_ns is not None and stamp_ns <= last_odometry_ns:
            return
        pose = source.ego_pose(stamp_ns)
        if pose is not None:
            last_odometry_ns = stamp_ns
            inference.add_odometry(stamp_ns, pose.position, pose.orientation_xyzw)

    started = time.perf_counter()
    reported = started
    while not source.finished:
        step = lockstep.next_step(time.monotonic_ns())
        if step is None:  # not held for long: the answer below is given at once
            continue
        if step.odometry_due:
            add_odometry(step.stamp_ns)
        if not step.frames_due:
            continue
        pose = source.ego_pose(step.stamp_ns)
        if pose is not None:
            logged.append(_planar(pose))
        frames = source.frames(step.stamp_ns)
        if not frames:
            continue
        add_odometry(frames[0].stamp_ns)  # the pose at their capture first, as the driver
        for frame in frames:
            inference.add_frame(frame.camera, frame.stamp_ns, frame.image)
        lockstep.frames_sent(min(frame.stamp_ns for frame in frames), time.monotonic_ns())
        try:
            cycle = _cycle(inference, planning, source)
        except InputsUnavailable as error:  # the first 1.5 s (the ego history), or worse
            cycle, unavailable = None, str(error)
        lockstep.answer(step.stamp_ns)
        if cycle is not None:
            cycles.append(cycle)
            if on_cycle is not None:
                on_cycle(cycle)
        if progress is not None and time.perf_counter() - reported > PROGRESS_PERIOD_S:
            reported = time.perf_counter()
            progress(
                f"{backend.name}: {(step.stamp_ns - LOCKSTEP_START_NS) / NS_PER_S:.1f} s of "
                f"the recording, {len(cycles)} plans scored"
            )
    wall_s = time.perf_counter() - started
    if not logged:
        raise RecordingError(
            "the recording has no ego pose: give it an odometry topic or a poses file "
            "(the logged path is the ground truth)"
        )
    if not cycles:
        skipped = getattr(source, "skipped_frames", 0)
        raise RecordingError(
            "no plan was made from the recording: "
            + (f"the model's input was never complete ({unavailable})" if unavailable else "")
            + (f"; {skipped} camera frame(s) could not be decoded" if skipped else "")
        )
    recorded_s = ((lockstep.now_ns or LOCKSTEP_START_NS) - LOCKSTEP_START_NS) / NS_PER_S
    return RecordingResult(backend.name, cycles, np.array(logged), recorded_s, wall_s)


def _cycle(
    inference: InferenceStep, planning: PlanningStep, source: CameraSource
) -> CycleResult | None:
    """The inference at the newest camera set and its plan, scored; InputsUnavailable
    while the inputs are incomplete (the first 1.5 s: the ego history)."""
    decided = inference.run()
    if decided is None:
        return None
    set_speed = logged_set_speed(source, decided.t0_ns)
    plan = planning.plan(
        decided.output.planner_input,
        decided.t0_ns,
        decided.output.decision,
        decided.lane,
        decided.light,
        decided.free_space,
        set_speed=set_speed,
        ego_history=decided.history,
    )
    explained = decided.explained()
    stage_ms = {
        name: ms for name, ms in explained.stage_ms.items() if not name.startswith("decide: ")
    }
    stage_ms["planning"] = plan.planning_ms
    t0_pose = source.ego_pose(decided.t0_ns)
    if t0_pose is None:
        return None
    truth = logged_future(source, decided.t0_ns)
    text = explained.output.decision.text
    score = score_plan(plan, truth, text)
    meta = decided.output.planner_input.meta_action
    x, y, yaw = _planar(t0_pose)
    return CycleResult(
        t0_s=(decided.t0_ns - LOCKSTEP_START_NS) / NS_PER_S,
        planned=score.planned,
        min_ade_3s=score.min_ade_3s,
        min_ade_6_4s=score.min_ade_6_4s,
        ade_3s=score.ade_3s,
        ade_6_4s=score.ade_6_4s,
        fde_3s=score.fde_3s,
        fde_6_4s=score.fde_6_4s,
        meta_action=(meta.longitudinal.name, meta.lateral.name),
        logged_meta_action=_logged_meta_action(truth),
        consistent=score.consistent,
        reasoning=text,
        stage_ms=stage_ms,
        set_speed=set_speed,
        gained_set_speed=plan.gained_set_speed,
        pose=(x, y, yaw),
        candidates_xy=plan.rollouts.xyz()[..., :2],
        selected_xy=plan.rollouts.xyz()[score.index, :, :2],
        logged_xy=truth[:, :2].copy(),
    )


def logged_set_speed(source: CameraSource, t0_ns: int) -> float | None:
    """The set speed in force at t0 as the planner node takes it: 0 or nothing logged is
    not known, and a value it would ignore (negative, not finite) is ignored here too."""
    logged = source.set_speed(t0_ns)
    try:
        return None if logged is None else known_set_speed(logged)
    except ValueError:
        return None


def logged_future(source: CameraSource, t0_ns: int) -> npt.NDArray[np.float64]:
    """The ego's logged path after t0, in the ego frame at t0, every 0.1 s ([T, 3] x, y,
    yaw for T <= 64: as far as the recording holds its poses)."""
    origin_pose = source.ego_pose(t0_ns)
    if origin_pose is None:
        return np.zeros((0, 3))
    origin = Pose2D(*_planar(origin_pose))
    points = []
    for step in range(1, TRAJECTORY_STEPS + 1):
        pose = source.ego_pose(t0_ns + step * STEP_NS)
        if pose is None:
            break
        relative = origin.relative(Pose2D(*_planar(pose)))
        points.append((relative.x, relative.y, float(wrap_angle(relative.yaw))))
    return np.array(points, dtype=np.float64).reshape(-1, 3)


def _planar(pose: EgoPose) -> tuple[float, float, float]:
    return (
        float(pose.position[0]),
        float(pose.position[1]),
        quaternion_to_yaw(*(float(value) for value in pose.orientation_xyzw)),
    )


def _logged_meta_action(truth: npt.NDArray[np.float64]) -> tuple[str, str] | None:
    """The meta-action of the logged path by the training labels' rules, or None when the
    recording does not hold the near term they look at. Its speeds are the distances
    covered each 0.1 s (not an exact inverse of the poses, which turns centimetres of
    odometry noise into swings of metres per second)."""
    if len(truth) < round(LabelThresholds().horizon_s / TRAJECTORY_DT_S):
        return None
    x, y, yaw = truth[:, 0], truth[:, 1], np.unwrap(truth[:, 2])
    steps = np.diff(np.concatenate([[[0.0, 0.0]], truth[:, :2]]), axis=0)
    heading = np.concatenate([[0.0], yaw[:-1]])
    forward = steps[:, 0] * np.cos(heading) + steps[:, 1] * np.sin(heading)
    speed = np.sign(forward) * np.hypot(steps[:, 0], steps[:, 1]) / TRAJECTORY_DT_S
    acceleration = np.diff(speed, prepend=speed[0]) / TRAJECTORY_DT_S
    turn = np.diff(yaw, prepend=0.0)
    distance = np.abs(speed) * TRAJECTORY_DT_S
    curvature = np.divide(turn, distance, out=np.zeros_like(turn), where=distance > 1e-3)
    t = np.arange(1, len(truth) + 1) * TRAJECTORY_DT_S
    longitudinal, lateral = label_meta_action(Rollout(t, x, y, yaw, speed, acceleration, curvature))
    return longitudinal.name, lateral.name


def summarize(cycles: Sequence[CycleResult], speed: float = 0.0) -> dict[str, object]:
    """Means over the cycles that have each figure, accuracies and latency percentiles."""
    summary: dict[str, object] = {"cycles": len(cycles)}
    for name in ("min_ade_3s", "min_ade_6_4s", "ade_3s", "ade_6_4s", "fde_3s", "fde_6_4s"):
        values = [value for cycle in cycles if (value := getattr(cycle, name)) is not None]
        summary[name] = float(np.mean(values)) if values else None
        if name == "ade_6_4s":
            summary["scored_6_4s"] = len(values)
    for name in ("planned", "consistent"):
        summary[f"{name}_rate"] = _mean([getattr(cycle, name) for cycle in cycles])
    for name in ("longitudinal_correct", "lateral_correct"):
        labelled = [value for cycle in cycles if (value := getattr(cycle, name)) is not None]
        summary[name.replace("_correct", "_accuracy")] = _mean(labelled)
    stages = sorted({stage for cycle in cycles for stage in cycle.stage_ms})
    summary["latency_ms"] = {
        stage: {
            f"p{q}": float(np.percentile(values, q))
            for q in PERCENTILES
            if (values := [c.stage_ms[stage] for c in cycles if stage in c.stage_ms])
        }
        for stage in stages
    }
    # What the planner's output waits for after t0 (deciding, finding the lane and the
    # light, then planning), on its own: the figure a scenario's latency condition names.
    plan_ms = [planner_wait_ms(c.stage_ms) + c.stage_ms["planning"] for c in cycles]
    for q in PERCENTILES[:2]:
        summary[f"plan_latency_p{q}_ms"] = float(np.percentile(plan_ms, q)) if plan_ms else None
    summary["speed"] = speed
    return summary


def _mean(values: Sequence[bool]) -> float | None:
    return float(np.mean(values)) if values else None
