"""The monitor's one-line summaries carry what a user checks by eye: t0, decision, cause."""

from __future__ import annotations

from alpamayo_ros_msgs.msg import MetaAction, Reasoning, Trajectory
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


def test_trajectory_line_gives_where_the_plan_ends_and_survives_a_ragged_one() -> None:
    msg = Trajectory(time_from_start=[0.1, 6.4], x=[1.0, 42.04], y=[0.0, -3.16])
    msg.header.stamp = Time(sec=3, nanosec=100_000_000)
    msg.info.inference_id = 7
    assert describe(msg) == "trajectory   t0=3.100 id=7 2 points, end (42.0, -3.2) m at 6.4 s"
    msg.x = []
    assert describe(msg) == "trajectory   t0=3.100 without points"


def test_values_of_a_newer_message_version_read_as_unknown() -> None:
    """A node of a newer version may send decisions and meta-actions this one does not
    know: the line names them UNKNOWN rather than killing the monitor (and the demo)."""
    reasoning = Reasoning(text="Yield.", longitudinal_decision=200, lateral_decision=201)
    assert "[UNKNOWN/UNKNOWN]" in describe(reasoning)
    assert "UNKNOWN (0.50), UNKNOWN (0.50)" in describe(
        MetaAction(
            longitudinal=200, lateral=201, longitudinal_confidence=0.5, lateral_confidence=0.5
        )
    )
