"""The closed-loop report: an HTML page with a figure per run, drawn from real drives."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from alpamayo_ros.evaluation.report import ReportError, drive_figure, write_report
from alpamayo_ros.simulate import EXPERT, RunSpec, run_in_process, summary_by_driver

# A cyclist: the expert passes it; constant velocity, its reasoning keeping the lane, stays
# behind it (the planner keeps off what the cameras show in the lane) and falls short.
SEED = 3000003


@pytest.fixture(scope="module")
def runs() -> list[dict[str, Any]]:
    return [run_in_process(RunSpec(driver, SEED)) for driver in (EXPERT, "constant_velocity")]


def decoded(png: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a PNG"
    return image


def test_the_report_shows_each_run_and_the_summary(
    runs: list[dict[str, Any]], tmp_path: Path
) -> None:
    index = write_report(runs, summary_by_driver(runs), tmp_path / "report", "closed loop")
    page = index.read_text()
    for run in runs:
        image = tmp_path / "report" / f"{run['driver']}_{SEED}.png"
        assert f"src='{image.name}'" in page
        pixels = decoded(image.read_bytes())
        assert pixels.shape[0] > 300 and pixels.shape[1] > 800
        assert pixels.std() > 20.0  # drawn, not blank
    assert "<th>expert</th><th>constant_velocity</th>" in page
    (why,) = runs[1]["metrics"]["failures"]  # why the floor failed: short of the expert
    assert why.startswith("progress 0.") and html.escape(why) in page
    # The floor's reasoning, once: it never changes; timed as the figure is, and without
    # a meta-action column, which a closed-loop result does not have.
    assert page.count("the baseline assumes the scene does not change") == 1
    assert "<th>t0 (s into the drive; its stamp is 1 s more)</th>" in page
    assert "meta-action</th>" not in page
    assert page.count("<section>") == 2


def test_different_drives_give_different_figures(runs: list[dict[str, Any]]) -> None:
    expert, floor = (decoded(drive_figure(run)) for run in runs)
    assert expert.shape == floor.shape
    changed = np.any(expert != floor, axis=-1).mean()
    assert changed > 0.01, f"only {changed:.2%} of the pixels differ"


def test_what_cannot_be_drawn_is_refused(runs: list[dict[str, Any]], tmp_path: Path) -> None:
    without_drive = {key: value for key, value in runs[0].items() if key != "ego"}
    with pytest.raises(ReportError, match=f"run of seed {SEED} has no drive"):
        drive_figure(without_drive)
    with pytest.raises(ReportError, match="no runs"):
        write_report([], {}, tmp_path)
