"""The inference step: camera frames and odometry in, one aligned VlaInput at t0, the
backend's decision out, then its reasoning text (`Inference.explained`).

It owns the input buffers (sized by time: a camera faster than `max_frame_rate_hz` is
thinned before decoding, a frame larger than `max_frame_pixels` refused), the health of
every input (core.input_health: which camera is silent, which stamp is wrong, which
odometry field is invalid), the choice of t0 (the newest time every camera has a frame),
the rate cap, the reset after a clock jump (a replay restarted) and the alignment of 4
frames per camera and 16 ego poses to t0. It is thread-safe for one input thread
(the input health is updated there, unlocked) and one model thread: subscription callbacks
add inputs while the other thread runs the model, and `run` always takes the newest complete
input, so a model that cannot keep up skips frames instead of queueing them.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import (
    FRAME_OFFSETS_NS,
    HISTORY_PERIOD_NS,
    HISTORY_POSES,
    NS_PER_S,
)
from alpamayo_ros.core.ego_history import (
    MAX_ODOMETRY_GAP_S,
    EgoHistory,
    EgoHistoryBuffer,
    HistoryUnavailable,
    invalid_pose,
)
from alpamayo_ros.core.frame_alignment import (
    DEFAULT_JITTER_TOLERANCE_NS,
    AlignedFrames,
    FrameBuffer,
    FramesUnavailable,
    choose_t0,
    select_frames,
)
from alpamayo_ros.core.input_health import (
    Fault,
    HealthLimits,
    InputHealth,
    StreamHealth,
)
from alpamayo_ros.core.model_io import ReasoningOutput, VlaInput
from alpamayo_ros.core.stamped import AddResult
from alpamayo_ros.perception.detectors import NO_DETECTORS, Detectors
from alpamayo_ros.perception.free_space import FreeSpace
from alpamayo_ros.perception.lane import LaneEstimate
from alpamayo_ros.perception.traffic_light import NO_LIGHT, TrafficLightView
from alpamayo_ros.pipeline.backend import Backend, Decided

Image = npt.NDArray[np.uint8]

ODOMETRY = "odometry"  # the odometry's stream name in the input health

# A camera at exactly its frame-rate limit, with stamp jitter, keeps every frame: frames are
# skipped only when closer than this fraction of the limit's period.
FRAME_INTERVAL_FRACTION = 0.8


def _history_buffer() -> EgoHistoryBuffer:
    """The model's ego history is interpolated between odometry samples around t0, never
    extrapolated past the newest: an extrapolated history would depend on whether the next
    sample happened to arrive before the frames, so one recording could give two inputs.
    A camera set waits for the odometry that covers it (a driver that knows the pose at
    capture, as the synthetic one does, publishes it with the frames)."""
    return EgoHistoryBuffer(max_extrapolation_s=0.0)


# The stages of an inference the planner waits for: the decision, then what is found
# beside the model in the same frames (the planner's input goes out with all of them).
PLANNER_WAITS_FOR = ("decide", "lane", "traffic light", "free space")


def planner_wait_ms(stage_ms: Mapping[str, float]) -> float:
    """How long after the inputs were aligned the planner had its input (ms)."""
    return sum(stage_ms.get(stage, 0.0) for stage in PLANNER_WAITS_FOR)


class InputsUnavailable(RuntimeError):
    """No complete, aligned input for the newest t0; the message says which input lacks."""


def fit_image(image: Image, size: tuple[int, int] | None) -> Image:
    """A camera frame at the (width, height) a backend wants, area-averaged as in training.

    The one resize rule, so the model sees the same pixels in the graph and offline.
    """
    if size is None or image.shape[1::-1] == size:
        return image
    import cv2

    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


@dataclass(frozen=True)
class Inference:
    """One model run: what went in, what came out, and where the time went (ms per stage:
    "decide" is what the planner waits for, "reason" the whole vision-language half)."""

    inputs: VlaInput
    aligned: AlignedFrames[Image]
    history: EgoHistory
    decided: Decided
    stage_ms: dict[str, float] = field(default_factory=dict)
    # The ego lane in the frames of t0 (perception.lane), for the planner; None where the
    # step finds no lane or looks for none, and why where the detector failed.
    lane: LaneEstimate | None = None
    lane_error: str = ""
    # The light ahead in the same frames (perception.traffic_light), and why where that
    # detector failed.
    light: TrafficLightView = NO_LIGHT
    light_error: str = ""
    # How far the car's corridor is clear road in the same frames, along the lane above
    # (perception.free_space); None where not looked at, and why where that failed.
    free_space: FreeSpace | None = None
    free_space_error: str = ""

    @property
    def t0_ns(self) -> int:
        return self.inputs.t0_ns

    @property
    def output(self) -> ReasoningOutput:
        """The decision and planner input; the reasoning text only once `explained`."""
        return self.decided.output

    def explained(self) -> Inference:
        """This inference with its reasoning text, written now where the backend writes
        it after deciding (the planner's input went out already)."""
        if self.decided.write_text is None:
            return self
        started = time.perf_counter()
        output = self.decided.explained()
        text_ms = (time.perf_counter() - started) * 1e3
        stage_ms = {
            **self.stage_ms,
            "reasoning text": text_ms,
            "reason": self.stage_ms["decide"] + text_ms,
        }
        return replace(self, decided=Decided(output), stage_ms=stage_ms)


class InferenceStep:
    """Buffers and aligns inputs for one backend and runs its reasoning half."""

    def __init__(
        self,
        backend: Backend,
        cameras: Sequence[str],
        rate_hz: float = 10.0,
        max_frame_staleness_s: float = 0.06,
        max_frame_rate_hz: float = 30.0,
        max_frame_pixels: int = 3_000_000,
        limits: HealthLimits | None = None,
        navigation_max_age_s: float = 30.0,
        detectors: Detectors = NO_DETECTORS,
    ) -> None:
        """`detectors`: find the ego lane, the light ahead with its stop line, and how far
        the lane is clear road, in the newest frame of their cameras for each inference
        (the same frames the model sees, so what the planner gets and the reasoning are of
        one instant)."""
        if not cameras:
            raise ValueError("the inference step needs at least one camera")
        for name, value in (("rate_hz", rate_hz), ("max_frame_rate_hz", max_frame_rate_hz)):
            if not value > 0.0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.backend = backend
        self.cameras = tuple(cameras)
        self.detectors = detectors
        self.min_period_ns = round(NS_PER_S / rate_hz) - DEFAULT_JITTER_TOLERANCE_NS
        self.max_staleness_ns = round(max_frame_staleness_s * NS_PER_S)
        self.max_frame_pixels = max_frame_pixels
        self.min_frame_interval_ns = round(FRAME_INTERVAL_FRACTION * NS_PER_S / max_frame_rate_hz)
        # Thinning keeps frames up to two intervals apart; the frame chosen for a target may
        # then be that much older than it, less the jitter tolerance.
        if 2 * self.min_frame_interval_ns - DEFAULT_JITTER_TOLERANCE_NS > self.max_staleness_ns:
            raise ValueError(
                f"max_frame_rate_hz {max_frame_rate_hz} thins frames further apart than "
                f"max_frame_staleness_s {max_frame_staleness_s} allows; raise the rate"
            )
        limits = limits or HealthLimits()
        # A backend that runs without some cameras goes on without one silent this long
        # (stamp time, so a replay decides as the drive did); others wait for every camera.
        self.can_leave_out = backend.accepts_missing_cameras
        self.leave_out_after_ns = round(limits.silent_after_s * NS_PER_S)
        self.health = InputHealth(
            [StreamHealth(name, limits, optional=self.can_leave_out) for name in self.cameras]
            + [StreamHealth(ODOMETRY, limits, min_rate_hz=1.0 / MAX_ODOMETRY_GAP_S)]
        )
        self._lock = threading.Lock()
        self._frames = {name: self._frame_buffer() for name in self.cameras}
        self._history = _history_buffer()
        self._last_t0_ns: int | None = None
        self._first_frame_ns: int | None = None  # since the last reset
        # The newest route text and when it came (a model that takes navigation reads it
        # with each input, until it is older than navigation_max_age_s).
        self._navigation: tuple[str, int] | None = None
        self.navigation_max_age_ns = round(navigation_max_age_s * NS_PER_S)

    def _frame_buffer(self) -> FrameBuffer[Image]:
        return FrameBuffer[Image](min_interval_ns=self.min_frame_interval_ns)

    def admit_frame(
        self, camera: str, stamp_ns: int, received_ns: int, width: int, height: int
    ) -> bool:
        """Whether a frame is worth decoding: not from the future, not too large, not
        closer to the previous one than the frame-rate limit, not out of order. The reason
        for a refusal goes to the camera's health. Unknown cameras raise KeyError."""
        stream = self.health[camera]
        if not stream.received(stamp_ns, received_ns):
            return False
        if not self.admit_frame_size(camera, received_ns, width, height):
            return False
        with self._lock:
            buffer = self._frames[camera]
            newest_ns, result = buffer.newest_stamp_ns, buffer.classify(stamp_ns)
        if result is AddResult.SKIPPED:
            rate = stream.rate_hz()
            stream.record(
                Fault.TOO_FAST,
                received_ns,
                f"{rate:.0f} Hz; frames under {self.min_frame_interval_ns / 1e6:.0f} ms apart "
                "are skipped"
                if rate
                else "",
            )
            return False
        if not result.keeps_sample:
            self._record_arrival(camera, result, stamp_ns, newest_ns, received_ns)
            return False
        return True

    def admit_frame_size(self, camera: str, received_ns: int, width: int, height: int) -> bool:
        """Whether a frame is small enough (a compressed frame's size is known only once
        it is decoded, so this is asked again then)."""
        if width * height <= self.max_frame_pixels:
            return True
        self.health[camera].record(
            Fault.TOO_LARGE, received_ns, f"{width}x{height}, limit {self.max_frame_pixels} pixels"
        )
        return False

    def reject_frame(self, camera: str, received_ns: int, reason: str) -> None:
        """A frame that could not be decoded."""
        self.health[camera].record(Fault.INVALID, received_ns, reason)

    def add_frame(
        self, camera: str, stamp_ns: int, image: Image, received_ns: int | None = None
    ) -> AddResult:
        """Buffer a decoded RGB frame, resized for the backend; unknown cameras raise KeyError.
        `received_ns` (node clock; default: the stamp) dates any fault it shows."""
        image = fit_image(image, self.backend.image_size)
        with self._lock:
            buffer = self._frames[camera]
            newest_ns, result = buffer.newest_stamp_ns, buffer.add(stamp_ns, image)
            if result is AddResult.CLOCK_JUMP_BACK:
                self._reset_except(camera)
            if result.keeps_sample and self._first_frame_ns is None:
                self._first_frame_ns = stamp_ns
        self._record_arrival(camera, result, stamp_ns, newest_ns, received_ns)
        return result

    def admit_odometry(self, stamp_ns: int, received_ns: int) -> bool:
        """Whether an odometry sample's stamp can be used (not from the future)."""
        return self.health[ODOMETRY].received(stamp_ns, received_ns)

    def add_odometry(
        self,
        stamp_ns: int,
        position: npt.NDArray[np.float64],
        quaternion: npt.NDArray[np.float64],
        received_ns: int | None = None,
    ) -> AddResult:
        with self._lock:
            newest_ns = self._history.newest_stamp_ns
            result = self._history.add(stamp_ns, position, quaternion)
            if result is AddResult.CLOCK_JUMP_BACK:
                self._reset_except(ODOMETRY)
        invalid = (
            invalid_pose(position, quaternion) if result is AddResult.REJECTED_NONFINITE else None
        )
        self._record_arrival(ODOMETRY, result, stamp_ns, newest_ns, received_ns, invalid)
        return result

    def _record_arrival(
        self,
        stream: str,
        result: AddResult,
        stamp_ns: int,
        newest_ns: int | None,
        received_ns: int | None,
        detail: str | None = None,
    ) -> None:
        """A buffer's verdict in the stream's health, at the receive time when known."""
        received = stamp_ns if received_ns is None else received_ns
        self.health[stream].record_arrival(result, received, stamp_ns, newest_ns, detail)

    def set_navigation(self, text: str, received_ns: int) -> None:
        """The route ahead as text ("Turn left onto Main St in 40 m"), received at
        `received_ns` (the node's clock, as the frames' stamps)."""
        self._navigation = (text, received_ns)

    def _route_at(self, t0_ns: int) -> str:
        """The route for an input at t0: the newest, unless it is too old to still be the
        way ahead (a turn announced long ago has been taken)."""
        if self._navigation is None:
            return ""
        text, received_ns = self._navigation
        return text if t0_ns - received_ns <= self.navigation_max_age_ns else ""

    def pending(self) -> bool:
        """Whether a camera set newer than the last inference is complete (cheap)."""
        with self._lock:
            try:
                t0_ns = choose_t0(self._sending_frames())
            except FramesUnavailable:
                return False
            return self._last_t0_ns is None or t0_ns - self._last_t0_ns >= self.min_period_ns

    def run(self) -> Inference | None:
        """Decide at the newest complete t0; None when it is not newer than the rate allows.

        Raises InputsUnavailable naming what is missing; the inputs stay buffered, so the
        next frame or odometry sample can complete them.
        """
        started = time.perf_counter()
        with self._lock:
            try:
                frames = self._sending_frames()
                t0_ns = choose_t0(frames)
                if self._last_t0_ns is not None and t0_ns - self._last_t0_ns < self.min_period_ns:
                    return None
                aligned = select_frames(
                    frames,
                    tuple(frames),
                    t0_ns,
                    FRAME_OFFSETS_NS,
                    max_staleness_ns=self.max_staleness_ns,
                )
                history = self._history.resample(t0_ns, HISTORY_POSES, HISTORY_PERIOD_NS)
            except (FramesUnavailable, HistoryUnavailable) as error:
                raise InputsUnavailable(str(error)) from error
            self._last_t0_ns = t0_ns
        inputs = VlaInput(
            t0_ns=t0_ns,
            images=np.stack([np.stack(frames) for frames in aligned.payloads]),
            frame_stamps_ns=aligned.stamps_ns,
            ego_xyz=history.xyz,
            ego_rotations=history.rotations,
            cameras=aligned.camera_order,
            navigation=self._route_at(t0_ns),
        )
        aligned_at = time.perf_counter()
        decided = self.backend.decide(inputs)
        decide_ms = (time.perf_counter() - aligned_at) * 1e3
        stage_ms = {
            "align": (aligned_at - started) * 1e3,
            "decide": decide_ms,
            **{f"decide: {name}": ms for name, ms in self.backend.stage_ms.items()},
            "reason": decide_ms,
        }
        newest = {
            camera: frames[-1]
            for camera, frames in zip(aligned.camera_order, aligned.payloads, strict=True)
        }
        found = self.detectors
        lane, lane_error = _beside_model(
            "lane", found.lane.detect if found.lane else None, newest, stage_ms
        )
        light, light_error = _beside_model(
            "traffic light", found.light.detect if found.light else None, newest, stage_ms
        )
        free_space, free_space_error = _beside_model(
            "free space",
            functools.partial(found.free_space.detect, lane=lane) if found.free_space else None,
            newest,
            stage_ms,
        )
        return Inference(
            inputs,
            aligned,
            history,
            decided,
            stage_ms,
            lane,
            lane_error,
            NO_LIGHT if light is None else light,
            light_error,
            free_space,
            free_space_error,
        )

    def _sending_frames(self) -> dict[str, FrameBuffer[Image]]:
        """The buffers of the cameras an inference uses (under the lock): every camera, or,
        where the backend can do without some, those whose newest frame is within the
        leave-out time of the newest frame of any camera. For that long after the first
        frame every camera is waited for, so a camera slower to start is not left out."""
        if not self.can_leave_out or self._first_frame_ns is None:
            return self._frames
        newest = {name: buffer.newest_stamp_ns for name, buffer in self._frames.items()}
        latest = max(stamp for stamp in newest.values() if stamp is not None)
        if latest - self._first_frame_ns < self.leave_out_after_ns:
            return self._frames
        return {
            name: self._frames[name]
            for name, stamp in newest.items()
            if stamp is not None and latest - stamp < self.leave_out_after_ns
        }

    def _reset_except(self, stream: str) -> None:
        """A replay restarted: the buffer that saw the jump already kept only the new
        timeline; the others are cleared so no inference mixes two timelines."""
        for name in self.cameras:
            if name != stream:
                self._frames[name] = self._frame_buffer()
        if stream != ODOMETRY:
            self._history = _history_buffer()
        self._last_t0_ns = None
        self._first_frame_ns = None


Found = TypeVar("Found")


def _beside_model(
    stage: str,
    detect: Callable[[Mapping[str, Image]], Found | None] | None,
    frames: Mapping[str, Image],
    stage_ms: dict[str, float],
) -> tuple[Found | None, str]:
    """What a detector beside the model finds in the newest frames, and why it failed
    (a frame it cannot read leaves the model's decision as it is); its time as `stage`."""
    if detect is None:
        return None, ""
    started = time.perf_counter()
    try:
        return detect(frames), ""
    except ValueError as error:
        return None, f"{stage} detection failed: {error}"
    finally:
        stage_ms[stage] = (time.perf_counter() - started) * 1e3
