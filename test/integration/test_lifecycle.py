"""The camera driver and the control bridge as managed nodes, driven through their real
processes' lifecycle services (what `ros2 lifecycle set` calls): not active, they publish
nothing; active, they always publish; a node can be deactivated and activated again, the
bridge's last command then a stop, as when a signal ends it."""

from __future__ import annotations

import signal
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from alpamayo_ros_msgs.msg import ControlCommand
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from nav_msgs.msg import Odometry
from parameter_files import parameter_file
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from recorded_drive import spin_until as spin_graph_until
from sensor_msgs.msg import Image

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.graph import NODES, Topics
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.ros.conversions import stamp_ns


class NoAnswer(AssertionError):
    """A service call whose answer did not come."""


MANAGED = tuple(spec for spec in NODES if spec.name in ("camera_driver", "control_bridge"))
IMAGE_TOPIC = f"/sensing/camera/{CAMERA_ORDER[0]}/image_raw"


def test_managed_nodes_publish_only_while_active(rclpy_context: Context, tmp_path: Path) -> None:
    params = parameter_file(
        tmp_path,
        "constant_velocity",
        camera_driver={"autostart": False},
        control_bridge={"autostart": False},
    )
    node = Node("lifecycle_probe", context=rclpy_context)
    received: dict[str, list] = defaultdict(list)
    node.create_subscription(
        ControlCommand, Topics.CONTROL_COMMAND, received["command"].append, 100
    )
    node.create_subscription(Odometry, Topics.ODOMETRY, received["odometry"].append, 100)
    node.create_subscription(Image, IMAGE_TOPIC, received["image"].append, qos_profile_sensor_data)
    node.create_subscription(
        DiagnosticArray, Topics.DIAGNOSTICS, received["diagnostics"].append, 50
    )
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)

    def spin_for(seconds: float) -> None:
        spin_until(lambda: False, seconds)

    def spin_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
        return spin_graph_until(executor, condition, timeout_s, graph.check)

    def call(client, request, queries: int = 1):  # type: ignore[no-untyped-def]
        """A service call; a query (no side effect) is asked again when its answer is lost:
        a response sent before the server matched the client's reader is dropped by DDS
        (wait_for_service sees only the request side)."""
        assert client.wait_for_service(timeout_sec=20.0), client.srv_name
        for _ in range(queries):
            future = client.call_async(request)
            if spin_until(future.done, 20.0 / queries):
                return future.result()
        raise NoAnswer(f"no answer from {client.srv_name}")

    def get_state(name: str):  # type: ignore[no-untyped-def]
        query = node.create_client(GetState, f"/{name}/get_state")
        return call(query, GetState.Request(), queries=3)

    def transition(name: str, transition_id: int, expected_state: int) -> None:
        """The change, asked again only where its answer was lost and the node is not in
        the state yet (a change has a side effect: asked twice, the second would fail)."""
        change = node.create_client(ChangeState, f"/{name}/change_state")
        request = ChangeState.Request(transition=Transition(id=transition_id))
        for _ in range(3):
            try:
                assert call(change, request).success, (name, transition_id)
                break
            except NoAnswer:
                if get_state(name).current_state.id == expected_state:
                    break
        state = get_state(name)
        assert state.current_state.id == expected_state

    def status_of(name: str) -> str:
        messages = [
            status.message
            for array in received["diagnostics"]
            for status in array.status
            if status.name.endswith(name)
        ]
        return messages[-1] if messages else ""

    try:
        with GraphProcesses(params, nodes=MANAGED) as graph:
            both = [spec.name for spec in MANAGED]
            for name in both:
                state = get_state(name)
                assert state.current_state.id == State.PRIMARY_STATE_UNCONFIGURED
            spin_for(1.5)
            assert not received["command"] and not received["odometry"]
            assert not received["image"]
            assert "unconfigured: publishing no commands" in status_of("control_bridge")

            for name in both:
                transition(name, Transition.TRANSITION_CONFIGURE, State.PRIMARY_STATE_INACTIVE)
            spin_for(1.5)
            assert not received["command"] and not received["odometry"]
            assert not received["image"]
            assert "inactive" in status_of("control_bridge")

            for name in both:
                transition(name, Transition.TRANSITION_ACTIVATE, State.PRIMARY_STATE_ACTIVE)
            assert spin_until(lambda: bool(received["image"]) and len(received["command"]) > 5)
            # Active, the bridge commands at its rate whatever its inputs (no plan: waiting).
            received["command"].clear()
            spin_for(2.0)
            # Judged by the commands' stamps (the bridge's clock), not by when they came to
            # a probe that may fall behind: about 50 Hz, and no long gap.
            stamps = np.array([stamp_ns(c.header.stamp) for c in received["command"]]) / 1e9
            assert len(stamps) > 10, len(stamps)
            assert (len(stamps) - 1) / (stamps[-1] - stamps[0]) > 30.0, np.diff(stamps)
            assert np.diff(stamps).max() < 0.3, np.diff(stamps)
            assert all(c.mode == ControlCommand.MODE_WAITING for c in received["command"])

            transition(
                "control_bridge", Transition.TRANSITION_DEACTIVATE, State.PRIMARY_STATE_INACTIVE
            )
            spin_for(0.5)  # what was in flight arrives
            # The last command is a stop, which a vehicle interface holds after it.
            last = received["command"][-1]
            assert "deactivated" in last.reason, last.reason
            assert last.mode in (ControlCommand.MODE_SAFE_STOP, ControlCommand.MODE_STOPPED)
            assert (last.velocity, last.acceleration) == (0.0, -3.0)
            received["command"].clear()
            received["odometry"].clear()
            spin_for(1.5)
            assert not received["command"] and received["odometry"]  # the camera still runs
            transition("control_bridge", Transition.TRANSITION_ACTIVATE, State.PRIMARY_STATE_ACTIVE)
            assert spin_until(lambda: len(received["command"]) > 5)

            transition(
                "camera_driver", Transition.TRANSITION_DEACTIVATE, State.PRIMARY_STATE_INACTIVE
            )
            transition(
                "camera_driver", Transition.TRANSITION_CLEANUP, State.PRIMARY_STATE_UNCONFIGURED
            )
            spin_for(0.5)
            received["image"].clear()
            received["odometry"].clear()
            spin_for(1.0)
            assert not received["image"] and not received["odometry"]

            # Shut down from active: the bridge's last command is the stop again.
            received["command"].clear()
            transition(
                "control_bridge",
                Transition.TRANSITION_ACTIVE_SHUTDOWN,
                State.PRIMARY_STATE_FINALIZED,
            )
            spin_for(0.5)
            assert received["command"], "no command before the shutdown"
            assert "deactivated" in received["command"][-1].reason
            graph.check()
    finally:
        executor.shutdown()
        node.destroy_node()


@pytest.mark.parametrize(
    ("ending", "executor_name"),
    [(signal.SIGINT, "events"), (signal.SIGTERM, "single_threaded")],
)
def test_a_bridge_ended_by_a_signal_sends_the_stop_first(
    rclpy_context: Context, tmp_path: Path, ending: signal.Signals, executor_name: str
) -> None:
    """Ctrl-C (the launchers' stop) or SIGTERM while the bridge commands the car, under
    either executor (single-threaded is the closed loop's, on simulated time): its last
    command is the stop, and it exits with status 0."""
    params = parameter_file(
        tmp_path, "constant_velocity", control_bridge={"executor": executor_name}
    )
    node = Node("signal_probe", context=rclpy_context)
    commands: list[ControlCommand] = []
    node.create_subscription(ControlCommand, Topics.CONTROL_COMMAND, commands.append, 100)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    try:
        with GraphProcesses(params, nodes=MANAGED) as graph:
            assert spin_graph_until(executor, lambda: len(commands) > 5, 30.0, graph.check)
            bridge = graph.processes["control_bridge"]
            bridge.send_signal(ending)
            assert bridge.wait(10) == 0, graph.output("control_bridge")[-2000:]
            spin_graph_until(executor, lambda: False, 0.5)  # what was in flight arrives
            last = commands[-1]
            assert "deactivated" in last.reason, last.reason
            assert (last.velocity, last.acceleration) == (0.0, -3.0)
    finally:
        executor.shutdown()
        node.destroy_node()
