"""Topic-mapping file: where a user's cameras and odometry are, and what type they have.

The graph's own topics (`<camera_namespace>/<camera>/image_raw`, `odometry` remapped to
/localization/odometry) fit the camera driver; a user's car or bag has its own names and
often sends CompressedImage. A mapping file names, per model camera slot, the topic and
type to subscribe to (and later its calibration), and the odometry topic:

    cameras:
      front_wide_120fov:
        topic: /camera_front/image/compressed
        type: sensor_msgs/msg/CompressedImage  # optional: taken from a /compressed suffix
    odometry:
      topic: /odom

A camera whose lens or mount differs from the rig camera of its slot names its calibration
(a camera_calibration_parsers YAML file, relative to the mapping file, or a CameraInfo
topic) and, where it is not mounted as the rig camera, its mount in base_link; its frames
are then reprojected into the rig camera's view (sensors.reprojection):

      cross_left_120fov:
        topic: /camera_left/image_raw
        camera_info: /camera_left/camera_info  # or calibration: left.yaml
        mount: {position: [2.1, 0.95, 1.4], yaw: 1.0, pitch: -0.05, roll: 0.0}

Slots the file leaves out keep the graph's names. It is validated at start-up with the
parameter file (`topic_map_file`), so a typo stops the launch naming the file and key,
and the replay checks a bag against it before playing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.sensors.reprojection import CalibrationError, CameraCalibration, Mount

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
ODOMETRY = "nav_msgs/msg/Odometry"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
CAMERA_TYPES = (IMAGE, COMPRESSED_IMAGE)
# Relative to the node's namespace, remapped by the graph (graph.Topics.ODOMETRY).
GRAPH_ODOMETRY = "odometry"

CAMERA_FIELDS = ("topic", "type", "calibration", "camera_info", "mount")
# A ROS 2 topic name: tokens of letters, digits and underscores, not starting with a digit,
# separated by single slashes (relative names allowed).
_TOPIC_NAME = re.compile(r"^/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


class TopicMapError(ConfigurationError):
    """A mapping file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class CameraTopic:
    """Where one model camera slot's frames arrive, and how to adapt them to the rig."""

    topic: str
    msgtype: str  # IMAGE or COMPRESSED_IMAGE
    # The camera's own lens: a calibration file, or a CameraInfo topic ("" for neither:
    # the frames are taken to be the rig camera's view already).
    calibration: CameraCalibration | None = None
    camera_info: str = ""
    mount: Mount | None = None  # where it sits in base_link; None: where the rig camera is

    @property
    def adapted(self) -> bool:
        """Whether its frames are reprojected into the rig camera's view."""
        return self.calibration is not None or bool(self.camera_info)

    @property
    def compressed(self) -> bool:
        return self.msgtype == COMPRESSED_IMAGE


@dataclass(frozen=True)
class TopicMap:
    cameras: Mapping[str, CameraTopic]  # camera slot -> its topic, in model order
    odometry: str

    @classmethod
    def graph_default(cls, cameras: Sequence[str], namespace: str, transport: str) -> TopicMap:
        """The graph's own names: `<namespace>/<camera>/image_raw` (plus `/compressed`
        with the compressed transport) and the remapped `odometry`."""
        base = namespace.rstrip("/")
        compressed = transport == "compressed"
        return cls(
            {
                name: CameraTopic(
                    f"{base}/{name}/image_raw" + ("/compressed" if compressed else ""),
                    COMPRESSED_IMAGE if compressed else IMAGE,
                )
                for name in cameras
            },
            GRAPH_ODOMETRY,
        )

    @classmethod
    def for_node(
        cls, path: str, cameras: Sequence[str], namespace: str, transport: str
    ) -> TopicMap:
        """What a node subscribes to: the file's entries over the graph's names."""
        default = cls.graph_default(cameras, namespace, transport)
        if not path:
            return default
        mapped = load(Path(path))
        unknown = sorted(set(mapped.cameras) - set(cameras))
        if unknown:
            raise TopicMapError(
                f"{path}: camera(s) {', '.join(unknown)} not among the configured cameras "
                f"({', '.join(cameras)})"
            )
        return cls(
            {name: mapped.cameras.get(name, default.cameras[name]) for name in cameras},
            mapped.odometry or default.odometry,
        )

    def inputs(self) -> dict[str, str]:
        """Topic -> type of every input, as a bag must hold them."""
        topics = {entry.topic: entry.msgtype for entry in self.cameras.values()}
        topics.update({entry.camera_info: CAMERA_INFO for entry in self.cameras.values()})
        topics.pop("", None)  # cameras without a camera_info topic
        if self.odometry:
            topics[self.odometry] = ODOMETRY
        return topics


def odometry_topic(path: str) -> str:
    """The odometry topic of a mapping file ("" for none: the graph's)."""
    return (load(Path(path)).odometry if path else "") or GRAPH_ODOMETRY


def load(path: Path) -> TopicMap:
    """The entries of a mapping file (only those it names), validated; every problem is
    reported at once."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TopicMapError(f"{path}: topic map not found") from None
    except yaml.YAMLError as error:
        raise TopicMapError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise TopicMapError(f"{path}: expected a mapping with 'cameras' and/or 'odometry'")
    problems = [
        f"unknown key {key!r} (known: cameras, odometry)"
        for key in document
        if key not in ("cameras", "odometry")
    ]
    cameras = _cameras(document.get("cameras") or {}, Path(path).parent, problems)
    odometry = _topic_entry(
        "odometry", document.get("odometry"), problems, ("topic", "type"), ODOMETRY
    )
    topics = [entry.topic for entry in cameras.values()] + ([odometry] if odometry else [])
    topics += [entry.camera_info for entry in cameras.values() if entry.camera_info]
    problems += [f"topic {topic} is mapped twice" for topic in sorted(_repeated(topics))]
    if problems:
        raise TopicMapError("\n".join(f"{path}: {problem}" for problem in problems))
    return TopicMap(cameras, odometry)


def _cameras(section: Any, directory: Path, problems: list[str]) -> dict[str, CameraTopic]:
    if not isinstance(section, dict):
        problems.append("cameras: expected a mapping of camera slot -> {topic, type, ...}")
        return {}
    cameras = {}
    for name in CAMERA_ORDER:  # model order, whatever the file's order
        if name in section:
            cameras[name] = _camera(f"cameras.{name}", section[name], directory, problems)
    problems += [
        f"cameras.{name}: not a model camera (known: {', '.join(CAMERA_ORDER)})"
        for name in section
        if name not in CAMERA_ORDER
    ]
    return cameras


def _camera(key: str, entry: Any, directory: Path, problems: list[str]) -> CameraTopic:
    topic = _topic_entry(key, entry, problems, CAMERA_FIELDS)
    if not isinstance(entry, dict):
        return CameraTopic(topic, IMAGE)
    msgtype = entry.get("type", COMPRESSED_IMAGE if topic.endswith("/compressed") else IMAGE)
    if msgtype not in CAMERA_TYPES:
        problems.append(f"{key}.type: {msgtype!r} is not one of {', '.join(CAMERA_TYPES)}")
    calibration = None
    if "calibration" in entry:
        try:  # relative to the mapping file, which usually sits beside it
            calibration = CameraCalibration.load(directory / str(entry["calibration"]))
        except CalibrationError as error:
            problems.append(f"{key}.calibration: {error}")
    camera_info = entry.get("camera_info", "")
    if camera_info and not (isinstance(camera_info, str) and _TOPIC_NAME.match(camera_info)):
        problems.append(f"{key}.camera_info: {camera_info!r} is not a valid ROS 2 topic name")
    if "calibration" in entry and camera_info:
        problems.append(f"{key}: give calibration or camera_info, not both")
    mount = _mount(f"{key}.mount", entry["mount"], problems) if "mount" in entry else None
    if mount is not None and not ("calibration" in entry or camera_info):
        problems.append(f"{key}.mount: needs the camera's calibration or camera_info")
    return CameraTopic(topic, msgtype, calibration, camera_info, mount)


def _mount(key: str, entry: Any, problems: list[str]) -> Mount | None:
    """`{position: [x, y, z], yaw, pitch, roll}` as in the rig file (angles default 0)."""
    try:
        angles = {name: float(entry.get(name, 0.0)) for name in ("yaw", "pitch", "roll")}
        unknown = set(entry) - {"position", *angles}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
        return Mount.from_euler(entry["position"], **angles)
    except (AttributeError, KeyError, TypeError, ValueError, CalibrationError) as error:
        problems.append(f"{key}: expected {{position: [x, y, z], yaw, pitch, roll}} ({error})")
        return None


def _topic_entry(
    key: str, entry: Any, problems: list[str], allowed: Sequence[str], fixed_type: str = ""
) -> str:
    """The topic of one `{topic: ..., type: ...}` entry ("" when absent or invalid)."""
    if entry is None:
        return ""
    if not isinstance(entry, dict) or "topic" not in entry:
        problems.append(f"{key}: expected a mapping with a 'topic'")
        return ""
    problems += [
        f"{key}.{field}: unknown key (known: {', '.join(sorted(allowed))})"
        for field in entry
        if field not in allowed
    ]
    topic = entry["topic"]
    if not isinstance(topic, str) or not _TOPIC_NAME.match(topic):
        problems.append(f"{key}.topic: {topic!r} is not a valid ROS 2 topic name")
        return ""
    if fixed_type and entry.get("type", fixed_type) != fixed_type:
        problems.append(f"{key}.type: must be {fixed_type}, got {entry['type']!r}")
    return topic


def _repeated(items: Sequence[str]) -> set[str]:
    return {item for item, count in Counter(items).items() if count > 1}
