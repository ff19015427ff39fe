"""The launch_ros file and the process launcher start the same graph.

launch_ros is not installable here, so the launch file is checked statically (it parses,
and builds its nodes from alpamayo_ros.graph); it is executed when launch_ros is importable.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
from pathlib import Path

import pytest

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.graph import (
    DEFAULT_GRAPH,
    LAUNCH_ARGUMENTS,
    NODES,
    OUTLIVES_ALL,
    node_names,
    respawn_delay_s,
    select_nodes,
)
from alpamayo_ros.launcher import ros_arguments
from alpamayo_ros.resources import PACKAGE, repository_root
from alpamayo_ros.topic_map import GRAPH_ODOMETRY

LAUNCH_FILE = repository_root() / "launch" / "alpamayo.launch.py"


def imported_names(tree: ast.Module, module: str) -> set[str]:
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
    }


def string_arguments_of(module_name: str, *methods: str) -> set[str]:
    """First string argument of every call to `methods` in a module's source."""
    source = Path(importlib.import_module(module_name).__file__).read_text()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in methods
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
        ):
            found.add(node.args[1].value)
    return found


def called_names(module_name: str) -> set[str]:
    """Names of the functions and methods a module's source calls."""
    source = Path(importlib.import_module(module_name).__file__).read_text()
    return {
        node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
    }


def test_launch_file_builds_its_nodes_from_the_graph_module() -> None:
    tree = ast.parse(LAUNCH_FILE.read_text(), str(LAUNCH_FILE))
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    graph_names = imported_names(tree, "alpamayo_ros.graph")
    assert {"select_nodes", "LAUNCH_ARGUMENTS"} <= graph_names
    assert "PACKAGE" in imported_names(tree, "alpamayo_ros.resources")
    assert "load_parameter_file" in imported_names(tree, "alpamayo_ros.parameters")
    assert "Node" in imported_names(tree, "launch_ros.actions")


def test_every_node_is_an_installed_console_entry_point() -> None:
    scripts = {
        entry.name: entry.value
        for entry in importlib.metadata.distribution(PACKAGE).entry_points
        if entry.group == "console_scripts"
    }
    for spec in NODES:
        assert scripts.get(spec.executable) == spec.entry_point
        module_name, function = spec.entry_point.split(":")
        assert callable(getattr(importlib.import_module(module_name), function))


def test_remappings_name_topics_the_node_really_uses() -> None:
    publishing = ("create_publisher", "create_lifecycle_publisher", "create_subscription")
    for spec in NODES:
        topics = string_arguments_of(spec.module, *publishing)
        # A node that owns the sensors publishes through the shared sensor output.
        if "SensorOutput" in called_names(spec.module):
            topics |= string_arguments_of("alpamayo_ros.ros.sensor_output", *publishing)
        # A node that takes its inputs through the topic map subscribes to the map's
        # default names (those the graph remaps) when no map file is given.
        if {"for_node", "odometry_topic"} & called_names(spec.module):
            topics.add(GRAPH_ODOMETRY)
        for source, target in spec.remappings:
            assert source in topics, f"{spec.name} remaps {source!r} but never uses it"
            assert target.startswith("/"), target


def test_process_launcher_passes_name_parameters_and_remappings(tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    for spec in NODES:
        arguments = ros_arguments(spec, params, use_sim_time=True, log_level="debug")
        assert arguments[0] == "--ros-args"
        pairs = list(zip(arguments[1::2], arguments[2::2], strict=False))
        assert ("-r", f"__node:={spec.name}") in pairs
        assert ("--params-file", str(params)) in pairs
        assert ("-p", "use_sim_time:=true") in pairs
        assert ("--log-level", "debug") in pairs
        for source, target in spec.remappings:
            assert ("-r", f"{source}:={target}") in pairs


def test_launch_arguments_are_declared_by_both_launchers() -> None:
    assert set(LAUNCH_ARGUMENTS) == {
        "params_file",
        "use_sim_time",
        "log_level",
        "nodes",
        "foxglove",
        "respawn",
        "respawn_delay",
    }
    source = (repository_root() / "alpamayo_ros" / "cli.py").read_text()
    for name in LAUNCH_ARGUMENTS:
        assert f"--{name.replace('_', '-')}" in source


def test_launch_description_when_launch_ros_is_available() -> None:
    pytest.importorskip("launch_ros", reason="launch_ros is not installable from PyPI")
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch_ros.actions import Node

    from launch import LaunchContext

    description = PythonLaunchDescriptionSource(str(LAUNCH_FILE)).get_launch_description(
        LaunchContext()
    )
    context = LaunchContext()
    for argument in description.entities[: len(LAUNCH_ARGUMENTS)]:
        argument.execute(context)
    nodes = description.entities[-1].execute(context)
    assert all(isinstance(node, Node) for node in nodes)
    bridge_first = sorted(NODES, key=lambda spec: spec.name != OUTLIVES_ALL)
    assert [node.node_executable for node in nodes] == [spec.executable for spec in bridge_first]


def test_node_selection_keeps_graph_order_and_names_unknown_nodes() -> None:
    assert select_nodes("") == DEFAULT_GRAPH
    assert "simulator" not in {spec.name for spec in DEFAULT_GRAPH}, "only when named"
    assert [spec.name for spec in select_nodes("simulator")] == ["simulator"]
    chosen = select_nodes(" diffusion_planner,vla_inference ")
    assert [spec.name for spec in chosen] == ["vla_inference", "diffusion_planner"]
    with pytest.raises(ConfigurationError, match=r"unknown node\(s\) lidar \(known: camera_driver"):
        select_nodes("vla_inference,lidar")


def test_the_foxglove_argument_adds_the_bridge_to_any_selection() -> None:
    assert "foxglove_bridge" not in {spec.name for spec in DEFAULT_GRAPH}, "only when asked"
    with_bridge = select_nodes("", "true")
    assert with_bridge == (*DEFAULT_GRAPH, NODES[-1]) and NODES[-1].name == "foxglove_bridge"
    assert [spec.name for spec in select_nodes("simulator", "True")] == [
        "simulator",
        "foxglove_bridge",
    ]
    with pytest.raises(ConfigurationError, match="foxglove must be true or false"):
        select_nodes("", "yes")


def test_respawn_names_nodes_of_the_graph_and_a_delay_in_seconds() -> None:
    assert node_names("") == frozenset()
    assert node_names(LAUNCH_ARGUMENTS["respawn"]) == {OUTLIVES_ALL}
    with pytest.raises(ConfigurationError, match="unknown node"):
        node_names("planner")
    assert respawn_delay_s("0.5") == 0.5
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(ConfigurationError, match="respawn_delay"):
            respawn_delay_s(bad)
