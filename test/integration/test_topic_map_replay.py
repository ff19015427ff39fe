"""A user's bag through a topic map: JPEG CompressedImage cameras under the user's own names
and odometry on /odom, replayed with `alpamayo-ros replay --topic-map`, drive the VLA node
and the planner (started with the same map), and every output is stamped with a frame
time of the bag. One camera comes with its CameraInfo and a mount 0.3 m beside the rig
camera's: its frames are reprojected into the rig camera, and the VLA node reports the
offset it cannot compensate. The replay names a played topic nothing subscribes to, and
refuses a bag that lacks a mapped topic before playing anything."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml
from alpamayo_ros_msgs.msg import PlannerConditioning, Trajectory
from diagnostic_msgs.msg import DiagnosticArray
from parameter_files import parameter_file
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import serialize_message
from std_msgs.msg import String

from alpamayo_ros import cli
from alpamayo_ros.core.contract import CAMERA_ORDER, NS_PER_S
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.graph import NODES, Topics
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.replay.bag import BagRecorder
from alpamayo_ros.resources import config_file
from alpamayo_ros.ros.conversions import (
    camera_info_msg,
    compressed_image_msg,
    odometry_msg,
    stamp_ns,
)
from alpamayo_ros.sensors import create_source

USER_TOPICS = {
    camera: f"/user_{index}/image/compressed" for index, camera in enumerate(CAMERA_ORDER)
}
ODOMETRY = "/odom"
ADAPTED = "front_wide_120fov"
CAMERA_INFO = "/user_1/camera_info"
UNUSED = "/radar/status"
START_NS = 1_700_000_000 * NS_PER_S
SECONDS = 4.0
SPECS = tuple(spec for spec in NODES if spec.name in ("vla_inference", "diffusion_planner"))


def write_user_bag(path: Path) -> set[int]:
    """The synthetic drive as a user's car records it: cameras at 10 Hz as JPEG under
    the user's names, odometry at 50 Hz on /odom, each received a little after its stamp,
    and a topic the graph does not use. Returns the frame stamps."""
    rig = CameraRig.load(config_file("rig.yaml"), CAMERA_ORDER)
    source = create_source("synthetic", rig, width=256, height=128, seed=4)
    frame_stamps = set()
    with BagRecorder(path) as bag:
        for topic in USER_TOPICS.values():
            bag.add_topic(topic, "sensor_msgs/msg/CompressedImage")
        bag.add_topic(ODOMETRY, "nav_msgs/msg/Odometry")
        bag.add_topic(UNUSED, "std_msgs/msg/String")
        bag.add_topic(CAMERA_INFO, "sensor_msgs/msg/CameraInfo")
        for tick in range(round(SECONDS * 50)):
            stamp = START_NS + tick * 20_000_000
            if tick % 5 == 0:
                for frame in source.frames(stamp):
                    msg = compressed_image_msg(frame.image, frame.stamp_ns, f"{frame.camera}_link")
                    bag.write(USER_TOPICS[frame.camera], stamp + 8_000_000, serialize_message(msg))
                    frame_stamps.add(frame.stamp_ns)
                # The adapted camera's lens: the rig camera's (it rendered the frames).
                info = camera_info_msg(rig.cameras[ADAPTED], 256, 128, stamp, "front_link")
                bag.write(CAMERA_INFO, stamp + 8_000_000, serialize_message(info))
                bag.write(UNUSED, stamp, serialize_message(String(data="ok")))
            pose = source.ego_pose(stamp)
            assert pose is not None
            bag.write(
                ODOMETRY,
                stamp + 1_000_000,
                serialize_message(odometry_msg(pose, "odom", "base_link")),
            )
    return frame_stamps


def write_topic_map(path: Path) -> Path:
    cameras = {camera: {"topic": topic} for camera, topic in USER_TOPICS.items()}
    cameras[ADAPTED]["camera_info"] = CAMERA_INFO
    cameras[ADAPTED]["mount"] = {"position": [1.8, 0.3, 1.5]}  # the rig camera's y is 0
    path.write_text(yaml.safe_dump({"cameras": cameras, "odometry": {"topic": ODOMETRY}}))
    return path


def test_a_user_bag_replayed_through_a_topic_map_drives_the_graph(
    rclpy_context: Context, tmp_path: Path
) -> None:
    bag_path = tmp_path / "user_bag"
    frame_stamps = write_user_bag(bag_path)
    topic_map = write_topic_map(tmp_path / "my_car.yaml")
    params = parameter_file(
        tmp_path, "constant_velocity", **{"/**": {"topic_map_file": str(topic_map)}}
    )

    node = Node("topic_map_probe", context=rclpy_context)
    conditioning: list[PlannerConditioning] = []
    trajectories: list[Trajectory] = []
    node.create_subscription(PlannerConditioning, Topics.CONDITIONING, conditioning.append, 100)
    node.create_subscription(Trajectory, Topics.TRAJECTORY, trajectories.append, 100)
    adaptation: list[str] = []
    node.create_subscription(
        DiagnosticArray,
        Topics.DIAGNOSTICS,
        lambda msg: adaptation.extend(
            value.value
            for status in msg.status
            for value in status.values
            if value.key == f"rig_adaptation.{ADAPTED}"
        ),
        10,
    )
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    try:
        with GraphProcesses(params, use_sim_time=True, nodes=SPECS) as graph:
            replay = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "alpamayo_ros.cli",
                    "replay",
                    str(bag_path),
                    "--topic-map",
                    str(topic_map),
                    "--delay",
                    "60",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                deadline = time.monotonic() + 120.0
                while replay.poll() is None:
                    graph.check()
                    assert time.monotonic() < deadline, "the replay did not end"
                    executor.spin_once(timeout_sec=0.05)
                drained = time.monotonic() + 2.0
                while time.monotonic() < drained:
                    executor.spin_once(timeout_sec=0.05)
            finally:
                if replay.poll() is None:
                    replay.kill()
            output = replay.communicate()[0]
    finally:
        executor.shutdown()
        node.destroy_node()

    assert replay.returncode == 0, output
    assert f"warning: nothing subscribes to {UNUSED}" in output, output
    assert not any(
        f"nothing subscribes to {topic}" in output for topic in (*USER_TOPICS.values(), ODOMETRY)
    )
    # 4 s of frames, the first 1.5 s filling the ego history: most of the ~25 possible t0s.
    assert len(conditioning) >= 10, (len(conditioning), output)
    for msg in conditioning:
        assert stamp_ns(msg.header.stamp) in frame_stamps
        assert {stamp_ns(s) for s in msg.info.input_stamps} <= frame_stamps
    assert len(trajectories) >= 10
    assert adaptation and "mount 0.30 m from the rig camera's position" in adaptation[-1]
    assert all(stamp_ns(msg.header.stamp) in frame_stamps for msg in trajectories)


def test_a_bag_without_a_mapped_topic_is_refused_before_playing(tmp_path: Path, capsys) -> None:
    bag_path = tmp_path / "bag"
    with BagRecorder(bag_path) as bag:
        bag.add_topic(ODOMETRY, "sensor_msgs/msg/CompressedImage")
        bag.write(ODOMETRY, START_NS, b"")
    topic_map = write_topic_map(tmp_path / "map.yaml")
    assert cli.main(["replay", str(bag_path), "--topic-map", str(topic_map)]) == 2
    error = capsys.readouterr().err
    assert f"no topic {USER_TOPICS['front_wide_120fov']} (sensor_msgs/msg/CompressedImage)" in error
    wrong_type = f"{ODOMETRY} is sensor_msgs/msg/CompressedImage, the topic map expects"
    assert f"{wrong_type} nav_msgs/msg/Odometry" in error
