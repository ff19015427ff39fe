"""RViz views drawn from real planner and reasoning messages."""

from __future__ import annotations

import numpy as np
import pytest
from alpamayo_ros_msgs.msg import (
    InferenceInfo,
    PlannerConditioning,
    Reasoning,
    TrajectoryCandidates,
)
from geometry_msgs.msg import Point
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from alpamayo_ros.core.kinematics import integrate_unicycle
from alpamayo_ros.core.planar import quaternion_to_yaw
from alpamayo_ros.core.trajectory_checks import Selection
from alpamayo_ros.perception.free_space import MAX_FREE_X_M, FreeSpace
from alpamayo_ros.perception.lane import LaneEstimate
from alpamayo_ros.perception.traffic_light import NO_LIGHT, LightSeen, TrafficLightView
from alpamayo_ros.ros import conversions
from alpamayo_ros.ros.conversions import (
    candidates_msg,
    duration_ns,
    quaternion_xyzw,
    stamp_ns,
    time_msg,
)
from alpamayo_ros.visualisation.markers import (
    AGENTS_NS,
    CANDIDATES_NS,
    CAUSE_NS,
    FEASIBLE,
    INFEASIBLE,
    LIGHT_COLOURS,
    LIGHTS_NS,
    REASONING_NS,
    ROAD_NS,
    SELECTED,
    SELECTED_NS,
    MarkerStyle,
    candidate_markers,
    clear_road_markers,
    ground_truth_markers,
    lane_markers,
    reasoning_markers,
    selected_path,
    stop_line_markers,
)
from alpamayo_ros.world.scenarios import make_scenario
from alpamayo_ros.world.simulation import Simulation

T0_NS = 1_700_000_000_123_000_000
HEADER = Header(stamp=time_msg(T0_NS), frame_id="base_link")


def candidates(selected: int, feasible: list[bool]) -> TrajectoryCandidates:
    k = len(feasible)
    rollouts = integrate_unicycle(np.zeros((k, 64)), np.linspace(-0.02, 0.02, k)[:, None], 10.0)
    selection = Selection(
        None if selected == TrajectoryCandidates.NONE_SELECTED else selected,
        np.array(feasible),
        tuple(() if f else ("too sharp",) for f in feasible),
    )
    msg = candidates_msg(rollouts, np.zeros(k), selection, HEADER, InferenceInfo(inference_id=7))
    return msg


def by_namespace(markers: list[Marker], namespace: str) -> list[Marker]:
    return [m for m in markers if m.ns == namespace]


def test_every_candidate_is_a_line_in_the_frame_and_at_the_time_of_its_input() -> None:
    msg = candidates(selected=1, feasible=[True, True, False])
    markers = candidate_markers(msg).markers
    lines = by_namespace(markers, CANDIDATES_NS)
    assert [m.id for m in lines] == [0, 1, 2]
    assert [m.color for m in lines] == [FEASIBLE, FEASIBLE, INFEASIBLE]
    for k, marker in enumerate(lines):
        assert marker.header == HEADER and marker.type == Marker.LINE_STRIP
        assert marker.points[0] == Point()  # from the ego at t0
        points = [(p.x, p.y, p.z) for p in marker.points[1:]]
        assert points == [(msg.x[i], msg.y[i], 0.0) for i in range(k * 64, (k + 1) * 64)]
        assert duration_ns(marker.lifetime) == 500_000_000
    (selected,) = by_namespace(markers, SELECTED_NS)
    assert selected.action == Marker.ADD and selected.color == SELECTED
    assert selected.points == lines[1].points and selected.scale.x > lines[1].scale.x


def test_no_selection_removes_the_selected_line() -> None:
    markers = candidate_markers(candidates(TrajectoryCandidates.NONE_SELECTED, [False])).markers
    (selected,) = by_namespace(markers, SELECTED_NS)
    assert selected.action == Marker.DELETE


def test_malformed_candidates_are_refused_with_the_reason() -> None:
    short_flags = candidates(0, [True, True])
    short_flags.feasible = [True]
    with pytest.raises(ValueError, match="2 candidates but 1 feasibility flags"):
        candidate_markers(short_flags)
    short_column = candidates(0, [True, True])
    short_column.y = short_column.y[:-1]
    with pytest.raises(ValueError, match="2 candidates of 64 points need 128 y values, got 127"):
        candidate_markers(short_column)
    bad_selection = candidates(0, [True, True])
    bad_selection.selected_index = 5
    with pytest.raises(ValueError, match="selected index 5 of 2 candidates"):
        candidate_markers(bad_selection)


def test_reasoning_text_and_its_cause_object() -> None:
    msg = Reasoning(header=HEADER, text="Stop for the pedestrian crossing ahead.")
    msg.longitudinal_decision = Reasoning.LON_DECISION_YIELD
    msg.lateral_decision = Reasoning.LAT_DECISION_LANE_KEEPING
    msg.cause_object_id = "pedestrian"
    msg.cause_object_position = Point(x=18.0, y=-2.0, z=0.9)
    markers = reasoning_markers(msg, MarkerStyle(lifetime_s=1.5)).markers
    (text,) = by_namespace(markers, REASONING_NS)
    assert text.type == Marker.TEXT_VIEW_FACING and text.header == HEADER
    assert text.text == "Stop for the pedestrian crossing ahead.\n[yield / lane_keeping]"
    assert duration_ns(text.lifetime) == 1_500_000_000
    body, label = by_namespace(markers, CAUSE_NS)
    assert (body.type, body.pose.position.x, body.pose.position.y) == (Marker.CYLINDER, 18.0, -2.0)
    assert body.pose.position.z == pytest.approx(body.scale.z / 2.0)  # standing on the ground
    assert label.text == "pedestrian" and label.pose.position.z > body.scale.z
    msg.cause, msg.cause_object_id = Reasoning.CAUSE_TRAFFIC_LIGHT, "traffic_light"
    _, light = by_namespace(reasoning_markers(msg).markers, CAUSE_NS)
    assert light.text == "traffic_light stop line"


def test_a_decision_of_a_newer_message_version_is_drawn_as_unknown() -> None:
    msg = Reasoning(header=HEADER, text="Yield.", longitudinal_decision=200, lateral_decision=9)
    texts = [m.text for m in reasoning_markers(msg).markers if m.type == Marker.TEXT_VIEW_FACING]
    assert any("unknown / unknown" in text for text in texts), texts


def test_reasoning_without_an_object_removes_the_cause_markers() -> None:
    markers = reasoning_markers(Reasoning(header=HEADER, text="Keep the lane.")).markers
    assert [(m.id, m.action) for m in by_namespace(markers, CAUSE_NS)] == [
        (0, Marker.DELETE),
        (1, Marker.DELETE),
    ]


def test_path_of_the_selected_candidate_is_stamped_when_each_pose_is_reached() -> None:
    msg = candidates(1, [True, True])
    path = selected_path(msg)
    assert path is not None and path.header == HEADER and len(path.poses) == 64
    assert [stamp_ns(p.header.stamp) - T0_NS for p in path.poses] == [
        round(t * 1e9) for t in msg.time_from_start
    ]
    last = path.poses[-1].pose
    assert (last.position.x, last.position.y) == (msg.x[2 * 64 - 1], msg.y[2 * 64 - 1])
    assert quaternion_to_yaw(*quaternion_xyzw(last.orientation)) == pytest.approx(
        msg.yaw[2 * 64 - 1]
    )
    assert selected_path(candidates(TrajectoryCandidates.NONE_SELECTED, [False])) is None


def test_ground_truth_draws_the_agents_lights_and_lanes_of_the_world() -> None:
    scenario = make_scenario(5, "traffic_light")
    state = Simulation(scenario).run(1).states[0]
    header = Header(frame_id="odom")
    markers = ground_truth_markers(state, scenario.ego_s, header).markers
    agents = [m for m in markers if m.ns == AGENTS_NS]
    lights = [m for m in markers if m.ns == LIGHTS_NS]
    roads = [m for m in markers if m.ns == ROAD_NS]
    assert len(agents) == len(state.agents) and len(lights) == len(state.lights) >= 1
    assert len(roads) == len(state.road.markings())
    for marker, agent in zip(agents, state.agents, strict=True):
        x, y, yaw = state.road.world_point(agent.s, agent.d)
        assert (marker.pose.position.x, marker.pose.position.y) == pytest.approx((x, y))
        assert (marker.scale.x, marker.scale.y) == pytest.approx((agent.length, agent.width))
        assert quaternion_to_yaw(*quaternion_xyzw(marker.pose.orientation)) == pytest.approx(
            yaw + agent.heading
        )
    assert lights[0].color == LIGHT_COLOURS[state.lights[0].colour]
    assert all(m.header.frame_id == "odom" for m in markers)
    dashed = [m for m in roads if m.type == Marker.LINE_LIST]
    assert all(len(m.points) % 2 == 0 for m in dashed)


def test_the_lane_the_cameras_show_is_its_centre_and_edges_and_goes_when_none_is() -> None:
    lane = LaneEstimate(np.array([5.0, 7.0, 9.0]), np.array([0.2, 0.3, 0.5]), 3.5)
    head = conversions.header(7_000_000_000, "base_link")
    msg = PlannerConditioning(header=head, lane=conversions.lane_msg(lane))
    centre, left, right = lane_markers(msg).markers
    assert {m.ns for m in (centre, left, right)} == {"lane"}
    assert (
        centre.header.frame_id == "base_link"
        and conversions.stamp_ns(centre.header.stamp) == 7_000_000_000
    )
    assert [(p.x, p.y) for p in centre.points] == [(5.0, 0.2), (7.0, 0.3), (9.0, 0.5)]
    assert [p.y for p in left.points] == pytest.approx([1.95, 2.05, 2.25])
    assert [p.y for p in right.points] == pytest.approx([-1.55, -1.45, -1.25])
    gone = lane_markers(PlannerConditioning(header=head)).markers
    assert [m.action for m in gone] == [Marker.DELETE] * 3


def test_the_stop_line_the_cameras_show_is_drawn_in_its_lights_colour() -> None:
    head = conversions.header(7_000_000_000, "base_link")
    red = TrafficLightView(LightSeen.RED, 11.5)
    msg = PlannerConditioning(header=head, traffic_light=conversions.traffic_light_msg(red))
    (line,) = stop_line_markers(msg).markers
    assert line.ns == "stop_line" and line.action == Marker.ADD
    assert [(p.x, p.y) for p in line.points] == [(11.5, -1.75), (11.5, 1.75)]
    assert (line.color.r, line.color.g) == pytest.approx((1.0, 0.1))
    none = PlannerConditioning(header=head, traffic_light=conversions.traffic_light_msg(NO_LIGHT))
    (deleted,) = stop_line_markers(none).markers
    assert deleted.ns == "stop_line" and deleted.action == Marker.DELETE


def test_where_the_clear_road_ends_is_drawn_across_the_corridor_on_the_lane() -> None:
    head = conversions.header(7_000_000_000, "base_link")
    stations = np.array([5.0, 7.0, 9.0, 30.0])
    lane = LaneEstimate(stations, np.full_like(stations, 0.5), 3.5)
    msg = PlannerConditioning(
        header=head,
        lane=conversions.lane_msg(lane),
        free_space=conversions.free_space_msg(FreeSpace(18.0)),
    )
    (line,) = clear_road_markers(msg).markers
    assert line.ns == "clear_road_end" and line.action == Marker.ADD
    assert [p.x for p in line.points] == [18.0, 18.0]
    assert [p.y for p in line.points] == pytest.approx([-0.95, 1.95])  # the corridor
    # Where how far sideways the thing reaches was measured: across it.
    measured = PlannerConditioning(
        header=head,
        lane=conversions.lane_msg(lane),
        free_space=conversions.free_space_msg(FreeSpace(18.0, MAX_FREE_X_M, (-1.8, -0.9))),
    )
    (across,) = clear_road_markers(measured).markers
    assert [(p.x, p.y) for p in across.points] == [(18.0, -1.8), (18.0, -0.9)]
    for space in (FreeSpace(MAX_FREE_X_M), None):  # nothing stands within range; not looked
        none = PlannerConditioning(header=head, free_space=conversions.free_space_msg(space))
        (deleted,) = clear_road_markers(none).markers
        assert deleted.ns == "clear_road_end" and deleted.action == Marker.DELETE
