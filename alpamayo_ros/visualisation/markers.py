"""RViz views of the planner's candidates, the VLA's reasoning and the lane the cameras
show, built from their messages.

Everything is drawn in the frame and at the input time t0 of the message it comes from (the
ego frame at t0), and with a lifetime, so a view that stops updating disappears instead of
showing a stale plan as if it were current.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from alpamayo_ros_msgs.msg import PlannerConditioning, Reasoning, TrajectoryCandidates
from geometry_msgs.msg import Point, PoseStamped, Quaternion, Vector3
from nav_msgs.msg import Path
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.planar import yaw_to_quaternion
from alpamayo_ros.core.stand_off import STOP_LINE_CAUSES
from alpamayo_ros.perception.free_space import CORRIDOR_HALF_WIDTH_M, corridor_centre
from alpamayo_ros.ros.conversions import (
    candidate_paths,
    causal_decision,
    duration_msg,
    free_space_estimate,
    lane_estimate,
    pose_msgs,
    stamp_ns,
    time_msg,
    traffic_light_view,
)
from alpamayo_ros.world.agents import LightColour, Rgb
from alpamayo_ros.world.state import WorldState

SELECTED = ColorRGBA(r=0.1, g=0.9, b=0.2, a=1.0)
FEASIBLE = ColorRGBA(r=0.3, g=0.6, b=1.0, a=0.5)
INFEASIBLE = ColorRGBA(r=1.0, g=0.2, b=0.2, a=0.5)
TEXT = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
CAUSE = ColorRGBA(r=1.0, g=0.55, b=0.0, a=0.8)
LANE = ColorRGBA(r=1.0, g=0.9, b=0.2, a=0.8)

# Marker namespaces; RViz lists them and lets the user toggle each.
CANDIDATES_NS, SELECTED_NS, REASONING_NS, CAUSE_NS = "candidates", "selected", "reasoning", "cause"
LANE_NS = "lane"
STOP_LINE_NS = "stop_line"
STOP_LINE_HALF_WIDTH_M = 1.75  # drawn across a lane of the usual width
CLEAR_ROAD_NS = "clear_road_end"
CLEAR_ROAD_END = ColorRGBA(r=1.0, g=0.3, b=0.7, a=0.9)
AGENTS_NS, LIGHTS_NS, ROAD_NS = "agents", "lights", "road"
LIGHT_COLOURS = {
    LightColour.RED: ColorRGBA(r=1.0, g=0.1, b=0.1, a=1.0),
    LightColour.YELLOW: ColorRGBA(r=1.0, g=0.85, b=0.1, a=1.0),
    LightColour.GREEN: ColorRGBA(r=0.1, g=1.0, b=0.2, a=1.0),
}
MARKING = ColorRGBA(r=0.9, g=0.9, b=0.85, a=0.8)
LIGHT_HEIGHT_M = 4.0
# The road is drawn this far behind and ahead of the ego, every ROAD_STEP_M.
ROAD_BEHIND_M, ROAD_AHEAD_M, ROAD_STEP_M = 20.0, 120.0, 2.0


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

    Raises ValueError for a message whose columns disagree or whose selection is not a
    candidate.
    """
    paths = candidate_paths(msg)
    markers = []
    for index, feasible in enumerate(paths.feasible):
        colour = FEASIBLE if feasible else INFEASIBLE
        x, y = paths.x[index], paths.y[index]
        markers.append(_path_line(msg.header, CANDIDATES_NS, index, x, y, colour, style))
    if paths.selected is not None:
        chosen = paths.selected
        x, y = paths.x[chosen], paths.y[chosen]
        line = _path_line(msg.header, SELECTED_NS, 0, x, y, SELECTED, style)
        line.scale.x = style.selected_line_width
        markers.append(line)
    else:
        markers.append(_delete(msg.header, SELECTED_NS, 0))
    return MarkerArray(markers=markers)


def reasoning_markers(msg: Reasoning, style: MarkerStyle = MarkerStyle()) -> MarkerArray:
    """The reasoning text above the ego, and the object it names where it names one (for a
    traffic light, its stop line)."""
    decided = causal_decision(msg)  # a value of a newer version reads as unknown
    decision = (
        f"{decided.longitudinal_decision.name.lower()} / {decided.lateral_decision.name.lower()}"
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
    # A light's place is its stop line, not the lamp (which the world's markers draw).
    stop_line = msg.cause in STOP_LINE_CAUSES
    label.text = f"{msg.cause_object_id} stop line" if stop_line else msg.cause_object_id
    return MarkerArray(markers=[text, body, label])


def lane_markers(msg: PlannerConditioning, style: MarkerStyle = MarkerStyle()) -> MarkerArray:
    """The lane the VLA node found in the cameras at t0 (the one the planner follows while
    the reasoning keeps its lane): its centre, and its edges thinner; deleted when it found
    none."""
    lane = lane_estimate(msg.lane)
    if lane is None:
        return MarkerArray(markers=[_delete(msg.header, LANE_NS, i) for i in range(3)])
    markers = []
    for marker_id, offset in enumerate((0.0, lane.width_m / 2.0, -lane.width_m / 2.0)):
        line = _marker(msg.header, LANE_NS, marker_id, Marker.LINE_STRIP, LANE, style)
        line.scale.x = style.line_width if offset == 0.0 else style.line_width / 2.0
        line.points = [
            Point(x=float(x), y=float(y) + offset) for x, y in zip(lane.x, lane.y, strict=True)
        ]
        markers.append(line)
    return MarkerArray(markers=markers)


def stop_line_markers(msg: PlannerConditioning, style: MarkerStyle = MarkerStyle()) -> MarkerArray:
    """The stop line the VLA node found in the cameras at t0 for a red or yellow light (the
    one the planner stops at where the reasoning names a light), across the car's path in
    the light's colour; deleted when it found none."""
    light = traffic_light_view(msg.traffic_light)
    if light.stop_line_x is None:
        return MarkerArray(markers=[_delete(msg.header, STOP_LINE_NS, 0)])
    seen = LightColour.__members__.get(light.colour.name)
    colour = MARKING if seen is None else LIGHT_COLOURS[seen]
    line = _marker(msg.header, STOP_LINE_NS, 0, Marker.LINE_STRIP, colour, style)
    line.scale.x = style.line_width * 2.0
    line.points = [
        Point(x=light.stop_line_x, y=side * STOP_LINE_HALF_WIDTH_M) for side in (-1.0, 1.0)
    ]
    return MarkerArray(markers=[line])


def clear_road_markers(msg: PlannerConditioning, style: MarkerStyle = MarkerStyle()) -> MarkerArray:
    """Where the clear road the VLA node found in the cameras at t0 ends (the nearest thing
    standing in the car's corridor, which a stop for a stopped vehicle the reasoning put
    nearer moves to, and which a plan passes with room or stops short of): a line across
    what stands there, as far sideways as it reaches where that was measured, else across
    the corridor (on the lane's centre where it found one); deleted where nothing stands
    within the range it looked along, or it did not look."""
    space = free_space_estimate(msg.free_space)
    if space is None or space.clear_to_x >= space.range_x:
        return MarkerArray(markers=[_delete(msg.header, CLEAR_ROAD_NS, 0)])
    if space.extent_y is not None:
        right, left = space.extent_y
    else:
        centre = corridor_centre(lane_estimate(msg.lane), space.clear_to_x)
        right, left = centre - CORRIDOR_HALF_WIDTH_M, centre + CORRIDOR_HALF_WIDTH_M
    line = _marker(msg.header, CLEAR_ROAD_NS, 0, Marker.LINE_STRIP, CLEAR_ROAD_END, style)
    line.scale.x = style.line_width * 2.0
    line.points = [Point(x=space.clear_to_x, y=y) for y in (right, left)]
    return MarkerArray(markers=[line])


def ground_truth_markers(
    state: WorldState, ego_s: float, header: Header, style: MarkerStyle = MarkerStyle()
) -> MarkerArray:
    """What the simulated world holds, in its (odometry) frame: every agent as a box of
    its size and colour, every traffic light as a lamp of its colour, the lane markings
    around the ego (`ego_s`, its arc length on the road)."""
    road = state.road
    markers = []
    for index, agent in enumerate(state.agents):
        x, y, road_yaw = road.world_point(agent.s, agent.d)
        box = _marker(header, AGENTS_NS, index, Marker.CUBE, _rgba(agent.colour), style)
        box.pose.position = Point(x=x, y=y, z=agent.height / 2.0)
        box.pose.orientation = _quaternion(road_yaw + agent.heading)
        box.scale = Vector3(x=agent.length, y=agent.width, z=agent.height)
        box.text = agent.agent_id
        markers.append(box)
    for index, light in enumerate(state.lights):
        x, y, _ = road.world_point(light.s, light.d)
        lamp = _marker(header, LIGHTS_NS, index, Marker.SPHERE, LIGHT_COLOURS[light.colour], style)
        lamp.pose.position = Point(x=x, y=y, z=LIGHT_HEIGHT_M)
        lamp.scale = Vector3(x=0.8, y=0.8, z=0.8)
        lamp.text = light.light_id
        markers.append(lamp)
    s = np.arange(ego_s - ROAD_BEHIND_M, ego_s + ROAD_AHEAD_M, ROAD_STEP_M)
    for index, marking in enumerate(road.markings()):
        x, y, _ = road.to_world(s, np.full_like(s, marking.d))
        line = _marker(
            header,
            ROAD_NS,
            index,
            Marker.LINE_LIST if marking.dashed else Marker.LINE_STRIP,
            MARKING,
            style,
        )
        line.scale.x = style.line_width
        line.points = [Point(x=float(px), y=float(py)) for px, py in zip(x, y, strict=True)]
        if marking.dashed and len(line.points) % 2:
            line.points.pop()
        markers.append(line)
    return MarkerArray(markers=markers)


def _rgba(colour: Rgb) -> ColorRGBA:
    red, green, blue = (channel / 255.0 for channel in colour)
    return ColorRGBA(r=red, g=green, b=blue, a=1.0)


def _quaternion(yaw: float) -> Quaternion:
    qx, qy, qz, qw = yaw_to_quaternion(yaw)
    return Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw))


def selected_path(msg: TrajectoryCandidates) -> Path | None:
    """The selected candidate as a nav_msgs/Path, each pose stamped with the time it is
    reached; None when no candidate was selected. Raises ValueError as candidate_markers."""
    paths = candidate_paths(msg)
    if paths.selected is None:
        return None
    t0_ns = stamp_ns(msg.header.stamp)
    k = paths.selected
    offsets_ns = np.round(paths.time_from_start * NS_PER_S).astype(np.int64).tolist()
    poses = pose_msgs(
        np.stack([paths.x[k], paths.y[k], np.zeros_like(paths.x[k])], axis=-1),
        yaw_to_quaternion(paths.yaw[k]),
    )
    return Path(
        header=msg.header,
        poses=[
            PoseStamped(
                header=Header(stamp=time_msg(t0_ns + offset), frame_id=msg.header.frame_id),
                pose=pose,
            )
            for offset, pose in zip(offsets_ns, poses, strict=True)
        ],
    )


def _path_line(
    header: Header,
    namespace: str,
    marker_id: int,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    colour: ColorRGBA,
    style: MarkerStyle,
) -> Marker:
    line = _marker(header, namespace, marker_id, Marker.LINE_STRIP, colour, style)
    line.scale.x = style.line_width
    # The line starts at the ego (the origin of the frame at t0), where the plan starts.
    points = zip(x.tolist(), y.tolist(), strict=True)
    line.points = [Point()] + [Point(x=px, y=py) for px, py in points]
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
