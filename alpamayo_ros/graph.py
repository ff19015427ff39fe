"""The node graph: names, executables, topics and remappings, in one place.

launch/alpamayo.launch.py (launch_ros) and alpamayo_ros.launcher (plain processes, for machines
without launch_ros) both build the graph from this module and config/alpamayo.yaml, so the two
ways of starting the stack cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.resources import config_file


class Topics:
    """Graph-level topic names (nodes use the relative names on the left of `REMAPPINGS`)."""

    ODOMETRY = "/localization/odometry"
    REASONING = "/vla/reasoning"
    META_ACTION = "/vla/meta_action"
    CONDITIONING = "/vla/conditioning"
    TRAJECTORY = "/planning/trajectory"
    CANDIDATES = "/planning/candidates"
    CONTROL_COMMAND = "/control/command"
    CMD_VEL = "/control/cmd_vel"
    MARKERS = "/visualisation/markers"
    PATH = "/visualisation/path"
    DIAGNOSTICS = "/diagnostics"
    # Simulated time (rosgraph_msgs/Clock): published by the simulator, a lock-step camera
    # driver or a bag player, followed by every node on use_sim_time.
    CLOCK = "/clock"
    GROUND_TRUTH = "/simulation/ground_truth"
    # The route ahead as text (std_msgs/String, latched), for a model that takes it.
    NAVIGATION = "/planning/navigation_text"
    # The speed the car keeps where the reasoning tracks the set speed (std_msgs/Float64,
    # m/s, latched; 0: not known): a driver's cruise setting, or the road's limit.
    SET_SPEED = "/planning/set_speed"


@dataclass(frozen=True)
class NodeSpec:
    """How to start one node: its name is also its section in the parameter file."""

    name: str
    module: str
    remappings: tuple[tuple[str, str], ...]
    # In the graph started when no node is named; the simulator replaces the camera
    # driver only when asked for.
    default: bool = True

    @property
    def executable(self) -> str:
        """The console entry point (setup.py) and `ros2 run` executable name."""
        return self.name

    @property
    def entry_point(self) -> str:
        return f"{self.module}:main"


NODES: tuple[NodeSpec, ...] = (
    NodeSpec(
        "camera_driver",
        "alpamayo_ros.nodes.camera_driver",
        # The trajectory answers the frames in lock-step (the candidates, when no plan was
        # feasible).
        (
            ("odometry", Topics.ODOMETRY),
            ("trajectory", Topics.TRAJECTORY),
            ("candidates", Topics.CANDIDATES),
            # A recording's set speed, as it was logged (a bag that holds it).
            ("set_speed", Topics.SET_SPEED),
        ),
    ),
    NodeSpec(
        "simulator",
        "alpamayo_ros.nodes.simulator",
        (
            ("odometry", Topics.ODOMETRY),
            ("command", Topics.CONTROL_COMMAND),
            # The expert's plans out for the ceiling; the stack's plans in, with their
            # reasoning, for their consistency.
            ("trajectory", Topics.TRAJECTORY),
            ("reasoning", Topics.REASONING),
            ("candidates", Topics.CANDIDATES),
            ("ground_truth", Topics.GROUND_TRUTH),
            # The scenario's set speed, as a driver's cruise setting.
            ("set_speed", Topics.SET_SPEED),
        ),
        default=False,
    ),
    NodeSpec(
        "vla_inference",
        "alpamayo_ros.nodes.vla_inference",
        (
            ("odometry", Topics.ODOMETRY),
            ("reasoning", Topics.REASONING),
            ("meta_action", Topics.META_ACTION),
            ("conditioning", Topics.CONDITIONING),
            ("navigation_text", Topics.NAVIGATION),
        ),
    ),
    NodeSpec(
        "diffusion_planner",
        "alpamayo_ros.nodes.diffusion_planner",
        (
            ("conditioning", Topics.CONDITIONING),
            ("trajectory", Topics.TRAJECTORY),
            ("candidates", Topics.CANDIDATES),
            ("set_speed", Topics.SET_SPEED),
        ),
    ),
    NodeSpec(
        "control_bridge",
        "alpamayo_ros.nodes.control_bridge",
        (
            ("trajectory", Topics.TRAJECTORY),
            ("odometry", Topics.ODOMETRY),
            ("command", Topics.CONTROL_COMMAND),
            ("cmd_vel", Topics.CMD_VEL),
        ),
    ),
    NodeSpec(
        "visualiser",
        "alpamayo_ros.nodes.visualiser",
        (
            ("candidates", Topics.CANDIDATES),
            ("reasoning", Topics.REASONING),
            ("conditioning", Topics.CONDITIONING),
            ("markers", Topics.MARKERS),
            ("path", Topics.PATH),
        ),
    ),
    # Serves whatever topics exist, under their own names: nothing to remap. Started with
    # the launch argument `foxglove`.
    NodeSpec("foxglove_bridge", "alpamayo_ros.nodes.foxglove_bridge", (), default=False),
)

# What starts when no node is named: the stack on the camera driver's source.
DEFAULT_GRAPH: tuple[NodeSpec, ...] = tuple(spec for spec in NODES if spec.default)

# The safety node: started first and stopped last, so that whatever else dies or stops,
# something keeps commanding the car (a stop, when its inputs go).
OUTLIVES_ALL = "control_bridge"

# Launch arguments of both launchers, with their defaults (strings, as launch passes them).
# rcl's severities, as `--ros-args --log-level` takes them.
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
LAUNCH_ARGUMENTS: dict[str, str] = {
    "params_file": "",
    "use_sim_time": "false",
    "log_level": "info",
    "nodes": "",  # comma-separated node names; empty starts every node
    "foxglove": "false",  # also serve the graph to Foxglove/Lichtblick (foxglove_bridge)
    "respawn": OUTLIVES_ALL,  # comma-separated nodes restarted when they exit; "" none
    "respawn_delay": "1.0",  # seconds between a node's exit and its restart
}


def node_names(names: str) -> frozenset[str]:
    """The node names in a comma-separated list, each checked against the graph."""
    wanted = frozenset(name.strip() for name in names.split(",") if name.strip())
    known = [spec.name for spec in NODES]
    unknown = sorted(wanted - set(known))
    if unknown:
        raise ConfigurationError(
            f"unknown node(s) {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return wanted


def select_nodes(names: str, foxglove: str = "false") -> tuple[NodeSpec, ...]:
    """The nodes named in a comma-separated list (the default graph for an empty one), in
    graph order, e.g. everything but the camera driver to feed the graph from a bag; with
    `foxglove` "true", the Foxglove bridge too."""
    wanted = node_names(names) or frozenset(spec.name for spec in DEFAULT_GRAPH)
    if foxglove.strip().lower() not in ("true", "false"):
        raise ConfigurationError(f"foxglove must be true or false, got {foxglove!r}")
    if foxglove.strip().lower() == "true":
        wanted |= {"foxglove_bridge"}
    return tuple(spec for spec in NODES if spec.name in wanted)


def log_level(text: str) -> str:
    """A launch argument's log level, checked before any node starts (a node given one rcl
    does not know exits at once, and a respawned one again and again)."""
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigurationError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return level


def respawn_delay_s(text: str) -> float:
    try:
        delay = float(text)
    except ValueError:
        delay = -1.0
    if not 0.0 <= delay < math.inf:
        raise ConfigurationError(f"respawn_delay must be seconds >= 0, got {text!r}")
    return delay


def default_parameter_file() -> Path:
    return config_file("alpamayo.yaml")


def fastdds_profile_file() -> Path:
    """Shared-memory transport with segments large enough for camera images (see README)."""
    return config_file("fastdds_shm.xml")
