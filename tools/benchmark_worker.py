"""What the model worker's process boundary adds to a cycle, against the same backend in-process.

    .venv/bin/python tools/benchmark_worker.py [--backend embedded_vla] [--cycles 100]
        [--weights-file F] [--device cuda --precision bf16] [--timeout-s 10]

Starts a model worker (alpamayo_ros.backends.worker_server) on a private ipc address and
runs the same cycle through both, alternating: the planner's input (`decide`) and the
planning step (K samples of the action expert, integrated, ranked, checked) on the same
samples of the synthetic world. The plans must be identical (the status is 1 if any
cycle's differ; the figures are printed all the same). Reports the cycle times of both,
the worker's model stages as its backend timed them, and, per request, the boundary
itself: the worker backend's wall time less the worker's computing time (the shared-memory
copy, framing, sockets and process wake-ups), which does not depend on how busy the
machine happens to be while the model computes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from alpamayo_ros.backends import create_backend
from alpamayo_ros.backends.worker import WorkerBackend
from alpamayo_ros.evaluation.evaluate import vla_input
from alpamayo_ros.pipeline.backend import Backend
from alpamayo_ros.pipeline.planning import Plan, PlanningStep
from alpamayo_ros.world.dataset import make_sample

WARM_UP_CYCLES = 5


def cycle(backend: Backend, planner: PlanningStep, inputs, t0_ns: int) -> tuple[float, Plan]:
    """One cycle's control path: decide, then plan (the text is written off it)."""
    started = time.perf_counter()
    decided = backend.decide(inputs)
    plan = planner.plan(decided.output.planner_input, t0_ns)
    return (time.perf_counter() - started) * 1e3, plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="embedded_vla", help="the model on both sides")
    parser.add_argument("--weights-file", default="", help="its weights; empty: packaged")
    parser.add_argument("--cpu-threads", type=int, default=1, help="each side's math threads")
    parser.add_argument("--device", default="cpu", help="both sides': cpu, cuda, cuda:N")
    parser.add_argument("--precision", default="fp32", help="both sides': fp32, fp16, bf16")
    parser.add_argument("--cycles", type=int, default=100, help="timed cycles, after 5 warm-up")
    parser.add_argument("--num-samples", type=int, default=6, help="K trajectories per plan")
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=10.0,
        help="longest wait for one answer of the worker (its first loads the model)",
    )
    args = parser.parse_args()
    if args.cycles < 1:
        parser.error("--cycles must be at least 1")
    options = {"device": args.device, "precision": args.precision}

    directory = Path(tempfile.mkdtemp(prefix="worker_bench_"))
    address = f"ipc://{directory / 'worker'}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alpamayo_ros.backends.worker_server",
            f"--backend={args.backend}",
            f"--weights-file={args.weights_file}",
            f"--cpu-threads={args.cpu_threads}",
            f"--address={address}",
            *(f"--{option}={value}" for option, value in options.items()),
        ]
    )
    try:
        worker = WorkerBackend(address=address, timeout_s=args.timeout_s, startup_timeout_s=120.0)
        local = create_backend(args.backend, args.weights_file, args.cpu_threads, **options)
        backends = {"in-process": local, "worker": worker}
        # No memory of standing objects: the cycles go through five unrelated scenes.
        planners = {
            name: PlanningStep(b, args.num_samples, stand_off_memory_s=0.0)
            for name, b in backends.items()
        }
        samples = [vla_input(make_sample(seed), local.image_size) for seed in range(5)]
        cycle_ms: dict[str, list[float]] = defaultdict(list)
        boundary_ms: dict[str, list[float]] = defaultdict(list)
        worker_stage_ms: dict[str, list[float]] = defaultdict(list)
        differing: list[int] = []
        for index in range(WARM_UP_CYCLES + args.cycles):
            inputs, t0_ns = samples[index % len(samples)], 1_000 + index
            order = ("in-process", "worker") if index % 2 else ("worker", "in-process")
            plans = {}
            for name in order:
                elapsed_ms, plans[name] = cycle(backends[name], planners[name], inputs, t0_ns)
                if index >= WARM_UP_CYCLES:
                    cycle_ms[name].append(elapsed_ms)
            if not np.array_equal(
                plans["worker"].rollouts.xyz(), plans["in-process"].rollouts.xyz()
            ):
                differing.append(index)
            if index >= WARM_UP_CYCLES:
                for op in ("decide", "sample"):
                    boundary_ms[op].append(worker.boundary_ms[op])
                for stage, ms in worker.stage_ms.items():
                    worker_stage_ms[stage].append(ms)
        worker.close()
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(directory, ignore_errors=True)

    def stats(values: list[float]) -> str:
        return f"median {np.median(values):6.2f} ms   p90 {np.percentile(values, 90):6.2f} ms"

    per_cycle = [d + s for d, s in zip(boundary_ms["decide"], boundary_ms["sample"], strict=True)]
    compared = WARM_UP_CYCLES + args.cycles
    print(
        f"{args.backend} {local.version} on {args.device} in {args.precision}: {args.cycles} "
        f"timed cycles of decide + plan (K={args.num_samples}); the worker's plans identical "
        f"to in-process in {compared - len(differing)} of {compared}, warm-up included"
        + (f" (differing: cycles {differing})" if differing else "")
    )
    for name, values in cycle_ms.items():
        print(f"  cycle {name:<11} {stats(values)}")
    print("the worker's decide: its backend's stages, and the boundary this side measured:")
    width = max(map(len, worker_stage_ms)) + 2
    for stage, values in worker_stage_ms.items():
        print(f"  {stage:<{width}} {stats(values)}")
    difference = np.median(cycle_ms["worker"]) - np.median(cycle_ms["in-process"])
    print(f"  difference of the medians: {difference:+.2f} ms (with the machine's load noise)")
    print("boundary (worker wall time less its computing), target at most 5 ms per cycle:")
    print(f"  VLA node through the worker (decide)        {stats(boundary_ms['decide'])}")
    print(f"  planner through the worker too (+ sample)   {stats(per_cycle)}")
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
