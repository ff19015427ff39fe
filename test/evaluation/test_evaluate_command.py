"""`alpamayo-ros evaluate`: seeds, scenario types, JSON output, clear errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from alpamayo_ros.cli import main, parse_seeds
from alpamayo_ros.evaluation.metrics import METRICS


def test_seed_lists_and_ranges() -> None:
    assert parse_seeds("11,12,13") == [11, 12, 13]
    assert parse_seeds("5-7,9") == [5, 6, 7, 9]
    for bad in ("5-3", "", "a-b", "-1", "1-"):
        with pytest.raises(argparse.ArgumentTypeError, match="seed"):
            parse_seeds(bad)


def test_json_summary_overall_and_per_type(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate", "--seeds", "11,12,13", "--backends", "constant_velocity", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)["summary"]["constant_velocity"]
    assert summary["overall"]["count"] == 3
    assert set(METRICS) <= set(summary["overall"])
    assert sum(group["count"] for name, group in summary.items() if name != "overall") == 3


def test_scenario_types_pick_the_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["evaluate", "--seeds", "11,12", "--types", "cut_in,traffic_light"]
    assert main([*arguments, "--backends", "constant_velocity", "--json", "--per-sample"]) == 0
    report = json.loads(capsys.readouterr().out)
    samples = report["samples"]["constant_velocity"]
    assert sorted((s["seed"], s["scenario_type"]) for s in samples) == [
        (11, "cut_in"),
        (11, "traffic_light"),
        (12, "cut_in"),
        (12, "traffic_light"),
    ]


def test_unknown_scenario_type_and_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--seeds", "1", "--types", "rally"]) == 2
    assert "unknown scenario type(s) rally" in capsys.readouterr().err
    assert main(["evaluate", "--seeds", "1", "--backends", "gpt5"]) == 2
    assert "unknown backend 'gpt5'" in capsys.readouterr().err


def test_weights_file_goes_to_the_embedded_vla(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"{tmp_path}/missing.safetensors"
    arguments = ["evaluate", "--seeds", "1", "--weights", missing, "--json"]
    assert main([*arguments, "--backends", "constant_velocity"]) == 0  # not a weights backend
    capsys.readouterr()
    assert main([*arguments, "--backends", "embedded_vla"]) == 2
    assert missing in capsys.readouterr().err


def test_the_report_draws_the_figures_per_scenario_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["evaluate", "--seeds", "11-14", "--backends", "constant_velocity"]
    assert main([*arguments, "--report", str(tmp_path / "report")]) == 0
    assert "report:" in capsys.readouterr().err
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<th>constant_velocity</th>" in page and "min ade 6 4s" in page
    image = cv2.imdecode(
        np.frombuffer((tmp_path / "report" / "by_type.png").read_bytes(), np.uint8),
        cv2.IMREAD_COLOR,
    )
    assert image is not None and image.shape[0] > 300 and image.std() > 20.0
