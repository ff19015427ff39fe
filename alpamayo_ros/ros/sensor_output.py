"""What a node that owns the sensors publishes (the camera driver, the simulator): one
implementation, so a recording, a live camera and the closed-loop simulator look the same
to the rest of the graph.

Per camera: Image on `<namespace>/<camera>/image_raw` and CameraInfo on `.../camera_info`
with SensorDataQoS (best effort, shallow), as ROS camera drivers do, optionally a JPEG
CompressedImage at `.../image_raw/compressed` (image_transport's convention); the optical
frames are `<camera>_optical`. The ego pose as Odometry on `odometry` and as the
odom -> base_link transform on /tf; the rig (base_link -> every optical frame) on
/tf_static, latched for late joiners; and, for a node that owns the time, /clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from nav_msgs.msg import Odometry
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.graph import Topics
from alpamayo_ros.ros import conversions
from alpamayo_ros.ros.managed import ManagedNode
from alpamayo_ros.ros.runtime import LATCHED_QOS
from alpamayo_ros.sensors.base import CameraFrame, EgoPose


class SensorOutput:
    """Lifecycle publishers of a managed node: nothing goes out while it is inactive."""

    def __init__(
        self,
        node: ManagedNode,
        rig: CameraRig,
        namespace: str,
        frame_id: str,
        odom_frame_id: str,
        compressed: bool = False,
        clock: bool = False,
    ) -> None:
        self.node = node
        self.rig = rig
        self.frame_id = frame_id
        self.odom_frame_id = odom_frame_id
        namespace = namespace.rstrip("/")

        def per_camera(kind: type, suffix: str) -> dict[str, object]:
            return {
                name: node.create_lifecycle_publisher(
                    kind, f"{namespace}/{name}/{suffix}", qos_profile_sensor_data
                )
                for name in rig.cameras
            }

        self.images = per_camera(Image, "image_raw")
        self.compressed = per_camera(CompressedImage, "image_raw/compressed") if compressed else {}
        self.infos = per_camera(CameraInfo, "camera_info")
        self.odometry = node.create_lifecycle_publisher(Odometry, "odometry", 50)
        # tf2's own QoS: the rig once, kept for late joiners; the ego pose as it moves.
        self.static_tf = node.create_lifecycle_publisher(TFMessage, "/tf_static", LATCHED_QOS)
        self.tf = node.create_lifecycle_publisher(TFMessage, "/tf", 100)
        self.clock = node.create_lifecycle_publisher(Clock, Topics.CLOCK, 10) if clock else None

    @property
    def image_topics(self) -> list[str]:
        return [publisher.topic_name for publisher in self.images.values()]

    def unsubscribed(self, topics: Sequence[str], subscriber: str) -> list[str]:
        """The topics that the node named `subscriber` ("": any node) does not subscribe to
        yet, as far as discovery has seen: what lock-step waits for at its start. Any
        subscriber is not enough where a bag recorder or a viewer subscribes to everything
        before the stack has started: the clock would run while the model misses its first
        inputs, and the run would depend on how fast the processes came up."""
        missing = []
        for topic in topics:
            nodes = {info.node_name for info in self.node.get_subscriptions_info_by_topic(topic)}
            if subscriber not in nodes if subscriber else not nodes:
                missing.append(f"{subscriber} on {topic}" if subscriber else topic)
        return missing

    def publish_rig(self, stamp_ns: int) -> None:
        self.static_tf.publish(conversions.rig_transforms(self.rig, self.frame_id, stamp_ns))

    def publish_clock(self, stamp_ns: int) -> None:
        assert self.clock is not None, "a node that owns the time asks for /clock"
        self.clock.publish(Clock(clock=conversions.time_msg(stamp_ns)))

    def publish_pose(self, pose: EgoPose) -> None:
        frames = self.odom_frame_id, self.frame_id
        self.odometry.publish(conversions.odometry_msg(pose, *frames))
        self.tf.publish(conversions.odometry_transform(pose, *frames))

    def publish_frames(self, frames: Sequence[CameraFrame]) -> None:
        """Every image before any camera info: a consumer waiting for the camera set (the
        VLA node) completes it sooner."""
        for frame in frames:
            self.images[frame.camera].publish(
                conversions.rgb_image_msg(
                    frame.image, frame.stamp_ns, conversions.optical_frame(frame.camera)
                )
            )
        for frame in frames:
            frame_id = conversions.optical_frame(frame.camera)
            if frame.camera in self.compressed:
                self.compressed[frame.camera].publish(
                    conversions.compressed_image_msg(frame.image, frame.stamp_ns, frame_id)
                )
            height, width = frame.image.shape[:2]
            self.infos[frame.camera].publish(
                conversions.camera_info_msg(
                    self.rig.cameras[frame.camera], width, height, frame.stamp_ns, frame_id
                )
            )
