"""Run backends on synthetic scenarios chosen by seed and score them open loop.

Each backend sees exactly what the VLA node would give it (4 cameras x 4 frames, 16 ego
poses), its samples go through the planner node's planning step (pipeline.planning), and it
is scored against the expert's future: minADE over K samples and ADE of the
highest-scored one at 3 s and 6.4 s, meta-action accuracy per axis, and reasoning-action
consistency as Alpamayo-R1 defines it (the text's stated behaviour against meta-actions
labelled from the selected trajectory; unparseable text scores 0), and whether the cause and
where its object is are right.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.model_io import CausalDecision, VlaInput
from alpamayo_ros.evaluation.metrics import (
    SampleResult,
    score_plan,
)
from alpamayo_ros.pipeline.backend import Backend
from alpamayo_ros.pipeline.inference import fit_image
from alpamayo_ros.pipeline.planning import PlanningStep
from alpamayo_ros.world.dataset import Sample, make_sample

PROGRESS_PERIOD_S = 5.0


def vla_input(
    sample: Sample, image_size: tuple[int, int] | None, missing: Sequence[str] = ()
) -> VlaInput:
    """The sample as the VLA node would hand it to a backend, without the `missing`
    cameras (as when they failed)."""
    cameras = tuple(name for name in CAMERA_ORDER if name not in missing)
    images = np.stack(
        [
            np.stack([fit_image(frame, image_size) for frame in sample.images[index]])
            for index, name in enumerate(CAMERA_ORDER)
            if name in cameras
        ]
    )
    return VlaInput(
        t0_ns=0,
        images=images,
        frame_stamps_ns=np.zeros(images.shape[:2], np.int64),
        ego_xyz=sample.ego_xyz,
        ego_rotations=sample.ego_rotations,
        cameras=cameras,
    )


def evaluate_sample(
    planner: PlanningStep, sample: Sample, missing_cameras: Sequence[str] = ()
) -> SampleResult:
    """One sample through the planner's backend: reasoning, then the planning step with the
    sample's seed as t0, so every backend sees the same noise for the same scenario."""
    backend = planner.backend
    output = backend.reason(vla_input(sample, backend.image_size, missing_cameras))
    plan = planner.plan(output.planner_input, sample.seed, output.decision)
    # The graph publishes no trajectory when none is feasible; the top-ranked one is still
    # scored, and `planned` counts how often that happens.
    score = score_plan(plan, sample.future_xyz, output.decision.text)
    meta = output.planner_input.meta_action
    return SampleResult(
        scenario_type=sample.scenario_type,
        seed=sample.seed,
        min_ade_3s=score.min_ade_3s,
        min_ade_6_4s=score.min_ade_6_4s,
        ade_3s=score.ade_3s,
        ade_6_4s=score.ade_6_4s,
        planned=score.planned,
        longitudinal_correct=meta.longitudinal == sample.meta_action[0],
        lateral_correct=meta.lateral == sample.meta_action[1],
        consistent=score.consistent,
        cause_correct=output.decision.cause == sample.decision.cause,
        cause_position_error_m=cause_position_error(output.decision, sample.decision),
        selected_index=plan.selection.index,
    )


def cause_position_error(predicted: CausalDecision, truth: CausalDecision) -> float | None:
    """How far the model puts the cause object, when both name the same object cause."""
    if not (predicted.cause_object_id and truth.cause_object_id):
        return None
    if predicted.cause != truth.cause:
        return None
    offset = np.subtract(predicted.cause_object_position, truth.cause_object_position)
    return float(np.linalg.norm(offset))


def evaluate(
    backends: Sequence[Backend],
    seeds: Iterable[int],
    scenario_types: Sequence[str] | None = None,
    num_samples: int = 6,
    sampling_seed: int = 0,
    missing_cameras: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[SampleResult]]:
    """Results per backend name; every backend sees the same samples and noise seed
    (without the `missing_cameras`, as when they failed); `progress` gets a line every
    few seconds."""
    # No memory of standing objects: each sample is a scene of its own, not the next
    # moment of the last one.
    planners = [
        PlanningStep(backend, num_samples, seed=sampling_seed, stand_off_memory_s=0.0)
        for backend in backends
    ]
    results: dict[str, list[SampleResult]] = {backend.name: [] for backend in backends}
    types = list(scenario_types) if scenario_types else [None]
    seeds = list(seeds)
    started = reported = time.perf_counter()
    for done, seed in enumerate(seeds):
        if progress is not None and time.perf_counter() - reported > PROGRESS_PERIOD_S:
            reported = time.perf_counter()
            progress(f"evaluated {done}/{len(seeds)} seeds ({reported - started:.0f} s)")
        for scenario_type in types:
            sample = make_sample(seed, scenario_type)
            for planner in planners:
                results[planner.backend.name].append(
                    evaluate_sample(planner, sample, missing_cameras)
                )
    return results
