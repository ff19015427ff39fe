"""Cost of one 10 Hz cycle of a backend on this machine, per stage, through the pipeline.

One cycle is what the graph does per inference, run through the same classes as the nodes:
the inference step takes one new frame per camera (resized as it arrives) and the odometry,
aligns 4 frames per camera and 16 poses at t0 and runs the reasoning half; the planning
step samples, integrates, ranks, checks and selects K trajectories.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from alpamayo_ros.backends import create_backend
from alpamayo_ros.core.contract import CAMERA_ORDER, FRAME_PERIOD_NS, NS_PER_S
from alpamayo_ros.perception.detectors import Detectors
from alpamayo_ros.pipeline.inference import Inference, InferenceStep
from alpamayo_ros.pipeline.planning import Plan, PlanningStep
from alpamayo_ros.world.dataset import make_sample
from alpamayo_ros.world.renderer import default_rig

CAMERA_SIZE = (576, 320)
WARM_UP_CYCLES = 3
# Where the benchmark's clock starts, so stamps are well above zero like a ROS clock.
START_NS = 1_000 * NS_PER_S


@dataclass
class BenchmarkResult:
    backend: str
    version: str
    cycles: int
    torch_threads: int
    text: str  # the reasoning of the last cycle, to show the model ran
    stage_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # The last cycle's inference and plan, to compare with the graph's on the same input.
    last_inference: Inference | None = None
    last_plan: Plan | None = None

    def percentiles(self) -> dict[str, tuple[float, float]]:
        """(median, p90) in ms per stage."""
        return {
            name: (float(np.median(values)), float(np.percentile(values, 90)))
            for name, values in self.stage_ms.items()
        }

    def table(self) -> str:
        width = max(map(len, self.stage_ms)) + 2
        lines = [
            f"backend {self.backend} {self.version}: {self.cycles} cycles, "
            f"{self.torch_threads} torch threads, text: {self.text!r}",
            f"{'stage':<{width}}{'median ms':>12}{'p90 ms':>10}",
        ]
        for name, (median, p90) in self.percentiles().items():
            lines.append(f"{name:<{width}}{median:>12.1f}{p90:>10.1f}")
        return "\n".join(lines)


def run_benchmark(
    backend_name: str,
    cycles: int,
    num_samples: int,
    weights_file: Path | None = None,
    **options: str | bool,
) -> BenchmarkResult:
    """`options`: the backend's device, precision and CUDA graphs, as the nodes'
    parameters give them."""
    backend = create_backend(backend_name, str(weights_file or ""), **options)
    # As the VLA node runs it with the packaged defaults: the lane, the light ahead and the
    # clear road looked for in every cycle.
    inference = InferenceStep(backend, CAMERA_ORDER, detectors=Detectors.for_rig(default_rig()))
    planner = PlanningStep(backend, num_samples)
    sample = make_sample(1_000_000, image_size=CAMERA_SIZE, render_scale=1)
    # The sample's newest frame per camera, arriving every 100 ms; the ego stands still
    # at the origin (its motion does not change the cost).
    frames = [camera[-1] for camera in sample.images]
    result = BenchmarkResult(backend.name, backend.version, cycles, torch.get_num_threads(), "")
    for cycle in range(-20, cycles + WARM_UP_CYCLES):  # the first 20 fill the buffers
        stamp_ns = START_NS + cycle * FRAME_PERIOD_NS
        started = time.perf_counter()
        for name, frame in zip(CAMERA_ORDER, frames, strict=True):
            inference.add_frame(name, stamp_ns, frame)
        inference.add_odometry(stamp_ns, np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))
        added = time.perf_counter()
        if cycle < 0:
            continue
        decided = inference.run()
        assert decided is not None, "every 100 ms cycle is due"
        plan = planner.plan(
            decided.output.planner_input,
            stamp_ns,
            decided.output.decision,
            decided.lane,
            decided.light,
            decided.free_space,
            ego_history=decided.history,
        )
        # On the graph the text is written while the planner plans.
        output = decided.explained()
        finished = time.perf_counter()
        if cycle < WARM_UP_CYCLES:
            continue
        stages = {
            f"resize {len(frames)} new frames": (added - started) * 1e3,
            **output.stage_ms,
            f"plan {num_samples} trajectories": plan.planning_ms,
            "total": (finished - started) * 1e3,
        }
        for name, ms in stages.items():
            result.stage_ms[name].append(ms)
        result.text = output.output.decision.text
        result.last_inference, result.last_plan = output, plan
    return result
