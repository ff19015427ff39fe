"""The pure layers run on Python 3.10 with Ubuntu 22.04's libraries.

ROS 2 Humble and JetPack 6 (Jetson) are Ubuntu 22.04: Python 3.10, numpy 1.21, scipy 1.8,
OpenCV 4.5 and PyYAML 5.4. This test builds that environment once (build/py310, rebuilt
when the pins change) and runs the tests of everything that imports neither ROS nor
torch in it. It skips, and says so, where no Python 3.10 is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from alpamayo_ros.resources import repository_root

ROOT = repository_root()
ENVIRONMENT = ROOT / "build" / "py310"
# Ubuntu 22.04's versions (python3-numpy 1.21.5, python3-scipy 1.8.0, python3-opencv 4.5.4,
# python3-yaml 5.4.1), as wheels.
PINS = ("numpy==1.21.5", "scipy==1.8.0", "opencv-python-headless==4.5.4.60", "pytest")
# PyYAML 5.4.1 predates Python 3.10 wheels: built from source, which needs Cython < 3.
YAML_BUILD = ("cython<3", "wheel", "setuptools")
YAML = "pyyaml==5.4.1"
PURE_TESTS = (
    "test/core",
    "test/perception",
    "test/pipeline",
    "test/world",
    "test/sensors",
    "test/evaluation/test_closed_loop.py",
    "test/evaluation/test_metrics.py",
    "test/evaluation/test_latency.py",
    "test/test_topic_map.py",
    "test/test_parameters.py",
)
NEEDS_ROS = ("test/sensors/test_bag_source.py",)  # reads ROS message types


def python310() -> str | None:
    """A Python 3.10 that runs: pyenv's (whose shims refuse a version not selected), or
    the system's."""
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = [str(path) for path in sorted(pyenv.glob("3.10.*/bin/python3.10"))]
    candidates += [found for found in [shutil.which("python3.10")] if found]
    for candidate in candidates:
        check = subprocess.run([candidate, "-c", "pass"], capture_output=True)
        if check.returncode == 0:
            return candidate
    return None


def environment(interpreter: str) -> Path:
    """The Python 3.10 environment with the pins, built once per set of pins."""
    python = ENVIRONMENT / "bin" / "python"
    stamp = ENVIRONMENT / "pins.txt"
    wanted = "\n".join((*PINS, *YAML_BUILD, YAML))
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    shutil.rmtree(ENVIRONMENT, ignore_errors=True)
    subprocess.run([interpreter, "-m", "venv", str(ENVIRONMENT)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *PINS, *YAML_BUILD], check=True)
    subprocess.run([*pip, "--no-build-isolation", YAML], check=True)
    stamp.write_text(wanted)
    return python


def test_the_pure_layers_pass_under_python_310_with_ubuntu_22_04_libraries() -> None:
    interpreter = python310()
    if interpreter is None:
        pytest.skip("no Python 3.10 here (apt install python3.10, or pyenv install 3.10)")
    try:
        python = environment(interpreter)
    except subprocess.CalledProcessError as error:
        pytest.skip(f"the Python 3.10 environment could not be built (offline?): {error}")
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import sys, numpy, scipy, cv2, yaml; "
            "print(sys.version_info[:2], numpy.__version__, scipy.__version__, "
            "cv2.__version__, yaml.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert versions.split() == ["(3,", "10)", "1.21.5", "1.8.0", "4.5.4", "5.4.1"], versions
    ignores = [argument for path in NEEDS_ROS for argument in ("--ignore", path)]
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *PURE_TESTS, *ignores],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert " passed" in result.stdout
