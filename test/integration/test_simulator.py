"""The closed loop through the real node processes: the simulator drives the car by the
control bridge's commands, in lock-step.

- The same scenario run twice gives the same drive, step for step, and the same metrics.
- A planner killed mid-drive: the control bridge's watchdog stops the simulated car
  within its bound (measured in simulated time), and the result records the stop; the
  ground truth reaches a subscriber meanwhile, and the scenario's set speed one that joins
  late (latched).
- A planner that finds no feasible plan answers the frames by its candidates: lock-step
  goes on at once, and the car stops as it would on the road.
- `alpamayo-ros simulate` gives the same results with one worker and with two on a local
  Ray.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from parameter_files import NO_STAND_OFF
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from recorded_drive import spin_until
from rosgraph_msgs.msg import Clock as ClockMsg
from std_msgs.msg import Float64
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.backends import create_backend
from alpamayo_ros.cli import main as cli
from alpamayo_ros.evaluation.rollout import DRIVE_THREADS, RolloutSettings, roll_out
from alpamayo_ros.graph import NODES, Topics
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.ros.conversions import stamp_ns
from alpamayo_ros.ros.runtime import LATCHED_QOS
from alpamayo_ros.simulate import STACK_NODES, RunSpec, parameter_document
from alpamayo_ros.world.scenarios import make_scenario

SEED = 3000003  # a cyclist to pass: the car must steer and keep its speed
NS_PER_S = 1_000_000_000
START_NS = NS_PER_S  # the simulator's first stamp
STACK = tuple(node for node in NODES if node.name in STACK_NODES)


def short_run(
    tmp_path: Path,
    duration_s: float,
    planner: dict[str, object] | None = None,
    **simulator: object,
) -> Path:
    """A parameter file for a short drive of SEED with the embedded model."""
    document = parameter_document(RunSpec("embedded_vla", SEED), None, tmp_path / "result.json")
    document["simulator"]["ros__parameters"].update(duration_s=duration_s, **simulator)
    document["diffusion_planner"]["ros__parameters"].update(planner or {})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def wait_for_result(graph: GraphProcesses, result_file: Path) -> None:
    """Until the simulator has written its result (the drive's end), at most 120 s; a node
    that dies meanwhile fails at once."""
    deadline = time.monotonic() + 120.0
    while not result_file.exists():
        graph.check()
        assert time.monotonic() < deadline, graph.output("simulator")[-2000:]
        time.sleep(0.1)


def test_a_scenario_driven_twice_in_lockstep_gives_the_same_drive(
    ros_domain: int, tmp_path: Path
) -> None:
    """On the test's own ROS domain, so no node of another run can answer for the graph."""
    runs, logs = [], []
    for attempt in ("first", "second"):
        directory = tmp_path / attempt
        directory.mkdir()
        # A drive is the same twice when no answer times out: a bound this long holds
        # on a loaded machine too.
        params = short_run(directory, duration_s=4.0, lockstep_answer_timeout_s=10.0)
        with GraphProcesses(params, use_sim_time=True, nodes=STACK) as graph:
            wait_for_result(graph, directory / "result.json")
            outputs = {name: graph.output(name) for name in STACK_NODES}
            logs.append({name: output[-3000:] for name, output in outputs.items()})
        time.sleep(0.2)
        runs.append(json.loads((directory / "result.json").read_text()))
        # On simulated time the nodes without a timer on ROS time keep the events executor;
        # the control bridge, whose timer keeps simulated time, runs single-threaded.
        fallback = "events does not keep the timers of simulated time; single_threaded"
        assert {name for name, output in outputs.items() if fallback in output} == {
            "control_bridge"
        }, logs[-1]
    first, second = runs
    # Which answer did not come, and what the nodes said meanwhile, if one timed out.
    assert [run["lockstep"]["timeouts"] for run in runs] == [0, 0], logs
    assert first["ego"]["t_s"][-1] == pytest.approx(4.0)
    assert first["ego"] == second["ego"], "the same drive, step for step"
    timing = {"plan_latency_p50_s", "plan_latency_p90_s"}
    assert {k: v for k, v in first["metrics"].items() if k not in timing} == {
        k: v for k, v in second["metrics"].items() if k not in timing
    }
    # The model drove after the handover: the car moved under its commands.
    assert first["metrics"]["progress_m"] > 5.0
    # The closed loop in one process (training's, `simulate --in-process`) drives the same
    # drive: only the messages' rounding differs.
    in_process = roll_out(
        create_backend("embedded_vla", cpu_threads=DRIVE_THREADS),
        SEED,
        settings=RolloutSettings(duration_s=4.0),
    )
    assert in_process.metrics.progress_m == pytest.approx(first["metrics"]["progress_m"], abs=0.05)
    assert in_process.metrics.peak_lateral_acceleration == pytest.approx(
        first["metrics"]["peak_lateral_acceleration"], rel=0.05
    )


def test_a_planner_killed_mid_drive_makes_the_watchdog_stop_the_car(
    rclpy_context: Context, tmp_path: Path
) -> None:
    params = short_run(tmp_path, duration_s=9.0, lockstep_answer_timeout_s=0.2)
    bridge = yaml.safe_load(params.read_text())["control_bridge"]["ros__parameters"]
    node = Node("clock_probe", context=rclpy_context)
    now: list[int] = [0]
    node.create_subscription(
        ClockMsg, "/clock", lambda m: now.__setitem__(0, stamp_ns(m.clock)), 10
    )
    # Built only for a subscriber, as here: the world's agents at the camera rate.
    ground_truth: list[MarkerArray] = []
    node.create_subscription(MarkerArray, Topics.GROUND_TRUTH, ground_truth.append, 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    killed_at_ns = START_NS + 3 * NS_PER_S
    try:
        with GraphProcesses(params, use_sim_time=True, nodes=STACK) as graph:
            assert spin_until(executor, lambda: now[0] >= killed_at_ns, 120.0, graph.check)
            graph.processes["diffusion_planner"].kill()
            graph.processes["diffusion_planner"].wait()
            spin_until(executor, lambda: False, 0.1)
            killed_by_ns = now[0]  # the kill happened between the two clock readings
            assert ground_truth and ground_truth[-1].markers
            assert stamp_ns(ground_truth[-1].markers[0].header.stamp) >= START_NS
            # What the planner was told at the start, there for a subscriber that joins now.
            set_speeds: list[Float64] = []
            node.create_subscription(Float64, Topics.SET_SPEED, set_speeds.append, LATCHED_QOS)
            assert spin_until(executor, lambda: bool(set_speeds), 5.0)
            assert [m.data for m in set_speeds] == [make_scenario(SEED).set_speed]
            assert spin_until(executor, lambda: (tmp_path / "result.json").exists(), 120.0), (
                graph.output("simulator")[-2000:]
            )
    finally:
        executor.shutdown()
        node.destroy_node()
    time.sleep(0.2)
    result: dict[str, Any] = json.loads((tmp_path / "result.json").read_text())
    killed_s = (killed_at_ns - START_NS) / NS_PER_S
    killed_by_s = (killed_by_ns - START_NS) / NS_PER_S
    stops = [event for event in result["watchdog"] if event["mode"] == "safe_stop"]
    assert stops, result["watchdog"]
    # The plan goes stale trajectory_timeout_s after the last one (made before the kill),
    # and the watchdog's stop starts within a control period of that.
    assert killed_s < stops[0]["t_s"] <= killed_by_s + bridge["trajectory_timeout_s"] + 0.05
    ego = result["ego"]
    start = ego["t_s"].index(min(ego["t_s"], key=lambda t: abs(t - stops[0]["t_s"])))
    speed = ego["v"][start]
    # Braking at the safe-stop deceleration after its jerk-limited build-up, plus the
    # actuators' lag.
    deceleration, jerk = bridge["safe_stop_deceleration"], bridge["safe_stop_jerk"]
    bound_s = speed / deceleration + deceleration / jerk + 0.5
    at_rest = next(
        t for t, v in zip(ego["t_s"][start:], ego["v"][start:], strict=False) if v == 0.0
    )
    assert at_rest - stops[0]["t_s"] <= bound_s, (at_rest, stops[0], speed)
    assert all(v == 0.0 for t, v in zip(ego["t_s"], ego["v"], strict=True) if t >= at_rest)


def test_frames_with_no_feasible_plan_are_answered_and_the_car_stops(
    ros_domain: int, tmp_path: Path
) -> None:
    """Every sample accelerates a little, so an acceleration bound of 1e-6 m/s^2 leaves no
    feasible plan: no trajectory ever comes. With a 10 s answer bound, a simulator that
    waited for one would take minutes (15 camera sets after the handover)."""
    params = short_run(
        tmp_path,
        duration_s=3.0,
        planner={"max_abs_acceleration": 1e-6, **NO_STAND_OFF},
        lockstep_answer_timeout_s=10.0,
    )
    with GraphProcesses(params, use_sim_time=True, nodes=STACK) as graph:
        wait_for_result(graph, tmp_path / "result.json")
        logs = {name: graph.output(name)[-3000:] for name in STACK_NODES}
    time.sleep(0.2)
    result: dict[str, Any] = json.loads((tmp_path / "result.json").read_text())
    assert result["lockstep"]["timeouts"] == 0, logs
    # The expert drove until the handover; no plan came after it, so the control bridge
    # never tracked one and brought the car down from its speed.
    assert [event["mode"] for event in result["watchdog"]] == ["waiting"], result["watchdog"]
    ego = result["ego"]
    handover = min(range(len(ego["t_s"])), key=lambda i: abs(ego["t_s"][i] - 1.5))
    assert ego["v"][-1] < ego["v"][handover] - 1.0, (ego["v"][handover], ego["v"][-1])
    # The VLA decided and explained every camera set meanwhile.
    assert len(result["reasoning"]) >= 14


def test_simulate_gives_the_same_results_on_one_and_on_two_ray_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for workers in (1, 2):
        output = tmp_path / f"workers_{workers}.json"
        arguments = ["simulate", "--seeds", "3000000-3000001", "--drivers", "expert"]
        assert cli([*arguments, "--workers", str(workers), "--output", str(output)]) == 0
        outputs.append(json.loads(output.read_text()))
    table = capsys.readouterr().out
    assert "pass_rate" in table and "expert" in table

    def comparable(run: dict[str, Any]) -> tuple[object, ...]:
        metrics = {k: v for k, v in run["metrics"].items() if "latency" not in k}
        return run["driver"], run["seed"], run["scenario_type"], metrics, run["ego"]

    one, two = ([comparable(run) for run in output["runs"]] for output in outputs)
    assert one == two
    assert [run[1] for run in one] == [3000000, 3000001]
