"""The code follows the project's lint rules and formatting (ruff.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alpamayo_ros.resources import repository_root

RUFF = Path(sys.prefix) / "bin" / "ruff"


def test_lint() -> None:
    result = subprocess.run(
        [str(RUFF), "check", "--no-cache", "."],
        cwd=repository_root(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_format() -> None:
    result = subprocess.run(
        [str(RUFF), "format", "--check", "--no-cache", "."],
        cwd=repository_root(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
