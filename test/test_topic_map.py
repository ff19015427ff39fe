"""The topic-mapping file: what a node subscribes to, and every mistake named at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.parameters import ParameterError, check_values
from alpamayo_ros.resources import config_file
from alpamayo_ros.topic_map import (
    COMPRESSED_IMAGE,
    IMAGE,
    ODOMETRY,
    TopicMap,
    TopicMapError,
    load,
    odometry_topic,
)

EXAMPLE = config_file("topic_map.example.yaml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


def test_the_example_maps_every_camera_and_the_odometry() -> None:
    mapped = TopicMap.for_node(str(EXAMPLE), CAMERA_ORDER, "/sensing/camera", "raw")
    assert list(mapped.cameras) == list(CAMERA_ORDER)
    front = mapped.cameras["front_wide_120fov"]
    assert (front.topic, front.msgtype) == ("/camera_front/image/compressed", COMPRESSED_IMAGE)
    assert mapped.cameras["front_tele_30fov"].msgtype == IMAGE
    assert mapped.odometry == "/odom" == odometry_topic(str(EXAMPLE))
    assert mapped.inputs()["/odom"] == ODOMETRY


def test_without_a_file_the_graph_names_apply() -> None:
    raw = TopicMap.for_node("", CAMERA_ORDER[:2], "/sensing/camera/", "raw")
    assert raw.cameras["front_wide_120fov"].topic == "/sensing/camera/front_wide_120fov/image_raw"
    assert raw.odometry == "odometry" == odometry_topic("")
    compressed = TopicMap.graph_default(CAMERA_ORDER[:1], "/cams", "compressed")
    entry = compressed.cameras[CAMERA_ORDER[0]]
    assert entry.topic == f"/cams/{CAMERA_ORDER[0]}/image_raw/compressed" and entry.compressed


def test_slots_the_file_leaves_out_keep_the_graph_names(tmp_path: Path) -> None:
    path = write(tmp_path, "cameras:\n  front_wide_120fov: {topic: /front/image}\n")
    mapped = TopicMap.for_node(str(path), CAMERA_ORDER, "/sensing/camera", "raw")
    assert mapped.cameras["front_wide_120fov"].topic == "/front/image"
    assert mapped.cameras["cross_left_120fov"].topic.startswith("/sensing/camera/")
    assert mapped.odometry == "odometry"


def test_every_mistake_is_named_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cameras:\n"
        "  front_wide_120fov: {topic: /a/image, type: sensor_msgs/msg/PointCloud2}\n"
        "  rear_camera: {topic: /rear}\n"
        "  cross_left_120fov: {topic: '/bad name'}\n"
        "  front_tele_30fov: {topic: /odom, frame: x}\n"
        "odometry: {topic: /odom, type: geometry_msgs/msg/PoseStamped}\n"
        "lidar: {}\n",
    )
    with pytest.raises(TopicMapError) as raised:
        load(path)
    message = str(raised.value)
    for expected in (
        "unknown key 'lidar'",
        "cameras.front_wide_120fov.type: 'sensor_msgs/msg/PointCloud2'",
        "cameras.rear_camera: not a model camera",
        "cameras.cross_left_120fov.topic: '/bad name' is not a valid ROS 2 topic name",
        "cameras.front_tele_30fov.frame: unknown key",
        "odometry.type: must be nav_msgs/msg/Odometry",
        "topic /odom is mapped twice",
    ):
        assert expected in message, message
    assert all(line.startswith(f"{path}: ") for line in message.splitlines())


def test_a_missing_or_malformed_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TopicMapError, match="topic map not found"):
        load(tmp_path / "nothing.yaml")
    with pytest.raises(TopicMapError, match="not valid YAML"):
        load(write(tmp_path, "cameras: [unclosed"))
    with pytest.raises(TopicMapError, match="expected a mapping"):
        load(write(tmp_path, "- a list"))


def test_the_parameter_check_validates_the_file_and_its_cameras(tmp_path: Path) -> None:
    assert check_values("control_bridge", {"topic_map_file": str(EXAMPLE)})
    with pytest.raises(ParameterError, match=r"control_bridge\.topic_map_file: .*not found"):
        check_values("control_bridge", {"topic_map_file": str(tmp_path / "missing.yaml")})
    with pytest.raises(ParameterError, match="not among the configured cameras"):
        check_values(
            "vla_inference",
            {"topic_map_file": str(EXAMPLE), "cameras": ["front_wide_120fov"]},
        )


def test_a_camera_names_its_calibration_and_mount(tmp_path: Path) -> None:
    (tmp_path / "front.yaml").write_text(
        "image_width: 640\nimage_height: 400\ncamera_name: front\n"
        "camera_matrix: {rows: 3, cols: 3, data: [400, 0, 320, 0, 400, 200, 0, 0, 1]}\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [-0.2, 0.05, 0, 0, 0]}\n"
    )
    path = write(
        tmp_path,
        "cameras:\n"
        "  front_wide_120fov:\n"
        "    topic: /front/image\n"
        "    calibration: front.yaml\n"  # beside the mapping file
        "    mount: {position: [1.7, 0.1, 1.4], yaw: 0.1}\n"
        "  cross_left_120fov: {topic: /left/image, camera_info: /left/camera_info}\n",
    )
    mapped = load(path)
    front, left = mapped.cameras["front_wide_120fov"], mapped.cameras["cross_left_120fov"]
    assert front.adapted and front.calibration is not None and front.calibration.width == 640
    assert front.mount is not None and front.mount.position.tolist() == [1.7, 0.1, 1.4]
    assert left.adapted and left.calibration is None and left.mount is None
    assert mapped.inputs()["/left/camera_info"] == "sensor_msgs/msg/CameraInfo"


def test_calibration_mistakes_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cameras:\n"
        "  front_wide_120fov: {topic: /f, calibration: none.yaml}\n"
        "  cross_left_120fov: {topic: /l, calibration: none.yaml, camera_info: /l/info}\n"
        "  cross_right_120fov: {topic: /r, camera_info: /r/info, mount: {yaw: 1}}\n"
        "  front_tele_30fov: {topic: /t, mount: {position: [0, 0, 1]}}\n",
    )
    with pytest.raises(TopicMapError) as raised:
        load(path)
    message = str(raised.value)
    for expected in (
        "cameras.front_wide_120fov.calibration: ",
        "cameras.cross_left_120fov: give calibration or camera_info, not both",
        "cameras.cross_right_120fov.mount: expected {position: [x, y, z], yaw, pitch, roll}",
        "cameras.front_tele_30fov.mount: needs the camera's calibration or camera_info",
    ):
        assert expected in message, message
