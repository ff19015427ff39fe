"""The repository builds in a colcon workspace the way the README tells ROS users to.

Uses the ROS 2 Jazzy wheels of this environment as the underlay (instead of /opt/ros).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from alpamayo_ros.graph import NODES
from alpamayo_ros.resources import PACKAGE, repository_root

COLCON = Path(sys.prefix) / "bin" / "colcon"
PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"


def tracked_files() -> list[str]:
    result = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=repository_root(),
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if (repository_root() / line).is_file()]


def test_colcon_builds_both_packages_and_installs_the_nodes(tmp_path: Path) -> None:
    source = tmp_path / "src" / PACKAGE
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repository_root() / name, source / name)
    environment = {
        **os.environ,
        "AMENT_PREFIX_PATH": sys.prefix,
        "CMAKE_PREFIX_PATH": sys.prefix,
    }
    build = subprocess.run(
        [
            str(COLCON),
            "build",
            "--base-paths",
            "src",
            f"src/{PACKAGE}/msg",
            "--cmake-args",
            "-DBUILD_TESTING=OFF",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "2 packages finished" in build.stdout

    install = tmp_path / "install"
    share = install / PACKAGE / "share" / PACKAGE
    assert (share / "launch" / "alpamayo.launch.py").is_file()
    assert (share / "config" / "alpamayo.yaml").is_file()
    assert (install / "alpamayo_ros_msgs" / "share" / "alpamayo_ros_msgs" / "msg").is_dir()
    # Every module is installed: a subpackage find_packages misses would only be found
    # below through this environment's editable install, never on a ROS user's machine.
    site_packages = install / PACKAGE / "lib" / PYTHON / "site-packages"
    modules = [name for name in tracked_files() if name.startswith(f"{PACKAGE}/")]
    modules = [name for name in modules if name.endswith(".py")]
    assert modules
    assert [name for name in modules if not (site_packages / name).is_file()] == []
    executables = install / PACKAGE / "lib" / PACKAGE  # where `ros2 run` looks
    for spec in NODES:
        assert (executables / spec.executable).is_file(), spec.executable

    # The installed node runs from the workspace (own messages, own share directory).
    workspace_env = {
        **environment,
        "AMENT_PREFIX_PATH": os.pathsep.join(
            [str(install / PACKAGE), str(install / "alpamayo_ros_msgs"), sys.prefix]
        ),
        "PYTHONPATH": os.pathsep.join(
            str(install / package / "lib" / PYTHON / "site-packages")
            for package in (PACKAGE, "alpamayo_ros_msgs")
        ),
    }
    run = subprocess.run(
        [
            str(executables / "vla_inference"),
            "--ros-args",
            "-p",
            "backend:=missing",
        ],
        env=workspace_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "vla_inference.backend: unknown value 'missing'" in run.stderr

    # The command line runs from the install in another directory: the rig and parameter
    # files are found through the installed share directory, not this source tree.
    #
    # This environment also holds an editable install of the source tree (make setup). It
    # does not shadow the workspace: PYTHONPATH entries come before the venv's site-packages
    # on sys.path, and setuptools appends its editable finder to sys.meta_path after the
    # PathFinder, so it is only asked for names the install lacks (every module is installed,
    # checked above). The venv's site-packages stay on sys.path for numpy, torch and rclpy,
    # as /usr/lib/python3 does for a ROS user, so -I or -S cannot be used. The check below
    # proves it: the package, the modules the command line loads, the messages, the
    # distribution metadata the console script reads and the config files all come from the
    # install.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = install / PACKAGE / "bin" / "alpamayo-ros"
    if not command.is_file():
        command = executables / "alpamayo-ros"  # install_scripts of setup.cfg
    assert command.is_file()
    origins = (
        "import json, sys, importlib.metadata as metadata\n"
        "import alpamayo_ros, alpamayo_ros.cli, alpamayo_ros_msgs.msg\n"
        "import alpamayo_ros.graph as graph, alpamayo_ros.resources as resources\n"
        "import alpamayo_ros.model.weights as weights\n"
        "print(json.dumps({\n"
        "    'modules': sorted(m.__file__ for n, m in sys.modules.items()\n"
        "                      if n.split('.')[0] in ('alpamayo_ros', 'alpamayo_ros_msgs')\n"
        "                      and getattr(m, '__file__', None)),\n"
        "    'distribution': str(metadata.distribution('alpamayo-ros').locate_file('')),\n"
        "    'rig': str(resources.config_file('rig.yaml')),\n"
        "    'parameters': str(graph.default_parameter_file()),\n"
        "    'weights': str(weights.PACKAGED_WEIGHTS),\n"
        "}))\n"
    )
    where = subprocess.run(
        [sys.executable, "-c", origins],
        cwd=elsewhere,
        env=workspace_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr
    found = json.loads(where.stdout)
    assert len(found["modules"]) > 10
    outside = [name for name in found["modules"] if not Path(name).is_relative_to(install)]
    assert outside == []
    assert Path(found["distribution"]) == site_packages
    assert Path(found["rig"]) == share / "config" / "rig.yaml"
    assert Path(found["parameters"]) == share / "config" / "alpamayo.yaml"
    weights = Path(found["weights"])
    assert weights.is_relative_to(site_packages) and weights.is_file()

    def installed_command(*arguments: str) -> str:
        result = subprocess.run(
            [str(command), *arguments],
            cwd=elsewhere,
            env=workspace_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    evaluation = json.loads(
        installed_command(
            "evaluate", "--seeds", "2000000-2000001", "--backends", "constant_velocity", "--json"
        )
    )
    overall = evaluation["summary"]["constant_velocity"]["overall"]
    assert overall["count"] == 2 and overall["planned"] == 1.0, overall
    benchmark = installed_command("benchmark", "--backend", "constant_velocity", "--cycles", "2")
    total = [line.split() for line in benchmark.splitlines() if line.startswith("total")]
    assert len(total) == 1 and len(total[0]) == 3, benchmark
    assert all(float(value) > 0 for value in total[0][1:]), benchmark
