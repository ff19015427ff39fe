"""The graph with its model in a worker process of its own (backend `worker`), over real DDS,
sockets and shared memory: outputs end to end; the worker killed: an ERROR naming it on
/diagnostics, no outputs, the control bridge's safe stop; the worker restarted: outputs and
tracking resume, and the VLA node is OK again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alpamayo_ros_msgs.msg import ControlCommand, Trajectory
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from parameter_files import parameter_file
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from alpamayo_ros.graph import Topics, select_nodes
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.ros.conversions import stamp_ns

NODES = select_nodes("camera_driver,vla_inference,diffusion_planner,control_bridge")
TIMEOUT_S = 0.5


class Worker:
    def __init__(self, address: str, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alpamayo_ros.backends.worker_server",
                "--backend=embedded_vla",
                f"--address={address}",
                "--cpu-threads=1",
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class Observer:
    """Trajectories, control commands and the VLA node's statuses, as they arrive."""

    def __init__(self, context: Context) -> None:
        self.node = Node("worker_observer", context=context)
        self.trajectories: list[Trajectory] = []
        self.commands: list[ControlCommand] = []
        self.vla_statuses: list[tuple[int, DiagnosticStatus]] = []  # (received ns, status)
        self.node.create_subscription(Trajectory, Topics.TRAJECTORY, self.trajectories.append, 10)
        self.node.create_subscription(
            ControlCommand, Topics.CONTROL_COMMAND, self.commands.append, 100
        )
        self.node.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self.on_status, 50)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def on_status(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "/vla_inference":
                self.vla_statuses.append((time.time_ns(), status))

    def spin_until(self, condition: Callable[[], bool], timeout_s: float, graph) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            graph.check()  # no node may exit meanwhile
            self.executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return False

    def trajectories_since(self, since_ns: int) -> list[Trajectory]:
        return [t for t in self.trajectories if stamp_ns(t.header.stamp) > since_ns]

    def commands_since(self, since_ns: int, mode: int) -> list[ControlCommand]:
        return [c for c in self.commands if stamp_ns(c.header.stamp) > since_ns and c.mode == mode]

    def statuses_since(self, since_ns: int, level: bytes) -> list[DiagnosticStatus]:
        return [s for at, s in self.vla_statuses if at > since_ns and s.level == level]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.mark.parametrize(
    "planner_on_worker", [False, True], ids=["planner_in_process", "planner_on_worker"]
)
def test_the_graph_runs_on_a_worker_stops_safely_without_it_and_resumes(
    rclpy_context: Context, tmp_path: Path, address: str, planner_on_worker: bool
) -> None:
    workers = [Worker(address, tmp_path / "worker.log")]
    on_worker = {
        "backend": "worker",
        "worker_address": address,
        "worker_timeout_s": TIMEOUT_S,
        "worker_startup_timeout_s": 60.0,
    }
    params = parameter_file(
        tmp_path,
        # In process, the planner samples its own copy of the action expert.
        "embedded_vla",
        vla_inference=on_worker,
        **({"diffusion_planner": on_worker} if planner_on_worker else {}),
    )
    try:
        with GraphProcesses(params, nodes=NODES) as graph:
            observer = Observer(rclpy_context)
            try:
                run(graph, observer, workers, address, tmp_path)
            finally:
                observer.close()
    finally:
        for worker in workers:
            worker.stop()


def run(graph, observer: Observer, workers: list[Worker], address: str, tmp_path: Path) -> None:
    def log() -> str:
        return (tmp_path / "worker.log").read_text(errors="replace") + graph.output("vla_inference")

    # End to end: the worker's model decides, the planner plans, the bridge tracks.
    assert observer.spin_until(
        lambda: (
            len(observer.trajectories) >= 3
            and len(observer.commands_since(0, ControlCommand.MODE_TRACKING)) >= 10
            and bool(observer.statuses_since(0, DiagnosticStatus.OK))
        ),
        timeout_s=60.0,
        graph=graph,
    ), log() + str(observer.vla_statuses)
    assert {t.info.model_name for t in observer.trajectories} == {"embedded_vla"}

    workers[0].process.send_signal(signal.SIGKILL)
    workers[0].process.wait()
    killed_ns = time.time_ns()

    def failed_safe() -> bool:
        errors = observer.statuses_since(killed_ns, DiagnosticStatus.ERROR)
        named = any(address in s.message and "model worker" in s.message for s in errors)
        return named and bool(observer.commands_since(killed_ns, ControlCommand.MODE_SAFE_STOP))

    assert observer.spin_until(failed_safe, timeout_s=10.0, graph=graph), log()
    stop = observer.commands_since(killed_ns, ControlCommand.MODE_SAFE_STOP)[0]
    assert "trajectory" in stop.reason and "old" in stop.reason
    # No output is made without the model (a plan already made before the kill may land).
    assert not observer.trajectories_since(killed_ns)
    error = next(
        s
        for s in observer.statuses_since(killed_ns, DiagnosticStatus.ERROR)
        if address in s.message
    )
    assert {(v.key, v.value) for v in error.values} >= {("worker", address)}

    workers.append(Worker(address, tmp_path / "worker.log"))
    restarted_ns = time.time_ns()

    def resumed() -> bool:
        return (
            len(observer.trajectories_since(restarted_ns)) >= 3
            and bool(observer.commands_since(restarted_ns, ControlCommand.MODE_TRACKING))
            and bool(observer.statuses_since(restarted_ns, DiagnosticStatus.OK))
        )

    assert observer.spin_until(resumed, timeout_s=45.0, graph=graph), log()
    assert {t.info.model_name for t in observer.trajectories_since(restarted_ns)} == {
        "embedded_vla"
    }


def test_the_vla_node_without_its_worker_exits_with_a_clear_error(
    ros_domain: int, address: str
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alpamayo_ros.nodes.vla_inference",
            "--ros-args",
            "-p",
            "backend:=worker",
            "-p",
            f"worker_address:={address}",
            "-p",
            "worker_startup_timeout_s:=0.5",
        ],
        capture_output=True,
        text=True,
        timeout=60.0,
    )
    assert result.returncode == 2, result.stderr
    assert f"error: no model worker answered at {address} within 0.5 s" in result.stderr
