"""The light ahead from the cameras: against the synthetic world's own lights and stop
lines, rendered through the AR1 rig at the embedded model's image size, and on
hand-placed pixels and ground points."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from alpamayo_ros.core.planar import Pose2D
from alpamayo_ros.core.rig import CameraModel, CameraRig
from alpamayo_ros.perception.traffic_light import (
    LIGHT_CAMERAS,
    LightSeen,
    TrafficLightDetector,
    TrafficLightError,
    TrafficLightView,
    lamp_colours,
    nearest_line,
    sky_mask,
)
from alpamayo_ros.pipeline.inference import fit_image
from alpamayo_ros.world.agents import AgentKind, AgentState, LightColour, LightState
from alpamayo_ros.world.closed_loop import WORLD_STEP_NS, ClosedLoopWorld
from alpamayo_ros.world.renderer import Renderer, default_rig
from alpamayo_ros.world.road import Intersection, Road, Segment
from alpamayo_ros.world.state import WorldState

MODEL_SIZE = (128, 64)  # the embedded VLA's frames, which the VLA node's detector sees
RENDER_SIZE = (256, 128)
EGO_FRONT_M = 3.7  # base_link to the car's front


def detector() -> TrafficLightDetector:
    found = TrafficLightDetector.for_rig(default_rig())
    assert found is not None
    return found


def frames(state: WorldState, pose: Pose2D) -> dict[str, np.ndarray]:
    images = Renderer().render_cameras(state, pose, *RENDER_SIZE, LIGHT_CAMERAS)
    return {
        name: fit_image(image, MODEL_SIZE)
        for name, image in zip(LIGHT_CAMERAS, images, strict=True)
    }


def at_gap(state: WorldState, gap_m: float) -> tuple[Pose2D, float]:
    """The car in the first lane, its front `gap_m` short of the light's stop line, and
    where the line's paint begins in base_link (it is 0.5 m deep)."""
    line_s = state.lights[0].stop_line_s
    base_s = line_s - EGO_FRONT_M - gap_m
    x, y, yaw = state.road.to_world(np.array([base_s]), np.array([state.road.lane_center(0)]))
    return Pose2D(float(x[0]), float(y[0]), float(yaw[0])), line_s - 0.5 - base_s


def junction(colour: LightColour, lanes: int = 2) -> WorldState:
    """A straight road with an intersection at 200 m, its stop line at 191 m, and the light
    on the far corner, as the world's traffic-light scenarios place it."""
    intersection = Intersection(200.0)
    road = Road((Segment(500.0),), lane_count=lanes, intersection=intersection)
    light = LightState(
        "light",
        intersection.far_edge_s + 1.5,
        road.right_edge - 1.5,
        intersection.stop_line_s,
        colour,
    )
    return WorldState(0.0, road, (), (light,))


@pytest.mark.parametrize("colour", list(LightColour))
@pytest.mark.parametrize("gap_m", [0.3, 8.0, 25.0, 60.0, 120.0])
def test_the_light_and_its_stop_line_are_seen_from_the_line_to_120_m(
    colour: LightColour, gap_m: float
) -> None:
    """From the stop line (the car's front 0.3 m short of it, where the expert waits) to
    120 m off: the colour of the lit lamp; for a red or yellow light the stop line within
    0.8 m of where it begins where that is 40 m off or nearer (base_link), and none looked
    for at a green."""
    state = junction(colour)
    pose, line_x = at_gap(state, gap_m)
    view = detector().detect(frames(state, pose))
    assert view.colour.name == colour.name
    if colour is LightColour.GREEN or line_x > 40.0:
        assert view.stop_line_x is None
    else:
        assert view.stop_line_x == pytest.approx(line_x, abs=0.8)


def test_full_size_frames_are_looked_at_as_the_models_are() -> None:
    """A red 60 m off in frames of 1024x512: red, as at 128x64."""
    state = junction(LightColour.RED)
    pose, _ = at_gap(state, 60.0)
    images = Renderer().render_cameras(state, pose, 1024, 512, LIGHT_CAMERAS)
    view = detector().detect(dict(zip(LIGHT_CAMERAS, images, strict=True)))
    assert view.colour is LightSeen.RED


def test_no_stop_line_is_reported_beyond_a_car_in_the_lane() -> None:
    """A white car stands in the lane 8 m ahead of the car's front, the line 25 m on: its
    bright body, cast onto the ground, lands beyond it like a line, and the line itself is
    behind it. No line is reported, so the planner keeps the reasoning's place; with the
    car gone, the line is found."""
    clear = junction(LightColour.RED)
    pose, line_x = at_gap(clear, 25.0)
    base_s, _ = clear.road.project(pose.x, pose.y)
    car = AgentState(
        "car",
        AgentKind.VEHICLE,
        base_s + EGO_FRONT_M + 8.0 + 2.3,
        clear.road.lane_center(0),
        0.0,
        0.0,
        0.0,
        4.6,
        1.9,
        1.5,
        (240, 240, 240),
    )
    blocked = dataclasses.replace(clear, agents=(car,))
    assert detector().detect(frames(blocked, pose)).stop_line_x is None
    assert detector().detect(frames(clear, pose)).stop_line_x == pytest.approx(line_x, abs=0.6)


def test_along_expert_drives_the_colour_is_always_right_and_the_line_within_a_metre() -> None:
    """Every 0.3 s of the expert's drives of six traffic-light scenarios (red, red
    to green, green, yellow): the colour the cameras show is the light's whenever its line
    is ahead; where it is red or yellow and its line 5-30 m ahead, the stop line is found
    within 1 m of where it begins in nine frames of ten; and in six scenarios of other
    kinds, no light is seen."""
    errors, checked = [], 0
    for seed, scenario_type in [
        *((s, "traffic_light") for s in range(3000400, 3000406)),
        *((s, None) for s in range(3000300, 3000306)),
    ]:
        world = ClosedLoopWorld(seed, scenario_type)
        for step in range(world.duration_ns // WORLD_STEP_NS):
            world.step(WORLD_STEP_NS, None)
            if step % 3:
                continue
            images = world.render(LIGHT_CAMERAS, *RENDER_SIZE)
            view = detector().detect(
                {n: fit_image(i, MODEL_SIZE) for n, i in zip(LIGHT_CAMERAS, images, strict=True)}
            )
            state = world.state
            if not state.lights:
                assert view.colour is LightSeen.NONE, (seed, step)
                continue
            light = state.lights[0]
            base_s, _ = state.road.project(world.ego.x, world.ego.y)
            line_x = light.stop_line_s - 0.5 - base_s  # where the 0.5 m deep line begins
            if line_x <= EGO_FRONT_M:
                continue
            checked += 1
            assert view.colour.name == light.colour.name, (seed, step)
            if light.colour is not LightColour.GREEN and 5.0 <= line_x <= 30.0:
                errors.append(math.inf if view.stop_line_x is None else view.stop_line_x - line_x)
    assert checked > 150 and len(errors) > 30
    assert np.mean(np.abs(errors) < 1.0) >= 0.9, errors


def test_only_bright_saturated_lamps_above_the_horizon_count() -> None:
    """A red disc in the sky is a red light; the same red below the horizon (a brake light)
    is not, nor an unlit lamp, the pale sky or an orange cone in the sky."""
    camera = default_rig().cameras["front_wide_120fov"]
    sky = sky_mask(camera, *MODEL_SIZE)
    assert sky[:20].all() and not sky[33:].any()  # the horizon is the centre row
    image = np.full((64, 128, 3), (190, 210, 235), np.uint8)  # the sky's colour
    assert lamp_colours(image, sky) == (0, 0, 0)
    for colour, row, expected in [
        ((255, 35, 25), 20, (1, 0, 0)),
        ((255, 200, 0), 20, (0, 1, 0)),
        ((40, 255, 90), 20, (0, 0, 1)),
        ((255, 35, 25), 40, (0, 0, 0)),  # below the horizon
        ((70, 25, 25), 20, (0, 0, 0)),  # unlit
        ((255, 110, 0), 20, (0, 0, 0)),  # a cone's orange
    ]:
        painted = image.copy()
        painted[row, 60] = colour
        assert lamp_colours(painted, sky) == expected, colour
    # Red wins over green: the most restrictive colour any camera shows, in two pixels at
    # least (one could be anything).
    both = image.copy()
    both[20, 10:12], both[20, 100] = (40, 255, 90), (255, 35, 25)
    assert detector().colour({"front_wide_120fov": both}) is LightSeen.GREEN
    both[21, 100] = (255, 35, 25)
    assert detector().colour({"front_wide_120fov": both}) is LightSeen.RED


def test_the_stop_line_is_a_band_that_fills_the_corridor_across() -> None:
    """Points of a 0.5 m line across the road 20 m on: found where it begins. A crosswalk's
    stripes (0.5 m wide, 0.5 m apart) or the lane's edge lines running along are not."""
    across = np.stack(np.meshgrid(np.arange(20.0, 20.5, 0.1), np.arange(-1.75, 1.75, 0.1)), -1)
    assert nearest_line(across.reshape(-1, 2)) == pytest.approx(20.25, abs=0.3)
    stripes_y = np.concatenate([np.arange(s, s + 0.5, 0.1) for s in np.arange(-1.75, 1.75, 1.0)])
    stripes = np.stack(np.meshgrid(np.arange(20.0, 23.0, 0.25), stripes_y), -1)
    assert nearest_line(stripes.reshape(-1, 2)) is None
    edges = np.concatenate(
        [np.stack([np.arange(3.0, 40.0, 0.25), np.full(148, side)], -1) for side in (-1.75, 1.75)]
    )
    assert nearest_line(edges) is None
    # Beyond the reach it is trusted to, and with too few points, no line.
    assert nearest_line(across.reshape(-1, 2) + np.array([30.0, 0.0])) is None
    assert nearest_line(np.zeros((0, 2))) is None


def test_no_lit_lamp_no_light_and_no_line_looked_for() -> None:
    grey = np.full((64, 128, 3), 90, np.uint8)
    assert detector().detect({name: grey for name in LIGHT_CAMERAS}) == TrafficLightView()
    # The cameras it does not look at are ignored, and it goes on without its own.
    assert detector().detect({"cross_left_120fov": grey}).colour is LightSeen.NONE


def test_bad_cameras_and_frames_are_refused() -> None:
    downward = CameraModel("down", 30.0, np.array([1.8, 0.0, 1.5]), 0.0, math.pi / 2.2, 0.0)
    with pytest.raises(TrafficLightError, match="nothing above the horizon"):
        TrafficLightDetector({"down": downward}, ("down",))
    with pytest.raises(TrafficLightError, match="no calibration"):
        TrafficLightDetector({}, ("front_tele_30fov",))
    with pytest.raises(TrafficLightError, match="at least one camera"):
        TrafficLightDetector(default_rig().cameras, ())
    with pytest.raises(TrafficLightError, match="RGB"):
        detector().detect({"front_tele_30fov": np.zeros((64, 128), np.uint8)})
    side_only = CameraRig({"cross_left_120fov": default_rig().cameras["cross_left_120fov"]})
    assert TrafficLightDetector.for_rig(side_only) is None
