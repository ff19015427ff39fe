"""Input faults sent into a real VLA node process over DDS: each is named on /diagnostics
(WARN or ERROR) with its count, no output is built from the bad input, and outputs resume
once good input returns. Cameras at 100 Hz keep the outputs at the configured rate.

The node runs the constant-velocity backend: what is under test is the input side, which
every backend shares, and it keeps the test light on a 2-core machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from alpamayo_ros_msgs.msg import PlannerConditioning
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
from parameter_files import parameter_file
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from recorded_drive import SPECS
from sensor_msgs.msg import Image

from alpamayo_ros.core.contract import CAMERA_ORDER, FRAMES_PER_CAMERA, NS_PER_S
from alpamayo_ros.graph import Topics
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.ros.conversions import odometry_msg, rgb_image_msg, stamp_ns
from alpamayo_ros.sensors.base import EgoPose

SPEED_MPS = 10.0
RATE_HZ = 10.0
SILENT_CAMERA = CAMERA_ORDER[1]


@dataclass
class Phase:
    """What one stretch of input looked like, and what came out meanwhile."""

    outputs: list[PlannerConditioning] = field(default_factory=list)
    statuses: list[tuple[float, DiagnosticStatus]] = field(default_factory=list)  # (s in, status)
    bridge_statuses: list[DiagnosticStatus] = field(default_factory=list)  # the control bridge's
    bad_stamps: set[int] = field(default_factory=set)  # odometry stamps no output may use
    bad_frames: set[tuple[str, int]] = field(default_factory=set)  # (camera, stamp) likewise

    def levels_after(self, seconds: float) -> set[bytes]:
        return {status.level for at, status in self.statuses if at >= seconds}

    def messages(self) -> str:
        return "\n".join(status.message for _, status in self.statuses)

    def used_frames(self) -> set[tuple[str, int]]:
        """(camera, stamp) of every frame an output was built from."""
        used = set()
        for msg in self.outputs:
            per_camera = len(msg.info.input_stamps) // len(msg.info.input_cameras)
            for index, stamp in enumerate(msg.info.input_stamps):
                used.add((msg.info.input_cameras[index // per_camera], stamp_ns(stamp)))
        return used


class Feeder:
    """Publishes four cameras and odometry as a car would, with faults on demand, and
    listens to the VLA node's conditioning and diagnostics."""

    def __init__(self, context: Context) -> None:
        self.node = Node("feeder", context=context)
        self.cameras = {
            camera: self.node.create_publisher(
                Image, f"/sensing/camera/{camera}/image_raw", qos_profile_sensor_data
            )
            for camera in CAMERA_ORDER
        }
        self.odometry = self.node.create_publisher(Odometry, Topics.ODOMETRY, 50)
        self.node.create_subscription(PlannerConditioning, Topics.CONDITIONING, self.on_output, 50)
        self.node.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self.on_status, 50)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.image = np.full((128, 256, 3), 90, np.uint8)
        self.clock_offset_ns = 0  # added to every stamp: a negative jump restarts the inputs
        self.phase = Phase()
        self.phase_start = 0.0

    def on_output(self, msg: PlannerConditioning) -> None:
        self.phase.outputs.append(msg)

    def on_status(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("vla_inference"):
                self.phase.statuses.append((time.monotonic() - self.phase_start, status))
            if status.name.endswith("control_bridge"):
                self.phase.bridge_statuses.append(status)

    def pose(self, stamp: int, position_x: float | None = None) -> EgoPose:
        x = SPEED_MPS * stamp / NS_PER_S if position_x is None else position_x
        return EgoPose(
            stamp,
            np.array([x, 0.0, 0.0]),
            np.array([0.0, 0.0, 0.0, 1.0]),
            np.array([SPEED_MPS, 0.0, 0.0]),
            np.zeros(3),
        )

    def feed(
        self,
        seconds: float,
        camera_hz: float = RATE_HZ,
        odometry_hz: float = 50.0,
        silent: tuple[str, ...] = (),
        future_s: float = 0.0,
        out_of_order: bool = False,
        odometry_fault: str = "",
        large: bool = False,
        encoding: str = "",
    ) -> Phase:
        """Publish for `seconds`, stamping each message at its scheduled time."""
        self.phase, self.phase_start = Phase(), time.monotonic()
        start_ns = time.time_ns() + self.clock_offset_ns
        due = {"cameras": 0, "odometry": 0}
        periods = {"cameras": NS_PER_S / camera_hz, "odometry": NS_PER_S / odometry_hz}
        while time.monotonic() - self.phase_start < seconds:
            elapsed_ns = time.time_ns() + self.clock_offset_ns - start_ns
            while due["odometry"] * periods["odometry"] <= elapsed_ns:
                self.publish_odometry(
                    start_ns + round(due["odometry"] * periods["odometry"]), odometry_fault
                )
                due["odometry"] += 1
            while due["cameras"] * periods["cameras"] <= elapsed_ns:
                stamp = start_ns + round(due["cameras"] * periods["cameras"])
                self.publish_frames(stamp, silent, future_s, out_of_order, large, encoding)
                due["cameras"] += 1
            self.executor.spin_once(timeout_sec=0.002)
        return self.phase

    def publish_odometry(self, stamp: int, fault: str) -> None:
        msg = odometry_msg(self.pose(stamp), "odom", "base_link")
        if fault == "nan":
            msg.pose.pose.position.x = float("nan")
        elif fault == "zero quaternion":
            msg.pose.pose.orientation.w = 0.0
        if fault:
            self.phase.bad_stamps.add(stamp)
        self.odometry.publish(msg)

    def publish_frames(
        self,
        stamp: int,
        silent: tuple[str, ...],
        future_s: float,
        out_of_order: bool,
        large: bool,
        encoding: str,
    ) -> None:
        for index, (camera, publisher) in enumerate(self.cameras.items()):
            if camera in silent:
                continue
            frame_stamp, image = stamp, self.image
            if index == 0 and future_s:
                frame_stamp = stamp + round(future_s * NS_PER_S)
                self.phase.bad_frames.add((camera, frame_stamp))
            if index == 0 and large:
                image = np.zeros((480, 640, 3), np.uint8)
                self.phase.bad_frames.add((camera, frame_stamp))
            msg = rgb_image_msg(image, frame_stamp, f"{camera}_optical")
            if index == 0 and encoding:
                msg.encoding = encoding  # a camera sending what the node cannot decode
                self.phase.bad_frames.add((camera, frame_stamp))
            publisher.publish(msg)
            if index == 0 and out_of_order:
                # Older than the four frames before it: out of order even where best-effort
                # delivery lost the on-time frame (one lost frame would make a frame 50 ms
                # late an in-order one, rightly used; a loaded CI machine did that).
                late = stamp - 450_000_000
                self.phase.bad_frames.add((camera, late))
                publisher.publish(rgb_image_msg(image, late, f"{camera}_optical"))

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def assert_named(phase: Phase, level: bytes, *words: str) -> None:
    """Some status of the phase had `level` and named the fault."""
    named = [
        status
        for _, status in phase.statuses
        if status.level == level and all(word in status.message for word in words)
    ]
    assert named, f"no status at level {level!r} naming {words}:\n{phase.messages()}"


def assert_resumes(feeder: Feeder, seconds: float = 2.5) -> None:
    good = feeder.feed(seconds)
    assert len(good.outputs) >= 5, (len(good.outputs), good.messages())


def test_each_input_fault_is_named_and_outputs_resume(
    rclpy_context: Context, tmp_path: Path
) -> None:
    params = parameter_file(
        tmp_path,
        "constant_velocity",
        # A low frame-size limit: a 640x480 frame stands in for a 4000x3000 one (the same
        # refusal, without pushing 36 MB frames through DDS on a test machine).
        vla_inference={"input_fault_hold_s": 1.5, "max_frame_pixels": 200_000},
    )
    feeder = Feeder(rclpy_context)
    try:
        # The control bridge listens to the same odometry: it names invalid samples too.
        nodes = (SPECS["vla_inference"], SPECS["control_bridge"])
        with GraphProcesses(params, nodes=nodes) as graph:
            deadline = time.monotonic() + 30.0
            while not feeder.feed(1.0).outputs:  # discovery and the first full history
                graph.check()
                assert time.monotonic() < deadline, "the VLA node never produced an output"
            healthy = feeder.feed(2.5)
            # Counted as they come to the feeder, which a loaded machine delays too.
            assert len(healthy.outputs) >= 0.5 * RATE_HZ * 2.5, len(healthy.outputs)
            assert healthy.levels_after(1.0) == {DiagnosticStatus.OK}, healthy.messages()

            # A camera goes silent mid-drive: named (WARN), never OK meanwhile, and the
            # outputs go on without it (the backend runs on the cameras that still send).
            silent = feeder.feed(2.5, silent=(SILENT_CAMERA,))
            assert_named(silent, DiagnosticStatus.WARN, SILENT_CAMERA, "silent, left out")
            assert DiagnosticStatus.OK not in silent.levels_after(1.0), silent.messages()
            without = [
                msg for msg in silent.outputs if len(msg.info.input_stamps) == 3 * FRAMES_PER_CAMERA
            ]
            assert len(without) >= 0.5 * RATE_HZ * 1.5, (len(silent.outputs), silent.messages())
            assert_resumes(feeder)
            # Every camera silent: nothing to run on, an ERROR and no output.
            blind = feeder.feed(2.0, silent=CAMERA_ORDER)
            assert_named(blind, DiagnosticStatus.ERROR, "silent")
            assert DiagnosticStatus.OK not in blind.levels_after(1.0), blind.messages()
            assert_resumes(feeder)

            future = feeder.feed(2.5, future_s=10.0)
            assert_named(future, DiagnosticStatus.ERROR, CAMERA_ORDER[0], "in the future")
            assert not future.used_frames() & future.bad_frames
            assert_resumes(feeder)

            disordered = feeder.feed(2.5, out_of_order=True)
            assert_named(disordered, DiagnosticStatus.WARN, CAMERA_ORDER[0], "out of order")
            assert not disordered.used_frames() & disordered.bad_frames
            assert len(disordered.outputs) >= 5  # a late frame is dropped, not a stall

            for fault, field_named in (
                ("nan", "position.x is nan"),
                ("zero quaternion", "orientation is a zero quaternion"),
            ):
                invalid = feeder.feed(2.5, odometry_fault=fault)
                assert_named(invalid, DiagnosticStatus.ERROR, "odometry: invalid", field_named)
                assert any(
                    status.level == DiagnosticStatus.ERROR and "odometry: invalid" in status.message
                    for status in invalid.bridge_statuses
                ), [status.message for status in invalid.bridge_statuses]
                # No output is built on the invalid samples: none has its t0 among them
                # (the history never extrapolates past the last valid sample).
                t0s = {stamp_ns(msg.header.stamp) for msg in invalid.outputs}
                assert not t0s & invalid.bad_stamps
                assert all(t0 < min(invalid.bad_stamps) for t0 in t0s)
                assert_resumes(feeder, 3.5)  # the history needs 1.5 s of valid odometry again

            slow = feeder.feed(2.5, odometry_hz=2.0)
            assert_named(slow, DiagnosticStatus.ERROR, "odometry: rate too low")
            assert_resumes(feeder, 3.5)

            feeder.clock_offset_ns = -30 * NS_PER_S  # a replay restarted
            jumped = feeder.feed(3.0)
            assert_named(jumped, DiagnosticStatus.WARN, "clock jumped back")
            assert jumped.outputs, "no output after the inputs restarted"

            large = feeder.feed(2.5, large=True)
            assert_named(large, DiagnosticStatus.ERROR, CAMERA_ORDER[0], "too large", "640x480")
            assert not large.used_frames() & large.bad_frames
            assert_resumes(feeder)

            unsupported = feeder.feed(2.5, encoding="16UC1")
            assert_named(
                unsupported, DiagnosticStatus.ERROR, CAMERA_ORDER[0], "unsupported encoding '16UC1'"
            )
            assert not unsupported.used_frames() & unsupported.bad_frames
            assert_resumes(feeder)

            fast = feeder.feed(3.0, camera_hz=100.0)
            assert_named(fast, DiagnosticStatus.WARN, "faster than used")
            # Outputs go on while the node drops 400 frames a second; at half the rate, as
            # with a camera left out: a loaded 2-core CI machine gave 17 of 30 (57%).
            assert len(fast.outputs) >= 0.5 * RATE_HZ * 3.0, len(fast.outputs)
            graph.check()
    finally:
        feeder.close()
