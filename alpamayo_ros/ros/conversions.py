"""Conversions between ROS messages and the numpy / dataclass types of the pure modules.

The only module that knows both worlds; nodes call it and stay thin.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from alpamayo_ros_msgs.msg import (
    ControlCommand,
    InferenceInfo,
    Lane,
    MetaAction,
    PlannerConditioning,
    Reasoning,
    TrafficLight,
    Trajectory,
    TrajectoryCandidates,
)
from alpamayo_ros_msgs.msg import (
    FreeSpace as FreeSpaceMsg,
)
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped, Vector3
from nav_msgs.msg import Odometry
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from alpamayo_ros.core.contract import HISTORY_PERIOD_NS, HISTORY_POSES, NS_PER_S
from alpamayo_ros.core.control import TrackedTrajectory
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.ego_history import EgoHistory, invalid_pose
from alpamayo_ros.core.kinematics import MIN_SPEED_FOR_CURVATURE, EgoState, Rollout
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.core.model_io import CausalDecision, MetaActionEstimate, PlannerInput
from alpamayo_ros.core.rig import CameraModel, CameraRig
from alpamayo_ros.core.trajectory_checks import Selection
from alpamayo_ros.core.watchdog import WatchdogState
from alpamayo_ros.perception.free_space import FreeSpace
from alpamayo_ros.perception.lane import LaneEstimate
from alpamayo_ros.perception.traffic_light import (
    NO_LIGHT,
    STOP_COLOURS,
    LightSeen,
    TrafficLightView,
)
from alpamayo_ros.sensors import encodings
from alpamayo_ros.sensors.base import EgoPose
from alpamayo_ros.sensors.encodings import ImageError

# The control bridge's watchdog state -> ControlCommand.mode.
COMMAND_MODES: dict[WatchdogState, int] = {
    WatchdogState.WAITING: ControlCommand.MODE_WAITING,
    WatchdogState.TRACKING: ControlCommand.MODE_TRACKING,
    WatchdogState.SAFE_STOP: ControlCommand.MODE_SAFE_STOP,
    WatchdogState.EMERGENCY_STOP: ControlCommand.MODE_EMERGENCY_STOP,
    WatchdogState.STOPPED: ControlCommand.MODE_STOPPED,
}
_MODE_NAMES = {mode: state.value for state, mode in COMMAND_MODES.items()}
_Member = TypeVar("_Member", bound=IntEnum)


def command_mode_name(mode: int) -> str:
    """ "tracking", "safe_stop", ... for a ControlCommand.mode; the number if unknown."""
    return _MODE_NAMES.get(mode, str(mode))


# --- time -------------------------------------------------------------------------------


def time_msg(stamp_ns: int) -> Time:
    return Time(sec=stamp_ns // NS_PER_S, nanosec=stamp_ns % NS_PER_S)


def stamp_ns(stamp: Time) -> int:
    return stamp.sec * NS_PER_S + stamp.nanosec


def duration_msg(duration_ns: int) -> Duration:
    return Duration(sec=duration_ns // NS_PER_S, nanosec=duration_ns % NS_PER_S)


def duration_ns(duration: Duration) -> int:
    return duration.sec * NS_PER_S + duration.nanosec


def header(stamp: int, frame_id: str) -> Header:
    return Header(stamp=time_msg(stamp), frame_id=frame_id)


# --- images -----------------------------------------------------------------------------


def rgb_image_msg(image: npt.NDArray[np.uint8], stamp: int, frame_id: str) -> Image:
    """An rgb8 Image; `tobytes` keeps this cheap (assigning an ndarray is ~60x slower)."""
    height, width, _ = image.shape
    msg = Image(
        header=header(stamp, frame_id),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
    )
    msg.data = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    return msg


def image_to_rgb(msg: Image) -> npt.NDArray[np.uint8]:
    """RGB uint8 [H, W, 3] from an Image; raises ImageError for what cannot be converted."""
    return encodings.raw_to_rgb(msg.data, msg.width, msg.height, msg.step, msg.encoding)


def compressed_to_rgb(msg: CompressedImage) -> npt.NDArray[np.uint8]:
    """RGB uint8 [H, W, 3] from a CompressedImage (JPEG or PNG, as image_transport's
    compressed plugin sends); raises ImageError for data OpenCV cannot decode."""
    return encodings.compressed_to_rgb(msg.data, msg.format)


def compressed_image_msg(
    image: npt.NDArray[np.uint8], stamp: int, frame_id: str, quality: int = 90
) -> CompressedImage:
    """A JPEG CompressedImage of an RGB image, with image_transport's format string."""
    import cv2

    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ImageError(f"cannot JPEG-encode an image of shape {image.shape}")
    return CompressedImage(
        header=header(stamp, frame_id),
        format="rgb8; jpeg compressed bgr8",
        data=encoded.tobytes(),
    )


def camera_info_msg(
    camera: CameraModel, width: int, height: int, stamp: int, frame_id: str
) -> CameraInfo:
    K = camera.intrinsics(width, height)
    projection = np.zeros((3, 4))
    projection[:, :3] = K
    return CameraInfo(
        header=header(stamp, frame_id),
        width=width,
        height=height,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=K.reshape(-1).tolist(),
        r=np.eye(3).reshape(-1).tolist(),
        p=projection.reshape(-1).tolist(),
    )


# --- poses ------------------------------------------------------------------------------


def pose_msgs(positions: npt.ArrayLike, quaternions_xyzw: npt.ArrayLike) -> list[Pose]:
    """Poses from positions [N, 3] and quaternions [N, 4]. Builds from Python lists made in
    one pass: per-element numpy access costs more than the messages on a 2 ms budget."""
    rows = zip(
        np.asarray(positions, dtype=float).reshape(-1, 3).tolist(),
        np.asarray(quaternions_xyzw, dtype=float).reshape(-1, 4).tolist(),
        strict=True,
    )
    return [
        Pose(position=Point(x=px, y=py, z=pz), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))
        for (px, py, pz), (qx, qy, qz, qw) in rows
    ]


def quaternion_xyzw(orientation: Quaternion) -> npt.NDArray[np.float64]:
    return np.array([orientation.x, orientation.y, orientation.z, orientation.w])


def odometry_msg(pose: EgoPose, odom_frame: str, base_frame: str) -> Odometry:
    msg = Odometry(header=header(pose.stamp_ns, odom_frame), child_frame_id=base_frame)
    msg.pose.pose = pose_msgs(pose.position, pose.orientation_xyzw)[0]
    (msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.linear.z) = (
        float(v) for v in pose.linear_velocity
    )
    (msg.twist.twist.angular.x, msg.twist.twist.angular.y, msg.twist.twist.angular.z) = (
        float(v) for v in pose.angular_velocity
    )
    return msg


def transform_msg(
    stamp: int,
    parent: str,
    child: str,
    translation: npt.ArrayLike,
    rotation_xyzw: npt.ArrayLike,
) -> TransformStamped:
    """The pose of frame `child` in frame `parent` (tf2's convention)."""
    (tx, ty, tz), (qx, qy, qz, qw) = (
        np.asarray(translation, float),
        np.asarray(rotation_xyzw, float),
    )
    msg = TransformStamped(header=header(stamp, parent), child_frame_id=child)
    msg.transform.translation = Vector3(x=float(tx), y=float(ty), z=float(tz))
    msg.transform.rotation = Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw))
    return msg


def rig_transforms(rig: CameraRig, base_frame: str, stamp: int) -> TFMessage:
    """Every camera's optical frame (`<camera>_optical`: z forward, x right, y down) in
    `base_frame`, for /tf_static."""
    return TFMessage(
        transforms=[
            transform_msg(
                stamp,
                base_frame,
                optical_frame(name),
                camera.position,
                Rotation.from_matrix(camera.optical_rotation()).as_quat(),
            )
            for name, camera in rig.cameras.items()
        ]
    )


def odometry_transform(pose: EgoPose, odom_frame: str, base_frame: str) -> TFMessage:
    """The ego pose as the odom -> base_link transform of /tf (REP-105)."""
    return TFMessage(
        transforms=[
            transform_msg(
                pose.stamp_ns, odom_frame, base_frame, pose.position, pose.orientation_xyzw
            )
        ]
    )


def optical_frame(camera: str) -> str:
    return f"{camera}_optical"


def odometry_sample(
    msg: Odometry,
) -> tuple[int, npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    """(stamp ns, position, quaternion xyzw, forward speed) of an Odometry message."""
    pose = msg.pose.pose
    position = np.array([pose.position.x, pose.position.y, pose.position.z])
    return (
        stamp_ns(msg.header.stamp),
        position,
        quaternion_xyzw(pose.orientation),
        float(msg.twist.twist.linear.x),
    )


# --- VLA outputs ------------------------------------------------------------------------


def inference_info_msg(
    inference_id: int,
    model_name: str,
    model_version: str,
    input_stamps_ns: npt.ArrayLike,
    latency_ns: int,
    input_wait_ns: int = 0,
    model_ns: int = 0,
    input_cameras: Sequence[str] = (),
) -> InferenceInfo:
    """Provenance and timing of one inference (durations 0 where not measured);
    `input_stamps_ns` [cameras, frames] of the `input_cameras`."""
    return InferenceInfo(
        inference_id=inference_id,
        model_name=model_name,
        model_version=model_version,
        input_stamps=[time_msg(int(s)) for s in np.asarray(input_stamps_ns).reshape(-1)],
        input_cameras=list(input_cameras),
        latency=duration_msg(max(0, latency_ns)),
        input_wait=duration_msg(max(0, input_wait_ns)),
        model_time=duration_msg(max(0, model_ns)),
    )


def reasoning_msg(
    decision: CausalDecision, head: Header, info: InferenceInfo, sample_index: int = 0
) -> Reasoning:
    x, y, z = decision.cause_object_position
    return Reasoning(
        header=head,
        info=info,
        sample_index=sample_index,
        text=decision.text,
        longitudinal_decision=int(decision.longitudinal_decision),
        lateral_decision=int(decision.lateral_decision),
        cause=int(decision.cause),
        cause_object_id=decision.cause_object_id,
        cause_object_position=Point(x=float(x), y=float(y), z=float(z)),
    )


def member_or(unknown: _Member, value: int) -> _Member:
    """The member of `unknown`'s enum a message field's `value` is, or `unknown` for a value
    outside its constants (another node's newer version): read, never a crash."""
    enum = type(unknown)
    return enum(value) if value in enum._value2member_map_ else unknown


def causal_decision(msg: Reasoning) -> CausalDecision:
    """The decision a Reasoning message states (the inverse of `reasoning_msg`). A value
    outside a field's constants (another node's newer version) reads as UNKNOWN, or a
    cause as OTHER (something named, not nothing: the planner gains the set speed only
    where the reasoning names nothing): a decision nothing acts on, not a failed plan."""
    position = msg.cause_object_position
    return CausalDecision(
        text=msg.text,
        longitudinal_decision=member_or(LongitudinalDecision.UNKNOWN, msg.longitudinal_decision),
        lateral_decision=member_or(LateralDecision.UNKNOWN, msg.lateral_decision),
        cause=member_or(Cause.OTHER, msg.cause),
        cause_object_id=msg.cause_object_id,
        cause_object_position=(position.x, position.y, position.z),
    )


def meta_action_msg(
    estimate: MetaActionEstimate, head: Header, info: InferenceInfo, horizon_ns: int
) -> MetaAction:
    lon_p = np.asarray(estimate.longitudinal_probabilities, np.float32)
    lat_p = np.asarray(estimate.lateral_probabilities, np.float32)
    return MetaAction(
        header=head,
        info=info,
        longitudinal=int(estimate.longitudinal),
        lateral=int(estimate.lateral),
        longitudinal_confidence=float(lon_p[estimate.longitudinal]),
        lateral_confidence=float(lat_p[estimate.lateral]),
        longitudinal_probabilities=lon_p.tolist(),
        lateral_probabilities=lat_p.tolist(),
        horizon=duration_msg(horizon_ns),
    )


def meta_action_estimate(msg: MetaAction) -> MetaActionEstimate:
    return MetaActionEstimate(
        longitudinal=member_or(Longitudinal.UNKNOWN, msg.longitudinal),
        lateral=member_or(Lateral.UNKNOWN, msg.lateral),
        longitudinal_probabilities=np.asarray(msg.longitudinal_probabilities, np.float32),
        lateral_probabilities=np.asarray(msg.lateral_probabilities, np.float32),
    )


def conditioning_msg(
    planner_input: PlannerInput,
    ego_xyz: npt.NDArray[np.float64],
    ego_rotations: npt.NDArray[np.float64],
    meta_action: MetaAction,
    reasoning: Reasoning,
    head: Header,
    info: InferenceInfo,
    lane: LaneEstimate | None = None,
    light: TrafficLightView = NO_LIGHT,
    free_space: FreeSpace | None = None,
) -> PlannerConditioning:
    latent = np.asarray(planner_input.latent, np.float32)
    state = planner_input.ego_state
    return PlannerConditioning(
        header=head,
        info=info,
        ego_history=pose_msgs(ego_xyz, Rotation.from_matrix(ego_rotations).as_quat()),
        speed_mps=float(state.speed),
        acceleration_mps2=float(state.acceleration),
        yaw_rate_rps=float(state.yaw_rate),
        meta_action=meta_action,
        reasoning=reasoning,
        lane=lane_msg(lane),
        traffic_light=traffic_light_msg(light),
        free_space=free_space_msg(free_space),
        latent=latent.reshape(-1).tolist(),
        latent_shape=list(latent.shape),
    )


def lane_msg(lane: LaneEstimate | None) -> Lane:
    if lane is None:
        return Lane()
    return Lane(x=column(lane.x, "d"), y=column(lane.y, "d"), width_m=float(lane.width_m))


def lane_estimate(msg: Lane) -> LaneEstimate | None:
    """The lane a message carries; None for an empty one, or one that is not a lane (fewer
    than two stations, x not increasing, lengths that differ, values not finite)."""
    x = np.asarray(msg.x, np.float64)
    y = np.asarray(msg.y, np.float64)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.isfinite(msg.width_m)):
        return None
    try:
        return LaneEstimate(x, y, float(msg.width_m))
    except ValueError:
        return None


def traffic_light_msg(light: TrafficLightView) -> TrafficLight:
    line_x = math.nan if light.stop_line_x is None else float(light.stop_line_x)
    return TrafficLight(colour=int(light.colour), stop_line_x=line_x)


def traffic_light_view(msg: TrafficLight) -> TrafficLightView:
    """The light a message carries; none seen for a colour this version does not know, and
    no stop line but a finite one ahead of a red or yellow light (the only ones looked for)."""
    try:
        colour = LightSeen(msg.colour)
    except ValueError:
        return NO_LIGHT
    line_x = float(msg.stop_line_x)
    stops = colour in STOP_COLOURS
    return TrafficLightView(
        colour, line_x if stops and math.isfinite(line_x) and line_x > 0 else None
    )


def free_space_msg(free_space: FreeSpace | None) -> FreeSpaceMsg:
    if free_space is None:
        return FreeSpaceMsg(
            clear_to_x=math.nan, range_x=math.nan, right_y=math.nan, left_y=math.nan
        )
    right_y, left_y = free_space.extent_y or (math.nan, math.nan)
    return FreeSpaceMsg(
        clear_to_x=float(free_space.clear_to_x),
        range_x=float(free_space.range_x),
        right_y=float(right_y),
        left_y=float(left_y),
    )


def free_space_estimate(msg: FreeSpaceMsg) -> FreeSpace | None:
    """The clear road a message carries; None where the cameras were not looked at, or the
    figures are not a clear stretch within a range (not finite, negative, or past it). A
    thing's extent that is not finite or not ordered (right_y < left_y) is dropped: it is
    then kept off as a point, and only while the reasoning keeps its lane."""
    clear_to_x, range_x = float(msg.clear_to_x), float(msg.range_x)
    if not (math.isfinite(clear_to_x) and math.isfinite(range_x)):
        return None
    if not 0.0 <= clear_to_x <= range_x:
        return None
    right_y, left_y = float(msg.right_y), float(msg.left_y)
    # Strictly ordered: fields a publisher left unset read 0.0 and 0.0, no width at all.
    measured = math.isfinite(right_y) and math.isfinite(left_y) and right_y < left_y
    return FreeSpace(clear_to_x, range_x, (right_y, left_y) if measured else None)


def ego_history(msg: PlannerConditioning) -> EgoHistory | None:
    """The ego history a conditioning carries (HISTORY_POSES poses at 10 Hz up to its
    stamp, in the ego frame there); None where it holds another number of poses, or one
    that is not a pose (`invalid_pose`)."""
    poses = msg.ego_history
    if len(poses) != HISTORY_POSES:
        return None
    xyz = np.array([[p.position.x, p.position.y, p.position.z] for p in poses], np.float64)
    quaternions = np.array(
        [[p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w] for p in poses],
        np.float64,
    )
    if any(invalid_pose(p, q) for p, q in zip(xyz, quaternions, strict=True)):
        return None
    t0_ns = stamp_ns(msg.header.stamp)
    stamps = t0_ns - HISTORY_PERIOD_NS * np.arange(HISTORY_POSES - 1, -1, -1, dtype=np.int64)
    return EgoHistory(stamps, xyz, Rotation.from_quat(quaternions).as_matrix())


def planner_input(msg: PlannerConditioning) -> PlannerInput:
    speed = float(msg.speed_mps)
    state = EgoState(
        speed=speed,
        acceleration=float(msg.acceleration_mps2),
        yaw_rate=float(msg.yaw_rate_rps),
        curvature=float(msg.yaw_rate_rps) / speed if abs(speed) >= MIN_SPEED_FOR_CURVATURE else 0.0,
    )
    latent = np.asarray(msg.latent, np.float32).reshape(tuple(msg.latent_shape) or (0,))
    return PlannerInput(state, meta_action_estimate(msg.meta_action), latent)


# --- trajectories -----------------------------------------------------------------------


def column(values: npt.ArrayLike, typecode: str) -> array:
    """A message's float array from numpy in one copy (rosidl would otherwise convert
    element by element)."""
    return array(typecode, np.ascontiguousarray(values, np.dtype(typecode)).tobytes())


# The columns a Trajectory and TrajectoryCandidates share, with their array typecodes:
# float64 times and poses, float32 rates.
TRAJECTORY_COLUMNS = {
    "time_from_start": "d",
    "x": "d",
    "y": "d",
    "yaw": "d",
    "longitudinal_velocity_mps": "f",
    "acceleration_mps2": "f",
    "curvature": "f",
}


def rollout_columns(rollout: Rollout, time_from_start: npt.ArrayLike) -> dict[str, array]:
    """A rollout's values (shape [T], or [K, T] candidate-major) as those columns."""
    values = (
        time_from_start,
        rollout.x,
        rollout.y,
        rollout.yaw,
        rollout.v,
        rollout.acceleration,
        rollout.curvature,
    )
    return {
        name: column(value, typecode)
        for (name, typecode), value in zip(TRAJECTORY_COLUMNS.items(), values, strict=True)
    }


def trajectory_msg(
    rollout: Rollout,
    head: Header,
    info: InferenceInfo,
    sample_index: int,
    score: float,
    planning_ns: int = 0,
) -> Trajectory:
    """One sample of a rollout (shape [T]) as a Trajectory in the ego frame at t0;
    `planning_ns` the planner's time for it (0: no planner made it)."""
    return Trajectory(
        header=head,
        info=info,
        sample_index=sample_index,
        score=float(score),
        planning_time=duration_msg(planning_ns),
        **rollout_columns(rollout, rollout.t),
    )


def candidates_msg(
    rollouts: Rollout,
    scores: npt.ArrayLike,
    selection: Selection,
    head: Header,
    info: InferenceInfo,
) -> TrajectoryCandidates:
    """Every candidate of a plan (rollouts [K, T]) as the message's candidate-major columns."""
    return TrajectoryCandidates(
        header=head,
        info=info,
        **rollout_columns(rollouts, rollouts.t.reshape(-1, rollouts.t.shape[-1])[0]),
        scores=column(scores, "f"),
        feasible=[bool(f) for f in selection.feasible],
        rejection_reasons=["; ".join(v) for v in selection.violations],
        selected_index=(
            TrajectoryCandidates.NONE_SELECTED if selection.index is None else selection.index
        ),
    )


@dataclass(frozen=True)
class CandidatePaths:
    """The poses of a TrajectoryCandidates message, checked for consistent sizes."""

    time_from_start: npt.NDArray[np.float64]  # [T] s after t0
    x: npt.NDArray[np.float64]  # [K, T] m
    y: npt.NDArray[np.float64]  # [K, T] m
    yaw: npt.NDArray[np.float64]  # [K, T] rad
    feasible: npt.NDArray[np.bool_]  # [K]
    selected: int | None  # None: no candidate was feasible


def candidate_paths(msg: TrajectoryCandidates) -> CandidatePaths:
    """Raises ValueError for a message whose columns or lists disagree in size, or whose
    selection is not one of its candidates."""
    num_candidates, num_points = len(msg.scores), len(msg.time_from_start)
    if len(msg.feasible) != num_candidates:
        raise ValueError(f"{num_candidates} candidates but {len(msg.feasible)} feasibility flags")
    columns = {
        name: np.frombuffer(getattr(msg, name), np.float64)
        for name in ("time_from_start", "x", "y", "yaw")
    }
    for name in ("x", "y", "yaw"):
        if columns[name].size != num_candidates * num_points:
            raise ValueError(
                f"{num_candidates} candidates of {num_points} points need "
                f"{num_candidates * num_points} {name} values, got {columns[name].size}"
            )
    for name, values in columns.items():
        if not np.all(np.isfinite(values)):
            raise ValueError(f"candidates have non-finite {name} values")
    selected = msg.selected_index
    if selected != TrajectoryCandidates.NONE_SELECTED and selected >= num_candidates:
        raise ValueError(f"selected index {selected} of {num_candidates} candidates")
    grid = (num_candidates, num_points)
    return CandidatePaths(
        time_from_start=columns["time_from_start"],
        x=columns["x"].reshape(grid),
        y=columns["y"].reshape(grid),
        yaw=columns["yaw"].reshape(grid),
        feasible=np.array(msg.feasible, dtype=bool),
        selected=None if selected == TrajectoryCandidates.NONE_SELECTED else selected,
    )


def trajectory_rollout(msg: Trajectory) -> Rollout:
    """The plan as a rollout (for the tracker, and for labelling what it does); raises
    ValueError for an empty, ragged or non-finite plan."""
    t, x, y, yaw, v, a, curvature = (
        np.asarray(getattr(msg, name), dtype=np.float64) for name in TRAJECTORY_COLUMNS
    )
    if t.size == 0:
        raise ValueError("trajectory has no points")
    for name, values in zip(TRAJECTORY_COLUMNS, (t, x, y, yaw, v, a, curvature), strict=True):
        if values.size != t.size:
            raise ValueError(f"trajectory has {t.size} times but {values.size} {name} values")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"trajectory has non-finite {name} values")
    if np.any(np.diff(t) <= 0):
        raise ValueError("trajectory time_from_start is not increasing")
    return Rollout(t=t, x=x, y=y, yaw=yaw, v=v, acceleration=a, curvature=curvature)


def tracked_trajectory(msg: Trajectory) -> TrackedTrajectory:
    """The arrays the tracker needs; raises ValueError for an empty or non-finite plan."""
    return TrackedTrajectory.from_rollout(trajectory_rollout(msg))
