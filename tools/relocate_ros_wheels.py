"""Point the ROS 2 wheels' CMake exports at this virtual environment.

The ROS 2 wheels on PyPI are built under /opt/python/cp311-cp311 and their CMake export files
keep that prefix literally (Python headers, numpy headers, install prefix), so building an
interface package against them fails unless those strings name this environment instead.
Idempotent: run it after every install of ROS wheels.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import numpy

BUILD_PREFIX = "/opt/python/cp311-cp311"


def replacements(prefix: Path) -> list[tuple[str, str]]:
    """Longest build paths first, so the prefix rule does not pre-empt the specific ones."""
    return [
        (f"{BUILD_PREFIX}/include/python3.11", sysconfig.get_paths()["include"]),
        (
            f"{BUILD_PREFIX}/lib/python3.11/site-packages/numpy/_core/include",
            numpy.get_include(),
        ),
        (BUILD_PREFIX, str(prefix)),
    ]


def relocate(prefix: Path) -> int:
    """Rewrite every text file under <prefix>/share that names the build prefix."""
    rules = replacements(prefix)
    changed = 0
    for path in (prefix / "share").rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if BUILD_PREFIX not in text:
            continue
        for old, new in rules:
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
        changed += 1
    return changed


if __name__ == "__main__":
    count = relocate(Path(sys.prefix))
    print(f"relocate_ros_wheels: {count} file(s) now point at {sys.prefix}")
