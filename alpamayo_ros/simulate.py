"""Closed-loop evaluation: scenarios driven through the real node processes, one graph per
run, each on its own ROS domain, in lock-step; spread over Ray when asked.

A driver is who plans: `expert` (the ceiling: the world's expert plans from the closed-loop
state, the control bridge tracks it) or a VLA backend name (the simulator's cameras into
the VLA node, the planner and the control bridge). The constant-velocity backend is the
floor. A run is a pure function of (driver, seed, scenario type, parameter file), so
results are the same with one worker or many, and are sorted the same way.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from alpamayo_ros.backends import available_backends, weights_for
from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.evaluation.closed_loop import ClosedLoopMetrics, summarise
from alpamayo_ros.graph import NODES, default_parameter_file
from alpamayo_ros.launcher import GraphError, GraphProcesses
from alpamayo_ros.world.scenarios import make_scenario
from alpamayo_ros.world.simulation import DT_S

EXPERT = "expert"
STACK_NODES = ("simulator", "vla_inference", "diffusion_planner", "control_bridge")
EXPERT_NODES = ("simulator", "control_bridge")
# ROS domains of the runs: one per concurrent run, away from the default domain 0.
FIRST_DOMAIN = 101
DOMAINS = 100
# A run that has not ended within this much wall time per simulated second is stuck.
WALL_S_PER_SIMULATED_S = 30.0
START_ALLOWANCE_S = 60.0


class SimulationError(GraphError):
    """A run that did not end with a result: a node died or the run was stuck."""


@dataclass(frozen=True)
class RunSpec:
    driver: str
    seed: int
    scenario_type: str | None = None
    weights_file: str = ""  # the backend's weights; empty for the parameter file's


def known_drivers() -> tuple[str, ...]:
    """Who can drive: the expert and every model backend."""
    return (EXPERT, *available_backends())


def run_specs(
    drivers: Sequence[str],
    seeds: Sequence[int],
    types: Sequence[str] = (),
    weights: Path | None = None,
) -> list[RunSpec]:
    """Every driver on every seed (seed i of type i mod len(types), or the seed's own);
    `weights` goes to the embedded VLA only (the floor and the expert keep none)."""
    return [
        RunSpec(
            driver,
            seed,
            types[index % len(types)] if types else None,
            weights_for(driver, weights),
        )
        for driver in drivers
        for index, seed in enumerate(seeds)
    ]


def parameter_document(
    spec: RunSpec, params_file: Path | None, result_file: Path
) -> dict[str, Any]:
    """The parameter file of one run: the user's (or the packaged) with the scenario, the
    driver and where the result goes."""
    document = yaml.safe_load((params_file or default_parameter_file()).read_text())
    simulator = document.setdefault("simulator", {}).setdefault("ros__parameters", {})
    simulator.update(
        seed=spec.seed,
        scenario_type=spec.scenario_type or "",
        result_file=str(result_file),
        lockstep=True,
        planner=EXPERT if spec.driver == EXPERT else "stack",
    )
    if spec.driver != EXPERT:
        shared = document.setdefault("/**", {}).setdefault("ros__parameters", {})
        shared["backend"] = spec.driver
        if spec.weights_file:
            shared["weights_file"] = spec.weights_file
    return document


def run_scenario(
    spec: RunSpec, params_file: Path | None = None, domain: int = FIRST_DOMAIN
) -> dict[str, Any]:
    """Drive one scenario through the node processes; the simulator's result, with the
    driver and the run's wall time."""
    names = EXPERT_NODES if spec.driver == EXPERT else STACK_NODES
    nodes = tuple(node for node in NODES if node.name in names)
    with tempfile.TemporaryDirectory(prefix="alpamayo_simulate_") as directory:
        result_file = Path(directory) / "result.json"
        params = Path(directory) / "params.yaml"
        params.write_text(yaml.safe_dump(parameter_document(spec, params_file, result_file)))
        started = time.monotonic()
        with GraphProcesses(
            params, use_sim_time=True, nodes=nodes, environment={"ROS_DOMAIN_ID": str(domain)}
        ) as graph:
            while not result_file.exists():
                try:
                    graph.check()
                except GraphError as error:
                    raise SimulationError(f"{spec}: {error}") from None
                if time.monotonic() - started > START_ALLOWANCE_S + scenario_bound_s(spec):
                    raise SimulationError(
                        f"{spec}: no result after {time.monotonic() - started:.0f} s"
                    )
                time.sleep(0.1)
            # The node renames the whole file into place.
            result: dict[str, Any] = json.loads(result_file.read_text())
    result["driver"] = spec.driver
    result["wall_s"] = time.monotonic() - started
    return result


def run_in_process(spec: RunSpec) -> dict[str, Any]:
    """Drive one scenario through the pipeline in this process (evaluation.rollout), the
    packaged parameters' defaults, no ROS: a quick check of many seeds. The graph
    (`run_scenario`) stays the reference; the result has the same form, and its speed is
    simulated over wall seconds. The model runs on DRIVE_THREADS math threads, which
    torch sets for the whole process."""
    from alpamayo_ros.backends import create_backend
    from alpamayo_ros.evaluation.rollout import DRIVE_THREADS, roll_out

    started = time.monotonic()
    backend = (
        None
        if spec.driver == EXPERT
        else create_backend(spec.driver, spec.weights_file, DRIVE_THREADS)
    )
    rollout = roll_out(backend, spec.seed, spec.scenario_type)
    wall_s = time.monotonic() - started
    simulated_s = rollout.simulated_s
    return {
        "seed": spec.seed,
        "scenario_type": rollout.scenario_type,
        "metrics": asdict(rollout.metrics),
        "watchdog": [{"t_s": t, "mode": mode} for t, mode in rollout.modes],
        "reasoning": [{"t_s": t, "text": text} for t, text in rollout.reasoning],
        "commands_by_mode": rollout.commands_by_mode,
        "lockstep": {
            "simulated_s": simulated_s,
            "wall_s": wall_s,
            "expected": 0,
            "answered": 0,
            "timeouts": 0,
            "speed": simulated_s / wall_s,
        },
        "ego": rollout.record.columns(),
        "driver": spec.driver,
        "wall_s": wall_s,
        "in_process": True,
    }


def scenario_bound_s(spec: RunSpec) -> float:
    """The wall time a run may take beyond start-up before it counts as stuck."""
    simulated_s = make_scenario(spec.seed, spec.scenario_type).steps * DT_S
    return simulated_s * WALL_S_PER_SIMULATED_S


def run_all(
    specs: Sequence[RunSpec],
    params_file: Path | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    in_process: bool = False,
) -> list[dict[str, Any]]:
    """Every run's result, in the order of `specs`; with `workers` > 1 on Ray (a local
    Ray with that many CPUs, or the cluster at `ray_address`); `in_process` drives each
    through the pipeline without ROS (`run_in_process`)."""
    if workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, got {workers}")
    if in_process and params_file is not None:
        raise ConfigurationError(
            "--in-process runs the packaged parameters; a parameter file needs the graph"
        )
    results: list[dict[str, Any] | None] = [None] * len(specs)
    runs = (
        _sequential(specs, params_file, in_process)
        if workers == 1 and ray_address is None
        else _on_ray(specs, params_file, in_process, workers, ray_address)
    )
    for done, (index, result) in enumerate(runs, start=1):
        results[index] = result
        if progress is not None:
            progress(done, len(specs), result)
    return [result for result in results if result is not None]


def _run(spec: RunSpec, params_file: Path | None, domain: int, in_process: bool) -> dict[str, Any]:
    return run_in_process(spec) if in_process else run_scenario(spec, params_file, domain)


def _sequential(
    specs: Sequence[RunSpec], params_file: Path | None, in_process: bool
) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, spec in enumerate(specs):
        yield index, _run(spec, params_file, FIRST_DOMAIN, in_process)


def _on_ray(
    specs: Sequence[RunSpec],
    params_file: Path | None,
    in_process: bool,
    workers: int,
    ray_address: str | None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if ray_address:
            ray.init(address=ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        # Each run reserves a whole CPU: a graph of four processes on a shared core would
        # only slow every run down.
        remote = ray.remote(num_cpus=1)(_run)
        pending = {
            remote.remote(spec, params_file, FIRST_DOMAIN + index % DOMAINS, in_process): index
            for index, spec in enumerate(specs)
        }
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready[0])
            yield index, ray.get(ready[0])
    finally:
        if started_here:
            ray.shutdown()


def summary_by_driver(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """The closed-loop summary of each driver, in the order drivers first appear, with the
    lock-step speed (simulated over wall seconds, all its runs together)."""
    by_driver: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_driver.setdefault(result["driver"], []).append(result)
    summary = {}
    for driver, runs in by_driver.items():
        metrics = [ClosedLoopMetrics(**_metrics_fields(run["metrics"])) for run in runs]
        figures = summarise(metrics)
        simulated = sum(run["lockstep"]["simulated_s"] for run in runs)
        wall = sum(run["lockstep"]["wall_s"] for run in runs)
        figures["lockstep_speed"] = simulated / wall if wall > 0 else None
        figures["answer_timeouts"] = float(sum(run["lockstep"]["timeouts"] for run in runs))
        summary[driver] = figures
    return summary


def _metrics_fields(metrics: dict[str, Any]) -> dict[str, Any]:
    return {**metrics, "failures": tuple(metrics["failures"])}


def print_progress(done: int, total: int, result: dict[str, Any]) -> None:
    metrics = result["metrics"]
    verdict = "pass" if metrics["passed"] else "FAIL " + "; ".join(metrics["failures"])
    print(
        f"[{done}/{total}] {result['driver']:<18} seed {result['seed']:<8} "
        f"{result['scenario_type']:<22} score {metrics['score']:.2f}  {verdict}",
        file=sys.stderr,
        flush=True,
    )
