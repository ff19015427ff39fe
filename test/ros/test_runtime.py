"""ros.runtime.spin: each executor runs the node's callbacks and returns at shutdown; a
missing EventsExecutor (rclpy before Jazzy's backport) falls back, saying so, as does a
node on simulated time unless it has no timer on ROS time."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.time import Time
from rosgraph_msgs.msg import Clock as ClockMsg

from alpamayo_ros.graph import Topics
from alpamayo_ros.parameters import EXECUTORS
from alpamayo_ros.ros.runtime import OK, WARN, Diagnostics, spin

TIMER_PERIOD_S = 0.01
CALLS = 5


class MessageDriven(Node):
    """A node that says it keeps no timer on ROS time (as the VLA node does)."""

    NO_ROS_TIME_TIMERS = True


def spin_until_shutdown(
    context: Context,
    executor_name: str,
    sim_time: bool = False,
    node_type: type[Node] = Node,
    ros_time_timer: bool = False,
) -> list[int]:
    """A node whose timer (on the steady clock) shuts the context down at its fifth call,
    spun with `executor_name`; the calls it got. `ros_time_timer`: a second timer, on ROS
    time, that never fires (no /clock comes)."""
    node = node_type(
        "spun",
        context=context,
        parameter_overrides=[Parameter("use_sim_time", value=sim_time)],
    )
    calls: list[int] = []

    def on_timer() -> None:
        calls.append(len(calls))
        if len(calls) == CALLS:
            context.shutdown()

    node.create_timer(TIMER_PERIOD_S, on_timer, clock=Clock(clock_type=ClockType.STEADY_TIME))
    if ros_time_timer:
        node.create_timer(TIMER_PERIOD_S, lambda: None)
    try:
        spin(node, executor_name)
    finally:
        node.destroy_node()
    return calls


@pytest.mark.parametrize("executor_name", EXECUTORS)
def test_each_executor_runs_callbacks_until_shutdown(
    rclpy_context: Context, executor_name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    assert spin_until_shutdown(rclpy_context, executor_name) == list(range(CALLS))
    assert "single_threaded" not in capfd.readouterr().err  # no fallback: the one asked for


@pytest.mark.parametrize(("node_type", "ros_time_timer"), [(Node, False), (MessageDriven, True)])
def test_events_runs_single_threaded_on_simulated_time(
    rclpy_context: Context,
    capfd: pytest.CaptureFixture[str],
    node_type: type[Node],
    ros_time_timer: bool,
) -> None:
    """A node that does not say it keeps no timer on simulated time, or that has one."""
    calls = spin_until_shutdown(
        rclpy_context, "events", True, node_type=node_type, ros_time_timer=ros_time_timer
    )
    assert calls == list(range(CALLS))
    assert "events does not keep the timers of simulated time" in capfd.readouterr().err


def test_events_runs_a_message_driven_node_on_simulated_time(
    rclpy_context: Context, capfd: pytest.CaptureFixture[str]
) -> None:
    calls = spin_until_shutdown(rclpy_context, "events", True, node_type=MessageDriven)
    assert calls == list(range(CALLS))
    assert "single_threaded" not in capfd.readouterr().err


def test_events_falls_back_where_rclpy_lacks_it(
    rclpy_context: Context, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rclpy.experimental", None)  # import fails, as on Humble
    assert spin_until_shutdown(rclpy_context, "events") == list(range(CALLS))
    assert "this rclpy has no EventsExecutor; running single_threaded" in capfd.readouterr().err


# A node whose timer keeps the executor busy (a Ctrl-C lands in a callback), or raises.
NODE_SCRIPT = """
import sys, time
from rclpy.node import Node
from alpamayo_ros.ros.runtime import run

class Busy(Node):
    def __init__(self):
        super().__init__("busy")
        self.declare_parameter("executor", sys.argv[1])
        self.create_timer(0.01, self.work)

    def work(self):
        print("spinning", flush=True)
        if sys.argv[2] == "raise":
            raise RuntimeError("a callback failed")
        started = time.perf_counter()
        while time.perf_counter() - started < 0.05:
            pass

print("exit", run(Busy, sys.argv[:1]), flush=True)
"""
START_TIMEOUT_S = 30.0


def start_node(executor_name: str, behaviour: str) -> subprocess.Popen[str]:
    """The node script running, once its first callback has run."""
    process = subprocess.Popen(
        [sys.executable, "-c", NODE_SCRIPT, executor_name, behaviour],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_TIMEOUT_S):
            process.kill()
            pytest.fail(f"the node did not spin within {START_TIMEOUT_S} s")
    return process


@pytest.mark.usefixtures("ros_domain")  # the child process's own domain, exported
@pytest.mark.parametrize("executor_name", EXECUTORS)
def test_ctrl_c_ends_a_busy_node_cleanly(executor_name: str) -> None:
    """Exit status 0 and no error: no KeyboardInterrupt raised inside a callback (which
    the EventsExecutor would log as a FATAL callback error)."""
    process = start_node(executor_name, "busy")
    try:
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "exit 0" in output
    assert "FATAL" not in output and "Traceback" not in output, output


@pytest.mark.usefixtures("ros_domain")
@pytest.mark.parametrize("executor_name", EXECUTORS)
def test_a_callback_that_raises_ends_the_process_with_an_error(executor_name: str) -> None:
    """What a launcher's respawn needs: the process ends, non-zero, naming the error."""
    process = start_node(executor_name, "raise")
    try:
        output, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 1, output
    assert "RuntimeError: a callback failed" in output


def test_a_node_on_simulated_time_names_a_clock_that_stands_still(rclpy_context: Context) -> None:
    """No /clock at all (use_sim_time with nothing publishing it): the node's status turns
    WARN, naming /clock, past the bound; once /clock comes it is OK again."""
    node = Node(
        "on_sim_time",
        context=rclpy_context,
        parameter_overrides=[Parameter("use_sim_time", value=True)],
    )
    diagnostics = Diagnostics(node, still_clock_warn_s=0.5)
    diagnostics.update(OK, "running")
    statuses: list[DiagnosticStatus] = []
    node.create_subscription(
        DiagnosticArray, Topics.DIAGNOSTICS, lambda msg: statuses.extend(msg.status), 10
    )
    # Another node's: a node that publishes /clock itself owns it, and is not warned.
    source = Node("clock_source", context=rclpy_context)
    clock = source.create_publisher(ClockMsg, "/clock", 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)

    def spin_until(condition: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return False

    try:
        still = lambda: any(  # noqa: E731
            s.level == WARN and s.message.startswith("/clock: none received") for s in statuses
        )
        assert spin_until(still, 10.0), [s.message for s in statuses]
        assert statuses[-1].message.endswith("; running")
        seen, sim_ns = len(statuses), 0

        def moving() -> bool:
            nonlocal sim_ns
            sim_ns += 10_000_000
            clock.publish(ClockMsg(clock=Time(nanoseconds=sim_ns).to_msg()))
            return any(s.level == OK for s in statuses[seen:])

        assert spin_until(moving, 10.0), [s.message for s in statuses[seen:]]
    finally:
        executor.shutdown()
        node.destroy_node()
        source.destroy_node()
