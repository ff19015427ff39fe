"""The model worker: one backend served in a process of its own (worker_protocol).

    alpamayo-ros-model-worker --backend embedded_vla --address ipc:///tmp/alpamayo_ros_model_worker
    python -m alpamayo_ros.backends.worker_server ...   (the same, from any environment)

It needs numpy, pyzmq, this package and the backend's own libraries, not ROS: it can run in
the Python, torch and CUDA the model wants while the nodes run in ROS's. The VLA node's
`worker` backend forwards to it (and the planner's may too); any number of clients may
connect. Requests are answered on a small thread pool, so a text being written does not
hold up the next decision, as in-process; decisions themselves run one at a time.
SIGINT or SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import zmq

from alpamayo_ros.arguments import non_negative_int, positive_int
from alpamayo_ros.backends import add_cuda_graphs_option, available_backends, create_backend
from alpamayo_ros.backends.worker_protocol import (
    DEFAULT_ADDRESS,
    PROTOCOL_VERSION,
    Arrays,
    Frames,
    Header,
    ProtocolError,
    SharedImages,
    address_problem,
    error_reply,
    generator_from_state,
    output_fields,
    pack,
    planner_input_from,
    unpack,
)
from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.model_io import VlaInput
from alpamayo_ros.pipeline.backend import Backend

# Decisions whose text is kept, newest first: a client asks only for its newest one's.
PENDING_TEXTS = 8
POLL_MS = 100


class WorkerServer:
    """Serves `backend` at `address` until `stop`."""

    def __init__(self, backend: Backend, address: str, threads: int = 4) -> None:
        problem = address_problem(address)
        if problem:
            raise ConfigurationError(f"worker address {problem}")
        self.backend = backend
        self.address = address
        self.threads = threads
        self.instance = uuid.uuid4().hex
        self.images = SharedImages()
        self._stopping = threading.Event()
        self._decide_lock = threading.Lock()  # one decision at a time, as in the node
        # Per decision: its text, or what writes it until first asked for.
        self._texts: OrderedDict[int, Callable[[], str] | str] = OrderedDict()
        self._texts_lock = threading.Lock()
        self._next_text = 0
        self._context = zmq.Context()
        self._local = threading.local()
        self._results = f"inproc://results-{self.instance}"

    def identity(self) -> Header:
        backend = self.backend
        return {
            "backend": backend.name,
            "version": backend.version,
            "image_size": None if backend.image_size is None else list(backend.image_size),
            "accepts_missing_cameras": backend.accepts_missing_cameras,
            "pid": os.getpid(),
            "instance": self.instance,
        }

    def stop(self) -> None:
        self._stopping.set()

    def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Answer requests until `stop`; `ready` is called once listening."""
        router = self._context.socket(zmq.ROUTER)
        router.linger = 0
        results = self._context.socket(zmq.PULL)
        results.bind(self._results)
        try:
            router.bind(self.address)
        except zmq.ZMQError as error:
            self._context.destroy(linger=0)
            raise ConfigurationError(f"cannot listen at {self.address}: {error}") from None
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(results, zmq.POLLIN)
        if ready is not None:
            ready()
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="model_worker")
        try:
            while not self._stopping.is_set():
                events = dict(poller.poll(POLL_MS))
                while router in events:
                    try:
                        message = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._dispatch(router, pool, message)
                while results in events:
                    try:
                        router.send_multipart(results.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            router.close()
            results.close()
            self._context.destroy(linger=0)
            self.images.close()
            if self.address.startswith("ipc://"):
                _remove(self.address[len("ipc://") :])

    def _dispatch(
        self, router: zmq.Socket[bytes], pool: ThreadPoolExecutor, message: list[bytes]
    ) -> None:
        """Answer a handshake (or a message it cannot read) at once, so that no client waits
        for one behind the model; hand the rest to the pool."""
        received = time.monotonic()
        # The ROUTER's identity frame, then the REQ socket's empty delimiter.
        split = 2 if len(message) > 1 and message[1] == b"" else 1
        envelope, frames = message[:split], message[split:]
        try:
            header, arrays = unpack(frames)
            reply = self.check(header)
        except ProtocolError as error:
            reply = error_reply("request", str(error))
        if reply is not None:
            router.send_multipart([*envelope, *reply])
        else:
            pool.submit(self._answer, envelope, header, arrays, received)

    def check(self, header: Header) -> Frames | None:
        """The answer to a handshake or a request this worker refuses; None for the others."""
        if header["protocol"] != PROTOCOL_VERSION:
            return error_reply(
                "protocol",
                f"the worker speaks protocol {PROTOCOL_VERSION}, the client "
                f"{header['protocol']}: run both from the same alpamayo_ros version",
            )
        if header.get("op") == "hello":
            return pack(self.identity())
        expected = header.get("expect")
        served = [self.backend.name, self.backend.version]
        if expected != served:
            return error_reply(
                "mismatch", f"the worker serves {' '.join(served)}, the client expects {expected}"
            )
        return None

    def _answer(
        self, envelope: list[bytes], header: Header, arrays: Arrays, received: float
    ) -> None:
        """On a pool thread: the reply to one request, back through the results socket
        (a ZeroMQ socket is used by one thread only)."""
        try:
            reply = self.handle(header, arrays, received)
        except ProtocolError as error:
            reply = error_reply("request", str(error))
        except Exception as error:  # the backend's: reported to the client, worker goes on
            reply = error_reply("backend", f"{self.backend.name} raised {error!r}")
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._local.push = self._context.socket(zmq.PUSH)
            push.connect(self._results)
        push.send_multipart([*envelope, *reply])

    def handle(self, header: Header, arrays: Arrays, received: float) -> Frames:
        """A checked request's answer; `received` (time.monotonic()) dates it, so one its
        client stopped waiting for is dropped instead of computed (its answer would be
        thrown away, and the requests behind it would wait the longer)."""
        op = header.get("op")
        if op == "decide":
            return self._decide(header, arrays, received)
        if op == "text":
            return self._text(header)
        if op == "sample":
            return self._sample(header, arrays)
        raise ProtocolError(f"unknown request {op!r}")

    @staticmethod
    def _expired(header: Header, received: float) -> bool:
        timeout_s = header.get("timeout_s")
        return timeout_s is not None and time.monotonic() - received > float(timeout_s)

    def _decide(self, header: Header, arrays: Arrays, received: float) -> Frames:
        try:
            inputs = VlaInput(
                t0_ns=int(header["t0_ns"]),
                images=self.images.view(header["images"]),
                frame_stamps_ns=arrays["frame_stamps_ns"],
                ego_xyz=arrays["ego_xyz"],
                ego_rotations=arrays["ego_rotations"],
                cameras=tuple(header["cameras"]),
                navigation=str(header.get("navigation", "")),
            )
        except KeyError as error:
            raise ProtocolError(f"decide without {error}") from None
        with self._decide_lock:  # the wait for the model is where a request can expire
            if self._expired(header, received):
                return error_reply("expired", "the client stopped waiting for this decision")
            started = time.perf_counter()
            decided = self.backend.decide(inputs)
            decide_ms = (time.perf_counter() - started) * 1e3
            stage_ms = dict(self.backend.stage_ms)
        del inputs  # the slot is the client's again once answered
        reply, reply_arrays = output_fields(decided.output)
        reply.update(compute_ms=decide_ms, stage_ms=stage_ms, text=None)
        if decided.write_text is not None:
            with self._texts_lock:
                self._next_text += 1
                reply["text"] = self._next_text
                self._texts[self._next_text] = decided.write_text
                while len(self._texts) > PENDING_TEXTS:
                    self._texts.popitem(last=False)
        return pack(reply, reply_arrays)

    def _text(self, header: Header) -> Frames:
        """A decision's text, written once (asked for again, as in-process, it is the same)."""
        text_id = header.get("id")
        if not isinstance(text_id, int):
            raise ProtocolError(f"text request with id {text_id!r}")
        with self._texts_lock:
            text = self._texts.get(text_id)
        if text is None:
            raise ProtocolError(
                f"no text pending for decision {text_id} (the worker keeps the newest "
                f"{PENDING_TEXTS}, and forgets them when it restarts)"
            )
        started = time.perf_counter()
        if not isinstance(text, str):
            text = text()
            with self._texts_lock:
                if text_id in self._texts:
                    self._texts[text_id] = text
        return pack({"text": text, "compute_ms": (time.perf_counter() - started) * 1e3})

    def _sample(self, header: Header, arrays: Arrays) -> Frames:
        try:
            conditioning = planner_input_from(header, arrays)
            rng = generator_from_state(header["rng"])
            num_samples = int(header["num_samples"])
            noise_scale = float(header["noise_scale"])
        except (KeyError, TypeError, ValueError) as error:
            raise ProtocolError(f"bad sample request: {error!r}") from None
        if not noise_scale > 0.0:
            raise ProtocolError(f"bad sample request: noise_scale {noise_scale} is not > 0")
        started = time.perf_counter()
        samples = self.backend.sample_controls(conditioning, num_samples, rng, noise_scale)
        return pack(
            {"rng": rng.bit_generator.state, "compute_ms": (time.perf_counter() - started) * 1e3},
            {"acceleration": samples.acceleration, "curvature": samples.curvature},
        )


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def serving_elsewhere(address: str, timeout_s: float = 0.5) -> Header | None:
    """The identity of a worker already answering at an ipc address, or None: a second
    worker would take the socket file over from under the first one's clients."""
    if not address.startswith("ipc://") or not os.path.exists(address[len("ipc://") :]):
        return None
    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.linger = 0
    try:
        socket.connect(address)
        socket.send_multipart(pack({"op": "hello"}))
        if not socket.poll(round(timeout_s * 1e3)):
            return None
        header, _ = unpack(socket.recv_multipart())
        return header
    finally:
        socket.close()
        context.term()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alpamayo-ros-model-worker",
        description="Serve a model backend to the VLA and planner nodes' `worker` backend.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    backends = [name for name in available_backends() if name != "worker"]
    parser.add_argument(
        "--backend", default="embedded_vla", choices=backends, help="the model backend to serve"
    )
    parser.add_argument("--weights-file", default="", help="the backend's weights; empty: packaged")
    parser.add_argument(
        "--cpu-threads",
        type=non_negative_int,
        default=0,
        help="math library threads; 0 leaves its default",
    )
    parser.add_argument(
        "--address", default=DEFAULT_ADDRESS, help="ipc://<path> or tcp://<host>:<port>"
    )
    parser.add_argument("--threads", type=positive_int, default=4, help="requests answered at once")
    parser.add_argument("--device", default="cpu", help="the model's device: cpu, cuda, cuda:N")
    parser.add_argument("--precision", default="fp32", help="the model's: fp32, fp16, bf16")
    add_cuda_graphs_option(parser)
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        problem = address_problem(args.address)
        if problem:
            raise ConfigurationError(f"--address {problem}")
        other = serving_elsewhere(args.address)
        if other is not None:
            raise ConfigurationError(
                f"a model worker (pid {other.get('pid')}, {other.get('backend')}) already "
                f"serves {args.address}"
            )
        backend = create_backend(
            args.backend,
            args.weights_file,
            args.cpu_threads,
            device=args.device,
            precision=args.precision,
            cuda_graphs=args.cuda_graphs,
        )
        server = WorkerServer(backend, args.address, args.threads)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2

    def on_signal(*_: Any) -> None:
        server.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def ready() -> None:
        print(
            f"model worker {os.getpid()}: {backend.name} {backend.version} at {args.address}",
            file=sys.stderr,
            flush=True,
        )

    try:
        server.serve(ready)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
