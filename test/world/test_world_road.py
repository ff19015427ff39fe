"""Road geometry: (s, d) <-> world round trips, lanes, markings and the intersection rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpamayo_ros.world.road import Intersection, Road, RoadError, Segment

CURVY = Road(
    (Segment(50.0), Segment(60.0, 0.02), Segment(40.0, -0.015), Segment(200.0)), lane_count=3
)


def test_road_and_world_coordinates_round_trip() -> None:
    rng = np.random.default_rng(0)
    s = rng.uniform(-40.0, 450.0, 300)  # before the start and beyond the end included
    d = rng.uniform(-3.0, 9.0, 300)
    x, y, _ = CURVY.to_world(s, d)
    s_back, d_back = CURVY.to_road(x, y)
    np.testing.assert_allclose(s_back, s, atol=1e-9)
    np.testing.assert_allclose(d_back, d, atol=1e-9)


def test_scalar_and_vectorised_poses_agree() -> None:
    for s in (-10.0, 0.0, 25.0, 70.0, 111.0, 149.9, 400.0):
        assert CURVY.pose(s) == pytest.approx(tuple(v.item() for v in CURVY.poses(np.array(s))))


def test_arcs_have_their_curvature() -> None:
    # Heading changes by curvature * length along an arc; d is positive to the left.
    assert CURVY.pose(110.0)[2] == pytest.approx(0.02 * 60.0)
    assert CURVY.pose(150.0)[2] == pytest.approx(0.02 * 60.0 - 0.015 * 40.0)
    assert CURVY.curvature_at(80.0) == 0.02 and CURVY.curvature_at(10.0) == 0.0
    x, y, yaw = CURVY.world_point(20.0, 3.5)
    assert (x, y, yaw) == pytest.approx((20.0, 3.5, 0.0))
    assert CURVY.max_abs_curvature(0.0, 200.0) == 0.02


def test_lanes_and_markings() -> None:
    road = Road((Segment(100.0),), lane_count=3)
    assert [road.lane_center(i) for i in range(3)] == [0.0, 3.5, 7.0]
    assert (road.right_edge, road.left_edge) == (-1.75, 8.75)
    assert road.lane_at(3.0) == 1 and road.lane_at(-2.0) is None
    assert [(m.d, m.dashed) for m in road.markings()] == [
        (-1.75, False),
        (1.75, True),
        (5.25, True),
        (8.75, False),
    ]


def test_intersection_needs_a_straight_road() -> None:
    intersection = Intersection(s=80.0)
    road = Road((Segment(300.0),), intersection=intersection)
    assert intersection.stop_line_s == pytest.approx(80.0 - 7.0 - 2.0)
    assert road.intersection is intersection
    with pytest.raises(RoadError):
        Road((Segment(60.0), Segment(50.0, 0.01), Segment(200.0)), intersection=intersection)


@pytest.mark.parametrize(
    "segments, lanes",
    [((), 1), ((Segment(10.0),), 0), ((Segment(10.0),), 4)],
)
def test_invalid_roads_are_rejected(segments: tuple[Segment, ...], lanes: int) -> None:
    with pytest.raises(RoadError):
        Road(segments, lane_count=lanes)


@pytest.mark.parametrize(
    "length, curvature", [(0.0, 0.0), (10.0, 0.06), (200.0, 0.02)]
)  # the last turns more than 90 degrees
def test_invalid_segments_are_rejected(length: float, curvature: float) -> None:
    with pytest.raises(RoadError):
        Segment(length, curvature)


def test_path_continues_straight_beyond_its_end() -> None:
    road = Road((Segment(50.0, 0.02),))
    x_end, y_end, yaw_end = road.pose(50.0)
    x, y, yaw = road.pose(70.0)
    assert yaw == pytest.approx(yaw_end)
    assert (x, y) == pytest.approx((x_end + 20.0 * math.cos(yaw), y_end + 20.0 * math.sin(yaw)))
