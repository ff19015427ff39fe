"""Topic monitor: subscribes to the graph's outputs and reports what was published.

Used by `alpamayo-ros demo` to show the graph working, and by tests to observe it over
real topics. Diagnostics are reported as they change to WARN or ERROR (and back to OK), so a
person watching sees at once why the graph is running behind or stopping.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from alpamayo_ros_msgs.msg import (
    ControlCommand,
    MetaAction,
    Reasoning,
    Trajectory,
    TrajectoryCandidates,
)
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.context import Context
from rclpy.node import Node

from alpamayo_ros.graph import Topics
from alpamayo_ros.ros.conversions import (
    causal_decision,
    command_mode_name,
    meta_action_estimate,
    stamp_ns,
)
from alpamayo_ros.ros.runtime import StatusChanges

_LEVEL_NAMES = {
    DiagnosticStatus.OK: "OK",
    DiagnosticStatus.WARN: "WARN",
    DiagnosticStatus.ERROR: "ERROR",
    DiagnosticStatus.STALE: "STALE",
}


def describe(msg: object) -> str:
    """One line per message, with the input stamp t0 each output carries."""
    # Enum values of a newer version of the messages read as UNKNOWN (conversions).
    if isinstance(msg, Reasoning):
        decided = causal_decision(msg)
        return (
            f"reasoning    t0={stamp_ns(msg.header.stamp) / 1e9:.3f} id={msg.info.inference_id} "
            f"[{decided.longitudinal_decision.name}/"
            f'{decided.lateral_decision.name}] "{msg.text}"' + _cause_object(msg)
        )
    if isinstance(msg, MetaAction):
        estimate = meta_action_estimate(msg)
        return (
            f"meta_action  t0={stamp_ns(msg.header.stamp) / 1e9:.3f} id={msg.info.inference_id} "
            f"{estimate.longitudinal.name} ({msg.longitudinal_confidence:.2f}), "
            f"{estimate.lateral.name} ({msg.lateral_confidence:.2f})"
        )
    if isinstance(msg, Trajectory):
        if not (len(msg.time_from_start) and len(msg.x) and len(msg.y)):
            return f"trajectory   t0={stamp_ns(msg.header.stamp) / 1e9:.3f} without points"
        return (
            f"trajectory   t0={stamp_ns(msg.header.stamp) / 1e9:.3f} id={msg.info.inference_id} "
            f"{len(msg.time_from_start)} points, end ({msg.x[-1]:.1f}, {msg.y[-1]:.1f}) m "
            f"at {msg.time_from_start[-1]:.1f} s"
        )
    if isinstance(msg, TrajectoryCandidates):
        return (
            f"candidates   t0={stamp_ns(msg.header.stamp) / 1e9:.3f} id={msg.info.inference_id} "
            f"K={len(msg.scores)} feasible={sum(msg.feasible)} selected={msg.selected_index}"
        )
    if isinstance(msg, ControlCommand):
        return (
            f"control      plan t0={stamp_ns(msg.trajectory_stamp) / 1e9:.3f} "
            f"id={msg.inference_id} {command_mode_name(msg.mode)} "
            f"steer={msg.steering_tire_angle:+.3f} rad v={msg.velocity:.2f} m/s "
            f"a={msg.acceleration:+.2f} m/s^2"
        )
    if isinstance(msg, DiagnosticStatus):
        level = _LEVEL_NAMES.get(msg.level, str(msg.level))
        return f"diagnostic   {level:<5} {msg.name}: {msg.message}"
    return repr(msg)


def _cause_object(msg: Reasoning) -> str:
    if not msg.cause_object_id:
        return ""
    position = msg.cause_object_position
    return f" ({msg.cause_object_id} at x={position.x:.1f} y={position.y:+.1f} m)"


class TopicMonitor(Node):
    TOPICS = (
        (Reasoning, Topics.REASONING),
        (MetaAction, Topics.META_ACTION),
        (TrajectoryCandidates, Topics.CANDIDATES),
        (Trajectory, Topics.TRAJECTORY),
        (ControlCommand, Topics.CONTROL_COMMAND),
    )

    def __init__(
        self,
        on_message: Callable[[str, object], None] | None = None,
        context: Context | None = None,
    ) -> None:
        super().__init__("topic_monitor", context=context)
        self.counts: Counter[str] = Counter()
        self.messages: dict[str, list[object]] = {topic: [] for _, topic in self.TOPICS}
        self.on_message = on_message
        for msg_type, topic in self.TOPICS:
            self.create_subscription(
                msg_type, topic, lambda msg, topic=topic: self.record(topic, msg), 10
            )
        self.status_changes = StatusChanges()
        self.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self.on_diagnostics, 10)

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        """Report a status when it changes while WARN/ERROR, and when it recovers to OK."""
        for status in self.status_changes(msg):
            self.record(Topics.DIAGNOSTICS, status)

    def record(self, topic: str, msg: object) -> None:
        self.counts[topic] += 1
        self.messages.setdefault(topic, []).append(msg)
        if self.on_message is not None:
            self.on_message(topic, msg)
