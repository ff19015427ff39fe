"""What a model worker and its clients say to each other, and the images they share.

A backend can run in a process of its own (its own Python, torch and GPU, where the ROS
node's interpreter cannot hold them): `worker_server` serves it, `worker.WorkerBackend`
forwards to it. They talk over ZeroMQ (REQ -> ROUTER) in explicit frames:

- frame 0, the header: UTF-8 JSON, always with "protocol" (PROTOCOL_VERSION), so that two
  versions refuse each other by name instead of misreading; "arrays" lists the arrays
  that follow as [name, dtype, shape], one frame of raw bytes each;
- the camera images are not in the message: the client writes them into a slot of its
  shared-memory ring (`ImageRing`) and the request names the segment, offset, shape and
  dtype; the worker hands the backend a read-only view of them (`SharedImages`), so the
  one copy is the client's into shared memory.

Requests ("op"): "hello" -> the served backend's name, version, image_size and whether it
takes missing cameras, the worker's pid and instance; "decide" -> the decision and the
planner input, with a text id when the text is written afterwards; "text" (id) -> that
decision's reasoning text; "sample" (planner input, K, generator state, noise scale) ->
the control samples and the generator's advanced state, so the samples are those of the
same generator in-process. Every request but hello carries "expect": [name, version], refused
by a worker serving another model, and "timeout_s", after which its client no longer waits
(a decision still queued then is dropped). An answer with "error" names its kind:
"protocol", "mismatch" (WorkerMismatch), "backend" (the backend raised), "request" or
"expired".
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np
import numpy.typing as npt

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import EgoState
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.core.model_io import (
    CausalDecision,
    MetaActionEstimate,
    PlannerInput,
    ReasoningOutput,
)

PROTOCOL_VERSION = 2
# Where a worker listens unless told otherwise (one model worker per machine).
DEFAULT_ADDRESS = "ipc:///tmp/alpamayo_ros_model_worker"
ADDRESS_SCHEMES = ("ipc://", "tcp://")
# Slots of the image ring: a request that timed out may still be read by a slow worker
# while the next ones are written, into the other slots.
IMAGE_SLOTS = 4
SLOT_ALIGNMENT = 64

Frames = Sequence[bytes | memoryview]
Header = dict[str, Any]
Arrays = dict[str, npt.NDArray[Any]]


class WorkerError(RuntimeError):
    """A request to the model worker failed; the message names the worker and its address."""


class WorkerUnavailable(WorkerError):
    """The worker did not answer in time: not started, dead, or stuck."""


class WorkerMismatch(WorkerError, ConfigurationError):
    """The worker speaks another protocol version or serves another model than expected."""


class ProtocolError(WorkerError):
    """A message that does not follow the protocol."""


def address_problem(address: str) -> str | None:
    """Why `address` cannot be a worker's address, or None."""
    if not address.startswith(ADDRESS_SCHEMES) or address in ADDRESS_SCHEMES:
        return f"must be ipc://<path> or tcp://<host>:<port>, got {address!r}"
    return None


def pack(header: Mapping[str, Any], arrays: Mapping[str, npt.ArrayLike] | None = None) -> Frames:
    """The frames of one message: the JSON header (with the protocol version and the
    arrays' layout), then each array's bytes."""
    contiguous = {name: np.ascontiguousarray(value) for name, value in (arrays or {}).items()}
    layout = [[name, a.dtype.str, list(a.shape)] for name, a in contiguous.items()]
    head = {**header, "protocol": PROTOCOL_VERSION, "arrays": layout}
    return [json.dumps(head, default=_jsonable).encode(), *(a.data for a in contiguous.values())]


def unpack(frames: Frames) -> tuple[Header, Arrays]:
    """The header and the arrays (owned copies) of one message."""
    try:
        header = json.loads(bytes(frames[0]))
        layout = header.pop("arrays", [])
        if not isinstance(header, dict) or "protocol" not in header:
            raise ValueError("no protocol version in the header")
    except (IndexError, ValueError, AttributeError) as error:
        raise ProtocolError(f"not a model worker message: {error}") from None
    if header["protocol"] != PROTOCOL_VERSION:
        return header, {}  # another version: only its header can be trusted
    if len(layout) != len(frames) - 1:
        raise ProtocolError(f"{len(layout)} arrays announced, {len(frames) - 1} sent")
    arrays = {}
    for (name, dtype, shape), frame in zip(layout, frames[1:], strict=True):
        array = np.frombuffer(frame, dtype=np.dtype(dtype))
        if array.size != int(np.prod(shape)):
            raise ProtocolError(f"array {name}: {array.size} values for shape {shape}")
        arrays[name] = array.reshape(shape).copy()
    return header, arrays


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def error_reply(kind: str, message: str) -> Frames:
    return pack({"error": message, "kind": kind})


# --- the model's inputs and outputs -------------------------------------------------------


def planner_input_fields(planner_input: PlannerInput) -> tuple[Header, Arrays]:
    state, meta = planner_input.ego_state, planner_input.meta_action
    header = {
        "ego_state": [state.speed, state.acceleration, state.yaw_rate, state.curvature],
        "meta_action": [int(meta.longitudinal), int(meta.lateral)],
    }
    arrays = {
        "longitudinal_probabilities": meta.longitudinal_probabilities,
        "lateral_probabilities": meta.lateral_probabilities,
        "latent": planner_input.latent,
    }
    return header, arrays


def planner_input_from(header: Header, arrays: Arrays) -> PlannerInput:
    longitudinal, lateral = header["meta_action"]
    meta_action = MetaActionEstimate(
        Longitudinal(longitudinal),
        Lateral(lateral),
        arrays["longitudinal_probabilities"],
        arrays["lateral_probabilities"],
    )
    return PlannerInput(EgoState(*header["ego_state"]), meta_action, arrays["latent"])


def output_fields(output: ReasoningOutput) -> tuple[Header, Arrays]:
    decision = output.decision
    header, arrays = planner_input_fields(output.planner_input)
    header["decision"] = {
        "text": decision.text,
        "longitudinal_decision": int(decision.longitudinal_decision),
        "lateral_decision": int(decision.lateral_decision),
        "cause": int(decision.cause),
        "cause_object_id": decision.cause_object_id,
        "cause_object_position": list(decision.cause_object_position),
    }
    return header, arrays


def output_from(header: Header, arrays: Arrays) -> ReasoningOutput:
    fields = header["decision"]
    x, y, z = fields["cause_object_position"]
    decision = CausalDecision(
        text=fields["text"],
        longitudinal_decision=LongitudinalDecision(fields["longitudinal_decision"]),
        lateral_decision=LateralDecision(fields["lateral_decision"]),
        cause=Cause(fields["cause"]),
        cause_object_id=fields["cause_object_id"],
        cause_object_position=(x, y, z),
    )
    return ReasoningOutput(decision, planner_input_from(header, arrays))


BIT_GENERATORS = {
    name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")
}


def generator_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """A generator in the state another process's generator was in (JSON round trip)."""
    try:
        bit_generator = BIT_GENERATORS[state["bit_generator"]]()
    except KeyError:
        raise ProtocolError(f"unknown bit generator {state.get('bit_generator')!r}") from None
    bit_generator.state = dict(state)
    return np.random.Generator(bit_generator)


# --- images in shared memory --------------------------------------------------------------


class ImageRing:
    """The client's side: slots of one shared-memory segment, written in turn, sized for the
    largest images seen (a larger set replaces the segment). Owned by the client, so a
    worker that dies or restarts loses nothing; unlinked by `close` (or, should the client
    die, by its resource tracker)."""

    def __init__(self, slots: int = IMAGE_SLOTS) -> None:
        self._slots = slots
        self._segment: SharedMemory | None = None
        self._slot_bytes = 0
        self._next = 0
        self._lock = threading.Lock()

    def put(self, images: npt.NDArray[Any]) -> Header:
        """Copy `images` into the next slot; returns what a request says of them."""
        with self._lock:
            if self._segment is None or images.nbytes > self._slot_bytes:
                self._replace(images.nbytes)
            assert self._segment is not None
            segment, offset = self._segment, self._next * self._slot_bytes
            self._next = (self._next + 1) % self._slots
        slot = np.ndarray(images.shape, images.dtype, buffer=segment.buf, offset=offset)
        slot[...] = images
        del slot
        return {
            "segment": segment.name,
            "offset": offset,
            "shape": list(images.shape),
            "dtype": images.dtype.str,
        }

    def _replace(self, nbytes: int) -> None:
        self._release()
        self._slot_bytes = -(-max(nbytes, 1) // SLOT_ALIGNMENT) * SLOT_ALIGNMENT
        self._segment = SharedMemory(create=True, size=self._slot_bytes * self._slots)
        self._next = 0

    def _release(self) -> None:
        if self._segment is None:
            return
        self._segment.unlink()  # its name goes now; the memory once nobody maps it
        with contextlib.suppress(BufferError):  # a slot still being written by another thread
            self._segment.close()
        self._segment = None

    def close(self) -> None:
        with self._lock:
            self._release()


def attach(name: str) -> SharedMemory:
    """A client's segment, mapped without adopting it: this process's resource tracker
    must not unlink it at exit (before 3.13, attaching registers it like creating)."""
    if sys.version_info >= (3, 13):
        return SharedMemory(name=name, track=False)  # type: ignore[call-arg, unused-ignore]
    segment = SharedMemory(name=name)
    resource_tracker.unregister(segment._name, "shared_memory")  # type: ignore[attr-defined]
    return segment


class SharedImages:
    """The worker's side: the clients' segments, mapped once each (the newest few)."""

    def __init__(self, keep: int = 8) -> None:
        self._keep = keep
        self._segments: OrderedDict[str, SharedMemory] = OrderedDict()
        self._lock = threading.Lock()

    def view(self, slot: Mapping[str, Any]) -> npt.NDArray[Any]:
        """The images in the slot a request names (a view, no copy)."""
        try:
            name, offset = str(slot["segment"]), int(slot["offset"])
            shape, dtype = tuple(int(n) for n in slot["shape"]), np.dtype(slot["dtype"])
        except (KeyError, TypeError, ValueError) as error:
            raise ProtocolError(f"bad image slot {slot!r}: {error}") from None
        segment = self._segment(name)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if offset < 0 or offset + nbytes > segment.size:
            raise ProtocolError(f"image slot {offset}+{nbytes} outside segment {name}")
        # Left writable (torch warns on a read-only array); no backend writes its input.
        images: npt.NDArray[Any] = np.ndarray(shape, dtype, buffer=segment.buf, offset=offset)
        return images

    def _segment(self, name: str) -> SharedMemory:
        with self._lock:
            segment = self._segments.get(name)
            if segment is None:
                try:
                    segment = self._segments[name] = attach(name)
                except FileNotFoundError:
                    raise ProtocolError(f"no shared memory segment {name}") from None
                while len(self._segments) > self._keep:
                    _, old = self._segments.popitem(last=False)
                    _close(old)
            self._segments.move_to_end(name)
            return segment

    def close(self) -> None:
        with self._lock:
            for segment in self._segments.values():
                _close(segment)
            self._segments.clear()


def _close(segment: SharedMemory) -> None:
    with contextlib.suppress(BufferError):  # viewed by a request in progress: unmapped after
        segment.close()
