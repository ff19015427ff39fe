"""What every node shares: schema-driven parameters, diagnostics, and a clean main()."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from importlib import import_module
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType, ROSClock
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.input_health import HealthReport, Level, StillClock
from alpamayo_ros.graph import Topics
from alpamayo_ros.parameters import ParameterError, check_values, schema_for
from alpamayo_ros.ros.managed import ManagedNode

# How often the spin looks at whether the process is shutting down, when nothing else
# wakes it (the context's shutdown wakes it at once; a node with `LAST_WORD_ON_SIGNALS`
# notices a signal within this much).
SPIN_TIMEOUT_S = 0.5

# A topic that holds a setting rather than a stream (/tf_static, the set speed): its last
# message kept for a subscriber that joins later, and none lost.
LATCHED_QOS = QoSProfile(
    depth=1,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    reliability=ReliabilityPolicy.RELIABLE,
)

# A second Ctrl-C or SIGTERM this soon after the first is the same stop asked twice, not
# one that interrupts the teardown sending the control bridge's last command.
REPEATED_SIGNAL_S = 2.0

# Simulated time standing still this long (steady seconds), or no /clock at all, is named
# on /diagnostics: longer than lock-step holds for an answer (its bound, 1 s packaged,
# 10 s in the slowest tests), short enough for a person who wonders why nothing moves.
STILL_CLOCK_WARN_S = 15.0

# diagnostic_msgs levels are `byte` fields: one-byte bytes objects in rclpy.
OK: bytes = DiagnosticStatus.OK
WARN: bytes = DiagnosticStatus.WARN
ERROR: bytes = DiagnosticStatus.ERROR


def declare_parameters(node: Node, schema_name: str) -> dict[str, Any]:
    """Declare the node's parameters from the schema and return the validated values."""
    values = {}
    for parameter in schema_for(schema_name):
        descriptor = ParameterDescriptor(description=parameter.description, read_only=True)
        # An empty list has no ROS type of its own (and an empty YAML list sets nothing):
        # such parameters are string arrays, unset meaning the empty default.
        default = parameter.default if parameter.default != [] else Parameter.Type.STRING_ARRAY
        try:
            declared = node.declare_parameter(parameter.name, default, descriptor)
        except ParameterException as error:  # e.g. a string given for a float
            raise ParameterError(f"{schema_name}.{parameter.name}: {error}") from None
        values[parameter.name] = parameter.default if declared.value is None else declared.value
    return check_values(schema_name, values)


class Diagnostics:
    """Publishes the node's health on /diagnostics (diagnostic_msgs), once a second.

    With `inputs`, the health of the node's inputs comes first: the status is never better
    than its worst input, and the message names the faulty inputs before the node's own
    state (a node cannot be OK "inferring" while a camera it needs is silent). On simulated
    time, a /clock that has stood still for `still_clock_warn_s` is a WARN at least.
    """

    def __init__(
        self,
        node: Node,
        hardware_id: str = "",
        inputs: Callable[[int], HealthReport] | None = None,
        still_clock_warn_s: float = STILL_CLOCK_WARN_S,
    ) -> None:
        self._node = node
        self._hardware_id = hardware_id
        self._inputs = inputs
        self._still_clock = StillClock(still_clock_warn_s)
        self._level = OK
        self._message = "starting"
        self._values: dict[str, str] = {}
        self._publisher = node.create_publisher(DiagnosticArray, Topics.DIAGNOSTICS, 10)
        # Once a second of the steady clock: a held or paused /clock (lock-step, a replay)
        # does not silence a node's health, and a node whose work follows its messages
        # keeps no timer on simulated time (the events executor can serve it then).
        node.create_timer(1.0, self.publish, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def update(self, level: bytes, message: str, **values: object) -> None:
        self._level = level
        self._message = message
        self.set_values(**values)

    def set_values(self, **values: object) -> None:
        """Figures that go with the current status, which they leave as it is."""
        self._values.update({key: str(value) for key, value in values.items()})

    @property
    def level(self) -> bytes:
        return self._level

    @property
    def message(self) -> str:
        return self._message

    def _owns_clock(self) -> bool:
        """Whether the node publishes /clock itself (the simulator, a lock-step camera
        driver): its time stands still where its own status says why (its drive or
        recording has ended), so the still clock is not its fault to name."""
        return any(publisher.topic_name == Topics.CLOCK for publisher in self._node.publishers)

    def publish(self) -> None:
        level, message, values = self._level, self._message, dict(self._values)
        clock = self._node.get_clock()
        now_ns = clock.now().nanoseconds
        if self._inputs is not None:
            inputs = self._inputs(now_ns)
            values.update({key: str(count) for key, count in inputs.counts.items()})
            if inputs.level > Level.OK:
                level = max(level, bytes([inputs.level]))
                message = f"{inputs.message}; {message}"
        if isinstance(clock, ROSClock) and clock.ros_time_is_active and not self._owns_clock():
            still = self._still_clock.describe(now_ns, time.monotonic_ns())
            if still:
                level = max(level, WARN)
                message = f"{still}; {message}"
        status = DiagnosticStatus(
            level=level,
            name=self._node.get_fully_qualified_name(),
            message=message,
            hardware_id=self._hardware_id,
            values=[KeyValue(key=k, value=v) for k, v in sorted(values.items())],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = Time(nanoseconds=now_ns).to_msg()
        self._publisher.publish(array)


class StatusChanges:
    """The statuses a person watching should see: each change while WARN or ERROR, and the
    recovery to OK (a steady OK says nothing new)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[bytes, str]] = {}

    def __call__(self, msg: DiagnosticArray) -> list[DiagnosticStatus]:
        changed = []
        for status in msg.status:
            before = self._last.get(status.name, (OK, ""))
            now = (status.level, status.message)
            self._last[status.name] = now
            if now != before and (now[0], before[0]) != (OK, OK):
                changed.append(status)
        return changed


def message_class(msgtype: str) -> type:
    """The Python class of a ROS type name such as "sensor_msgs/msg/Image"."""
    package, kind, name = msgtype.split("/")
    return getattr(import_module(f"{package}.{kind}"), name)


class InterruptOutsideSpin:
    """Python's Ctrl-C handler, quiet while the node spins.

    rclpy's own handler ends the context on SIGINT, which ends the spin, and then calls
    this one. While spinning, the KeyboardInterrupt Python raises by default would land in
    whatever callback runs, where the EventsExecutor logs it as a FATAL callback error
    before passing it on. Before the spin (a node loading its model, waiting for its
    worker) and after it (a teardown that hangs) it interrupts as usual.
    """

    signalled = False  # rclpy's handler ends the context, and with it the spin

    def __init__(self) -> None:
        self.spinning = False
        signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: object) -> None:
        if not self.spinning:
            raise KeyboardInterrupt


class SignalsEndTheSpin:
    """Ctrl-C and SIGTERM for a node whose teardown has a last word to publish (the control
    bridge's stop): while it spins, a signal ends the spin between two callbacks, and the
    usual teardown (`destroy_node`, which leaves the active state) runs while the ROS
    context still lives. rclpy's own handler, left out for such a node
    (`SignalHandlerOptions.NO`), would end the context first, and nothing could be
    published. Before the spin it interrupts as usual, as a second signal does once the
    first is `REPEATED_SIGNAL_S` old (a teardown that hangs)."""

    def __init__(self) -> None:
        self.spinning = False
        self._signalled_at: float | None = None  # monotonic seconds
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    @property
    def signalled(self) -> bool:
        return self._signalled_at is not None

    def _on_signal(self, signum: int, frame: object) -> None:
        now = time.monotonic()
        if self._signalled_at is not None and now - self._signalled_at < REPEATED_SIGNAL_S:
            return  # the same stop asked twice (a service manager and a launcher)
        if not self.spinning or self._signalled_at is not None:
            raise KeyboardInterrupt
        self._signalled_at = now  # the spin ends at its next turn


def spin(node: Node, executor_name: str, until: Callable[[], bool] = lambda: False) -> None:
    """Run the node's callbacks until shutdown (Ctrl-C, SIGTERM) or `until()`, checked
    between callbacks, with the executor named by its `executor` parameter
    (parameters.EXECUTORS).

    Why the EventsExecutor by default: measured with `alpamayo-ros benchmark --graph` on
    this project's 2-core machine, the single-threaded executor's Python wait set cost
    about 2.5 ms between t0 and the model's start and about 1.5 ms between a trajectory
    and the command tracking it, and every process's idle CPU doubled. It is spun one
    event at a time: its own spin() in rclpy 7.1 ran no callback at all here, at 100% of a
    core, and did not return at shutdown. A node on simulated time that does not say it
    keeps no timer on ROS time, or has one, or where rclpy lacks it, runs single-threaded
    (`_events_executor`).
    """
    context = node.context
    events_executor = _events_executor(node) if executor_name == "events" else None
    executor = (events_executor or SingleThreadedExecutor)(context=context)
    executor.add_node(node)
    try:
        with suppress(ExternalShutdownException):
            while context.ok() and not until():  # one event at a time (see above)
                executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
    finally:  # also when a callback raised, which ends the process (a respawn's cue)
        executor.remove_node(node)
        executor.shutdown()


def _events_executor(node: Node) -> Callable[..., Executor] | None:
    """rclpy's EventsExecutor where it can run this node, else None, saying why.

    Its timers do not keep simulated time (rclcpp#2457 for the C++ one it ports): in
    lock-step demos the control bridge's timer fired more often than simulated time allows
    (83 against 60 commands per simulated second), at 70-85% of a core. So on simulated
    time it runs only a node that says it has no timer on ROS time (`NO_ROS_TIME_TIMERS`:
    its work follows its messages, and its timers are on the steady clock), and where no
    such timer exists when it starts to spin (a managed node configured later is held to
    its word only by that word).
    """
    if node.get_parameter("use_sim_time").value:
        simulated = [timer for timer in node.timers if timer.clock.clock_type == ClockType.ROS_TIME]
        if simulated or not getattr(node, "NO_ROS_TIME_TIMERS", False):
            node.get_logger().info(
                "executor: events does not keep the timers of simulated time; single_threaded"
            )
            return None
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:  # rclpy before Jazzy's backport (Humble)
        node.get_logger().warning(
            "executor: events: this rclpy has no EventsExecutor; running single_threaded"
        )
        return None
    return EventsExecutor


def run(node_factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Spin one node; a configuration error prints one clear line and exits with status 2.
    A node whose class sets `LAST_WORD_ON_SIGNALS` has Ctrl-C and SIGTERM end its spin
    rather than the ROS context (`SignalsEndTheSpin`), so its teardown can still publish."""
    argv = args if args is not None else sys.argv
    interrupt: InterruptOutsideSpin | SignalsEndTheSpin
    if getattr(node_factory, "LAST_WORD_ON_SIGNALS", False):
        interrupt = SignalsEndTheSpin()
        rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    else:
        interrupt = InterruptOutsideSpin()  # before rclpy.init, whose handler calls it
        rclpy.init(args=argv)
    node = None
    try:
        node = node_factory()
        if isinstance(node, ManagedNode) and node.params["autostart"]:
            node.autostart()
        interrupt.spinning = True
        try:
            spin(
                node,
                node.get_parameter("executor").value,
                until=lambda: interrupt.signalled,
            )
        finally:  # a second Ctrl-C still interrupts a teardown that hangs
            interrupt.spinning = False
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
