"""`alpamayo-ros simulate` without the graph: each run's parameter file, the summary per
driver, clear refusals, and drives in one process the same however they are spread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from alpamayo_ros.cli import main
from alpamayo_ros.evaluation.rollout import DRIVE_THREADS
from alpamayo_ros.simulate import (
    EXPERT,
    RunSpec,
    parameter_document,
    run_in_process,
    summary_by_driver,
)


def test_a_runs_parameters_name_its_scenario_driver_and_result(tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    model = parameter_document(RunSpec("embedded_vla", 7, "cut_in"), None, result)
    simulator = model["simulator"]["ros__parameters"]
    assert simulator["seed"] == 7 and simulator["scenario_type"] == "cut_in"
    assert simulator["result_file"] == str(result) and simulator["lockstep"] is True
    assert simulator["planner"] == "stack"
    assert model["/**"]["ros__parameters"]["backend"] == "embedded_vla"
    expert = parameter_document(RunSpec(EXPERT, 7), None, result)
    assert expert["simulator"]["ros__parameters"]["planner"] == EXPERT
    assert expert["simulator"]["ros__parameters"]["scenario_type"] == ""
    # The user's own parameter file is the base.
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({"simulator": {"ros__parameters": {"width": 320}}}))
    document = parameter_document(RunSpec(EXPERT, 1), own, result)
    assert document["simulator"]["ros__parameters"]["width"] == 320


def run(driver: str, seed: int, passed: bool, at_fault: bool, progress: float) -> dict:
    metrics = {
        "collision": at_fault,
        "at_fault_collision": at_fault,
        "collision_object": "lead_0" if at_fault else "",
        "collision_time_s": 3.0 if at_fault else None,
        "off_road": False,
        "lane_departure_s": 0.0,
        "red_light_violation": False,
        "stop_line_violation": False,
        "progress_m": 50.0 * progress,
        "expert_progress_m": 50.0,
        "progress_ratio": progress,
        "min_distance_m": 1.0,
        "min_ttc_s": 3.0,
        "peak_jerk": 2.0,
        "peak_lateral_acceleration": 1.0,
        "plan_latency_p50_s": 0.04,
        "plan_latency_p90_s": 0.05,
        "consistency": None,
        "score": 0.0 if at_fault else min(progress, 1.0),
        "failed_at_s": 3.0 if at_fault else None,
        "passed": passed,
        "failures": [] if passed else ["at-fault collision with lead_0 at 3.0 s"],
    }
    lockstep = {"simulated_s": 10.0, "wall_s": 4.0, "expected": 500, "answered": 500, "timeouts": 0}
    return {"driver": driver, "seed": seed, "metrics": metrics, "lockstep": lockstep}


def test_the_summary_is_per_driver_in_order_of_appearance() -> None:
    results = [
        run(EXPERT, 1, True, False, 1.0),
        run(EXPERT, 2, True, False, 1.0),
        run("embedded_vla", 1, True, False, 0.9),
        run("embedded_vla", 2, False, True, 0.5),
    ]
    summary = summary_by_driver(results)
    assert list(summary) == [EXPERT, "embedded_vla"]
    assert summary[EXPERT]["pass_rate"] == 1.0
    assert summary["embedded_vla"]["pass_rate"] == 0.5
    assert summary["embedded_vla"]["at_fault_collision_rate"] == 0.5
    assert summary["embedded_vla"]["mean_progress_ratio"] == pytest.approx(0.7)
    assert summary["embedded_vla"]["lockstep_speed"] == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--drivers", "autopilot"], "unknown or none autopilot"),
        (["--types", "roundabout"], "unknown scenario type"),
    ],
)
def test_bad_options_are_refused_with_status_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--seeds", "1", "--drivers", "expert", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_in_process_the_ceiling_and_the_floor_drive_and_are_summarised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The quick path: the same closed loop through the pipeline without ROS."""
    arguments = ["simulate", "--seeds", "3000004", "--in-process", "--json"]
    assert main([*arguments, "--drivers", "expert,constant_velocity"]) == 0
    report = json.loads(capsys.readouterr().out)
    expert, floor = report["runs"]
    assert expert["in_process"] and expert["scenario_type"] == "pedestrian_crossing"
    assert expert["metrics"]["passed"] and expert["metrics"]["score"] > 0.95
    # Constant velocity keeps its speed until the pedestrian steps into its lane, too close
    # to stop for.
    assert floor["metrics"]["at_fault_collision"]
    assert report["summary"]["expert"]["pass_rate"] == 1.0
    assert report["summary"]["constant_velocity"]["at_fault_collision_rate"] == 1.0


def test_in_process_refuses_a_parameter_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"simulator": {"ros__parameters": {"width": 128}}}))
    arguments = ["simulate", "--seeds", "1", "--drivers", "expert", "--in-process"]
    assert main([*arguments, "--params-file", str(params)]) == 2
    assert "a parameter file needs the graph" in capsys.readouterr().err


def test_an_in_process_drive_is_the_same_whatever_threads_its_process_had() -> None:
    """Ray's worker processes start with one math thread, `--workers 1` with one per core:
    a drive is the same either way, as the README promises (the thread count changes the
    math's rounding, and seed 3000542's drive with it: a cone hit on one thread)."""
    threads = torch.get_num_threads()
    drives = []
    try:
        for count in (2, 1):
            torch.set_num_threads(count)
            drives.append(run_in_process(RunSpec("embedded_vla", 3000542))["ego"])
            # What makes it so on any machine (whether a thread count changes this seed's
            # drive depends on the CPU and the math library).
            assert torch.get_num_threads() == DRIVE_THREADS
    finally:
        torch.set_num_threads(threads)
    assert drives[0] == drives[1]
