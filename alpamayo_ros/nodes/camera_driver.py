"""Camera driver node: publishes every camera of a source as Image + CameraInfo.

Cameras use SensorDataQoS (best effort, shallow), as ROS camera drivers do; the optical
frames are `<camera>_optical`. When the source knows the ego pose (synthetic world,
recordings) it is published as Odometry on `odometry`, at its own rate and at each frame
capture instant (just before the frames), and as the odom -> base_link transform on /tf.
The rig's camera poses (base_link -> `<camera>_optical`) go on /tf_static at activation.

A managed node: `configure` opens the source (a missing device fails here), `activate`
starts the frame and odometry timers, `deactivate` stops them (nothing is published while
inactive) and `cleanup` closes the source.
"""

from __future__ import annotations

from collections.abc import Callable

from nav_msgs.msg import Odometry
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.core.stamped import classify_arrival
from alpamayo_ros.resources import config_file
from alpamayo_ros.ros import conversions
from alpamayo_ros.ros.managed import ManagedNode
from alpamayo_ros.ros.runtime import OK, WARN, Diagnostics, declare_parameters, run
from alpamayo_ros.sensors import create_source
from alpamayo_ros.sensors.base import CameraSource

STATIC_TF_QOS = QoSProfile(
    depth=1,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    reliability=ReliabilityPolicy.RELIABLE,
)

# Prefetching starts this fraction of a frame period before the frames are due.
PREFETCH_LEAD = 0.3


class CameraDriver(ManagedNode):
    def __init__(self) -> None:
        super().__init__("camera_driver")
        self.params = declare_parameters(self, "camera_driver")
        self.diagnostics = Diagnostics(self, hardware_id=self.params["source"])
        self.diagnostics.update(WARN, "unconfigured: publishing nothing")
        self.source: CameraSource | None = None
        self.clocks: list[Timer] = []

    def configure(self) -> None:
        rig_file = self.params["rig_file"] or str(config_file("rig.yaml"))
        self.rig = CameraRig.load(rig_file, self.params["cameras"])
        source = self.params["source"]
        options = {
            name.removeprefix(f"{source}."): value
            for name, value in self.params.items()
            if name.startswith(f"{source}.")
        }
        self.source = create_source(source, self.rig, **options)
        namespace = self.params["camera_namespace"].rstrip("/")
        self.image_publishers = {
            name: self.create_lifecycle_publisher(
                Image, f"{namespace}/{name}/image_raw", qos_profile_sensor_data
            )
            for name in self.params["cameras"]
        }
        # image_transport's compressed topic beside the raw one, for bags and remote viewers.
        self.compressed_publishers = {
            name: self.create_lifecycle_publisher(
                CompressedImage, f"{namespace}/{name}/image_raw/compressed", qos_profile_sensor_data
            )
            for name in self.params["cameras"]
            if self.params["publish_compressed"]
        }
        self.info_publishers = {
            name: self.create_lifecycle_publisher(
                CameraInfo, f"{namespace}/{name}/camera_info", qos_profile_sensor_data
            )
            for name in self.params["cameras"]
        }
        self.odometry_publisher = self.create_lifecycle_publisher(Odometry, "odometry", 50)
        # tf2's own QoS: the rig once, kept for late joiners; the ego pose as it moves.
        self.static_tf_publisher = self.create_lifecycle_publisher(
            TFMessage, "/tf_static", STATIC_TF_QOS
        )
        self.tf_publisher = self.create_lifecycle_publisher(TFMessage, "/tf", 100)
        self.frames_published = 0
        self.last_odometry_ns: int | None = None
        self.frame_timer = self.clock(self.params["rate_hz"], self.publish_frames)
        self.clock(self.params["odometry_rate_hz"], self.on_odometry_tick)
        self.next_tick_ns: int | None = None  # the frames to prefetch, once their time comes
        self.diagnostics.update(WARN, "inactive: publishing nothing")

    def clock(self, rate_hz: float, callback: Callable[[], None]) -> Timer:
        """A timer that runs while the node is active."""
        self.clocks.append(self.create_timer(1.0 / rate_hz, callback, autostart=False))
        return self.clocks[-1]

    def activate(self) -> None:
        self.static_tf_publisher.publish(
            conversions.rig_transforms(self.rig, self.params["frame_id"], self.now_ns())
        )
        for timer in self.clocks:
            timer.reset()
        self.diagnostics.update(OK, "active: waiting for the first frames")

    def deactivate(self) -> None:
        for timer in self.clocks:
            timer.cancel()
        self.diagnostics.update(WARN, "inactive: publishing nothing")

    def release(self) -> None:
        """What `configure` made, also when it failed half-way."""
        for timer in self.clocks:
            self.destroy_timer(timer)
        self.clocks = []
        if self.source is not None:
            self.source.close()
            self.source = None
        self.diagnostics.update(WARN, "unconfigured: publishing nothing")

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def tick_ns(self) -> int:
        """The instant this frame-timer call was scheduled for (the timer's grid point),
        not when the executor got round to it, so captures keep an exact period."""
        now_ns = self.now_ns()
        until_next = self.frame_timer.time_until_next_call()
        if until_next is None:
            return now_ns
        return min(now_ns, now_ns + until_next - self.frame_timer.timer_period_ns)

    def publish_frames(self) -> None:
        tick_ns = self.tick_ns()
        frames = self.source.frames(tick_ns)
        if frames:
            # The ego pose at the capture instant first, so the frames' history is complete
            # when they arrive.
            self.publish_odometry(frames[0].stamp_ns)
        # Every image before any camera info: a consumer waiting for the camera set (the
        # VLA node) completes it sooner.
        for frame in frames:
            self.image_publishers[frame.camera].publish(
                conversions.rgb_image_msg(
                    frame.image, frame.stamp_ns, conversions.optical_frame(frame.camera)
                )
            )
        for frame in frames:
            if frame.camera in self.compressed_publishers:
                self.compressed_publishers[frame.camera].publish(
                    conversions.compressed_image_msg(
                        frame.image, frame.stamp_ns, conversions.optical_frame(frame.camera)
                    )
                )
            frame_id = conversions.optical_frame(frame.camera)
            height, width = frame.image.shape[:2]
            self.info_publishers[frame.camera].publish(
                conversions.camera_info_msg(
                    self.rig.cameras[frame.camera], width, height, frame.stamp_ns, frame_id
                )
            )
        self.frames_published += len(frames)
        problem = self.source_problem()
        if problem:
            if problem != self.diagnostics.message:
                self.get_logger().warning(problem)
            self.diagnostics.update(WARN, problem, frames_published=self.frames_published)
        elif frames:
            publish_delay_ms = (self.now_ns() - frames[0].stamp_ns) / 1e6
            self.diagnostics.update(
                OK,
                "publishing",
                cameras=len(frames),
                frames_published=self.frames_published,
                publish_delay_ms=f"{publish_delay_ms:.1f}",
            )
        self.next_tick_ns = tick_ns + self.frame_timer.timer_period_ns

    def source_problem(self) -> str:
        """Why the source publishes less than it should, or ""."""
        if self.source.finished:
            return "the recording has ended: nothing more to publish"
        failed = self.source.failed_cameras
        return f"camera(s) {', '.join(failed)} stopped delivering frames" if failed else ""

    def on_odometry_tick(self) -> None:
        now_ns = self.now_ns()
        self.publish_odometry(now_ns)
        # The next frames, where the source can know them ahead, rendered late in the
        # frame period: early on, the stack is busy with the frames just sent.
        next_tick = self.next_tick_ns
        period_ns = self.frame_timer.timer_period_ns
        if next_tick is not None and now_ns >= next_tick - PREFETCH_LEAD * period_ns:
            self.next_tick_ns = None
            self.source.prefetch(next_tick)

    def publish_odometry(self, stamp_ns: int) -> None:
        """The pose at `stamp_ns`, unless a newer one went out already (the two timers
        interleave; odometry stamps only increase, except after the clock jumped back)."""
        if not classify_arrival(stamp_ns, self.last_odometry_ns).keeps_sample:
            return
        pose = self.source.ego_pose(stamp_ns)
        if pose is not None:
            self.last_odometry_ns = stamp_ns
            frames = self.params["odom_frame_id"], self.params["frame_id"]
            self.odometry_publisher.publish(conversions.odometry_msg(pose, *frames))
            self.tf_publisher.publish(conversions.odometry_transform(pose, *frames))


def main(args: list[str] | None = None) -> int:
    return run(CameraDriver, args)


if __name__ == "__main__":
    raise SystemExit(main())
