"""Parameter files for graphs under test: the packaged one with a few values changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from alpamayo_ros.graph import default_parameter_file

# For an acceleration bound so small that no sample is feasible: the planner's stand-off
# turned off too (its braking candidate would be a plan), and its braking bound within the
# acceleration bound, as start-up requires.
NO_STAND_OFF = {"stand_off_clearance_m": 0.0, "stand_off_max_deceleration": 1e-6}


def parameter_file(directory: Path, backend: str, **node_values: dict[str, Any]) -> Path:
    """The packaged parameters with `backend` for every node and, per node name, the
    values given (`vla_inference={"rate_hz": 5.0}`)."""
    document = yaml.safe_load(default_parameter_file().read_text())
    document["/**"]["ros__parameters"]["backend"] = backend
    for node, values in node_values.items():
        document.setdefault(node, {}).setdefault("ros__parameters", {}).update(values)
    path = directory / f"{backend}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path
