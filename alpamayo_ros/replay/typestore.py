"""A rosbags typestore that knows ROS 2 Jazzy's types and alpamayo_ros_msgs.

rosbags needs the message definitions to write bags that `ros2 bag` and rclpy can read
(type hashes must match ROS's); ours are registered from the installed .msg files.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

MSG_PACKAGE = "alpamayo_ros_msgs"


class MessageDefinitionsNotFound(FileNotFoundError):
    """alpamayo_ros_msgs is not installed where ROS or this environment would put it."""


def message_directory() -> Path:
    """share/alpamayo_ros_msgs/msg of the first prefix that has it."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    candidates = [Path(p) / "share" / MSG_PACKAGE / "msg" for p in [*prefixes, sys.prefix]]
    for candidate in candidates:
        if any(candidate.glob("*.msg")):
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise MessageDefinitionsNotFound(f"no {MSG_PACKAGE} .msg files in {searched}")


@cache
def typestore() -> Typestore:
    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for path in sorted(message_directory().glob("*.msg")):
        types.update(
            get_types_from_msg(path.read_text(encoding="utf-8"), f"{MSG_PACKAGE}/msg/{path.stem}")
        )
    store.register(types)
    return store


def message_definition(type_name: str) -> str:
    """The full ROS 2 definition of "package/msg/Type", its dependencies appended as
    `ros2 bag` and Foxglove expect them (`ros2msg`); KeyError for a type not known here."""
    try:
        text, _ = typestore().generate_msgdef(type_name, ros_version=2)
    except TypesysError as error:
        raise KeyError(str(error)) from None
    return text
