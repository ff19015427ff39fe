"""Imports point down the layers of ../shared/ARCHITECTURE.md, and the pure layers type-check.

A module may import its own subpackage and any lower layer, never a higher one or another
subpackage of its own layer. Imports inside functions count too: a lazy import is still a
dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from alpamayo_ros.resources import repository_root

PACKAGE_DIR = repository_root() / "alpamayo_ros"
MYPY = Path(sys.prefix) / "bin" / "mypy"

# Lowest first. Each name is a subpackage or a top-level module of alpamayo_ros.
LAYERS: tuple[tuple[str, ...], ...] = (
    # Errors, where data files are, the command lines' number types: used everywhere.
    ("configuration", "resources", "arguments"),
    ("core",),  # pure domain logic and types
    ("perception",),  # classical perception beside the model: the lane in the cameras
    ("pipeline",),  # one cycle: inference, planning, control steps
    ("world",),  # the synthetic driving world
    ("model",),  # the embedded network, trained on the world
    ("backends", "sensors"),  # model and camera plugins
    ("evaluation",),  # offline metrics and benchmarks over backends and the world
    ("topic_map",),  # where a user's inputs are
    ("graph", "parameters"),  # node graph and parameter schema
    ("ros",),  # message conversions and the node runtime
    ("visualisation", "replay"),  # RViz markers, rosbag2 bags
    ("nodes",),  # thin rclpy nodes
    ("launcher",),
    ("simulate",),  # closed-loop runs of the graph, on Ray
    ("scenario_file",),  # scenario files: drives and the conditions they must meet
    ("demo",),  # the demo: one closed-loop scenario recorded, scored and reported
    ("cli",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# Modules that no layer may import, and that may import everything: the package's
# own __init__.
UNRANKED = {"__init__"}


def unit_of(path: Path, package_dir: Path) -> str:
    return path.relative_to(package_dir).with_suffix("").parts[0]


def imported_units(path: Path) -> set[tuple[str, int]]:
    """(unit, line) of every alpamayo_ros import in a file, including relative ones."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "alpamayo_ros":
                modules = [f"alpamayo_ros.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}:{node.lineno}: use absolute imports")
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "alpamayo_ros" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def layer_violations(package_dir: Path) -> list[str]:
    violations = []
    for path in sorted(package_dir.rglob("*.py")):
        source = unit_of(path, package_dir)
        if source in UNRANKED:
            continue
        assert source in RANK, f"{path}: add {source!r} to LAYERS"
        for target, line in sorted(imported_units(path)):
            assert target in RANK, f"{path}:{line}: unknown unit {target!r}"
            if target != source and RANK[target] >= RANK[source]:
                violations.append(
                    f"{path.relative_to(package_dir)}:{line}: {source} (layer {RANK[source]}) "
                    f"imports {target} (layer {RANK[target]})"
                )
    return violations


def test_imports_point_down_the_layers() -> None:
    assert len(list(PACKAGE_DIR.rglob("*.py"))) > 50
    assert layer_violations(PACKAGE_DIR) == []


def test_a_wrong_import_is_caught(tmp_path: Path) -> None:
    """The check itself: core importing a node (lazily) and pipeline importing a backend."""
    package = tmp_path / "alpamayo_ros"
    for name, text in {
        "core/contract.py": "from alpamayo_ros.configuration import ConfigurationError\n",
        "core/bad.py": "def f():\n    from alpamayo_ros.nodes import vla_inference\n",
        "pipeline/bad.py": "import alpamayo_ros.backends.embedded\n",
        "nodes/fine.py": "from alpamayo_ros.pipeline import planning\n",
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    violations = layer_violations(package)
    assert len(violations) == 2, violations
    assert "core/bad.py:2: core (layer 1) imports nodes" in violations[0]
    assert "pipeline/bad.py:1: pipeline (layer 3) imports backends" in violations[1]


@pytest.mark.skipif(not MYPY.is_file(), reason="mypy is installed by make setup")
def test_pure_layers_type_check() -> None:
    """mypy --strict over core/, pipeline/, world/ and model/ (the files named in setup.cfg)."""
    result = subprocess.run(
        [str(MYPY), "--no-incremental"],
        cwd=repository_root(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
