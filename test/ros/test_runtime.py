"""ros.runtime.spin: each executor runs the node's callbacks and returns at shutdown; a
missing EventsExecutor (rclpy before Jazzy's backport) falls back, saying so, as does a
node on simulated time unless it has no timer on ROS time."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import time

import pytest
from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from alpamayo_ros.parameters import EXECUTORS
from alpamayo_ros.ros.runtime import spin

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
