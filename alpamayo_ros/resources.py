"""Where the package's data files are: the installed share directory, or this source tree.

Every configuration file (parameters, rig, DDS profile, RViz) is found through here, so the
commands work the same from a source checkout, a pip install and a colcon install.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "alpamayo_ros"


def repository_root() -> Path:
    return Path(__file__).resolve().parent.parent


def share_directory() -> Path:
    """Installed share/alpamayo_ros in a colcon workspace, else this source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, KeyError, OSError):  # no ament index, or not installed in it
        return repository_root()


def config_file(name: str) -> Path:
    """A file of config/ (e.g. "rig.yaml") from the share directory."""
    return share_directory() / "config" / name
