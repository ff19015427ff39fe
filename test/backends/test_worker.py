"""The `worker` backend against real model worker processes, over real sockets and shared
memory: the same results as in-process, a clear refusal of another protocol or model, a
dead worker reported within the timeout and a restarted one reconnected."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zmq

from alpamayo_ros.backends import backend_from_parameters, create_backend
from alpamayo_ros.backends.worker import (
    WorkerBackend,
    WorkerError,
    WorkerMismatch,
    WorkerUnavailable,
)
from alpamayo_ros.backends.worker_protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    address_problem,
    generator_from_state,
    pack,
    planner_input_fields,
    unpack,
)
from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.evaluation.evaluate import vla_input
from alpamayo_ros.pipeline.planning import PlanningStep, sampling_rng
from alpamayo_ros.world.dataset import make_sample

SEEDS = (0, 1, 2)
TIMEOUT_S = 0.5  # where how soon a dead worker is found is what a test checks
ANSWER_S = 10.0  # elsewhere: a loaded machine's first answers are slow


class Worker:
    """A model worker process at `address`, its output in a file."""

    def __init__(self, address: str, log: Path, backend: str = "embedded_vla") -> None:
        self.address = address
        self.log = log
        self.process = subprocess.Popen(
            [*worker_command(backend, address).split()],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def worker_command(backend: str, address: str) -> str:
    return (
        f"{sys.executable} -m alpamayo_ros.backends.worker_server --backend {backend} "
        f"--address {address} --cpu-threads 1"
    )


@pytest.fixture
def workers(address: str, tmp_path: Path) -> Iterator[list[Worker]]:
    """Workers a test starts (`start(workers, ...)`), all stopped at its end."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def start(started: list[Worker], address: str, tmp_path: Path, backend: str = "embedded_vla"):
    worker = Worker(address, tmp_path / f"worker{len(started)}.log", backend)
    started.append(worker)
    return worker


def connect(address: str, timeout_s: float = ANSWER_S, **options) -> WorkerBackend:
    return WorkerBackend(address=address, timeout_s=timeout_s, startup_timeout_s=60.0, **options)


def assert_same_output(ours, theirs) -> None:
    assert ours.decision == theirs.decision
    assert ours.planner_input.ego_state == theirs.planner_input.ego_state
    ours_meta, theirs_meta = ours.planner_input.meta_action, theirs.planner_input.meta_action
    assert (ours_meta.longitudinal, ours_meta.lateral) == (
        theirs_meta.longitudinal,
        theirs_meta.lateral,
    )
    for name in ("longitudinal_probabilities", "lateral_probabilities"):
        np.testing.assert_array_equal(getattr(ours_meta, name), getattr(theirs_meta, name))
    np.testing.assert_array_equal(ours.planner_input.latent, theirs.planner_input.latent)
    assert ours.planner_input.latent.dtype == theirs.planner_input.latent.dtype


def test_a_worker_gives_the_in_process_results(address, workers, tmp_path) -> None:
    """Decisions, texts, samples and plans identical, the generator advanced the same."""
    start(workers, address, tmp_path)
    remote = connect(address)
    local = create_backend("embedded_vla", "", 1)
    assert (remote.name, remote.version, remote.image_size) == (
        local.name,
        local.version,
        local.image_size,
    )
    assert remote.accepts_missing_cameras
    for seed in SEEDS:
        missing = () if seed else (CAMERA_ORDER[1],)  # a camera that failed, once
        inputs = vla_input(make_sample(seed), local.image_size, missing)
        decided, expected = remote.decide(inputs), local.decide(inputs)
        assert decided.write_text is not None  # the text is written afterwards, as in-process
        assert_same_output(decided.output, expected.output)
        assert_same_output(decided.explained(), expected.explained())
        assert decided.explained().decision.text
        assert remote.stage_ms["worker boundary"] > 0.0
        assert set(remote.stage_ms) == {*local.stage_ms, "worker boundary"}

        ours, theirs = sampling_rng(0, seed), sampling_rng(0, seed)
        conditioning = expected.output.planner_input
        # The planner's noise scale travels with the request.
        samples = remote.sample_controls(conditioning, 6, ours, noise_scale=0.5)
        reference = local.sample_controls(conditioning, 6, theirs, noise_scale=0.5)
        np.testing.assert_array_equal(samples.acceleration, reference.acceleration)
        np.testing.assert_array_equal(samples.curvature, reference.curvature)
        assert ours.bit_generator.state == theirs.bit_generator.state
        unscaled = local.sample_controls(conditioning, 6, sampling_rng(0, seed))
        assert not np.array_equal(unscaled.curvature, samples.curvature)
        plan = PlanningStep(remote).plan(decided.output.planner_input, t0_ns=seed)
        reference_plan = PlanningStep(local).plan(conditioning, t0_ns=seed)
        np.testing.assert_array_equal(plan.rollouts.xyz(), reference_plan.rollouts.xyz())
        np.testing.assert_array_equal(plan.scores, reference_plan.scores)
        assert plan.selection.index == reference_plan.selection.index
    # A backend that raises in the worker: its error, and the worker goes on.
    bad = replace(inputs, images=inputs.images[:, :2])
    with pytest.raises(WorkerError, match="embedded_vla raised") as raised:
        remote.decide(bad)
    assert not isinstance(raised.value, WorkerUnavailable)
    assert_same_output(remote.decide(inputs).output, local.decide(inputs).output)
    remote.close()


def test_a_killed_worker_is_unavailable_within_the_timeout_and_a_restart_reconnects(
    address, workers, tmp_path
) -> None:
    worker = start(workers, address, tmp_path)
    backend = connect(address, TIMEOUT_S)
    inputs = vla_input(make_sample(5), backend.image_size)
    before = backend.decide(inputs)
    first_pid = backend.worker_pid
    pending = backend.decide(inputs)  # its text not yet asked for

    worker.kill()
    for call in (
        lambda: backend.decide(inputs),
        pending.explained,
        lambda: backend.sample_controls(before.output.planner_input, 6, sampling_rng(0, 5)),
    ):
        started = time.monotonic()
        with pytest.raises(WorkerUnavailable, match=f"model worker embedded_vla .* at {address}"):
            call()
        assert time.monotonic() - started < TIMEOUT_S + 0.5

    start(workers, address, tmp_path)
    deadline = time.monotonic() + 60.0
    while True:
        try:
            after = backend.decide(inputs)
            break
        except WorkerUnavailable:
            assert time.monotonic() < deadline, workers[-1].output()
    assert backend.worker_pid != first_pid
    assert_same_output(after.explained(), before.explained())
    backend.close()


def test_another_protocol_or_model_is_refused(address, workers, tmp_path) -> None:
    start(workers, address, tmp_path, "constant_velocity")
    backend = connect(address)
    assert (backend.name, backend.image_size) == ("constant_velocity", None)

    # A client of another protocol version is answered with a refusal it can read.
    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.connect(address)
    socket.send_multipart([json.dumps({"protocol": PROTOCOL_VERSION + 1, "op": "hello"}).encode()])
    assert socket.poll(5_000)
    header, _ = unpack(socket.recv_multipart())
    assert header["kind"] == "protocol"
    assert f"protocol {PROTOCOL_VERSION}" in header["error"]
    assert f"client {PROTOCOL_VERSION + 1}" in header["error"]
    # A request for another model than the one served.
    socket.send_multipart(pack({"op": "text", "id": 1, "expect": ["embedded_vla", "0.2.0"]}))
    assert socket.poll(5_000)
    header, _ = unpack(socket.recv_multipart())
    assert header["kind"] == "mismatch" and "serves constant_velocity" in header["error"]
    # A sample request says its noise scale, a positive one (a worker of this protocol
    # never samples at a scale the planner did not ask for).
    conditioning = backend.decide(vla_input(make_sample(0), None)).output.planner_input
    fields, arrays = planner_input_fields(conditioning)
    request = {
        **fields,
        "op": "sample",
        "num_samples": 2,
        "rng": sampling_rng(0, 0).bit_generator.state,
        "expect": [backend.name, backend.version],
    }
    for scale, error in ((None, "'noise_scale'"), (0.0, "noise_scale 0.0 is not > 0")):
        socket.send_multipart(
            pack(request if scale is None else {**request, "noise_scale": scale}, arrays)
        )
        assert socket.poll(5_000)
        header, _ = unpack(socket.recv_multipart())
        assert header["kind"] == "request" and error in header["error"], header
    socket.close(linger=0)
    context.term()

    # The worker restarted with another model: the node's backend refuses it, clearly.
    inputs = vla_input(make_sample(0), None)
    backend.decide(inputs)
    workers[-1].kill()
    with pytest.raises(WorkerUnavailable):
        backend.decide(inputs)
    start(workers, address, tmp_path, "embedded_vla")
    deadline = time.monotonic() + 60.0
    with pytest.raises(WorkerMismatch, match="now serves embedded_vla") as refused:
        while time.monotonic() < deadline:
            try:
                backend.decide(inputs)
            except WorkerUnavailable:
                continue
    assert isinstance(refused.value, ConfigurationError)
    backend.close()


def test_the_backend_starts_its_worker_and_starts_it_again_when_it_dies(address) -> None:
    backend = connect(address, command=worker_command("constant_velocity", address))
    process = backend._resources.process
    assert process is not None
    inputs = vla_input(make_sample(0), None)
    backend.decide(inputs)
    first = process.process
    first.send_signal(signal.SIGKILL)
    first.wait()
    with pytest.raises(WorkerUnavailable, match="exited with status -9 and is started again"):
        backend.decide(inputs)
    deadline = time.monotonic() + 30.0
    while True:
        try:
            backend.decide(inputs)
            break
        except WorkerUnavailable:
            assert time.monotonic() < deadline
    second = process.process
    assert second is not first and process.restarts == 1
    backend.close()
    assert second.poll() is not None  # stopped with the backend


def test_no_worker_at_start_is_a_configuration_error(address) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=f"no model worker answered at {address}"):
        WorkerBackend(address=address, startup_timeout_s=0.3)
    assert time.monotonic() - started < 2.0
    # A worker_command that exits fails the start at once, with its status.
    command = f"{sys.executable} -c 'raise SystemExit(3)'"
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="worker_command exited with status 3"):
        WorkerBackend(address=address, startup_timeout_s=30.0, command=command)
    assert time.monotonic() - started < 10.0
    with pytest.raises(ConfigurationError, match="takes no weights_file"):
        WorkerBackend("model.safetensors", address=address)
    # The node's device, precision and CUDA graphs belong to the worker, which runs the model.
    params = {
        "backend": "worker",
        "weights_file": "",
        "device": "cuda",
        "precision": "fp32",
        "cuda_graphs": True,
        "worker_address": address,
        "worker_timeout_s": 1.0,
        "worker_startup_timeout_s": 0.3,
    }
    with pytest.raises(ConfigurationError, match="alpamayo-ros-model-worker --device cuda"):
        backend_from_parameters(params)
    params.update(device="cpu", cuda_graphs=False)
    with pytest.raises(ConfigurationError, match="alpamayo-ros-model-worker --no-cuda-graphs"):
        backend_from_parameters(params)


def test_a_second_worker_at_an_address_in_use_is_refused(address, workers, tmp_path) -> None:
    start(workers, address, tmp_path, "constant_velocity")
    connect(address).close()  # the first one is up
    second = start(workers, address, tmp_path, "constant_velocity")
    assert second.process.wait(30) == 2
    assert f"already serves {address}" in second.output()
    assert f"pid {workers[0].process.pid}" in second.output()


def test_frames_and_generator_states() -> None:
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "empty": np.zeros(0)}
    header, decoded = unpack(pack({"op": "x"}, arrays))
    assert header["op"] == "x" and header["protocol"] == PROTOCOL_VERSION
    for name, array in arrays.items():
        np.testing.assert_array_equal(decoded[name], array)
        assert decoded[name].dtype == array.dtype and decoded[name].flags.writeable
    with pytest.raises(ProtocolError):
        unpack([b"not json"])
    with pytest.raises(ProtocolError):
        unpack(pack({}, arrays)[:2])
    for name in ("PCG64", "Philox", "MT19937"):
        rng = np.random.Generator(getattr(np.random, name)(7))
        state = json.loads(json.dumps(rng.bit_generator.state, default=lambda a: a.tolist()))
        assert generator_from_state(state).random(3).tolist() == rng.random(3).tolist()
    assert address_problem("ipc:///tmp/x") is None and address_problem("tcp://h:5555") is None
    assert address_problem("/tmp/x") and address_problem("ipc://")
