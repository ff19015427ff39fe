"""A bad parameter file or an unknown backend fails at start-up with a clear message."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from alpamayo_ros.graph import default_parameter_file


def run(*arguments: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, timeout=timeout_s
    )


def bad_file(tmp_path: Path, node: str, name: str, value: object) -> Path:
    document = yaml.safe_load(default_parameter_file().read_text())
    document[node]["ros__parameters"][name] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("module", "arguments", "message"),
    [
        (
            "alpamayo_ros.nodes.vla_inference",
            ["-p", "backend:=gpt5"],
            "vla_inference.backend: unknown value 'gpt5' (known: alpamayo_r1, alpamayo1_5, "
            "constant_velocity",
        ),
        (
            "alpamayo_ros.nodes.diffusion_planner",
            ["-p", "num_samples:=0"],
            "diffusion_planner.num_samples: must be a positive number",
        ),
        (
            "alpamayo_ros.nodes.camera_driver",
            ["-p", "rate_hz:=fast"],
            "camera_driver.rate_hz:",
        ),
        (
            "alpamayo_ros.nodes.camera_driver",
            ["-p", "rig_file:=/nonexistent/rig.yaml"],
            "/nonexistent/rig.yaml: rig file not found",
        ),
        (
            "alpamayo_ros.nodes.camera_driver",
            [
                "-p",
                "source:=device",
                "-p",
                "device.devices:=[/dev/video97, /dev/video98, /dev/video96, /dev/video95]",
            ],
            "camera cross_left_120fov: cannot open device '/dev/video97'",
        ),
    ],
)
def test_node_refuses_to_start(
    ros_domain: int, module: str, arguments: list[str], message: str
) -> None:
    result = run("-m", module, "--ros-args", *arguments)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_node_refuses_a_parameter_file_with_a_wrong_type(ros_domain: int, tmp_path: Path) -> None:
    params = bad_file(tmp_path, "control_bridge", "rate_hz", "fifty")
    result = run(
        "-m", "alpamayo_ros.nodes.control_bridge", "--ros-args", "--params-file", str(params)
    )
    assert result.returncode == 2
    assert "control_bridge.rate_hz" in result.stderr and "Traceback" not in result.stderr


def test_launcher_validates_before_starting_any_node(ros_domain: int, tmp_path: Path) -> None:
    params = bad_file(tmp_path, "vla_inference", "backend", "alpamayo_r1_99b")
    for command in ("launch", "demo"):
        result = run("-m", "alpamayo_ros.cli", command, "--params-file", str(params))
        assert result.returncode == 2
        assert f"{params}: vla_inference.backend: unknown value 'alpamayo_r1_99b'" in result.stderr
        assert "started" not in result.stdout


def test_check_config(tmp_path: Path) -> None:
    good = run("-m", "alpamayo_ros.cli", "check-config", str(default_parameter_file()))
    assert good.returncode == 0 and ": ok (camera_driver, vla_inference" in good.stdout
    bad = run(
        "-m",
        "alpamayo_ros.cli",
        "check-config",
        str(bad_file(tmp_path, "camera_driver", "widht", 5)),
    )
    assert bad.returncode == 2 and "camera_driver.widht: unknown parameter" in bad.stderr


def test_the_vla_node_starts_without_its_detectors_where_the_rig_lacks_their_cameras(
    ros_domain: int, tmp_path: Path
) -> None:
    """A rig file calibrating none of the front cameras: the node warns, names why, and
    runs (the model's own path; the lane, the light and the clear road are aids, not
    requirements)."""
    packaged = yaml.safe_load((Path(default_parameter_file()).parent / "rig.yaml").read_text())
    rig = tmp_path / "rig.yaml"
    rig.write_text(
        yaml.safe_dump({"cameras": {"cross_left_120fov": packaged["cameras"]["cross_left_120fov"]}})
    )
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alpamayo_ros.nodes.vla_inference",
            "--ros-args",
            "-p",
            f"rig_file:={rig}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    # A node that never warns is ended, so the read below ends too.
    deadline = threading.Timer(60.0, node.kill)
    deadline.start()
    try:
        assert node.stderr is not None
        lines = [""]
        for line in node.stderr:  # until the third warning: the node got past start-up
            lines.append(line)
            if "no free space detection" in line:
                break
        missing = "no calibration for camera(s) front_tele_30fov, front_wide_120fov"
        assert missing in lines[-1]
        for what in ("lane", "traffic light"):
            assert any(f"no {what} detection" in line and missing in line for line in lines)
        assert node.poll() is None, "".join(lines)
    finally:
        deadline.cancel()
        node.terminate()
        node.wait(timeout=30)
