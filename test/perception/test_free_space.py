"""How far the lane is clear road, from the cameras: against the synthetic world's own cars,
pedestrians, cyclists and cones, rendered through the AR1 rig at the embedded model's image
size, and along the expert's drives."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from alpamayo_ros.core.planar import Pose2D
from alpamayo_ros.core.rig import CameraModel, CameraRig
from alpamayo_ros.core.stand_off import SEEN_LENGTH_M
from alpamayo_ros.perception.free_space import (
    FREE_SPACE_CAMERAS,
    MAX_FREE_X_M,
    STRAIGHT_REACH_M,
    FreeSpace,
    FreeSpaceDetector,
    FreeSpaceError,
)
from alpamayo_ros.perception.lane import LaneDetector
from alpamayo_ros.pipeline.inference import fit_image
from alpamayo_ros.world.agents import AGENT_SIZES, CONE_ORANGE, AgentKind, AgentState, Rgb
from alpamayo_ros.world.closed_loop import WORLD_STEP_NS, ClosedLoopWorld
from alpamayo_ros.world.renderer import Renderer, default_rig
from alpamayo_ros.world.road import Intersection, Road, Segment
from alpamayo_ros.world.scenarios import VEHICLE_COLOURS
from alpamayo_ros.world.state import WorldState

MODEL_SIZE = (128, 64)  # the embedded VLA's frames, which the VLA node's detector sees
RENDER_SIZE = (256, 128)
EGO_FRONT_M = 3.7  # base_link to the car's front
ROAD = Road((Segment(400.0),), lane_count=2)
POSE = Pose2D(100.0, ROAD.lane_center(0), 0.0)


def detector() -> FreeSpaceDetector:
    found = FreeSpaceDetector.for_rig(default_rig())
    assert found is not None
    return found


def lanes() -> LaneDetector:
    found = LaneDetector.for_rig(default_rig())
    assert found is not None
    return found


def frames(state: WorldState, pose: Pose2D = POSE) -> dict[str, np.ndarray]:
    images = Renderer().render_cameras(state, pose, *RENDER_SIZE, FREE_SPACE_CAMERAS)
    return {
        name: fit_image(image, MODEL_SIZE)
        for name, image in zip(FREE_SPACE_CAMERAS, images, strict=True)
    }


def standing(kind: AgentKind, rear_x: float, colour: tuple[int, int, int]) -> AgentState:
    """A `kind` standing in the car's lane, its rear `rear_x` m ahead of base_link."""
    length, width, height = AGENT_SIZES[kind]
    s = POSE.x + rear_x + length / 2.0
    return AgentState(
        "it", kind, s, ROAD.lane_center(0), 0.0, 0.0, 0.0, length, width, height, colour
    )


def looking(state: WorldState, pose: Pose2D = POSE) -> FreeSpace:
    """The clear road in the frames of `state`, along the lane found in them (as the VLA
    node looks)."""
    seen = frames(state, pose)
    return detector().detect(seen, lanes().detect(seen))


def clear_to(state: WorldState, pose: Pose2D = POSE) -> float:
    return looking(state, pose).clear_to_x


def all_clear(space: FreeSpace) -> bool:
    return space.clear_to_x == space.range_x


def test_an_empty_road_is_clear_as_far_as_the_cameras_look() -> None:
    """Lane markings, a stop line and a crosswalk's stripes are road. Along a lane found
    to 40 m and more, that is 40 m; where little of a lane shows (markings broken by a
    junction), STRAIGHT_REACH_M."""
    assert looking(WorldState(0.0, ROAD, ())) == FreeSpace(MAX_FREE_X_M, MAX_FREE_X_M)
    junction = Road((Segment(400.0),), lane_count=2, intersection=Intersection(POSE.x + 25.0))
    assert all_clear(looking(WorldState(0.0, junction, ())))
    crossing = dataclasses.replace(ROAD, crosswalk_s=POSE.x + 15.0)
    assert all_clear(looking(WorldState(0.0, crossing, ())))


def test_without_a_lane_a_white_car_near_the_end_of_the_straight_reach_is_found() -> None:
    """No lane (a junction's paint only): looked along 10 m straight ahead, a white car 7 m
    ahead, its tail lights cast beyond the reach, still ends the clear road."""
    junction = Road((Segment(400.0),), lane_count=2, intersection=Intersection(POSE.x + 30.0))
    car = standing(AgentKind.VEHICLE, 7.0, (240, 240, 240))
    seen = frames(WorldState(0.0, junction, (car,)))
    space = detector().detect(seen)
    assert space is not None and space.range_x == STRAIGHT_REACH_M
    assert 5.5 <= space.clear_to_x <= 7.0 + 1.0


@pytest.mark.parametrize("gap_m", [0.3, 3.0, 10.0, 25.0])
def test_a_stop_line_and_a_crosswalk_the_car_waits_at_are_road(gap_m: float) -> None:
    """The car's front `gap_m` short of a stop line (0.3 m: where it waits at a red), or
    of a crosswalk's stripes: close up they fill much of the wide camera's near rows, and
    the road is still clear as far as the cameras look (the light set, 3000444: with 3 m
    stretches counted pixel by pixel, the car stood at the line after the green)."""
    line_s = POSE.x + EGO_FRONT_M + gap_m
    junction = Intersection(line_s + 2.0 + 7.0)  # its stop line's far edge at line_s
    assert junction.stop_line_s == pytest.approx(line_s)
    crossing_road = Road((Segment(400.0),), lane_count=2, intersection=junction)
    assert all_clear(looking(WorldState(0.0, crossing_road, ())))
    zebra = dataclasses.replace(ROAD, crosswalk_s=line_s + 1.5)  # its stripes begin there
    assert all_clear(looking(WorldState(0.0, zebra, ())))


@pytest.mark.parametrize("colour", VEHICLE_COLOURS)
@pytest.mark.parametrize("rear_x", [5.0, 10.0, 20.0, 30.0, 38.0])
def test_a_car_of_any_colour_is_where_the_clear_road_ends(
    colour: tuple[int, int, int], rear_x: float
) -> None:
    """White and grey cars too, whose only dark or coloured pixels are their tail lights
    (cast onto the ground 15 m beyond them): never clear past the car's rear by more than
    the tele camera's pixel row there, and never more than 1.5 m short of it."""
    ends = clear_to(WorldState(0.0, ROAD, (standing(AgentKind.VEHICLE, rear_x, colour),)))
    assert -1.5 <= ends - rear_x <= (0.6 if rear_x <= 20.0 else 1.6)


@pytest.mark.parametrize("kind", [AgentKind.PEDESTRIAN, AgentKind.CYCLIST, AgentKind.CONE])
@pytest.mark.parametrize("rear_x", [5.0, 20.0, 38.0])
def test_a_pedestrian_a_cyclist_or_a_cone_in_the_lane_ends_it_too(
    kind: AgentKind, rear_x: float
) -> None:
    colour = CONE_ORANGE if kind is AgentKind.CONE else (40, 80, 200)
    ends = clear_to(WorldState(0.0, ROAD, (standing(kind, rear_x, colour),)))
    assert -2.5 <= ends - rear_x <= 1.6


def beside(kind: AgentKind, rear_x: float, near_edge_y: float, colour: Rgb) -> AgentState:
    """A `kind` standing right of the car's lane centre, its left edge at `near_edge_y`."""
    length, width, height = AGENT_SIZES[kind]
    s = POSE.x + rear_x + length / 2.0
    d = ROAD.lane_center(0) + near_edge_y - width / 2.0
    return AgentState("it", kind, s, d, 0.0, 0.0, 0.0, length, width, height, colour)


@pytest.mark.parametrize(
    ("kind", "colour"),
    [
        (AgentKind.CYCLIST, (200, 30, 30)),
        (AgentKind.CONE, CONE_ORANGE),
        (AgentKind.PEDESTRIAN, (30, 30, 200)),
        (AgentKind.VEHICLE, (240, 240, 240)),
    ],
)
@pytest.mark.parametrize("rear_x", [6.0, 15.0, 30.0])
@pytest.mark.parametrize("near_edge_y", [-0.7, -0.3])
def test_how_far_sideways_a_thing_reaches_is_measured(
    kind: AgentKind, colour: Rgb, rear_x: float, near_edge_y: float
) -> None:
    """Its near edge, for a plan that passes it, within 0.35 m short of where it is (a
    cyclist's bike, the part low enough to measure, is 0.2 m narrower than its rider, and
    a pixel of the wide camera 0.4 m wide at 25 m: the planner's passing gap, 0.5 m,
    allows for it) to 0.25 m past it."""
    space = looking(WorldState(0.0, ROAD, (beside(kind, rear_x, near_edge_y, colour),)))
    assert space.extent_y is not None
    right, left = space.extent_y
    assert right <= left
    assert -0.35 <= left - near_edge_y <= 0.25


def test_a_cone_line_closing_in_is_measured_over_the_stretch_a_pass_must_clear() -> None:
    """On a single lane with grass beyond its edges, cones taper in from the right edge
    (0.2, 0.5, then 0.8 m in, 4 m apart): where the clear road ends at one of them, the
    extent reaches as far in as the cones over the next 6 m (not only the first: the car
    would clip the next), and not to the grass on the left."""
    single = Road((Segment(400.0),), lane_count=1)
    pose = Pose2D(100.0, single.lane_center(0), 0.0)
    half = AGENT_SIZES[AgentKind.CONE][1] / 2.0
    inner = [0.2, 0.5] + [0.8] * 6
    cones = tuple(
        AgentState(
            f"cone_{i}",
            AgentKind.CONE,
            pose.x + 15.0 + 4.0 * i,
            single.right_edge + encroachment - half,
            0.0,
            0.0,
            0.0,
            *AGENT_SIZES[AgentKind.CONE],
            CONE_ORANGE,
        )
        for i, encroachment in enumerate(inner)
    )
    space = looking(WorldState(0.0, single, cones), pose)
    assert space.extent_y is not None and space.clear_to_x < 25.0
    edges = [
        single.right_edge + encroachment - single.lane_center(0)
        for i, encroachment in enumerate(inner)
        if space.clear_to_x - 0.5 <= 15.0 + 4.0 * i <= space.clear_to_x + SEEN_LENGTH_M
    ]
    assert max(edges) - 0.1 <= space.extent_y[1] <= max(edges) + 0.35 < 0.0


def test_the_corridor_follows_the_lane_the_cameras_show() -> None:
    """On a bend the car's straight-ahead corridor runs onto the grass 20-30 m on (looked
    along that far); along the lane it stays on the road, and a car standing in the lane
    at the bend is found. Without a lane it looks only STRAIGHT_REACH_M ahead."""
    bend = Road((Segment(100.0), Segment(90.0, 1.0 / 60.0), Segment(200.0)), lane_count=2)
    pose = Pose2D(90.0, bend.lane_center(0), 0.0)
    seen = frames(WorldState(0.0, bend, ()), pose)
    lane = lanes().detect(seen)
    assert lane is not None
    assert detector().detect(seen, straight_reach_m=MAX_FREE_X_M).clear_to_x < 30.0
    assert detector().detect(seen) == FreeSpace(STRAIGHT_REACH_M, STRAIGHT_REACH_M)
    along = detector().detect(seen, lane)
    assert all_clear(along) and along.range_x > 30.0
    s = 90.0 + 25.0 + AGENT_SIZES[AgentKind.VEHICLE][0] / 2.0
    car = AgentState(
        "car",
        AgentKind.VEHICLE,
        s,
        bend.lane_center(0),
        0.0,
        0.0,
        0.0,
        4.6,
        1.9,
        1.5,
        (240, 240, 240),
    )
    seen = frames(WorldState(0.0, bend, (car,)), pose)
    assert detector().detect(seen, lanes().detect(seen)).clear_to_x < 27.0


def test_along_expert_drives_it_never_shows_clear_road_past_a_car_in_the_lane() -> None:
    """Every 0.5 s of the expert's drives of stopped-vehicle, lead-vehicle and cut-in
    scenarios: where a vehicle is in the car's lane within range, the clear road ends
    before its rear plus a pixel row (the tele camera's 3 m at 30-40 m); where none is,
    the road shows clear as far as the cameras look in nine frames of ten."""
    past, free = [], []
    for seed, scenario_type in [
        *((s, "stopped_vehicle") for s in range(3000000, 3000004)),
        *((s, "lead_vehicle") for s in range(3000010, 3000012)),
        *((s, "cut_in") for s in range(3000020, 3000022)),
    ]:
        world = ClosedLoopWorld(seed, scenario_type)
        for step in range(world.duration_ns // WORLD_STEP_NS):
            world.step(WORLD_STEP_NS, None)
            if step % 5:
                continue
            state, ego = world.state, world.ego
            base_s, base_d = state.road.project(ego.x, ego.y)
            rears = [
                agent.s - agent.length / 2.0 - base_s
                for agent in state.agents
                # In the lane, along it (a car changing lanes enters the corridor further
                # on than its rear).
                if agent.kind is AgentKind.VEHICLE
                and abs(agent.d - base_d) < 1.5
                and abs(agent.heading) < 0.05
            ]
            ahead = [rear for rear in rears if EGO_FRONT_M < rear <= MAX_FREE_X_M]
            images = world.render(FREE_SPACE_CAMERAS, *RENDER_SIZE)
            seen = {
                n: fit_image(i, MODEL_SIZE) for n, i in zip(FREE_SPACE_CAMERAS, images, strict=True)
            }
            space = detector().detect(seen, lanes().detect(seen))
            if ahead and min(ahead) <= space.range_x:
                rear = min(ahead)
                past.append(space.clear_to_x - rear - (1.0 if rear <= 20.0 else 3.0))
            elif not any(-3.0 < rear <= MAX_FREE_X_M + 5.0 for rear in rears):
                free.append(all_clear(space))
    assert len(past) > 40 and len(free) > 40
    assert max(past) <= 0.0, past
    assert np.mean(free) >= 0.9


def test_clear_past_needs_the_margin_within_range() -> None:
    space = FreeSpace(25.0)
    assert space.clear_past(20.0, 3.0) and not space.clear_past(23.0, 3.0)
    assert FreeSpace(MAX_FREE_X_M).clear_past(MAX_FREE_X_M - 4.0, 3.0)
    assert not FreeSpace(MAX_FREE_X_M).clear_past(MAX_FREE_X_M - 2.0, 3.0)


def test_bad_cameras_and_frames_are_refused() -> None:
    upward = CameraModel("up", 30.0, np.array([1.8, 0.0, 1.5]), 0.0, -math.pi / 3.0, 0.0)
    with pytest.raises(FreeSpaceError, match="sees no ground"):
        FreeSpaceDetector({"up": upward}, ("up",))
    with pytest.raises(FreeSpaceError, match="no calibration"):
        FreeSpaceDetector({}, ("front_tele_30fov",))
    with pytest.raises(FreeSpaceError, match="at least one camera"):
        FreeSpaceDetector(default_rig().cameras, ())
    with pytest.raises(FreeSpaceError, match="RGB"):
        detector().detect({"front_tele_30fov": np.zeros((64, 128), np.uint8)})
    side_only = CameraRig({"cross_left_120fov": default_rig().cameras["cross_left_120fov"]})
    assert FreeSpaceDetector.for_rig(side_only) is None
    # None of its cameras' frames: nothing is known of the corridor.
    assert detector().detect({}) is None
