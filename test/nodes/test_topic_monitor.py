"""The monitor's one-line summaries carry what a user checks by eye: t0, decision, cause."""

from __future__ import annotations

from alpamayo_ros_msgs.msg import Reasoning
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point

from alpamayo_ros.nodes.topic_monitor import describe


def test_reasoning_line_names_the_cause_object_when_there_is_one() -> None:
    msg = Reasoning(text="Stop for the pedestrian crossing ahead.")
    msg.header.stamp = Time(sec=12, nanosec=500_000_000)
    msg.longitudinal_decision = Reasoning.LON_DECISION_YIELD
    msg.lateral_decision = Reasoning.LAT_DECISION_LANE_KEEPING
    line = describe(msg)
    assert line.startswith("reasoning    t0=12.500")
    assert '[YIELD/LANE_KEEPING] "Stop for the pedestrian crossing ahead."' in line
    assert line.endswith('"')  # no cause object, nothing more
    msg.cause_object_id = "pedestrian"
    msg.cause_object_position = Point(x=18.24, y=-1.46, z=0.9)
    assert describe(msg).endswith("(pedestrian at x=18.2 y=-1.5 m)")
