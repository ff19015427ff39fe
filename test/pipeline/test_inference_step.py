"""The inference step hands the backend the route text with each aligned input, while it
is recent, and finds the lane and the light ahead in the newest frames."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.backends.constant_velocity import ConstantVelocityBackend
from alpamayo_ros.core.contract import CAMERA_ORDER, HISTORY_PERIOD_NS, NS_PER_S
from alpamayo_ros.core.model_io import VlaInput
from alpamayo_ros.core.planar import Pose2D, yaw_to_quaternion
from alpamayo_ros.perception.detectors import Detectors
from alpamayo_ros.perception.free_space import FreeSpaceDetector, FreeSpaceError
from alpamayo_ros.perception.lane import LaneDetector
from alpamayo_ros.perception.traffic_light import (
    NO_LIGHT,
    LightSeen,
    TrafficLightDetector,
    TrafficLightError,
)
from alpamayo_ros.pipeline.backend import Decided
from alpamayo_ros.pipeline.inference import InferenceStep
from alpamayo_ros.world.agents import AgentKind, AgentState, LightColour, LightState
from alpamayo_ros.world.renderer import Renderer, default_rig
from alpamayo_ros.world.road import Intersection, Road, Segment
from alpamayo_ros.world.state import WorldState


class RecordingBackend(ConstantVelocityBackend):
    """The baseline, keeping what it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[VlaInput] = []

    def decide(self, inputs: VlaInput) -> Decided:
        self.inputs.append(inputs)
        return super().decide(inputs)


def feed(
    step: InferenceStep,
    from_ns: int,
    until_ns: int,
    frames: dict[str, np.ndarray] | None = None,
) -> None:
    """A car at 10 m/s (from x = 0 at 1 s) with 10 Hz cameras and 50 Hz odometry; the
    cameras see black, or `frames` at `until_ns`."""
    image = np.zeros((128, 256, 3), np.uint8)
    for stamp_ns in range(from_ns, until_ns + 1, 20_000_000):
        x = 10.0 * (stamp_ns - NS_PER_S) / NS_PER_S
        step.add_odometry(stamp_ns, np.array([x, 0.0, 0.0]), yaw_to_quaternion(0.0))
        if stamp_ns % HISTORY_PERIOD_NS == 0:
            for camera in CAMERA_ORDER:
                last = frames is not None and stamp_ns == until_ns
                step.add_frame(camera, stamp_ns, frames[camera] if last else image)


def test_the_route_goes_with_each_input_until_it_is_too_old() -> None:
    backend = RecordingBackend()
    step = InferenceStep(backend, CAMERA_ORDER, navigation_max_age_s=1.0)
    feed(step, NS_PER_S, 3 * NS_PER_S)
    assert step.run() is not None
    step.set_navigation("Turn left onto Main St in 40 m", 3 * NS_PER_S)
    fed_ns = 3 * NS_PER_S
    for end_ns in (3_100_000_000, 4_000_000_000, 4_100_000_000):
        feed(step, fed_ns + 20_000_000, end_ns)
        fed_ns = end_ns
        assert step.run() is not None
    assert [inputs.navigation for inputs in backend.inputs] == [
        "",
        "Turn left onto Main St in 40 m",
        "Turn left onto Main St in 40 m",  # 1.0 s old
        "",  # 1.1 s: dropped
    ]


def test_the_lane_is_found_in_the_newest_frames_of_the_lane_cameras() -> None:
    """Black frames, then at t0 the cameras see a straight two-lane road with the car 0.5 m
    left of its lane's centre: the inference carries that lane (the detector looks at
    the frames of t0, not the older ones the model also sees); without a detector, none."""
    road = Road((Segment(400.0),), lane_count=2)
    pose = Pose2D(100.0, 0.5, 0.0)
    images = Renderer().render_cameras(WorldState(0.0, road, ()), pose, 256, 128)
    frames = dict(zip(CAMERA_ORDER, images, strict=True))
    looking = InferenceStep(
        RecordingBackend(),
        CAMERA_ORDER,
        detectors=Detectors(lane=LaneDetector.for_rig(default_rig())),
    )
    feed(looking, NS_PER_S, 3 * NS_PER_S, frames)
    inference = looking.run()
    assert inference is not None and inference.lane is not None
    assert inference.lane.centre(np.array([10.0, 30.0])) == pytest.approx([-0.5, -0.5], abs=0.1)
    assert "lane" in inference.stage_ms
    blind = InferenceStep(RecordingBackend(), CAMERA_ORDER)
    feed(blind, NS_PER_S, 3 * NS_PER_S, frames)
    inference = blind.run()
    assert inference is not None and inference.lane is None


def test_the_light_and_its_stop_line_are_found_in_the_newest_frames() -> None:
    """At t0 the cameras see a red light, its stop line 12 m ahead of base_link: the
    inference carries both; without a detector, none."""
    intersection = Intersection(150.0)
    road = Road((Segment(400.0),), lane_count=2, intersection=intersection)
    light = LightState(
        "light",
        intersection.far_edge_s + 1.5,
        road.right_edge - 1.5,
        intersection.stop_line_s,
        LightColour.RED,
    )
    pose = Pose2D(intersection.stop_line_s - 12.0, road.lane_center(0), 0.0)
    images = Renderer().render_cameras(WorldState(0.0, road, (), (light,)), pose, 256, 128)
    frames = dict(zip(CAMERA_ORDER, images, strict=True))
    looking = InferenceStep(
        RecordingBackend(),
        CAMERA_ORDER,
        detectors=Detectors(light=TrafficLightDetector.for_rig(default_rig())),
    )
    feed(looking, NS_PER_S, 3 * NS_PER_S, frames)
    inference = looking.run()
    assert inference is not None and inference.light.colour is LightSeen.RED
    assert inference.light.stop_line_x == pytest.approx(12.0 - 0.5, abs=1.0)
    assert "traffic light" in inference.stage_ms
    blind = InferenceStep(RecordingBackend(), CAMERA_ORDER)
    feed(blind, NS_PER_S, 3 * NS_PER_S, frames)
    inference = blind.run()
    assert inference is not None and inference.light is NO_LIGHT


def test_the_clear_road_is_found_along_the_lane_in_the_newest_frames() -> None:
    """At t0 the cameras see a car standing in the lane, its rear 20 m ahead of base_link,
    on a road that bends left 15 m on: the inference carries the clear road up to the car,
    looked along the lane found in the same frames; without a detector, none."""
    road = Road((Segment(115.0), Segment(60.0, 1.0 / 80.0), Segment(200.0)), lane_count=2)
    pose = Pose2D(100.0, road.lane_center(0), 0.0)
    car = AgentState(
        "car",
        AgentKind.VEHICLE,
        122.3,
        road.lane_center(0),
        0.0,
        0.0,
        0.0,
        4.6,
        1.9,
        1.5,
        (240, 240, 240),
    )
    images = Renderer().render_cameras(WorldState(0.0, road, (car,)), pose, 256, 128)
    frames = dict(zip(CAMERA_ORDER, images, strict=True))
    looking = InferenceStep(
        RecordingBackend(), CAMERA_ORDER, detectors=Detectors.for_rig(default_rig())
    )
    feed(looking, NS_PER_S, 3 * NS_PER_S, frames)
    inference = looking.run()
    assert inference is not None and inference.free_space is not None
    assert inference.lane is not None
    assert inference.free_space.clear_to_x == pytest.approx(20.0, abs=1.5)
    assert "free space" in inference.stage_ms
    blind = InferenceStep(RecordingBackend(), CAMERA_ORDER)
    feed(blind, NS_PER_S, 3 * NS_PER_S, frames)
    inference = blind.run()
    assert inference is not None and inference.free_space is None


class BrokenDetector(LaneDetector):
    """Stands in for a detector that cannot read a frame."""

    def detect(self, images: dict[str, np.ndarray]) -> None:  # type: ignore[override]
        raise ValueError("expected an RGB image [H, W, 3], got shape (64, 128)")


class BrokenLightDetector(TrafficLightDetector):
    """Stands in for a light detector that cannot read a frame."""

    def detect(self, images: dict[str, np.ndarray]) -> None:  # type: ignore[override]
        raise TrafficLightError("expected an RGB image [H, W, 3], got shape (64, 128)")


class BrokenFreeSpaceDetector(FreeSpaceDetector):
    """Stands in for a free-space detector that cannot read a frame."""

    def detect(self, images: dict[str, np.ndarray], lane: object = None) -> None:  # type: ignore[override]
        raise FreeSpaceError("expected an RGB image [H, W, 3], got shape (64, 128)")


def test_failing_detectors_leave_the_decision_and_say_why() -> None:
    rig = default_rig()
    step = InferenceStep(
        RecordingBackend(),
        CAMERA_ORDER,
        detectors=Detectors(
            BrokenDetector(rig.cameras, {"front_tele_30fov": (12.0, 70.0)}),
            BrokenLightDetector(rig.cameras, ("front_tele_30fov",)),
            BrokenFreeSpaceDetector(rig.cameras, ("front_tele_30fov",)),
        ),
    )
    feed(step, NS_PER_S, 3 * NS_PER_S)
    inference = step.run()
    assert inference is not None and inference.lane is None and inference.light is NO_LIGHT
    assert inference.lane_error.startswith("lane detection failed: expected an RGB image")
    assert inference.light_error.startswith("traffic light detection failed: expected an RGB")
    assert inference.free_space is None
    assert inference.free_space_error.startswith("free space detection failed: expected an RGB")
    assert inference.output.decision is not None
