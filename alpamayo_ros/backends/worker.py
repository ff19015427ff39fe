"""The `worker` backend: the Backend interface, forwarded to a model worker process.

The model runs in `worker_server`, in whatever Python environment it needs; this side needs
numpy and pyzmq only. The handshake gives the served model's name, version and image size,
so outputs are labelled with the model that made them and the planner's model check holds
whether it samples in-process or through a worker too. Images go through a shared-memory
ring, the rest in the message (worker_protocol).

A request not answered within `timeout_s` raises WorkerUnavailable, naming the worker and
its address; its socket is dropped (a REQ socket that lost an answer is stuck) and the next
request opens a fresh one and handshakes again, so outputs resume as soon as the worker is
back. A worker that comes back serving another model is refused (WorkerMismatch). With
`command`, the backend starts the worker itself and starts it again when it finds it dead.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import zmq

from alpamayo_ros.backends.worker_protocol import (
    DEFAULT_ADDRESS,
    PROTOCOL_VERSION,
    Arrays,
    Frames,
    Header,
    ImageRing,
    WorkerError,
    WorkerMismatch,
    WorkerUnavailable,
    address_problem,
    output_from,
    pack,
    planner_input_fields,
    unpack,
)
from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.model_io import ControlSamples, PlannerInput, VlaInput
from alpamayo_ros.pipeline.backend import Backend, Decided

__all__ = ["WorkerBackend", "WorkerError", "WorkerMismatch", "WorkerProcess", "WorkerUnavailable"]

# How often a wait for a starting worker checks whether the process it started has exited.
STARTUP_POLL_S = 0.1


class WorkerUnavailableAtStart(WorkerUnavailable, ConfigurationError):
    """No worker answered while the node started: the node cannot start (a clear line and
    exit status 2), since it needs the model's image size and camera rule."""


class _Connection:
    """One REQ socket to the worker: one request at a time, dropped once an answer is lost."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], address: str) -> None:
        self.socket = context.socket(zmq.REQ)
        self.socket.linger = 0
        self.socket.connect(address)

    def call(
        self, frames: Frames, timeout_s: float, abandon: Callable[[], bool] | None = None
    ) -> list[bytes] | None:
        """The answer, or None when none came within `timeout_s` (or `abandon` said so)."""
        deadline = time.monotonic() + timeout_s
        if not self._wait(zmq.POLLOUT, deadline, abandon):
            return None
        self.socket.send_multipart(frames, zmq.NOBLOCK)
        if not self._wait(zmq.POLLIN, deadline, abandon):
            return None
        return self.socket.recv_multipart()

    def _wait(self, event: int, deadline: float, abandon: Callable[[], bool] | None) -> bool:
        while True:
            left_s = deadline - time.monotonic()
            slice_s = left_s if abandon is None else min(left_s, STARTUP_POLL_S)
            if self.socket.poll(max(0, round(slice_s * 1e3)), event):
                return True
            if time.monotonic() >= deadline or (abandon is not None and abandon()):
                return False

    def close(self) -> None:
        self.socket.close(linger=0)


class WorkerProcess:
    """A worker the node runs as its child (`worker_command`): stopped with the backend,
    started again when found dead. Its output goes to the node's."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.argv = shlex.split(command)
        if not self.argv:
            raise ConfigurationError("worker_command is empty")
        self.restarts = 0
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(self.argv)
        except OSError as error:
            raise ConfigurationError(
                f"cannot run worker_command {self.command!r}: {error}"
            ) from None

    def exit_status(self) -> int | None:
        return self.process.poll()

    def revive(self) -> str:
        """Start the worker again if it exited; what happened, for an error message."""
        status = self.process.poll()
        if status is None:
            return ""
        self.restarts += 1
        self.process = self._start()
        return (
            f"; it had exited with status {status} and is started again (restart {self.restarts})"
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class _Resources:
    """What a WorkerBackend holds, released by `close` or when the backend is collected."""

    context: zmq.Context[zmq.Socket[bytes]]
    images: ImageRing
    process: WorkerProcess | None
    idle: list[_Connection] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def release(self) -> None:
        if self.process is not None:
            self.process.stop()
        with self.lock:
            for connection in self.idle:
                connection.close()
            self.idle.clear()
        self.context.destroy(linger=0)
        self.images.close()


class WorkerBackend(Backend):
    def __init__(
        self,
        weights_file: str = "",
        cpu_threads: int = 0,
        address: str = DEFAULT_ADDRESS,
        timeout_s: float = 1.0,
        startup_timeout_s: float = 60.0,
        command: str = "",
    ) -> None:
        """Connects and handshakes, waiting up to `startup_timeout_s` for the worker (a
        large model takes a while to load). `weights_file` and `cpu_threads` are the
        worker's own options (`alpamayo-ros-model-worker --weights-file --cpu-threads`);
        this side takes no weights (nor a device or precision: `--device`, `--precision`).
        `command` starts the worker as a child process."""
        if weights_file:
            raise ConfigurationError(
                f"backend worker takes no weights_file (got {weights_file!r}): the worker "
                "loads them (alpamayo-ros-model-worker --weights-file)"
            )
        problem = address_problem(address)
        if problem:
            raise ConfigurationError(f"worker_address {problem}")
        self.address = address
        self.timeout_s = timeout_s
        self.stage_ms = {}
        # Per request kind, the time of the last one less the worker's computing: what
        # the process boundary costs (framing, shared memory, sockets, wake-ups).
        self.boundary_ms: dict[str, float] = {}
        self._resources = _Resources(
            zmq.Context(), ImageRing(), WorkerProcess(command) if command else None
        )
        self._finalizer = weakref.finalize(self, self._resources.release)
        try:
            identity = self._first_hello(startup_timeout_s)
        except BaseException:
            self.close()
            raise
        self.name = identity["backend"]
        self.version = identity["version"]
        size = identity["image_size"]
        self.image_size = None if size is None else (int(size[0]), int(size[1]))
        self.accepts_missing_cameras = bool(identity["accepts_missing_cameras"])
        self.worker_pid: int = identity["pid"]

    def close(self) -> None:
        """Stop a worker this backend started, close the sockets, free the shared memory."""
        self._finalizer()

    def describe(self) -> str:
        served = f" {self.name} {self.version}" if hasattr(self, "version") else ""
        return f"model worker{served} at {self.address}"

    # --- the Backend interface -------------------------------------------------------------

    def decide(self, inputs: VlaInput) -> Decided:
        started = time.perf_counter()
        slot = self._resources.images.put(inputs.images)  # the one copy of the images
        copy_ms = (time.perf_counter() - started) * 1e3
        header, arrays = self._request(
            {
                "op": "decide",
                "t0_ns": inputs.t0_ns,
                "cameras": list(inputs.cameras),
                "navigation": inputs.navigation,
                "images": slot,
            },
            {
                "frame_stamps_ns": inputs.frame_stamps_ns,
                "ego_xyz": inputs.ego_xyz,
                "ego_rotations": inputs.ego_rotations,
            },
        )
        output = output_from(header, arrays)
        boundary_ms = self.boundary_ms["decide"] = self.boundary_ms["decide"] + copy_ms
        # The worker's own stages, and what the process boundary added to them.
        self.stage_ms = {**header["stage_ms"], "worker boundary": boundary_ms}
        text_id = header["text"]
        if text_id is None:
            return Decided(output)
        return Decided(output, write_text=lambda: self._write_text(text_id))

    def _write_text(self, text_id: int) -> str:
        header, _ = self._request({"op": "text", "id": text_id})
        return str(header["text"])

    def sample_controls(
        self,
        conditioning: PlannerInput,
        num_samples: int,
        rng: np.random.Generator,
        noise_scale: float = 1.0,
    ) -> ControlSamples:
        """The worker's action expert on this generator's state; the generator advances as
        it would have in-process, so the samples are the same."""
        header, arrays = planner_input_fields(conditioning)
        header.update(
            op="sample",
            num_samples=num_samples,
            rng=rng.bit_generator.state,
            noise_scale=noise_scale,
        )
        reply, samples = self._request(header, arrays)
        rng.bit_generator.state = reply["rng"]
        return ControlSamples(samples["acceleration"], samples["curvature"])

    # --- requests --------------------------------------------------------------------------

    def _first_hello(self, timeout_s: float) -> Header:
        """The worker's identity, waiting for it to start; fails at once if the worker
        this backend started exits first."""
        process = self._resources.process
        connection = _Connection(self._resources.context, self.address)
        try:
            reply = connection.call(
                pack({"op": "hello"}),
                timeout_s,
                abandon=None if process is None else lambda: process.exit_status() is not None,
            )
        finally:
            connection.close()
        if reply is None:
            if process is None:
                hint = (
                    f": start one (alpamayo-ros-model-worker --address {self.address} "
                    "--backend ...) or set worker_command"
                )
            elif process.exit_status() is None:
                hint = " (worker_command still starting: raise worker_startup_timeout_s?)"
            else:
                hint = f" (worker_command exited with status {process.exit_status()})"
            raise WorkerUnavailableAtStart(
                f"no model worker answered at {self.address} within {timeout_s:g} s{hint}"
            )
        return self._identity(reply)

    def _identity(self, reply: list[bytes]) -> Header:
        header, _ = unpack(reply)
        if header["protocol"] != PROTOCOL_VERSION or "error" in header:
            raise WorkerMismatch(
                f"{self.describe()}: "
                + header.get(
                    "error", f"speaks protocol {header['protocol']}, not {PROTOCOL_VERSION}"
                )
            )
        if hasattr(self, "version"):  # a reconnection: the worker must serve the same model
            now = (header["backend"], header["version"], header["image_size"])
            before = (
                self.name,
                self.version,
                None if self.image_size is None else list(self.image_size),
            )
            if now != before:
                raise WorkerMismatch(
                    f"{self.describe()} now serves {now[0]} {now[1]} (images {now[2]}); this "
                    "node started with it serving the model above: restart the node"
                )
            self.worker_pid = header["pid"]
        return header

    def _connection(self) -> _Connection:
        """An idle connection, or a new one, handshaken."""
        resources = self._resources
        with resources.lock:
            if resources.idle:
                return resources.idle.pop()
        connection = _Connection(resources.context, self.address)
        reply = connection.call(pack({"op": "hello"}), self.timeout_s)
        try:
            if reply is None:
                raise self._unavailable("no answer to the handshake")
            self._identity(reply)
        except BaseException:
            connection.close()
            raise
        return connection

    def _request(self, header: Header, arrays: Arrays | None = None) -> tuple[Header, Arrays]:
        started = time.perf_counter()
        expect = [self.name, self.version]
        frames = pack({**header, "expect": expect, "timeout_s": self.timeout_s}, arrays)
        connection = self._connection()
        try:
            reply = connection.call(frames, self.timeout_s)
        except BaseException:
            connection.close()
            raise
        if reply is None:
            connection.close()
            raise self._unavailable(f"no answer to {header['op']}")
        with self._resources.lock:
            self._resources.idle.append(connection)
        answer, answer_arrays = unpack(reply)
        if "error" in answer:
            error = WorkerMismatch if answer["kind"] in ("protocol", "mismatch") else WorkerError
            raise error(f"{self.describe()}: {answer['error']}")
        elapsed_ms = (time.perf_counter() - started) * 1e3
        self.boundary_ms[header["op"]] = elapsed_ms - answer["compute_ms"]
        return answer, answer_arrays

    def _unavailable(self, what: str) -> WorkerUnavailable:
        process = self._resources.process
        revived = "" if process is None else process.revive()
        return WorkerUnavailable(
            f"{self.describe()}: {what} within {self.timeout_s:g} s (not running, or "
            f"stuck){revived}"
        )
