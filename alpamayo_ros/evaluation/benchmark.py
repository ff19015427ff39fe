"""Cost of one 10 Hz cycle of a backend on this machine, per stage.

One cycle is what the graph does per inference: resize 16 camera frames (576x320) to the
model's input, the vision-language half (encoding, heads, reasoning text), then K trajectory
samples integrated, checked and selected.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from alpamayo_ros.backends import create_backend
from alpamayo_ros.core.trajectory_checks import Limits, select_trajectory
from alpamayo_ros.evaluation.evaluate import vla_input
from alpamayo_ros.world.dataset import make_sample

CAMERA_SIZE = (576, 320)


def run_benchmark(
    backend_name: str, cycles: int, num_samples: int, weights_file: Path | None = None
) -> str:
    backend = create_backend(backend_name, str(weights_file or ""))
    sample = make_sample(1_000_000, image_size=CAMERA_SIZE, render_scale=1)
    timings: dict[str, list[float]] = defaultdict(list)
    rng = np.random.default_rng(0)
    for cycle in range(cycles + 3):  # three warm-up cycles
        marks = [("start", time.perf_counter())]
        inputs = vla_input(sample, backend.image_size)
        marks.append(("resize 16 frames", time.perf_counter()))
        output = backend.reason(inputs)
        marks.append(("reasoning half", time.perf_counter()))
        stages = {f"  of which {name}": ms for name, ms in backend.stage_ms.items()}
        samples = backend.sample_trajectories(output.planner_input, num_samples, rng)
        marks.append((f"sample, integrate, score {num_samples} trajectories", time.perf_counter()))
        select_trajectory(samples.rollouts, samples.scores, Limits())
        marks.append(("check and select", time.perf_counter()))
        if cycle >= 3:
            for (_, before), (name, after) in itertools.pairwise(marks):
                timings[name].append((after - before) * 1e3)
            timings["total"].append((marks[-1][1] - marks[0][1]) * 1e3)
            for name, ms in stages.items():
                timings[name].append(ms)
    width = max(map(len, timings)) + 2
    lines = [
        f"backend {backend.name} {backend.version}: {cycles} cycles, "
        f"{torch.get_num_threads()} torch threads, text: {output.decision.text!r}",
        f"{'stage':<{width}}{'median ms':>12}{'p90 ms':>10}",
    ]
    for name, values in timings.items():
        median, p90 = np.median(values), np.percentile(values, 90)
        lines.append(f"{name:<{width}}{median:>12.1f}{p90:>10.1f}")
    return "\n".join(lines)
