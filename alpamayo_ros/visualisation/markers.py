"""RViz views of the planner's candidates and the VLA's reasoning, built from their messages.

Everything is drawn in the frame and at the input time t0 of the message it comes from (the
ego frame at t0), and with a lifetime, so a view that stops updating disappears instead of
showing a stale plan as if it were current.
"""

from __future__ import annotations

from dataclasses import dataclass

from alpamayo_ros_msgs.msg import Reasoning, Trajectory, TrajectoryCandidates
from geometry_msgs.msg import Point, PoseStamped, Vector3
from nav_msgs.msg import Path
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.decisions import LateralDecision, LongitudinalDecision
from alpamayo_ros.ros.conversions import duration_msg, duration_ns, stamp_ns, time_msg

SELECTED = ColorRGBA(r=0.1, g=0.9, b=0.2, a=1.0)
FEASIBLE = ColorRGBA(r=0.3, g=0.6, b=1.0, a=0.5)
INFEASIBLE = ColorRGBA(r=1.0, g=0.2, b=0.2, a=0.5)
TEXT = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
CAUSE = ColorRGBA(r=1.0, g=0.55, b=0.0, a=0.8)

# Marker namespaces; RViz lists them and lets the user toggle each.
CANDIDATES_NS, SELECTED_NS, REASONING_NS, CAUSE_NS = "candidates", "selected", "reasoning", "cause"


@dataclass(frozen=True)
class MarkerStyle:
    lifetime_s: float = 0.5  # a few inference periods
    line_width: float = 0.15  # m
    selected_line_width: float = 0.35  # m
    text_height: float = 0.6  # m, of an upper-case letter
    text_position: tuple[float, float, float] = (0.0, 0.0, 3.0)  # above the ego, m
    cause_size: tuple[float, float, float] = (1.0, 1.0, 1.8)  # cylinder at the cause, m


def candidate_markers(msg: TrajectoryCandidates, style: MarkerStyle = MarkerStyle()) -> MarkerArray:
    """Every candidate as a line (feasible blue, rejected red) and the selected one on top.

    Raises ValueError for a message whose lists disagree or whose selection is not a
    candidate.
    """
    if len(msg.feasible) != len(msg.candidates):
        raise ValueError(
            f"{len(msg.candidates)} candidates but {len(msg.feasible)} feasibility flags"
        )
    selected = msg.selected_index
    if selected != TrajectoryCandidates.NONE_SELECTED and selected >= len(msg.candidates):
        raise ValueError(f"selected index {selected} of {len(msg.candidates)} candidates")
    markers = []
    for index, (candidate, feasible) in enumerate(zip(msg.candidates, msg.feasible, strict=True)):
        colour = FEASIBLE if feasible else INFEASIBLE
        markers.append(_path_line(msg.header, CANDIDATES_NS, index, candidate, colour, style))
    if msg.selected_index != TrajectoryCandidates.NONE_SELECTED:
        chosen = msg.candidates[msg.selected_index]
        line = _path_line(msg.header, SELECTED_NS, 0, chosen, SELECTED, style)
        line.scale.x = style.selected_line_width
        markers.append(line)
    else:
        markers.append(_delete(msg.header, SELECTED_NS, 0))
    return MarkerArray(markers=markers)


def reasoning_markers(msg: Reasoning, style: MarkerStyle = MarkerStyle()) -> MarkerArray:
    """The reasoning text above the ego, and the object it names where it names one."""
    decision = (
        f"{LongitudinalDecision(msg.longitudinal_decision).name.lower()} / "
        f"{LateralDecision(msg.lateral_decision).name.lower()}"
    )
    text = _marker(msg.header, REASONING_NS, 0, Marker.TEXT_VIEW_FACING, TEXT, style)
    x, y, z = style.text_position
    text.pose.position = Point(x=x, y=y, z=z)
    text.scale.z = style.text_height
    text.text = f"{msg.text}\n[{decision}]"
    if not msg.cause_object_id:
        return MarkerArray(
            markers=[text, _delete(msg.header, CAUSE_NS, 0), _delete(msg.header, CAUSE_NS, 1)]
        )
    position = msg.cause_object_position
    body = _marker(msg.header, CAUSE_NS, 0, Marker.CYLINDER, CAUSE, style)
    body.pose.position = Point(x=position.x, y=position.y, z=style.cause_size[2] / 2.0)
    body.scale = Vector3(x=style.cause_size[0], y=style.cause_size[1], z=style.cause_size[2])
    label = _marker(msg.header, CAUSE_NS, 1, Marker.TEXT_VIEW_FACING, CAUSE, style)
    label.pose.position = Point(x=position.x, y=position.y, z=style.cause_size[2] + 0.6)
    label.scale.z = style.text_height
    label.text = msg.cause_object_id
    return MarkerArray(markers=[text, body, label])


def trajectory_path(msg: Trajectory) -> Path:
    """The trajectory as a nav_msgs/Path; each pose is stamped with the time it is reached."""
    t0_ns = stamp_ns(msg.header.stamp)
    poses = [
        PoseStamped(
            header=Header(
                stamp=time_msg(t0_ns + duration_ns(point.time_from_start)),
                frame_id=msg.header.frame_id,
            ),
            pose=point.pose,
        )
        for point in msg.points
    ]
    return Path(header=msg.header, poses=poses)


def _path_line(
    header: Header,
    namespace: str,
    marker_id: int,
    trajectory: Trajectory,
    colour: ColorRGBA,
    style: MarkerStyle,
) -> Marker:
    line = _marker(header, namespace, marker_id, Marker.LINE_STRIP, colour, style)
    line.scale.x = style.line_width
    # The line starts at the ego (the origin of the frame at t0), where the plan starts.
    line.points = [Point()] + [point.pose.position for point in trajectory.points]
    return line


def _marker(
    header: Header,
    namespace: str,
    marker_id: int,
    kind: int,
    colour: ColorRGBA,
    style: MarkerStyle,
) -> Marker:
    marker = Marker(header=header, ns=namespace, id=marker_id, type=kind, action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    marker.color = colour
    marker.lifetime = duration_msg(round(style.lifetime_s * NS_PER_S))
    return marker


def _delete(header: Header, namespace: str, marker_id: int) -> Marker:
    return Marker(header=header, ns=namespace, id=marker_id, action=Marker.DELETE)
