"""TF from the camera driver process: /tf_static holds one transform per rig camera, equal to
the rig file (and reaches a subscriber that joins late, as tf2's static topic must); /tf
carries odom -> base_link equal to the odometry at the same stamp."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from recorded_drive import spin_until as spin_graph_until
from scipy.spatial.transform import Rotation
from tf2_msgs.msg import TFMessage

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.graph import NODES, Topics, default_parameter_file
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.resources import config_file
from alpamayo_ros.ros.conversions import stamp_ns

CAMERA_DRIVER = next(spec for spec in NODES if spec.name == "camera_driver")
LATCHED = QoSProfile(
    depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
)


def test_rig_on_tf_static_and_the_ego_pose_on_tf(rclpy_context: Context, tmp_path: Path) -> None:
    node = Node("tf_probe", context=rclpy_context)
    received: dict[str, list] = defaultdict(list)
    node.create_subscription(TFMessage, "/tf", received["tf"].append, 100)
    node.create_subscription(Odometry, Topics.ODOMETRY, received["odometry"].append, 100)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)

    def spin_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        return spin_graph_until(executor, condition, timeout_s, graph.check)

    try:
        with GraphProcesses(default_parameter_file(), nodes=(CAMERA_DRIVER,)) as graph:
            assert spin_until(lambda: len(received["odometry"]) >= 20 and received["tf"])
            # Joins after the driver published its rig: the static topic still delivers it.
            node.create_subscription(TFMessage, "/tf_static", received["static"].append, LATCHED)
            assert spin_until(lambda: bool(received["static"]), timeout_s=10.0)
    finally:
        executor.shutdown()
        node.destroy_node()

    (static,) = received["static"]
    rig = CameraRig.load(config_file("rig.yaml"), list(CAMERA_ORDER))
    assert sorted(t.child_frame_id for t in static.transforms) == sorted(
        f"{name}_optical" for name in CAMERA_ORDER
    )
    for transform in static.transforms:
        camera = rig.cameras[transform.child_frame_id.removesuffix("_optical")]
        assert transform.header.frame_id == "base_link"
        t, q = transform.transform.translation, transform.transform.rotation
        np.testing.assert_allclose([t.x, t.y, t.z], camera.position, atol=1e-12)
        rotation = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
        np.testing.assert_allclose(rotation, camera.optical_rotation(), atol=1e-9)

    poses = {stamp_ns(o.header.stamp): o.pose.pose for o in received["odometry"]}
    matched = 0
    for message in received["tf"]:
        (transform,) = message.transforms
        assert (transform.header.frame_id, transform.child_frame_id) == ("odom", "base_link")
        pose = poses.get(stamp_ns(transform.header.stamp))
        if pose is not None:
            matched += 1
            t = transform.transform.translation
            assert (t.x, t.y, t.z) == (pose.position.x, pose.position.y, pose.position.z)
            assert transform.transform.rotation == pose.orientation
    assert matched >= 10, matched
