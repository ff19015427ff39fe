"""A drive of the synthetic world written as a recorded rosbag2 bag: raw RGB images per rig
camera at 10 Hz and odometry at 50 Hz, on the graph's topic names, as `alpamayo-ros record`
of the camera driver would hold them. Written with rosbags (no DDS), so the evaluation of a
recording can be tested quickly and against the world's own truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from alpamayo_ros.core.contract import CAMERA_ORDER, NS_PER_S
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.resources import config_file
from alpamayo_ros.sensors import create_source

ODOMETRY_TOPIC = "/localization/odometry"
START_NS = 1_700_000_000 * NS_PER_S  # a wall-clock-like time base, as a real recording has
TICK_NS = 20_000_000  # odometry every 20 ms, frames every fifth tick


def camera_topic(camera: str) -> str:
    return f"/sensing/camera/{camera}/image_raw"


SET_SPEED_TOPIC = "/planning/set_speed"


def write_drive_bag(
    path: Path,
    seed: int,
    scenario_type: str,
    seconds: float,
    odometry: bool = True,
    set_speed: float | None = None,
) -> None:
    """`seconds` of the scenario of `seed`, as the camera driver publishes it; with a
    `set_speed`, the planner's latched /planning/set_speed, logged before the first frame
    as the recorder logs it when the drive starts."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types: Any = store.types
    rig = CameraRig.load(config_file("rig.yaml"), CAMERA_ORDER)
    world = create_source(
        "synthetic",
        rig,
        width=256,
        height=128,
        seed=seed,
        scenario_type=scenario_type,
        scenario_duration_s=seconds + 1.0,
    )
    header_type, stamp_type = types["std_msgs/msg/Header"], types["builtin_interfaces/msg/Time"]

    def header(stamp_ns: int, frame_id: str) -> Any:
        sec, nanosec = divmod(stamp_ns, NS_PER_S)
        return header_type(stamp=stamp_type(sec=sec, nanosec=nanosec), frame_id=frame_id)

    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        image_connections = {
            camera: writer.add_connection(
                camera_topic(camera), "sensor_msgs/msg/Image", typestore=store
            )
            for camera in CAMERA_ORDER
        }
        odometry_connection = writer.add_connection(
            ODOMETRY_TOPIC, "nav_msgs/msg/Odometry", typestore=store
        )
        if set_speed is not None:
            float64 = "std_msgs/msg/Float64"
            connection = writer.add_connection(SET_SPEED_TOPIC, float64, typestore=store)
            value = types[float64](data=set_speed)
            writer.write(connection, START_NS, store.serialize_cdr(value, float64))
        for tick in range(round(seconds * NS_PER_S / TICK_NS)):
            node_ns = tick * TICK_NS + NS_PER_S  # the source's clock
            stamp_ns = START_NS + tick * TICK_NS
            pose = world.ego_pose(node_ns)
            if odometry and pose is not None:
                msg = _odometry(types, header(stamp_ns, "odom"), pose)
                writer.write(
                    odometry_connection, stamp_ns, store.serialize_cdr(msg, "nav_msgs/msg/Odometry")
                )
            if tick % 5:
                continue
            for frame in world.frames(node_ns):
                height, width = frame.image.shape[:2]
                image = types["sensor_msgs/msg/Image"](
                    header=header(START_NS + frame.stamp_ns - NS_PER_S, f"{frame.camera}_optical"),
                    height=height,
                    width=width,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=width * 3,
                    data=np.ascontiguousarray(frame.image).reshape(-1),
                )
                writer.write(
                    image_connections[frame.camera],
                    stamp_ns + 1_000_000,  # received a moment after the capture
                    store.serialize_cdr(image, "sensor_msgs/msg/Image"),
                )


def _odometry(types: Any, header: Any, pose: Any) -> Any:
    vector, point = types["geometry_msgs/msg/Vector3"], types["geometry_msgs/msg/Point"]
    x, y, z, w = (float(v) for v in pose.orientation_xyzw)
    return types["nav_msgs/msg/Odometry"](
        header=header,
        child_frame_id="base_link",
        pose=types["geometry_msgs/msg/PoseWithCovariance"](
            pose=types["geometry_msgs/msg/Pose"](
                position=point(*(float(v) for v in pose.position)),
                orientation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
            ),
            covariance=np.zeros(36),
        ),
        twist=types["geometry_msgs/msg/TwistWithCovariance"](
            twist=types["geometry_msgs/msg/Twist"](
                linear=vector(*(float(v) for v in pose.linear_velocity)),
                angular=vector(*(float(v) for v in pose.angular_velocity)),
            ),
            covariance=np.zeros(36),
        ),
    )
