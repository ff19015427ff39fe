"""VLA inference node: aligns cameras and ego history to one t0 and runs the backend's
reasoning half.

Inference is triggered by the camera set completing (every camera has a frame newer than
the last t0), not by a timer, so the output lags its input by the model time only;
`rate_hz` caps the rate.

Every output (reasoning, meta-action, planner conditioning) is stamped with t0, the input
time, and carries the same InferenceInfo, so staleness and provenance stay measurable
downstream. Inputs that cannot be aligned produce a diagnostic and no output, never a
guess.
"""

from __future__ import annotations

import numpy as np
from alpamayo_ros_msgs.msg import MetaAction, PlannerConditioning, Reasoning
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from alpamayo_ros.backends import create_backend
from alpamayo_ros.backends.base import VlaInput, fit_image
from alpamayo_ros.core.contract import (
    FRAME_OFFSETS_NS,
    HISTORY_PERIOD_NS,
    HISTORY_POSES,
    NS_PER_S,
    TRAJECTORY_DT_S,
    TRAJECTORY_STEPS,
)
from alpamayo_ros.core.ego_history import EgoHistoryBuffer, HistoryUnavailable
from alpamayo_ros.core.frame_alignment import (
    DEFAULT_JITTER_TOLERANCE_NS,
    FrameBuffer,
    FramesUnavailable,
    choose_t0,
    select_frames,
)
from alpamayo_ros.core.stamped import AddResult
from alpamayo_ros.nodes import conversions
from alpamayo_ros.nodes.runtime import (
    ERROR,
    OK,
    WARN,
    Diagnostics,
    declare_parameters,
    run,
)


class VlaInference(Node):
    def __init__(self) -> None:
        super().__init__("vla_inference")
        self.params = declare_parameters(self, "vla_inference")
        self.backend = create_backend(self.params["backend"], self.params["weights_file"])
        self.cameras: list[str] = self.params["cameras"]
        self.frames = {name: FrameBuffer(capacity=16) for name in self.cameras}
        self.history = EgoHistoryBuffer()
        self.rejected_images = 0
        self.inference_id = 0
        self.last_t0_ns: int | None = None
        self.diagnostics = Diagnostics(self, hardware_id=self.backend.name)

        namespace = self.params["camera_namespace"].rstrip("/")
        for name in self.cameras:
            self.create_subscription(
                Image,
                f"{namespace}/{name}/image_raw",
                lambda msg, camera=name: self.on_image(camera, msg),
                qos_profile_sensor_data,
            )
        self.create_subscription(Odometry, "odometry", self.on_odometry, 50)
        self.reasoning_publisher = self.create_publisher(Reasoning, "reasoning", 10)
        self.meta_action_publisher = self.create_publisher(MetaAction, "meta_action", 10)
        self.conditioning_publisher = self.create_publisher(PlannerConditioning, "conditioning", 10)
        self.min_period_ns = round(NS_PER_S / self.params["rate_hz"]) - DEFAULT_JITTER_TOLERANCE_NS

    def on_image(self, camera: str, msg: Image) -> None:
        try:
            image = conversions.image_to_rgb(msg)
        except conversions.ImageError as error:
            self.rejected_images += 1
            self.diagnostics.update(
                ERROR, f"{camera}: {error}", rejected_images=self.rejected_images
            )
            return
        image = fit_image(image, self.backend.image_size)
        result = self.frames[camera].add(conversions.stamp_ns(msg.header.stamp), image)
        if result is AddResult.CLOCK_JUMP_BACK:
            self.reset_after_clock_jump(f"camera {camera}")
        if result.keeps_sample:
            self.infer()

    def on_odometry(self, msg: Odometry) -> None:
        stamp, position, quaternion, _ = conversions.odometry_sample(msg)
        if self.history.add(stamp, position, quaternion) is AddResult.CLOCK_JUMP_BACK:
            self.reset_after_clock_jump("odometry")

    def reset_after_clock_jump(self, stream: str) -> None:
        """A replay restarted: the reporting buffer already kept only the new timeline;
        the others are cleared so no inference mixes two timelines."""
        self.get_logger().warning(f"clock jumped back on {stream}; inputs reset")
        for name in self.cameras:
            if stream != f"camera {name}":
                self.frames[name] = FrameBuffer(capacity=16)
        if stream != "odometry":
            self.history = EgoHistoryBuffer()
        self.last_t0_ns = None

    def infer(self) -> None:
        try:
            t0_ns = choose_t0(self.frames)
            if self.last_t0_ns is not None and t0_ns - self.last_t0_ns < self.min_period_ns:
                return
            aligned = select_frames(
                self.frames,
                self.cameras,
                t0_ns,
                FRAME_OFFSETS_NS,
                max_staleness_ns=round(self.params["max_frame_staleness_s"] * NS_PER_S),
            )
            history = self.history.resample(t0_ns, HISTORY_POSES, HISTORY_PERIOD_NS)
        except (FramesUnavailable, HistoryUnavailable) as error:
            self.diagnostics.update(WARN, f"waiting for inputs: {error}")
            return
        self.last_t0_ns = t0_ns
        inputs = VlaInput(
            t0_ns=t0_ns,
            images=np.stack([np.stack(frames) for frames in aligned.payloads]),
            frame_stamps_ns=aligned.stamps_ns,
            ego_xyz=history.xyz,
            ego_rotations=history.rotations,
        )
        output = self.backend.reason(inputs)
        self.inference_id += 1
        latency_ns = self.get_clock().now().nanoseconds - t0_ns
        head = conversions.header(t0_ns, self.params["frame_id"])
        info = conversions.inference_info_msg(
            self.inference_id,
            self.backend.name,
            self.backend.version,
            aligned.stamps_ns,
            latency_ns,
        )
        reasoning = conversions.reasoning_msg(output.decision, head, info)
        meta_action = conversions.meta_action_msg(
            output.planner_input.meta_action,
            head,
            info,
            horizon_ns=round(TRAJECTORY_STEPS * TRAJECTORY_DT_S * NS_PER_S),
        )
        self.reasoning_publisher.publish(reasoning)
        self.meta_action_publisher.publish(meta_action)
        self.conditioning_publisher.publish(
            conversions.conditioning_msg(
                output.planner_input,
                history.xyz,
                history.rotations,
                meta_action,
                reasoning,
                head,
                info,
            )
        )
        self.diagnostics.update(
            OK,
            "inferring",
            inference_id=self.inference_id,
            latency_ms=f"{latency_ns / 1e6:.1f}",
            camera_skew_ms=f"{aligned.max_skew_ns() / 1e6:.1f}",
        )


def main(args: list[str] | None = None) -> int:
    return run(VlaInference, args)


if __name__ == "__main__":
    raise SystemExit(main())
