"""The inference step: camera frames and odometry in, one aligned VlaInput at t0, the
backend's decision out, then its reasoning text (`Inference.explained`).

It owns the input buffers, the choice of t0 (the newest time every camera has a frame),
the rate cap, the reset after a clock jump (a replay restarted) and the alignment of 4
frames per camera and 16 ego poses to t0. It is thread-safe: subscription callbacks add
inputs while another thread runs the model, and `run` always takes the newest complete
input, so a model that cannot keep up skips frames instead of queueing them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import (
    FRAME_OFFSETS_NS,
    HISTORY_PERIOD_NS,
    HISTORY_POSES,
    NS_PER_S,
)
from alpamayo_ros.core.ego_history import EgoHistory, EgoHistoryBuffer, HistoryUnavailable
from alpamayo_ros.core.frame_alignment import (
    DEFAULT_JITTER_TOLERANCE_NS,
    AlignedFrames,
    FrameBuffer,
    FramesUnavailable,
    choose_t0,
    select_frames,
)
from alpamayo_ros.core.model_io import ReasoningOutput, VlaInput
from alpamayo_ros.core.stamped import AddResult
from alpamayo_ros.pipeline.backend import Backend, Decided

Image = npt.NDArray[np.uint8]

# Frames kept per camera: 0.3 s of model input plus the staleness margin at up to ~40 Hz.
FRAME_CAPACITY = 16


def _history_buffer() -> EgoHistoryBuffer:
    """The model's ego history is interpolated between odometry samples around t0, never
    extrapolated past the newest: an extrapolated history would depend on whether the next
    sample happened to arrive before the frames, so one recording could give two inputs.
    A camera set waits for the odometry that covers it (a driver that knows the pose at
    capture, as the synthetic one does, publishes it with the frames)."""
    return EgoHistoryBuffer(max_extrapolation_s=0.0)


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
    ) -> None:
        if not cameras:
            raise ValueError("the inference step needs at least one camera")
        if not rate_hz > 0.0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.backend = backend
        self.cameras = tuple(cameras)
        self.min_period_ns = round(NS_PER_S / rate_hz) - DEFAULT_JITTER_TOLERANCE_NS
        self.max_staleness_ns = round(max_frame_staleness_s * NS_PER_S)
        self._lock = threading.Lock()
        self._frames = {name: FrameBuffer[Image](FRAME_CAPACITY) for name in self.cameras}
        self._history = _history_buffer()
        self._last_t0_ns: int | None = None

    def add_frame(self, camera: str, stamp_ns: int, image: Image) -> AddResult:
        """Buffer a decoded RGB frame, resized for the backend; unknown cameras raise KeyError."""
        image = fit_image(image, self.backend.image_size)
        with self._lock:
            result = self._frames[camera].add(stamp_ns, image)
            if result is AddResult.CLOCK_JUMP_BACK:
                self._reset_except(camera)
        return result

    def add_odometry(self, stamp_ns: int, position: object, quaternion: object) -> AddResult:
        with self._lock:
            result = self._history.add(stamp_ns, position, quaternion)  # type: ignore[arg-type]
            if result is AddResult.CLOCK_JUMP_BACK:
                self._reset_except("odometry")
        return result

    def pending(self) -> bool:
        """Whether a camera set newer than the last inference is complete (cheap)."""
        with self._lock:
            try:
                t0_ns = choose_t0(self._frames)
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
                t0_ns = choose_t0(self._frames)
                if self._last_t0_ns is not None and t0_ns - self._last_t0_ns < self.min_period_ns:
                    return None
                aligned = select_frames(
                    self._frames,
                    self.cameras,
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
        return Inference(inputs, aligned, history, decided, stage_ms)

    def _reset_except(self, stream: str) -> None:
        """A replay restarted: the buffer that saw the jump already kept only the new
        timeline; the others are cleared so no inference mixes two timelines."""
        for name in self.cameras:
            if name != stream:
                self._frames[name] = FrameBuffer[Image](FRAME_CAPACITY)
        if stream != "odometry":
            self._history = _history_buffer()
        self._last_t0_ns = None
