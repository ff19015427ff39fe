"""`alpamayo-ros launch` tells a person why: WARN/ERROR diagnostics as they change."""

from __future__ import annotations

import signal
import subprocess
import sys


def test_launch_prints_each_warning_as_it_changes(ros_domain: int) -> None:
    """Without a camera driver the VLA node's cameras and odometry are silent and the
    control bridge waits for a plan: both say so through the launcher's own output. Read
    as it comes, until both have (the VLA node's start-up, torch and its weights, takes a
    while on a loaded machine), then Ctrl-C ends the launch, status 0."""
    launch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alpamayo_ros.cli",
            "launch",
            "--nodes",
            "control_bridge,vla_inference",
            "--duration",
            "90",  # the bound, should the lines never come
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        # As from a terminal: a shell starts a background job (this suite under `cmd &`)
        # with SIGINT ignored, and the command would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert launch.stderr is not None
    lines: list[str] = []

    def said(node: str, level: str, words: str) -> bool:
        return any(f"/{node}:" in x and level in x and words in x for x in lines)

    try:
        for line in launch.stderr:
            if "diagnostic" in line:
                lines.append(line)
            if said("vla_inference", "ERROR", "silent (nothing received") and said(
                "control_bridge", "WARN", "waiting"
            ):
                break
        # Two seconds more: a bridge whose unchanged wait were reported again would be.
        try:
            launch.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            launch.send_signal(signal.SIGINT)
        rest = launch.communicate(timeout=60)[1]
    finally:
        launch.kill()
    lines += [line for line in rest.splitlines() if "diagnostic" in line]
    assert launch.returncode == 0, rest
    assert said("vla_inference", "ERROR", "silent (nothing received"), lines
    assert said("control_bridge", "WARN", "waiting"), lines
    # Reported when it changes, not every second (the silence grows by a second each time,
    # so the VLA's lines may change; the bridge's wait does not).
    bridge = [line for line in lines if "/control_bridge:" in line]
    assert len(bridge) == 1, bridge
