"""Launch the alpamayo_ros graph: `ros2 launch alpamayo_ros alpamayo.launch.py`.

Nodes, remappings and launch arguments come from alpamayo_ros.graph, parameters from
config/alpamayo.yaml (or params_file:=...), exactly as `alpamayo-ros launch` uses them.
"""

import os

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from alpamayo_ros.graph import (
    LAUNCH_ARGUMENTS,
    OUTLIVES_ALL,
    default_parameter_file,
    log_level,
    node_names,
    respawn_delay_s,
    select_nodes,
)
from alpamayo_ros.launcher import dds_environment
from alpamayo_ros.parameters import load_parameter_file
from alpamayo_ros.resources import PACKAGE
from launch import LaunchDescription


def _nodes(context):
    params_file = LaunchConfiguration("params_file").perform(context) or str(
        default_parameter_file()
    )
    load_parameter_file(params_file)  # fail before starting anything, naming the problem
    use_sim_time = LaunchConfiguration("use_sim_time").perform(context).lower() == "true"
    level = log_level(LaunchConfiguration("log_level").perform(context))
    nodes = select_nodes(
        LaunchConfiguration("nodes").perform(context),
        LaunchConfiguration("foxglove").perform(context),
    )
    respawn = node_names(LaunchConfiguration("respawn").perform(context))
    delay = respawn_delay_s(LaunchConfiguration("respawn_delay").perform(context))
    environment = dds_environment({})
    return [
        Node(
            package=PACKAGE,
            executable=spec.executable,
            name=spec.name,
            parameters=[params_file, {"use_sim_time": use_sim_time}],
            remappings=list(spec.remappings),
            arguments=["--ros-args", "--log-level", level],
            additional_env={k: v for k, v in environment.items() if k not in os.environ},
            output="screen",
            respawn=spec.name in respawn,
            respawn_delay=delay,
        )
        # The control bridge first, as alpamayo-ros launch starts it.
        for spec in sorted(nodes, key=lambda spec: spec.name != OUTLIVES_ALL)
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default)
                for name, default in LAUNCH_ARGUMENTS.items()
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
