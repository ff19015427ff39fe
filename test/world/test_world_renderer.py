"""Renderer: causes are visible where they should be, nothing behind a camera leaks in."""

from __future__ import annotations

import time

import numpy as np
import pytest

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.planar import Pose2D
from alpamayo_ros.world.agents import Agent, AgentKind, LightColour, TrafficLight
from alpamayo_ros.world.renderer import Renderer, RenderError, render
from alpamayo_ros.world.road import Intersection, Road, Segment
from alpamayo_ros.world.scenarios import make_scenario
from alpamayo_ros.world.simulation import Simulation
from alpamayo_ros.world.state import WorldState

W, H = 256, 128
ORIGIN = Pose2D(0.0, 0.0, 0.0)
ROAD = Road((Segment(400.0),), lane_count=2)
FRONT = ("front_wide_120fov", "front_tele_30fov")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def world(*agents: Agent, road: Road = ROAD, lights: tuple = ()) -> WorldState:
    return WorldState(0.0, road, tuple(agent.initial_state() for agent in agents), lights)


def car(s: float, d: float, colour: tuple[int, int, int] = (35, 65, 165)) -> Agent:
    return Agent("vehicle_1", AgentKind.VEHICLE, s=s, d=d, speed=5.0, colour=colour)


def test_images_are_rgb_of_the_requested_size(renderer: Renderer) -> None:
    images = renderer.render_cameras(world(), ORIGIN, W, H)
    assert images.shape == (len(CAMERA_ORDER), H, W, 3) and images.dtype == np.uint8
    single = render(world(), ORIGIN, "cross_left_120fov", 64, 32)
    assert single.shape == (32, 64, 3)
    with pytest.raises(RenderError):
        renderer.render(world(), ORIGIN, "rear_camera", W, H)


def lamp_pixels(image: np.ndarray, colour: LightColour) -> int:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    if colour is LightColour.RED:
        mask = (r > 200) & (g < 90) & (b < 90)
    else:
        mask = (g > 200) & (r < 120) & (b < 150)
    return int(mask.sum())


@pytest.mark.parametrize("colour", [LightColour.RED, LightColour.GREEN])
def test_traffic_light_colour_is_visible_in_the_front_cameras(
    renderer: Renderer, colour: LightColour
) -> None:
    intersection = Intersection(s=40.0)
    road = Road((Segment(400.0),), lane_count=2, intersection=intersection)
    light = TrafficLight.cycle(
        "traffic_light_1",
        intersection.far_edge_s + 1.5,
        road.right_edge - 1.5,
        intersection.stop_line_s,
        colour,
        100.0,
    )
    state = world(road=road, lights=(light.state_at(0.0),))
    other = LightColour.GREEN if colour is LightColour.RED else LightColour.RED
    for name in FRONT:
        image = renderer.render(state, ORIGIN, name, W, H)
        assert lamp_pixels(image, colour) >= 2, name
        assert lamp_pixels(image, other) == 0, name


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=-1)


def test_vehicle_ahead_appears_in_the_front_cameras(renderer: Renderer) -> None:
    empty = renderer.render_cameras(world(), ORIGIN, W, H)
    ahead = renderer.render_cameras(world(car(30.0, 0.0)), ORIGIN, W, H)
    for name in FRONT:
        index = CAMERA_ORDER.index(name)
        mask = changed(empty[index], ahead[index])
        assert mask.sum() > 20, name
        columns = np.flatnonzero(mask.any(axis=0))
        assert abs(columns.mean() - W / 2) < W * 0.1  # straight ahead: centred
    # A vehicle alongside in the left lane is seen by the left cross camera, not the right.
    beside = renderer.render_cameras(world(car(4.0, 3.5)), ORIGIN, W, H)
    left, right = CAMERA_ORDER.index("cross_left_120fov"), CAMERA_ORDER.index("cross_right_120fov")
    assert changed(empty[left], beside[left]).sum() > 200
    assert changed(empty[right], beside[right]).sum() == 0


def test_nothing_behind_a_camera_leaks_into_it(renderer: Renderer) -> None:
    empty = renderer.render_cameras(world(), ORIGIN, W, H)
    behind = renderer.render_cameras(world(car(-12.0, 0.0), car(-6.0, 3.5)), ORIGIN, W, H)
    for name in FRONT:
        index = CAMERA_ORDER.index(name)
        np.testing.assert_array_equal(empty[index], behind[index])
    # A car level with the front cameras (it straddles their image plane) in the left lane
    # may only touch the left border of the wide camera, and nothing of the tele.
    level = renderer.render_cameras(world(car(1.8, 3.5)), ORIGIN, W, H)
    wide = changed(empty[CAMERA_ORDER.index("front_wide_120fov")], level[1])
    assert not wide[:, W // 4 :].any()
    np.testing.assert_array_equal(empty[CAMERA_ORDER.index("front_tele_30fov")], level[3])


def test_image_changes_as_the_ego_drives(renderer: Renderer) -> None:
    scenario = make_scenario(2, "free_road")
    trace = Simulation(scenario).run(30)
    frames = []
    for k in (25, 26):
        ego = trace.ego[k]
        frames.append(
            renderer.render(
                trace.states[k], Pose2D(ego.x, ego.y, ego.yaw), "front_wide_120fov", W, H
            )
        )
    assert changed(*frames).sum() > 50


def test_four_cameras_render_fast(renderer: Renderer) -> None:
    scenario = make_scenario(0, "traffic_light")
    trace = Simulation(scenario).run(scenario.sample_step)
    ego = trace.ego[-1]
    pose = Pose2D(ego.x, ego.y, ego.yaw)
    renderer.render_cameras(trace.states[-1], pose, W, H)
    start = time.perf_counter()
    for _ in range(10):
        renderer.render_cameras(trace.states[-1], pose, W, H)
    # About 3 ms on the 2-core development machine; generous for loaded CI runners.
    assert (time.perf_counter() - start) / 10 < 0.05
