"""VLA inference node: aligns cameras and ego history to one t0 and runs the backend's
vision-language half (pipeline.inference.InferenceStep).

Callbacks only decode and buffer; the model runs on its own thread, started when a camera
set completes (or the odometry that completes its history arrives), so the output lags
its input by the model time only and a slow model skips frames rather than queueing them.
`rate_hz` caps the rate.

Every output (reasoning, meta-action, planner conditioning) is stamped with t0, the input
time, and carries an InferenceInfo (same id and inputs, its own latency), so staleness and
provenance stay measurable downstream. The planner's input goes out as soon as the backend
has decided; the reasoning follows once its text is written. Inputs that cannot be aligned
produce a diagnostic and no output, never a guess.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from alpamayo_ros_msgs.msg import InferenceInfo, MetaAction, PlannerConditioning, Reasoning
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String

from alpamayo_ros.backends import backend_from_parameters
from alpamayo_ros.backends.worker import WorkerBackend
from alpamayo_ros.core.contract import NS_PER_S, TRAJECTORY_DT_S, TRAJECTORY_STEPS
from alpamayo_ros.core.input_health import HealthLimits, LastingWait
from alpamayo_ros.core.rig import CameraRig, RigError
from alpamayo_ros.core.stamped import AddResult
from alpamayo_ros.perception import PerceptionError
from alpamayo_ros.perception.detectors import Detectors
from alpamayo_ros.perception.free_space import FREE_SPACE_CAMERAS, FreeSpaceDetector
from alpamayo_ros.perception.lane import LANE_CAMERA_RANGES, LaneDetector
from alpamayo_ros.perception.traffic_light import LIGHT_CAMERAS, TrafficLightDetector
from alpamayo_ros.pipeline.inference import Image as RgbImage
from alpamayo_ros.pipeline.inference import Inference, InferenceStep, InputsUnavailable
from alpamayo_ros.pipeline.worker import LatestOnlyWorker
from alpamayo_ros.resources import config_file
from alpamayo_ros.ros import conversions
from alpamayo_ros.ros.conversions import duration_ns
from alpamayo_ros.ros.runtime import ERROR, OK, WARN, Diagnostics, declare_parameters, run
from alpamayo_ros.sensors.reprojection import (
    CalibrationError,
    CameraCalibration,
    Mount,
    RigAdaptation,
)
from alpamayo_ros.topic_map import TopicMap

# The reasoning text is off the control path (the planner has its input by then): its
# thread yields the CPU to the model, planner and control bridge on a busy machine.
TEXT_NICENESS = 10
# A complete camera set may wait a moment for the odometry sample past its t0, and runs
# once that arrives: only a wait this long is worth a WARN (`LastingWait`).
INPUT_WAIT_WARN_S = 0.3

Found = TypeVar("Found")


def lane_state(step: InferenceStep, inference: Inference) -> str:
    """What /diagnostics says of the lane the planner got with this inference."""
    if step.detectors.lane is None:
        return "off"
    if inference.lane_error:
        return inference.lane_error
    if inference.lane is None:
        return "none found"
    return f"found to {inference.lane.x[-1]:.0f} m"


def light_state(step: InferenceStep, inference: Inference) -> str:
    """What /diagnostics says of the light ahead the planner got with this inference."""
    if step.detectors.light is None:
        return "off"
    if inference.light_error:
        return inference.light_error
    light = inference.light
    line = "" if light.stop_line_x is None else f", its stop line {light.stop_line_x:.1f} m ahead"
    return f"{light.colour.name.lower()}{line}"


def free_space_state(step: InferenceStep, inference: Inference) -> str:
    """What /diagnostics says of the clear road the planner got with this inference."""
    if step.detectors.free_space is None:
        return "off"
    if inference.free_space_error:
        return inference.free_space_error
    if inference.free_space is None:
        return "the corridor not in view"
    space = inference.free_space
    if space.clear_to_x >= space.range_x:
        return f"clear to {space.range_x:.0f} m (as far as it looks)"
    if space.extent_y is None:
        return f"clear to {space.clear_to_x:.1f} m"
    right, left = space.extent_y
    return (
        f"clear to {space.clear_to_x:.1f} m, the thing there from y {right:+.1f} to {left:+.1f} m"
    )


class VlaInference(Node):
    # Its work follows its messages: the events executor serves it on simulated time
    # too (runtime.spin).
    NO_ROS_TIME_TIMERS = True

    def __init__(self) -> None:
        super().__init__("vla_inference")
        self.params = declare_parameters(self, "vla_inference")
        self.backend = backend_from_parameters(self.params)
        self.step = InferenceStep(
            self.backend,
            self.params["cameras"],
            rate_hz=self.params["rate_hz"],
            max_frame_staleness_s=self.params["max_frame_staleness_s"],
            max_frame_rate_hz=self.params["max_frame_rate_hz"],
            max_frame_pixels=self.params["max_frame_pixels"],
            limits=HealthLimits(
                silent_after_s=self.params["input_silent_after_s"],
                hold_s=self.params["input_fault_hold_s"],
            ),
            navigation_max_age_s=self.params["navigation_max_age_s"],
            detectors=Detectors(
                lane=(
                    self.detector("lane", LANE_CAMERA_RANGES, LaneDetector.for_rig)
                    if self.params["lane_detection"]
                    else None
                ),
                light=(
                    self.detector(
                        "traffic light",
                        {*LIGHT_CAMERAS, *LANE_CAMERA_RANGES},  # its lamps' and its lines'
                        TrafficLightDetector.for_rig,
                    )
                    if self.params["traffic_light_detection"]
                    else None
                ),
                free_space=(
                    self.detector("free space", FREE_SPACE_CAMERAS, FreeSpaceDetector.for_rig)
                    if self.params["free_space_detection"]
                    else None
                ),
            ),
        )
        # Decode-and-resize times of the recent frames, reported as their median.
        self.decode_ms: deque[float] = deque(maxlen=100)
        self.inference_id = 0
        self.diagnostics = Diagnostics(
            self, hardware_id=self.backend.name, inputs=self.step.health.report
        )
        if isinstance(self.backend, WorkerBackend):
            # Its failures name it too: "model worker <model> at <address>: ...".
            self.diagnostics.set_values(worker=self.backend.address)

        topics = TopicMap.for_node(
            self.params["topic_map_file"],
            self.step.cameras,
            self.params["camera_namespace"],
            self.params["image_transport"],
        )
        self.adapted = {name for name, entry in topics.cameras.items() if entry.adapted}
        if self.adapted:
            rig_file = self.params["rig_file"] or str(config_file("rig.yaml"))
            rig = CameraRig.load(rig_file, sorted(self.adapted))
            self.adaptation = RigAdaptation(rig, self.backend.image_size)
        for name, entry in topics.cameras.items():
            if entry.calibration is not None:
                self.calibrate(name, entry.calibration, entry.mount)
            if entry.camera_info:
                self.create_subscription(
                    CameraInfo,
                    entry.camera_info,
                    lambda msg, camera=name, mount=entry.mount: self.on_camera_info(
                        camera, msg, mount
                    ),
                    qos_profile_sensor_data,
                )
            if entry.compressed:
                self.create_subscription(
                    CompressedImage,
                    entry.topic,
                    lambda msg, camera=name: self.on_compressed_image(camera, msg),
                    qos_profile_sensor_data,
                )
            else:
                self.create_subscription(
                    Image,
                    entry.topic,
                    lambda msg, camera=name: self.on_image(camera, msg),
                    qos_profile_sensor_data,
                )
        self.create_subscription(Odometry, topics.odometry, self.on_odometry, 50)
        # Any publisher's route (a volatile reader matches latched and volatile writers).
        self.create_subscription(String, "navigation_text", self.on_navigation, 1)
        self.reasoning_publisher = self.create_publisher(Reasoning, "reasoning", 10)
        self.meta_action_publisher = self.create_publisher(MetaAction, "meta_action", 10)
        self.conditioning_publisher = self.create_publisher(PlannerConditioning, "conditioning", 10)
        self.worker = LatestOnlyWorker(self.infer, self.on_inference_error, name="vla_inference")
        # Reasoning text still to write, newest only: (inference id, inference, start).
        self.unexplained: deque[tuple[int, Inference, int]] = deque(maxlen=1)
        self.input_wait = LastingWait(INPUT_WAIT_WARN_S)
        self.text_worker = LatestOnlyWorker(
            self.explain, self.on_inference_error, name="reasoning_text", niceness=TEXT_NICENESS
        )

    def destroy_node(self) -> None:
        self.worker.stop()
        self.text_worker.stop()
        if isinstance(self.backend, WorkerBackend):
            self.backend.close()  # stops a worker this node started
        super().destroy_node()

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def on_image(self, camera: str, msg: Image) -> None:
        self.on_frame(camera, msg, conversions.image_to_rgb, msg.width, msg.height)

    def on_compressed_image(self, camera: str, msg: CompressedImage) -> None:
        # The size is known only once decoded: a frame too large is refused then, before
        # its pixels reach the model.
        self.on_frame(camera, msg, conversions.compressed_to_rgb, 0, 0)

    def on_frame(
        self,
        camera: str,
        msg: Image | CompressedImage,
        decode: Callable[[Any], RgbImage],
        width: int,
        height: int,
    ) -> None:
        """Decode, resize and buffer a frame the step admits; a refused or undecodable
        frame is counted in the camera's health (on /diagnostics) and never used.
        `width` x `height`: the size announced before decoding (0 x 0 when unknown)."""
        started = time.perf_counter()
        received_ns, stamp = self.now_ns(), conversions.stamp_ns(msg.header.stamp)
        if not self.step.admit_frame(camera, stamp, received_ns, width, height):
            return
        try:
            image = decode(msg)
        except conversions.ImageError as error:
            self.step.reject_frame(camera, received_ns, str(error))
            return
        decoded_height, decoded_width = image.shape[:2]
        if not self.step.admit_frame_size(camera, received_ns, decoded_width, decoded_height):
            return
        if camera in self.adapted:
            try:
                image = self.adaptation.apply(camera, image)
            except CalibrationError as error:
                self.step.reject_frame(camera, received_ns, str(error))
                return
        result = self.step.add_frame(camera, stamp, image, received_ns)
        self.decode_ms.append((time.perf_counter() - started) * 1e3)
        self.report_clock_jump(result, f"camera {camera}")
        if result.keeps_sample:
            self.worker.request()

    def on_camera_info(self, camera: str, msg: CameraInfo, mount: Mount | None) -> None:
        try:
            calibration = CameraCalibration.from_camera_info(
                msg.width, msg.height, msg.distortion_model, msg.d, msg.k
            )
        except CalibrationError as error:
            self.step.reject_frame(camera, self.now_ns(), f"camera_info: {error}")
            return
        self.calibrate(camera, calibration, mount)

    def calibrate(self, camera: str, calibration: CameraCalibration, mount: Mount | None) -> None:
        """Reproject `camera` into its rig camera from now on (tables rebuilt only for a
        new calibration); what cannot be compensated is logged and kept on /diagnostics."""
        reprojection = self.adaptation.calibrate(camera, calibration, mount)
        if reprojection is None:
            return
        limits = "; ".join(reprojection.limitations())
        self.get_logger().info(
            f"camera {camera}: {calibration.width}x{calibration.height} "
            f"{calibration.distortion_model} reprojected into the rig camera"
            + (f"; not compensated: {limits}" if limits else "")
        )
        self.diagnostics.set_values(**{f"rig_adaptation.{camera}": limits or "compensated"})

    def on_navigation(self, msg: String) -> None:
        """The route ahead as text; a model that conditions on it reads the newest with
        each input, until navigation_max_age_s (others ignore it)."""
        self.step.set_navigation(msg.data, self.get_clock().now().nanoseconds)

    def on_odometry(self, msg: Odometry) -> None:
        received_ns = self.now_ns()
        stamp, position, quaternion, _ = conversions.odometry_sample(msg)
        if not self.step.admit_odometry(stamp, received_ns):
            return
        result = self.step.add_odometry(stamp, position, quaternion, received_ns)
        self.report_clock_jump(result, "odometry")
        # The camera set may have been waiting for odometry newer than its t0.
        if result.keeps_sample and self.step.pending():
            self.worker.request()

    def report_clock_jump(self, result: AddResult, stream: str) -> None:
        if result is AddResult.CLOCK_JUMP_BACK:
            self.get_logger().warning(f"clock jumped back on {stream}; inputs reset")

    def on_inference_error(self, error: Exception) -> None:
        self.get_logger().error(f"inference failed: {error!r}")
        self.diagnostics.update(ERROR, f"inference failed: {error!r}")

    def infer(self) -> None:
        """Runs on the worker thread: the planner's input goes out as soon as the backend
        has decided, the reasoning once its text is written."""
        started_ns = self.now_ns()
        try:
            inference = self.step.run()
        except InputsUnavailable as error:
            if self.input_wait.lasted(time.monotonic_ns()):
                self.diagnostics.update(WARN, f"waiting for inputs: {error}")
            return
        self.input_wait.over()
        if inference is None:
            return
        self.inference_id += 1
        self.publish_decision(inference, started_ns)
        self.unexplained.append((self.inference_id, inference, started_ns))
        self.text_worker.request()

    def explain(self) -> None:
        """Runs on the text thread: the newest decided inference's reasoning, written and
        published; one that a newer inference overtook before its text began is skipped."""
        try:
            inference_id, inference, started_ns = self.unexplained.popleft()
        except IndexError:
            return
        self.publish_reasoning(inference_id, inference.explained(), started_ns)

    def info(
        self, inference_id: int, inference: Inference, started_ns: int, model_stage: str
    ) -> InferenceInfo:
        """Provenance and timing of one output: latency from t0 to now, the model's time
        up to `model_stage`."""
        return conversions.inference_info_msg(
            inference_id,
            self.backend.name,
            self.backend.version,
            inference.aligned.stamps_ns,
            self.now_ns() - inference.t0_ns,
            input_wait_ns=started_ns - inference.t0_ns,
            model_ns=round(inference.stage_ms[model_stage] * 1e6),
            input_cameras=inference.aligned.camera_order,
        )

    def detector(
        self, what: str, cameras: Iterable[str], build: Callable[[CameraRig], Found | None]
    ) -> Found | None:
        """A detector beside the model (`build`) on the model rig's `cameras` that it has;
        None, with a warning, where the rig file does not calibrate them (the model runs
        without it)."""
        rig_file = self.params["rig_file"] or str(config_file("rig.yaml"))
        try:
            return build(
                CameraRig.load(rig_file, sorted(set(cameras) & set(self.params["cameras"])))
            )
        except (RigError, PerceptionError) as error:
            self.get_logger().warning(f"no {what} detection: {error}")
            return None

    def header(self, inference: Inference) -> Header:
        return conversions.header(inference.t0_ns, self.params["frame_id"])

    def publish_decision(self, inference: Inference, started_ns: int) -> None:
        """The planner's input (with the reasoning's structure; its text is empty when the
        backend writes it afterwards) and the meta-action."""
        head = self.header(inference)
        info = self.info(self.inference_id, inference, started_ns, "decide")
        output = inference.output
        meta_action = conversions.meta_action_msg(
            output.planner_input.meta_action,
            head,
            info,
            horizon_ns=round(TRAJECTORY_STEPS * TRAJECTORY_DT_S * NS_PER_S),
        )
        self.conditioning_publisher.publish(
            conversions.conditioning_msg(
                output.planner_input,
                inference.history.xyz,
                inference.history.rotations,
                meta_action,
                conversions.reasoning_msg(output.decision, head, info),
                head,
                info,
                inference.lane,
                inference.light,
                inference.free_space,
            )
        )
        self.meta_action_publisher.publish(meta_action)
        self.diagnostics.update(
            OK,
            "inferring",
            inference_id=self.inference_id,
            latency_ms=f"{duration_ns(info.latency) / 1e6:.1f}",
            decide_ms=f"{inference.stage_ms['decide']:.1f}",
            decode_ms=f"{statistics.median(self.decode_ms):.2f}" if self.decode_ms else "-",
            camera_skew_ms=f"{inference.aligned.max_skew_ns() / 1e6:.1f}",
            lane=lane_state(self.step, inference),
            traffic_light=light_state(self.step, inference),
            free_space=free_space_state(self.step, inference),
        )

    def publish_reasoning(self, inference_id: int, inference: Inference, started_ns: int) -> None:
        info = self.info(inference_id, inference, started_ns, "reason")
        self.reasoning_publisher.publish(
            conversions.reasoning_msg(inference.output.decision, self.header(inference), info)
        )
        self.diagnostics.set_values(
            text_latency_ms=f"{duration_ns(info.latency) / 1e6:.1f}",
            model_ms=f"{inference.stage_ms['reason']:.1f}",
        )


def main(args: list[str] | None = None) -> int:
    return run(VlaInference, args)


if __name__ == "__main__":
    raise SystemExit(main())
