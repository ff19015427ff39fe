"""The README's first command runs the demo: it must show plans on a machine where the
graph takes seconds to start (it waits for the first plan before it counts)."""

from __future__ import annotations

import subprocess
import sys


def test_demo_shows_outputs_from_the_first_plan(ros_domain: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alpamayo_ros.cli", "demo", "--duration", "2", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in result.stdout.splitlines()
        if line.startswith("  /")
    }
    # About 2 s of 10 Hz plans, all of them after the first plan came out.
    assert counts["/planning/trajectory"] >= 10, result.stdout
    assert counts["/vla/reasoning"] >= 5 and counts["/control/command"] >= 50, result.stdout
