"""ROS message <-> numpy conversions, including the bad inputs cameras really send."""

from __future__ import annotations

import math

import numpy as np
import pytest
from alpamayo_ros_msgs.msg import (
    FreeSpace as FreeSpaceMsg,
)
from alpamayo_ros_msgs.msg import (
    Lane,
    MetaAction,
    PlannerConditioning,
    Reasoning,
    TrafficLight,
    Trajectory,
    TrajectoryCandidates,
)
from rclpy.serialization import deserialize_message, serialize_message
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import Image

from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.kinematics import integrate_unicycle
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.core.model_io import CausalDecision
from alpamayo_ros.core.trajectory_checks import Selection
from alpamayo_ros.perception.free_space import FreeSpace
from alpamayo_ros.perception.lane import LaneEstimate
from alpamayo_ros.perception.traffic_light import NO_LIGHT, LightSeen, TrafficLightView
from alpamayo_ros.ros import conversions


def image(encoding: str, pixels: np.ndarray, step_padding: int = 0) -> Image:
    height, width = pixels.shape[:2]
    row = pixels.reshape(height, -1)
    padded = np.concatenate([row, np.zeros((height, step_padding), np.uint8)], axis=1)
    return Image(
        height=height,
        width=width,
        encoding=encoding,
        step=padded.shape[1],
        data=padded.tobytes(),
    )


RGB = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[..., ::-1]),
        ("rgba8", np.concatenate([RGB, np.full((2, 3, 1), 255, np.uint8)], axis=-1)),
        ("bgra8", np.concatenate([RGB[..., ::-1], np.full((2, 3, 1), 9, np.uint8)], axis=-1)),
    ],
)
def test_colour_encodings_become_rgb(encoding: str, pixels: np.ndarray) -> None:
    np.testing.assert_array_equal(conversions.image_to_rgb(image(encoding, pixels)), RGB)


def test_mono_and_padded_rows() -> None:
    gray = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    rgb = conversions.image_to_rgb(image("mono8", gray, step_padding=5))
    np.testing.assert_array_equal(rgb, np.repeat(gray[..., None], 3, axis=-1))


COLOUR = (200, 100, 50)  # a uniform RGB colour, mosaicked or YUV-encoded below


def bayer(pattern: str, height: int = 8, width: int = 8) -> np.ndarray:
    """A uniform COLOUR as a Bayer mosaic whose first two rows read `pattern` ("rggb")."""
    value = dict(zip("rgb", COLOUR, strict=True))
    mosaic = np.zeros((height, width), np.uint8)
    for k, channel in enumerate(pattern):
        mosaic[k // 2 :: 2, k % 2 :: 2] = value[channel]
    return mosaic


def yuv422(order: str, height: int = 8, width: int = 8) -> np.ndarray:
    """A uniform COLOUR as 4:2:2 bytes [H, W, 2] in `order` ("uyvy" or "yuyv"): BT.601
    video range, as cameras send it."""
    r, g, b = COLOUR
    components = {
        "y": 16 + 0.257 * r + 0.504 * g + 0.098 * b,
        "u": 128 - 0.148 * r - 0.291 * g + 0.439 * b,
        "v": 128 + 0.439 * r - 0.368 * g - 0.071 * b,
    }
    pair = np.array([round(components[c]) for c in order], np.uint8)  # 2 pixels, 4 bytes
    return np.tile(pair, (height, width // 2)).reshape(height, width, 2)


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("bayer_rggb8", bayer("rggb")),
        ("bayer_bggr8", bayer("bggr")),
        ("bayer_gbrg8", bayer("gbrg")),
        ("bayer_grbg8", bayer("grbg")),
        ("yuv422", yuv422("uyvy")),
        ("uyvy", yuv422("uyvy")),
        ("yuv422_yuy2", yuv422("yuyv")),
        ("yuyv", yuv422("yuyv")),
    ],
)
def test_camera_raw_encodings_become_the_colour_they_encode(
    encoding: str, pixels: np.ndarray
) -> None:
    rgb = conversions.image_to_rgb(image(encoding, pixels))
    assert rgb.shape == (*pixels.shape[:2], 3)
    inner = rgb[2:-2, 2:-2].reshape(-1, 3).astype(int)  # demosaicking borders aside
    assert np.abs(inner - np.array(COLOUR)).max() <= 3, (encoding, inner[0])


def test_compressed_images_round_trip_and_garbage_is_refused() -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 0], rgb[:, 24:, 2] = 220, 180  # red, and a magenta right half
    msg = conversions.compressed_image_msg(rgb, 7_000_000_001, "front_optical")
    assert msg.format == "rgb8; jpeg compressed bgr8" and msg.header.frame_id == "front_optical"
    decoded = conversions.compressed_to_rgb(msg)
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - rgb).mean() < 3.0
    msg.data = b"\xff\xd8 not a jpeg"
    with pytest.raises(conversions.ImageError, match="cannot decode 13 bytes"):
        conversions.compressed_to_rgb(msg)


@pytest.mark.parametrize(
    ("msg", "message"),
    [
        (image("16UC1", RGB), "unsupported encoding '16UC1'"),
        (Image(height=2, width=3, encoding="rgb8", step=9, data=b"\x00" * 5), "data bytes"),
        (Image(height=2, width=3, encoding="rgb8", step=4, data=b"\x00" * 8), "inconsistent size"),
        (Image(height=0, width=0, encoding="rgb8", step=0), "inconsistent size"),
    ],
)
def test_bad_images_raise_a_clear_error(msg: Image, message: str) -> None:
    with pytest.raises(conversions.ImageError, match=message):
        conversions.image_to_rgb(msg)


def test_image_message_round_trip() -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    msg = conversions.rgb_image_msg(pixels, 1_500_000_001, "cam_optical")
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1, 500_000_001)
    np.testing.assert_array_equal(conversions.image_to_rgb(msg), pixels)


def test_stamps_are_exact_integers() -> None:
    for stamp in (0, 1, 999_999_999, 1_700_000_000_123_456_789):
        assert conversions.stamp_ns(conversions.time_msg(stamp)) == stamp
        assert conversions.duration_ns(conversions.duration_msg(stamp)) == stamp


def test_a_decision_round_trips_through_a_serialised_reasoning_message() -> None:
    """The planner reads the decision back from the conditioning's Reasoning."""
    decision = CausalDecision(
        "Yield to the pedestrian crossing the road ahead.",
        LongitudinalDecision.YIELD,
        LateralDecision.LANE_KEEPING,
        Cause.PEDESTRIAN,
        "pedestrian",
        (18.5, 2.25, 0.875),
    )
    head = conversions.header(7_000_000_000, "base_link")
    info = conversions.inference_info_msg(3, "embedded_vla", "0.3.0", [7_000_000_000], 0)
    msg = conversions.reasoning_msg(decision, head, info)
    wire = deserialize_message(serialize_message(msg), Reasoning)
    assert conversions.causal_decision(wire) == decision
    # Values this version does not know read as a decision nothing acts on (a cause as
    # something named: no set speed is gained for it).
    wire.longitudinal_decision, wire.lateral_decision, wire.cause = 200, 201, 202
    unknown = conversions.causal_decision(wire)
    assert (unknown.longitudinal_decision, unknown.lateral_decision, unknown.cause) == (
        LongitudinalDecision.UNKNOWN,
        LateralDecision.UNKNOWN,
        Cause.OTHER,
    )
    # And a meta-action's: the planner plans on it as on one the model could not label.
    meta = MetaAction(longitudinal=200, lateral=201)
    estimate = conversions.meta_action_estimate(meta)
    assert (estimate.longitudinal, estimate.lateral) == (Longitudinal.UNKNOWN, Lateral.UNKNOWN)


def test_a_lane_round_trips_exactly_and_a_broken_one_reads_as_none() -> None:
    """Exactly (float64): the planner node plans on the lane the in-process loop plans on."""
    lane = LaneEstimate(np.array([4.5, 6.5, 8.5]), np.array([0.1 / 3, 0.2, 0.7]), 3.45)
    wire = deserialize_message(serialize_message(conversions.lane_msg(lane)), Lane)
    back = conversions.lane_estimate(wire)
    assert back is not None and back.width_m == lane.width_m
    np.testing.assert_array_equal(back.x, lane.x)
    np.testing.assert_array_equal(back.y, lane.y)
    assert conversions.lane_estimate(conversions.lane_msg(None)) is None
    for broken in (
        Lane(x=[1.0, 2.0], y=[0.0], width_m=3.5),
        Lane(x=[2.0, 1.0], y=[0.0, 0.0], width_m=3.5),
        Lane(x=[1.0, 2.0], y=[0.0, float("nan")], width_m=3.5),
    ):
        assert conversions.lane_estimate(broken) is None


def test_a_traffic_light_round_trips_and_an_unknown_colour_reads_as_none_seen() -> None:
    for light in (
        TrafficLightView(LightSeen.RED, 11.0 / 3.0),
        TrafficLightView(LightSeen.GREEN),
        NO_LIGHT,
    ):
        wire = deserialize_message(
            serialize_message(conversions.traffic_light_msg(light)), TrafficLight
        )
        assert conversions.traffic_light_view(wire) == light
    assert conversions.traffic_light_view(TrafficLight(colour=9, stop_line_x=5.0)) == NO_LIGHT
    for colour, line_x in ((TrafficLight.RED, math.inf), (TrafficLight.RED, -2.0), (3, 10.0)):
        view = conversions.traffic_light_view(TrafficLight(colour=colour, stop_line_x=line_x))
        assert view.stop_line_x is None and view.colour == colour


def test_free_space_round_trips_and_figures_that_are_not_one_read_as_none() -> None:
    for space in (
        FreeSpace(11.0 / 3.0),
        FreeSpace(40.0),
        FreeSpace(0.0),
        FreeSpace(12.5, 40.0, (-1.9, -0.7)),
        None,
    ):
        wire = deserialize_message(
            serialize_message(conversions.free_space_msg(space)), FreeSpaceMsg
        )
        assert conversions.free_space_estimate(wire) == space
    for clear_to_x, range_x in ((math.nan, 40.0), (12.0, math.inf), (-1.0, 40.0), (41.0, 40.0)):
        wire = FreeSpaceMsg(clear_to_x=clear_to_x, range_x=range_x)
        assert conversions.free_space_estimate(wire) is None
    # An extent that is not one (not finite, its right left of its left, or no width: the
    # fields a publisher left unset) is dropped: the thing is then kept off as a point.
    for right_y, left_y in ((math.nan, 1.0), (-1.0, math.inf), (1.0, -1.0), (0.0, 0.0)):
        wire = FreeSpaceMsg(clear_to_x=12.0, range_x=40.0, right_y=right_y, left_y=left_y)
        assert conversions.free_space_estimate(wire) == FreeSpace(12.0, 40.0)


def test_the_ego_history_round_trips_through_a_conditioning_message() -> None:
    """The planner places what the cameras follow by the history the conditioning carries:
    the VLA node's 16 poses back at their 10 Hz stamps; a history of another length, or
    with a pose that is not one, reads as none."""
    t0_ns = 1_700_000_000 * 10**9 + 123
    yaw = np.linspace(-0.15, 0.0, 16)
    xyz = np.column_stack([np.linspace(-15.0, 0.0, 16), 0.5 * yaw, np.zeros(16)])
    rotations = Rotation.from_euler("z", yaw[:, np.newaxis]).as_matrix()
    msg = PlannerConditioning(
        ego_history=conversions.pose_msgs(xyz, Rotation.from_matrix(rotations).as_quat())
    )
    msg.header.stamp = conversions.time_msg(t0_ns)
    wire = deserialize_message(serialize_message(msg), PlannerConditioning)
    history = conversions.ego_history(wire)
    assert history is not None
    assert history.stamps_ns.tolist() == [t0_ns - k * 100_000_000 for k in range(15, -1, -1)]
    np.testing.assert_allclose(history.xyz, xyz, atol=1e-12)
    np.testing.assert_allclose(history.rotations, rotations, atol=1e-12)
    assert conversions.ego_history(PlannerConditioning()) is None
    wire.ego_history[3].orientation.w = math.nan
    assert conversions.ego_history(wire) is None


def test_trajectory_message_round_trips_to_the_tracker() -> None:
    rollout = integrate_unicycle(np.full(64, 0.5), np.full(64, 0.02), 8.0)
    head = conversions.header(7_000_000_000, "base_link")
    info = conversions.inference_info_msg(3, "m", "1", [1, 2], 10)
    sent = conversions.trajectory_msg(
        rollout, head, info, sample_index=2, score=0.5, planning_ns=7_250_000
    )
    msg = deserialize_message(serialize_message(sent), Trajectory)
    assert len(msg.time_from_start) == 64 and msg.sample_index == 2
    assert conversions.duration_ns(msg.planning_time) == 7_250_000
    assert msg.time_from_start[-1] == pytest.approx(6.4)
    plan = conversions.tracked_trajectory(msg)
    np.testing.assert_array_equal(plan.x, rollout.x)
    np.testing.assert_array_equal(plan.yaw, rollout.yaw)
    np.testing.assert_allclose(plan.v, rollout.v, rtol=1e-6)  # float32 on the wire


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda msg: msg.x.__setitem__(5, float("nan")), "non-finite x values"),
        (lambda msg: setattr(msg, "curvature", msg.curvature[:10]), "64 times but 10 curvature"),
        (lambda msg: msg.time_from_start.__setitem__(3, 0.1), "not increasing"),
        (
            lambda msg: [setattr(msg, name, []) for name in conversions.TRAJECTORY_COLUMNS],
            "no points",
        ),
    ],
)
def test_a_bad_trajectory_is_refused_by_name(change, message: str) -> None:
    rollout = integrate_unicycle(np.full(64, 0.5), np.full(64, 0.02), 8.0)
    head = conversions.header(7_000_000_000, "base_link")
    info = conversions.inference_info_msg(3, "m", "1", [1, 2], 10)
    msg = conversions.trajectory_msg(rollout, head, info, sample_index=0, score=0.5)
    change(msg)
    with pytest.raises(ValueError, match=message):
        conversions.tracked_trajectory(msg)


def test_candidates_round_trip_through_dds_serialisation_and_match_the_trajectory() -> None:
    rollouts = integrate_unicycle(np.full((3, 64), 0.5), np.linspace(-0.02, 0.02, 3)[:, None], 8.0)
    selection = Selection(1, np.array([True, True, False]), ((), (), ("too sharp",)))
    head = conversions.header(7_000_000_000, "base_link")
    info = conversions.inference_info_msg(3, "m", "1", [1, 2], 10)
    sent = conversions.candidates_msg(rollouts, [0.5, 0.9, 0.1], selection, head, info)
    msg = deserialize_message(serialize_message(sent), TrajectoryCandidates)
    assert list(msg.rejection_reasons) == ["", "", "too sharp"] and msg.selected_index == 1
    paths = conversions.candidate_paths(msg)
    assert paths.selected == 1 and list(paths.feasible) == [True, True, False]
    np.testing.assert_array_equal(paths.x, rollouts.x)
    np.testing.assert_array_equal(paths.yaw, rollouts.yaw)
    np.testing.assert_array_equal(paths.time_from_start, rollouts.t[0])
    # The selected candidate's columns are the published trajectory's values, exactly.
    trajectory = conversions.trajectory_msg(rollouts[1], head, info, 1, 0.9)
    trajectory = deserialize_message(serialize_message(trajectory), Trajectory)
    for name in conversions.TRAJECTORY_COLUMNS:
        candidate = getattr(msg, name)
        if name != "time_from_start":
            candidate = candidate[64:128]
        assert list(getattr(trajectory, name)) == list(candidate), name

    msg.selected_index = TrajectoryCandidates.NONE_SELECTED
    assert conversions.candidate_paths(msg).selected is None
    msg.x[5] = float("nan")
    with pytest.raises(ValueError, match="non-finite x values"):
        conversions.candidate_paths(msg)
    msg.yaw = msg.yaw[:10]
    with pytest.raises(ValueError, match="3 candidates of 64 points need 192 yaw values, got 10"):
        conversions.candidate_paths(msg)
