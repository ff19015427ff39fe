"""Camera driver node: publishes every camera of a source as Image + CameraInfo.

Cameras use SensorDataQoS (best effort, shallow), as ROS camera drivers do; the optical
frames are `<camera>_optical`. When the source knows the ego pose (synthetic world,
recordings) it is published as Odometry on `odometry`.
"""

from __future__ import annotations

from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.resources import config_file
from alpamayo_ros.ros import conversions
from alpamayo_ros.ros.runtime import OK, Diagnostics, declare_parameters, run
from alpamayo_ros.sensors import create_source


def optical_frame(camera: str) -> str:
    return f"{camera}_optical"


class CameraDriver(Node):
    def __init__(self) -> None:
        super().__init__("camera_driver")
        self.params = declare_parameters(self, "camera_driver")
        rig_file = self.params["rig_file"] or str(config_file("rig.yaml"))
        self.rig = CameraRig.load(rig_file, self.params["cameras"])
        self.source = create_source(
            self.params["source"],
            self.rig,
            width=self.params["width"],
            height=self.params["height"],
            seed=self.params["seed"],
            scenario_type=self.params["scenario_type"],
            scenario_duration_s=self.params["scenario_duration_s"],
        )
        namespace = self.params["camera_namespace"].rstrip("/")
        self.image_publishers = {
            name: self.create_publisher(
                Image, f"{namespace}/{name}/image_raw", qos_profile_sensor_data
            )
            for name in self.params["cameras"]
        }
        self.info_publishers = {
            name: self.create_publisher(
                CameraInfo, f"{namespace}/{name}/camera_info", qos_profile_sensor_data
            )
            for name in self.params["cameras"]
        }
        self.odometry_publisher = self.create_publisher(Odometry, "odometry", 50)
        self.diagnostics = Diagnostics(self, hardware_id=self.params["source"])
        self.frames_published = 0
        self.create_timer(1.0 / self.params["rate_hz"], self.publish_frames)
        self.create_timer(1.0 / self.params["odometry_rate_hz"], self.publish_odometry)

    def destroy_node(self) -> None:
        self.source.close()
        super().destroy_node()

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def publish_frames(self) -> None:
        frames = self.source.frames(self.now_ns())
        for frame in frames:
            frame_id = optical_frame(frame.camera)
            height, width = frame.image.shape[:2]
            self.image_publishers[frame.camera].publish(
                conversions.rgb_image_msg(frame.image, frame.stamp_ns, frame_id)
            )
            self.info_publishers[frame.camera].publish(
                conversions.camera_info_msg(
                    self.rig.cameras[frame.camera], width, height, frame.stamp_ns, frame_id
                )
            )
        self.frames_published += len(frames)
        self.diagnostics.update(
            OK, "publishing", cameras=len(frames), frames_published=self.frames_published
        )

    def publish_odometry(self) -> None:
        pose = self.source.ego_pose(self.now_ns())
        if pose is not None:
            self.odometry_publisher.publish(
                conversions.odometry_msg(
                    pose, self.params["odom_frame_id"], self.params["frame_id"]
                )
            )


def main(args: list[str] | None = None) -> int:
    return run(CameraDriver, args)


if __name__ == "__main__":
    raise SystemExit(main())
