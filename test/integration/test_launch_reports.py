"""`alpamayo-ros launch` tells a person why: WARN/ERROR diagnostics as they change."""

from __future__ import annotations

import subprocess
import sys


def test_launch_prints_each_warning_as_it_changes(ros_domain: int) -> None:
    """Without a camera driver the VLA node's cameras and odometry are silent and the
    control bridge waits for a plan: both say so through the launcher's own output."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alpamayo_ros.cli",
            "launch",
            "--nodes",
            "control_bridge,vla_inference",
            "--duration",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "diagnostic" in line]
    vla = [line for line in lines if "/vla_inference:" in line]
    assert any("ERROR" in line and "silent (nothing received" in line for line in vla), lines
    bridge = [line for line in lines if "/control_bridge:" in line]
    assert any("WARN" in line and "waiting" in line for line in bridge), lines
    # Reported when it changes, not every second (the silence grows by a second each time,
    # so the VLA's lines may change; the bridge's wait does not).
    assert len(bridge) == 1, bridge
