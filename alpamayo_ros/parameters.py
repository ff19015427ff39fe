"""Parameter schema of every node, and validation of ROS 2 parameter files against it.

Nodes declare their parameters from this schema and the launchers validate config/*.yaml with
it before starting anything, so a typo or an unknown backend fails at start-up with the file,
node and parameter named, instead of a node silently running on a default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alpamayo_ros import topic_map
from alpamayo_ros.arguments import INT64_MAX, INT64_MIN
from alpamayo_ros.backends import PRECISIONS, available_backends, device_problem
from alpamayo_ros.backends.worker_protocol import DEFAULT_ADDRESS, address_problem
from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.object_memory import AGREE_S
from alpamayo_ros.core.stand_off import (
    BESIDE_THE_CAR_M,
    PASSING_CLEARANCE_M,
    STAND_OFF_CLEARANCE_M,
    STAND_OFF_MAX_DECELERATION,
    STOP_LINE_CLEARANCE_M,
)
from alpamayo_ros.pipeline.planning import NOISE_SCALE, STAND_OFF_MEMORY_S
from alpamayo_ros.sensors import available_sources
from alpamayo_ros.world.scenarios import SCENARIO_TYPES
from alpamayo_ros.world.simulation import step_grid_problem

ParameterValue = bool | int | float | str | list[str] | list[float]
WILDCARD_NODE = "/**"
# Declared by rclpy itself on every node.
BUILTIN_PARAMETERS = frozenset({"use_sim_time"})


class ParameterError(ConfigurationError):
    """A parameter file or value that cannot start the graph."""


Check = Callable[[Any], str | None]


def positive(value: float) -> str | None:
    return None if value > 0 and math.isfinite(value) else "must be a positive number"


def non_negative(value: float) -> str | None:
    return None if value >= 0 and math.isfinite(value) else "must be >= 0"


def off_or_at_least(minimum: float) -> Check:
    """0 (a rule off) or a finite value of at least `minimum`."""

    def check(value: float) -> str | None:
        if value == 0 or (math.isfinite(value) and value >= minimum):
            return None
        return f"must be 0 (off) or at least {minimum:g}"

    return check


def node_name_or_empty(value: str) -> str | None:
    """A ROS node name as discovery reports it (no namespace), or empty."""
    if not value or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        return None
    return f"{value!r} is not a node name (letters, digits and _, no namespace)"


def one_of(choices: Callable[[], tuple[str, ...]]) -> Check:
    def check(value: str) -> str | None:
        known = choices()
        return None if value in known else f"unknown value {value!r} (known: {', '.join(known)})"

    return check


def known_cameras(value: list[str]) -> str | None:
    if not value:
        return "must name at least one camera"
    if len(set(value)) != len(value):
        return "names a camera twice"
    return None


@dataclass(frozen=True)
class Parameter:
    """One declared parameter: its default fixes its ROS type."""

    name: str
    default: ParameterValue
    description: str
    check: Check | None = None

    def validate(self, value: Any) -> str | None:
        """The reason `value` is unusable, or None."""
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                return f"must be of type float, got an integer too large for one: {value!r}"
        if expected is list:
            if not isinstance(value, list):
                return f"must be a list, got {value!r}"
            item_type = type(self.default[0]) if self.default else str
            if not all(isinstance(item, item_type) for item in value):
                return f"must be a list of {item_type.__name__}, got {value!r}"
        elif not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            return f"must be of type {expected.__name__}, got {value!r}"
        if expected is int and not INT64_MIN <= value <= INT64_MAX:
            return f"must fit a 64-bit integer (a ROS 2 integer parameter), got {value!r}"
        return self.check(value) if self.check else None


# Shared by several nodes; config/alpamayo.yaml sets them once under /**.
CAMERAS = Parameter("cameras", list(CAMERA_ORDER), "Camera names, in model order.", known_cameras)
CAMERA_NAMESPACE = Parameter(
    "camera_namespace", "/sensing/camera", "Topics are <namespace>/<camera>/image_raw."
)
FRAME_ID = Parameter("frame_id", "base_link", "Ego frame (REP-105); outputs are in it at t0.")
BACKEND = Parameter("backend", "embedded_vla", "Model backend.", one_of(available_backends))
RIG_FILE = Parameter(
    "rig_file",
    "",
    "The model's camera rig (YAML); empty for the packaged config/rig.yaml. The camera "
    "driver's cameras are these; a user camera is reprojected into them (topic map).",
)
WEIGHTS_FILE = Parameter("weights_file", "", "Backend weights; empty for the packaged ones.")
DEVICE = Parameter(
    "device",
    "cpu",
    "Where the backend computes: cpu, cuda (CUDA device 0) or cuda:N. A device the machine "
    "or the backend lacks stops the node at start-up, saying why.",
    device_problem,
)
PRECISION = Parameter(
    "precision",
    "fp32",
    "Number format of the backend's network: fp32, bf16, or fp16 on a CUDA device "
    "(embedded_vla runs all three, embedded_vla_onnx fp32).",
    one_of(lambda: PRECISIONS),
)
CUDA_GRAPHS = Parameter(
    "cuda_graphs",
    True,
    "On a CUDA device, run embedded_vla's scene, decoder step and flow as CUDA graphs "
    "(one launch each instead of one per kernel); false runs them kernel by kernel.",
)


def usable_topic_map(value: str) -> str | None:
    if not value:
        return None
    try:
        topic_map.load(Path(value))
    except topic_map.TopicMapError as error:
        return str(error)
    return None


TOPIC_MAP_FILE = Parameter(
    "topic_map_file",
    "",
    "Topic-mapping YAML naming the topics and types of the cameras and odometry "
    "(see config/topic_map.example.yaml); empty for the graph's own names.",
    usable_topic_map,
)


AUTOSTART = Parameter(
    "autostart",
    True,
    "Managed node: configure and activate at start-up. False leaves it unconfigured, "
    "publishing nothing, for a lifecycle manager (or `ros2 lifecycle set`) to bring up.",
)


# How a node process runs its callbacks (ros.runtime.spin).
EXECUTORS = ("events", "single_threaded")
EXECUTOR = Parameter(
    "executor",
    "events",
    "How the node runs its callbacks: events (rclpy's EventsExecutor, in C++: less latency "
    "per message and half the idle CPU; on use_sim_time, whose timers it does not keep, "
    "only the nodes without a timer on ROS time (the VLA node, the planner, the "
    "simulator); the others, and any where rclpy lacks it, e.g. Humble, say so and run "
    "single_threaded) or "
    "single_threaded (rclpy's SingleThreadedExecutor, its wait set rebuilt in Python for "
    "every callback).",
    one_of(lambda: EXECUTORS),
)

IMAGE_TRANSPORTS = ("raw", "compressed")


def cpu_threads(default: int) -> Parameter:
    return Parameter(
        "cpu_threads",
        default,
        "CPU threads of the backend's math library in this process; 0 leaves its default "
        "(one per core). Nodes sharing a small machine each use fewer, instead of "
        "contending for the same cores.",
        non_negative,
    )


def per_camera(source: str, name: str, what: str) -> Parameter:
    return Parameter(
        f"{source}.{name}", [], f"{what}, one per camera in `cameras` order.", known_items
    )


def known_items(value: list[str]) -> str | None:
    return None if all(item for item in value) else "has an empty entry"


def playback_rate(source: str, name: str = "rate") -> Parameter:
    return Parameter(
        f"{source}.{name}",
        1.0,
        "Playback speed: 1.0 plays the recording in real time, 2.0 twice as fast.",
        positive,
    )


def poses_file(source: str) -> Parameter:
    return Parameter(
        f"{source}.poses_file",
        "",
        "CSV with the header t,x,y,yaw (seconds on the recording's time base, metres, "
        "radians in the odom frame): the ego pose, published as odometry; without one "
        "the VLA node reports the odometry missing.",
    )


# Each camera source's own options, named <source>.<option> (nested in the YAML file).
SOURCE_OPTIONS = (
    Parameter("synthetic.width", 256, "Rendered image width in pixels.", positive),
    Parameter("synthetic.height", 128, "Rendered image height in pixels.", positive),
    Parameter("synthetic.seed", 0, "Seed of the first scenario.", non_negative),
    Parameter("synthetic.scenario_type", "", "One scenario type; empty for any."),
    Parameter("synthetic.scenario_duration_s", 12.0, "Time before the next scenario.", positive),
    per_camera("video", "files", "Video files (mp4, mkv, avi; stamps from their timestamps)"),
    playback_rate("video"),
    poses_file("video"),
    per_camera("folder", "paths", "Image folders (png, jpg, bmp, tif, sorted by name)"),
    Parameter(
        "folder.rate_hz",
        0.0,
        "Frame rate giving the stamps; 0 takes them from a stamps.csv (file,t) in the "
        "folder, else from the file names (numbers in folder.stamp_unit).",
        non_negative,
    ),
    Parameter(
        "folder.stamp_unit",
        "s",
        "Unit of stamps in file names.",
        one_of(lambda: ("s", "ms", "us", "ns")),
    ),
    playback_rate("folder", "playback_rate"),
    poses_file("folder"),
    per_camera(
        "device",
        "devices",
        "Cameras through OpenCV: an index (0), a device (/dev/video2) or a GStreamer pipeline",
    ),
    Parameter("device.width", 0, "Capture width; 0 keeps the device's.", non_negative),
    Parameter("device.height", 0, "Capture height; 0 keeps the device's.", non_negative),
    Parameter("device.fps", 0.0, "Capture rate; 0 keeps the device's.", non_negative),
    Parameter("bag.path", "", "rosbag2 bag (directory) holding the camera topics."),
    per_camera("bag", "topics", "Camera topics in the bag (Image or CompressedImage)"),
    Parameter("bag.odometry_topic", "", "nav_msgs/Odometry topic in the bag giving the ego pose."),
    Parameter(
        "bag.set_speed_topic",
        "/planning/set_speed",  # the graph's (graph.Topics.SET_SPEED)
        "std_msgs/Float64 topic in the bag with the planner's set speed, republished on "
        "set_speed as it was logged (over the planner's set_speed_mps); none where the bag "
        "does not hold it; empty: not looked for.",
    ),
    poses_file("bag"),
    playback_rate("bag"),
)


LOCKSTEP_ANSWER_TIMEOUT = Parameter(
    "lockstep_answer_timeout_s",
    1.0,
    "Lock-step: the longest wall time the clock waits for an answer; a longer wait is "
    "counted on the diagnostics and the clock moves on.",
    positive,
)
LOCKSTEP_START_TIMEOUT = Parameter(
    "lockstep_start_timeout_s",
    30.0,
    "Lock-step: the longest wall time to wait at the start for the graph's subscribers "
    "and publishers (discovery); then it starts anyway, with a warning.",
    positive,
)
LOCKSTEP_SUBSCRIBER = Parameter(
    "lockstep_subscriber",
    "vla_inference",
    "Lock-step: the node (by name) that must subscribe to every camera and the odometry "
    "before the clock starts, the VLA node; empty: any subscriber. A bag recorder or viewer "
    "subscribing first does not start the run before the model can take its inputs.",
    node_name_or_empty,
)
SET_SPEED_SUBSCRIBER = Parameter(
    "set_speed_subscriber",
    "diffusion_planner",
    "Lock-step, where this node sends the set speed: the node (by name) that must subscribe "
    "to it before the clock starts, so that its first plan knows it; empty: any subscriber "
    "(a recorder subscribing first would then start the run).",
    node_name_or_empty,
)
LOCKSTEP_SETTLE = Parameter(
    "lockstep_settle_s",
    0.3,
    "Lock-step: once the graph is discovered, how long the clock holds (at the first "
    "instant, or a control period before it) before the first inputs, so every node has "
    "the clock and listeners outside the graph (a bag recorder, a viewer, a test) have "
    "matched the outputs they record.",
    positive,
)


# The `worker` backend: the model in a process of its own (alpamayo-ros-model-worker),
# reached by the VLA node and the planner; the VLA node may start it (worker_command).
WORKER_CONNECTION = (
    Parameter(
        "worker_address",
        DEFAULT_ADDRESS,
        "backend worker: where the model worker listens (ipc://<path> or "
        "tcp://<host>:<port>, its --address); on this host, as the images go through "
        "shared memory.",
        address_problem,
    ),
    Parameter(
        "worker_timeout_s",
        1.0,
        "backend worker: a request unanswered this long fails: ERROR on /diagnostics "
        "naming the worker, no outputs (the control bridge's watchdog stops the car) until "
        "it answers again. Above the model's slowest decision.",
        positive,
    ),
    Parameter(
        "worker_startup_timeout_s",
        60.0,
        "backend worker: how long the node waits at start for the worker (loading a large "
        "model) before it exits with an error.",
        positive,
    ),
)
WORKER_COMMAND = Parameter(
    "worker_command",
    "",
    "backend worker: a command line the node starts the worker with, as its child, "
    "stopped with it and started again when found dead; empty: the worker is started "
    "separately (its own environment, e.g. `conda run -n alpamayo "
    "alpamayo-ros-model-worker ...`).",
)


# Each node's own parameters; SCHEMA adds what every node process declares.
_NODE_PARAMETERS: Mapping[str, tuple[Parameter, ...]] = {
    "camera_driver": (
        AUTOSTART,
        CAMERAS,
        CAMERA_NAMESPACE,
        FRAME_ID,
        Parameter(
            "source",
            "synthetic",
            "Camera source; its options are the parameters named <source>.*.",
            one_of(available_sources),
        ),
        Parameter("rate_hz", 10.0, "How often the source is polled for new frames.", positive),
        RIG_FILE,
        Parameter(
            "odometry_rate_hz", 50.0, "Rate of the ego odometry the source provides.", positive
        ),
        *SOURCE_OPTIONS,
        Parameter("odom_frame_id", "odom", "World-fixed frame of the odometry (REP-105)."),
        Parameter(
            "publish_compressed",
            False,
            "Also publish every frame as a JPEG sensor_msgs/CompressedImage on "
            "<namespace>/<camera>/image_raw/compressed (image_transport's convention).",
        ),
        Parameter(
            "lockstep",
            False,
            "Own the time (recordings and the synthetic world, not devices): publish /clock "
            "and hold it after each camera set until the planner's trajectory for those frames "
            "arrives, so a run goes as fast as the stack answers and gives the same outputs "
            "every time. Start every other node with use_sim_time.",
        ),
        LOCKSTEP_ANSWER_TIMEOUT,
        LOCKSTEP_START_TIMEOUT,
        LOCKSTEP_SUBSCRIBER,
        LOCKSTEP_SETTLE,
        SET_SPEED_SUBSCRIBER,
    ),
    "vla_inference": (
        CAMERAS,
        CAMERA_NAMESPACE,
        FRAME_ID,
        BACKEND,
        WEIGHTS_FILE,
        cpu_threads(0),
        DEVICE,
        PRECISION,
        CUDA_GRAPHS,
        TOPIC_MAP_FILE,
        RIG_FILE,
        Parameter(
            "image_transport",
            "raw",
            "How the cameras the topic map does not name arrive: raw (sensor_msgs/Image on "
            "<namespace>/<camera>/image_raw) or compressed (sensor_msgs/CompressedImage, JPEG "
            "or PNG, on <namespace>/<camera>/image_raw/compressed).",
            one_of(lambda: IMAGE_TRANSPORTS),
        ),
        Parameter(
            "rate_hz",
            10.0,
            "Highest inference rate; runs when all cameras have a new frame.",
            positive,
        ),
        Parameter(
            "max_frame_staleness_s",
            0.06,
            "A frame older than its target time by more than this is a dropped frame.",
            positive,
        ),
        Parameter(
            "max_frame_rate_hz",
            30.0,
            "A frame closer than 0.8 / this to the previous one kept from its camera is "
            "skipped before decoding (WARN on /diagnostics), so a fast camera cannot stall "
            "the model; must keep frames close enough for max_frame_staleness_s.",
            positive,
        ),
        Parameter(
            "max_frame_pixels",
            3_000_000,
            "Larger frames are refused with an ERROR naming the camera and size; resize "
            "upstream (image_proc) or raise the limit.",
            positive,
        ),
        Parameter(
            "input_silent_after_s",
            0.5,
            "A camera or the odometry that sent nothing for this long is reported silent (ERROR).",
            positive,
        ),
        Parameter(
            "input_fault_hold_s",
            3.0,
            "A fault that happened (a bad stamp, an invalid sample, a clock jump) stays on "
            "/diagnostics this long after its last occurrence.",
            positive,
        ),
        Parameter(
            "navigation_max_age_s",
            30.0,
            "The route text (std_msgs/String on /planning/navigation_text, for a model that "
            "takes it) is used this long after it came, then dropped: a route publisher "
            "repeats it.",
            positive,
        ),
        Parameter(
            "lane_detection",
            True,
            "Find the ego lane's centre in the newest frames of front_wide_120fov and "
            "front_tele_30fov (lane markings cast onto the ground with the rig's "
            "calibration) and send it to the planner with each inference.",
        ),
        Parameter(
            "traffic_light_detection",
            True,
            "Find the colour of the traffic light ahead (lit lamps above the horizon in "
            "front_wide_120fov and front_tele_30fov) and, for a red or yellow one, its stop "
            "line, and send them to the planner with each inference: where the reasoning "
            "names a light, the planner stops at that line if the cameras show it red, or "
            "yellow with room to stop gently, and goes on if they show it green, whatever "
            "colour the reasoning reads.",
        ),
        Parameter(
            "free_space_detection",
            True,
            "Find how far the lane ahead is clear road (front_wide_120fov and "
            "front_tele_30fov, up to 40 m) and send it to the planner with each inference: "
            "where the reasoning (or the planner's memory) stops for a stopped vehicle the "
            "cameras show clear road well past, the planner stops short of where the clear "
            "road ends instead; and while the reasoning keeps its lane, the planner keeps off "
            "what stands, or moves no faster than the car, where it ends (off: neither).",
        ),
        *WORKER_CONNECTION,
        WORKER_COMMAND,
    ),
    "diffusion_planner": (
        FRAME_ID,
        BACKEND,
        WEIGHTS_FILE,
        cpu_threads(1),
        DEVICE,
        PRECISION,
        CUDA_GRAPHS,
        *WORKER_CONNECTION,
        Parameter("num_samples", 6, "Trajectories sampled per inference (K).", positive),
        Parameter(
            "seed",
            0,
            "Seed of the sampler; each plan's noise derives from it and the plan's t0 alone.",
            non_negative,
        ),
        Parameter(
            "noise_scale",
            NOISE_SCALE,
            "Temperature of the action expert's noise: the samples start from this times it, "
            "so below 1 they gather nearer the model's most likely plan (a backend whose "
            "samples come ready from the model, or none, ignores it).",
            positive,
        ),
        Parameter("max_abs_acceleration", 9.8, "Feasibility bound (m/s^2).", positive),
        Parameter("max_abs_curvature", 0.33, "Feasibility bound (1/m).", positive),
        Parameter("max_lateral_acceleration", 6.0, "Feasibility bound (m/s^2).", positive),
        Parameter("max_abs_jerk", 20.0, "Feasibility bound (m/s^3).", positive),
        Parameter(
            "stand_off_clearance_m",
            STAND_OFF_CLEARANCE_M,
            "Distance from base_link kept to a standing object the reasoning stops or yields "
            "for (a sample coming closer is refused; 0 turns the rule off).",
            non_negative,
        ),
        Parameter(
            "stand_off_max_deceleration",
            STAND_OFF_MAX_DECELERATION,
            "Hardest braking of the candidate that stops short of that object when every "
            "sample is refused (m/s^2).",
            positive,
        ),
        Parameter(
            "stand_off_passing_clearance_m",
            PASSING_CLEARANCE_M,
            "Sideways distance from base_link kept to a standing object the reasoning nudges "
            "around, where some sample keeps it (else 1.2 m, or the clearance if smaller; "
            "below that the car brakes to stop short of it); 0 turns the rule off, as "
            "stand_off_clearance_m 0 does.",
            non_negative,
        ),
        Parameter(
            "stand_off_stop_line_clearance_m",
            STOP_LINE_CLEARANCE_M,
            "Distance from base_link (the rear axle) kept to the stop line of a light the "
            "reasoning stops for (decision STOP_FOR_STATIC_CONSTRAINT; its place: where the "
            "line crosses the car's path); 0 turns the rule off, else at least 3.7 m (base_link "
            "to the front), or the front could stop past the line.",
            off_or_at_least(BESIDE_THE_CAR_M),
        ),
        Parameter(
            "stand_off_memory_s",
            STAND_OFF_MEMORY_S,
            "How long each statement naming a stopped vehicle or construction ahead is kept, "
            "at its place: while two kept statements place it within 3 m (made within 2 s), "
            "a plan whose reasoning keeps its lane and states no stand-off, or a stop further "
            "on, stops short of the nearest such place ahead; 0 turns the memory off (so "
            "does stand_off_clearance_m 0), else at least 2 s.",
            off_or_at_least(AGREE_S),
        ),
        Parameter(
            "lane_keeping",
            True,
            "While the reasoning keeps its lane, drive the chosen plan's speed profile along "
            "the centre of the lane the VLA node found in the cameras (conditioning.lane), "
            "where that plan passes the same checks; false: the model's own path.",
        ),
        Parameter(
            "set_speed_mps",
            0.0,
            "The speed the car keeps where the reasoning tracks the set speed (a driver's "
            "cruise setting, or the road's limit; m/s): where the cameras show the lane clear "
            "as far as they look, the chosen plan gains speed towards it as the expert does. "
            "A message on `set_speed` replaces it; 0: not known, the model's own speeds.",
            non_negative,
        ),
    ),
    "control_bridge": (
        AUTOSTART,
        FRAME_ID,
        TOPIC_MAP_FILE,
        Parameter("rate_hz", 50.0, "Control rate.", positive),
        Parameter(
            "trajectory_timeout_s",
            0.5,
            "Plan age (now - its t0) that triggers a safe stop.",
            positive,
        ),
        Parameter("odometry_timeout_s", 0.2, "Odometry age that triggers a safe stop.", positive),
        Parameter("safe_stop_deceleration", 3.0, "Deceleration of a safe stop (m/s^2).", positive),
        Parameter(
            "safe_stop_jerk", 10.0, "How fast a stop's deceleration builds up (m/s^3).", positive
        ),
        Parameter(
            "odometry_loss_s",
            1.0,
            "Odometry age beyond which the car's motion counts as unknown: emergency stop.",
            positive,
        ),
        Parameter(
            "emergency_deceleration",
            6.0,
            "Deceleration of an emergency stop (m/s^2), at least the safe stop's.",
            positive,
        ),
        Parameter("wheelbase", 2.85, "Vehicle wheelbase (m).", positive),
        Parameter("max_steering_angle", 0.6, "Tire angle limit (rad).", positive),
        Parameter("lookahead_time", 1.0, "Pure-pursuit lookahead time (s).", positive),
    ),
    "simulator": (
        AUTOSTART,
        CAMERAS,
        CAMERA_NAMESPACE,
        FRAME_ID,
        RIG_FILE,
        Parameter("seed", 0, "Seed of the scenario to drive.", non_negative),
        Parameter(
            "scenario_type",
            "",
            "Type of the scenario; empty for the one the seed draws.",
            one_of(lambda: ("", *SCENARIO_TYPES)),
        ),
        Parameter(
            "duration_s",
            0.0,
            "Simulated seconds to drive; 0 for the scenario's own span (its sample time + 6.4 s).",
            non_negative,
        ),
        Parameter("width", 256, "Rendered image width in pixels.", positive),
        Parameter("height", 128, "Rendered image height in pixels.", positive),
        Parameter("rate_hz", 10.0, "Camera rate.", positive),
        Parameter(
            "control_rate_hz",
            50.0,
            "Rate of the vehicle step and the odometry; the control bridge's rate_hz.",
            positive,
        ),
        Parameter(
            "lockstep",
            True,
            "Hold simulated time after every step until the control bridge has answered it "
            "(and, after a camera set, until it tracks the plan made from those frames): "
            "deterministic and as fast as the stack allows. False runs in real time, where a "
            "slow stack is as slow as on a car.",
        ),
        LOCKSTEP_ANSWER_TIMEOUT,
        LOCKSTEP_START_TIMEOUT,
        LOCKSTEP_SUBSCRIBER,
        LOCKSTEP_SETTLE,
        SET_SPEED_SUBSCRIBER,
        Parameter(
            "planner",
            "stack",
            "Who plans: stack (the VLA and planner nodes, from the cameras) or expert (the "
            "ceiling: the world's expert plans from the closed-loop state and the control "
            "bridge tracks it; no cameras are rendered).",
            one_of(lambda: ("stack", "expert")),
        ),
        Parameter("steering_lag_s", 0.15, "Time constant of the steering actuator (s).", positive),
        Parameter("acceleration_lag_s", 0.25, "Time constant of drive and brakes (s).", positive),
        Parameter("odom_frame_id", "odom", "World-fixed frame of the odometry (REP-105)."),
        Parameter(
            "result_file",
            "",
            "Where to write the drive's closed-loop metrics (JSON) when it ends; empty: "
            "only logged and on /diagnostics.",
        ),
    ),
    "visualiser": (
        Parameter(
            "marker_lifetime_s",
            0.5,
            "RViz drops a marker not refreshed for this long, so a stalled plan vanishes.",
            positive,
        ),
    ),
    "foxglove_bridge": (
        Parameter(
            "host",
            "127.0.0.1",
            "Address the WebSocket server listens on (0.0.0.0: every interface, to view "
            "the car from another machine).",
            lambda value: None if value else "must name an address",
        ),
        Parameter(
            "port",
            8765,
            "WebSocket port (Foxglove's default 8765; 0 picks a free one).",
            lambda value: None if 0 <= value <= 65535 else "must be a port, 0..65535",
        ),
        Parameter(
            "discovery_period_s",
            1.0,
            "How often new topics are looked for and served.",
            positive,
        ),
    ),
}


SCHEMA: Mapping[str, tuple[Parameter, ...]] = {
    name: (*parameters, EXECUTOR) for name, parameters in _NODE_PARAMETERS.items()
}


def at_least(name: str, other: str) -> Callable[[Mapping[str, Any]], str | None]:
    """A rule between two parameters of one node: `name` no smaller than `other`."""

    def check(values: Mapping[str, Any]) -> str | None:
        if values[name] >= values[other]:
            return None
        return f"{name}: {values[name]!r} is below {other} ({values[other]!r}); must be at least it"

    return check


# Rules between the parameters of one node, checked once each value is valid on its own.
def mapped_cameras_configured(values: Mapping[str, Any]) -> str | None:
    """The topic map may name only the cameras the node is configured with."""
    try:
        topic_map.TopicMap.for_node(values["topic_map_file"], values["cameras"], "", "raw")
    except topic_map.TopicMapError as error:
        return f"topic_map_file: {error}"
    return None


def source_options_per_camera(values: Mapping[str, Any]) -> str | None:
    """The chosen source's per-camera list names one entry per camera."""
    source = values["source"]
    for parameter in SOURCE_OPTIONS:
        if parameter.name.startswith(f"{source}.") and isinstance(parameter.default, list):
            given = values[parameter.name]
            if len(given) != len(values["cameras"]):
                return (
                    f"{parameter.name}: {len(given)} entries for {len(values['cameras'])} "
                    f"cameras ({', '.join(values['cameras'])}); give one per camera"
                )
    return None


def lockstep_source(values: Mapping[str, Any]) -> str | None:
    """A live camera cannot wait for the stack: lock-step needs a source that owns its time."""
    if values["lockstep"] and values["source"] == "device":
        return (
            "lockstep: a device source runs in real time; lock-step needs a recording or synthetic"
        )
    return None


def simulator_step_grid(values: Mapping[str, Any]) -> str | None:
    """The simulator's rates on its world's step grid (world.simulation.step_grid_problem)."""
    problem = step_grid_problem(values["control_rate_hz"], values["rate_hz"])
    return f"control_rate_hz, rate_hz: {problem}" if problem else None


RELATIONS: Mapping[str, tuple[Callable[[Mapping[str, Any]], str | None], ...]] = {
    "camera_driver": (source_options_per_camera, lockstep_source),
    "simulator": (simulator_step_grid,),
    "vla_inference": (mapped_cameras_configured,),
    # A braking candidate beyond the feasibility bound would be refused as it is made.
    "diffusion_planner": (at_least("max_abs_acceleration", "stand_off_max_deceleration"),),
    "control_bridge": (
        # An emergency stop brakes harder than a safe stop, and starts later.
        at_least("emergency_deceleration", "safe_stop_deceleration"),
        at_least("odometry_loss_s", "odometry_timeout_s"),
    ),
}


def schema_for(node_name: str) -> tuple[Parameter, ...]:
    try:
        return SCHEMA[node_name]
    except KeyError:
        raise ParameterError(f"no parameter schema for node {node_name!r}") from None


def check_values(node_name: str, values: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """Validate one node's values, filling defaults; raise naming every problem at once.

    `source` (the parameter file) prefixes every message when given.
    """
    declared = {parameter.name: parameter for parameter in schema_for(node_name)}
    prefix = f"{source}: " if source else ""
    problems = [
        f"{prefix}{node_name}.{name}: unknown parameter (known: {', '.join(sorted(declared))})"
        for name in values
        if name not in declared and name not in BUILTIN_PARAMETERS
    ]
    resolved: dict[str, Any] = {}
    for name, parameter in declared.items():
        value = values.get(name, parameter.default)
        reason = parameter.validate(value)
        if reason:
            problems.append(f"{prefix}{node_name}.{name}: {reason}")
        resolved[name] = value
    if not problems:
        for relation in RELATIONS.get(node_name, ()):
            reason = relation(resolved)
            if reason:
                problems.append(f"{prefix}{node_name}.{reason}")
    if problems:
        raise ParameterError("\n".join(problems))
    return resolved


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ROS 2 reads them: `video: {files: [...]}` is `video.files`."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_parameter_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read a ROS 2 parameter file and return every node's resolved parameters.

    Supports the `/**` wildcard section; a node-specific value overrides a wildcard one.
    A wildcard parameter must be declared by at least one node.
    """
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"{path}: parameter file not found") from None
    except (OSError, UnicodeDecodeError) as error:  # a folder, no permission, not text
        raise ParameterError(f"{path}: cannot read the parameter file: {error}") from None
    except yaml.YAMLError as error:
        raise ParameterError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ParameterError(f"{path}: expected a mapping of node names to ros__parameters")

    sections: dict[str, dict[str, Any]] = {}
    for key, body in document.items():
        node_name = str(key).lstrip("/") if key != WILDCARD_NODE else WILDCARD_NODE
        if node_name != WILDCARD_NODE and node_name not in SCHEMA:
            raise ParameterError(f"{path}: unknown node {key!r} (known: {', '.join(SCHEMA)})")
        if not isinstance(body, dict) or not isinstance(body.get("ros__parameters"), dict):
            raise ParameterError(f"{path}: {key}: expected a 'ros__parameters' mapping")
        sections[node_name] = flatten(body["ros__parameters"])

    shared = sections.pop(WILDCARD_NODE, {})
    everywhere = {parameter.name for params in SCHEMA.values() for parameter in params}
    orphans = sorted(set(shared) - everywhere - BUILTIN_PARAMETERS)
    if orphans:
        raise ParameterError(f"{path}: /**: no node declares {', '.join(orphans)}")

    resolved = {}
    for node_name in SCHEMA:
        declared = {parameter.name for parameter in SCHEMA[node_name]} | BUILTIN_PARAMETERS
        values = {name: value for name, value in shared.items() if name in declared}
        values.update(sections.get(node_name, {}))
        resolved[node_name] = check_values(node_name, values, str(path))
    return resolved
