"""Lock-step playback of a user's recording: the camera driver owns the time (publishes
/clock, every other node on use_sim_time) and holds it after each camera set until the
planner's trajectory for those frames arrives.

A video per camera with a poses file, played twice through the camera driver, the VLA
node (embedded model) and the planner, gives the same trajectories stamp for stamp, one
per camera set after the model's warm-up, each answered within the bound; the driver says
when the recording has ended (once its last camera set is answered, not when its last
frames go out) and how fast the run went. A planner that finds no feasible
plan answers the frames by its candidates, so the clock goes on at once. A bag that logged
the planner's set speed gives it to the planner as it was logged.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
from alpamayo_ros_msgs.msg import Trajectory
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
from parameter_files import NO_STAND_OFF, parameter_file
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from recorded_bags import ODOMETRY_TOPIC, camera_topic, write_drive_bag
from recorded_drive import SPECS, spin_until, trajectory_array
from sensor_msgs.msg import Image
from user_recordings import SECONDS, record

from alpamayo_ros.core.contract import CAMERA_ORDER, HISTORY_PERIOD_NS, HISTORY_POSES, NS_PER_S
from alpamayo_ros.graph import Topics
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.ros.conversions import stamp_ns

FRAME_PERIOD_NS = 100_000_000
START_NS = NS_PER_S  # lock-step's fixed first stamp
WARMUP_NS = (HISTORY_POSES - 1) * HISTORY_PERIOD_NS
ENDED = "the recording has ended: nothing more to publish"


def play(
    context: Context,
    directory: Path,
    options: dict[str, object],
    planner: dict[str, object] | None = None,
) -> tuple[dict[int, np.ndarray], dict[str, str]]:
    """One lock-step run to the recording's end: the trajectories by t0 and the driver's
    final diagnostic values."""
    params = parameter_file(
        directory,
        "embedded_vla",
        # The probe below is a listener outside the graph: the clock holds long enough at
        # the start for it to match the planner's trajectories.
        camera_driver={
            "source": "video",
            "video": options,
            "lockstep": True,
            "lockstep_settle_s": 2.0,
            # No answer times out on a loaded machine either (the first pays torch's
            # first-call cost): the runs compare every trajectory.
            "lockstep_answer_timeout_s": 10.0,
        },
        diffusion_planner=planner or {},
    )
    node = Node("lockstep_probe", context=context)
    trajectories: dict[int, np.ndarray] = {}

    def on_trajectory(msg: Trajectory) -> None:
        t0 = stamp_ns(msg.header.stamp)
        assert t0 not in trajectories, f"two trajectories at t0 {t0}"
        trajectories[t0] = trajectory_array(msg)

    node.create_subscription(Trajectory, Topics.TRAJECTORY, on_trajectory, QoSProfile(depth=200))
    statuses = run_to_the_end(node, params, lambda: f"{len(trajectories)} trajectories")
    ended = next(s for s in statuses if is_the_end(s))
    return trajectories, {value.key: value.value for value in ended.values}


def is_the_end(status: DiagnosticStatus) -> bool:
    return status.name.endswith("camera_driver") and status.message == ENDED


def run_to_the_end(
    node: Node,
    params: Path,
    progress: Callable[[], str],
    names: tuple[str, ...] = ("camera_driver", "vla_inference", "diffusion_planner"),
) -> list[DiagnosticStatus]:
    """The nodes named (by default the camera driver, the VLA node and the planner) in
    lock-step until the driver says the recording has ended, `node` (the probe) spinning
    meanwhile; every /diagnostics status heard. `progress` says how far it got if it does
    not end."""
    statuses: list[DiagnosticStatus] = []
    node.create_subscription(
        DiagnosticArray, Topics.DIAGNOSTICS, lambda msg: statuses.extend(msg.status), 50
    )
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    nodes = tuple(SPECS[name] for name in names)
    try:
        with GraphProcesses(params, use_sim_time=True, nodes=nodes) as graph:
            ended = spin_until(executor, lambda: any(map(is_the_end, statuses)), 180.0, graph.check)
            assert ended, f"the recording did not end; {progress()}"
            spin_until(executor, lambda: False, 0.5)  # anything still on its way
    finally:
        executor.shutdown()
        node.destroy_node()
    return statuses


def test_a_recording_replayed_in_lockstep_twice_gives_identical_trajectories(
    rclpy_context: Context, tmp_path: Path
) -> None:
    options = record(tmp_path, "video")
    runs = []
    for run in ("first", "second"):
        directory = tmp_path / run
        directory.mkdir()
        runs.append(play(rclpy_context, directory, options))
    (first, first_values), (second, second_values) = runs

    frame_sets = SECONDS * NS_PER_S // FRAME_PERIOD_NS
    answerable = [
        START_NS + k * FRAME_PERIOD_NS
        for k in range(frame_sets)
        if k * FRAME_PERIOD_NS >= WARMUP_NS
    ]
    for trajectories, values in runs:
        # One trajectory per camera set after the warm-up, and none timed out.
        assert sorted(trajectories) == answerable, (values, sorted(trajectories))
        assert values["lockstep_answered"] == str(len(answerable))
        assert values["lockstep_timeouts"] == "0"
        assert float(values["lockstep_speed"]) > 0.0
    for t0 in answerable:
        assert np.array_equal(first[t0], second[t0]), f"trajectories differ at t0 {t0}"
    assert all(b - a == FRAME_PERIOD_NS for a, b in itertools.pairwise(answerable))
    print(f"lock-step speed: {first_values['lockstep_speed']}x, {second_values['lockstep_speed']}x")


def test_the_end_is_said_once_the_last_camera_set_is_answered(
    rclpy_context: Context, tmp_path: Path
) -> None:
    """The probe stands in for the stack and answers each camera set at once, but the last
    one only after 2.5 s (within the answer bound, but slower than the driver's
    once-a-second diagnostics). The last frames go out before that answer, yet the driver
    says the recording has ended only after it, with every camera set answered."""
    options = record(tmp_path, "video")
    params = parameter_file(
        tmp_path,
        "embedded_vla",
        camera_driver={
            "source": "video",
            "video": options,
            "lockstep": True,
            "lockstep_settle_s": 0.5,
            "lockstep_subscriber": "answer_probe",
            "lockstep_answer_timeout_s": 10.0,
        },
    )
    node = Node("answer_probe", context=rclpy_context)
    answers = node.create_publisher(Trajectory, Topics.TRAJECTORY, 10)
    frame_sets = SECONDS * NS_PER_S // FRAME_PERIOD_NS
    last_ns = START_NS + (frame_sets - 1) * FRAME_PERIOD_NS
    answered: list[int] = []

    def answer(stamp: int) -> None:
        msg = Trajectory()
        msg.header.stamp = Time(nanoseconds=stamp).to_msg()
        answers.publish(msg)
        answered.append(stamp)

    def answer_last() -> None:
        late.cancel()
        answer(last_ns)

    late = node.create_timer(2.5, answer_last, autostart=False)

    def on_image(msg: Image) -> None:
        stamp = stamp_ns(msg.header.stamp)
        if stamp - START_NS < WARMUP_NS or stamp in answered:
            return
        if stamp == last_ns:
            late.reset()
        else:
            answer(stamp)

    def ignore(msg: object) -> None:
        pass

    for camera in CAMERA_ORDER:
        callback = on_image if camera == CAMERA_ORDER[0] else ignore
        node.create_subscription(Image, camera_topic(camera), callback, qos_profile_sensor_data)
    node.create_subscription(Odometry, Topics.ODOMETRY, ignore, qos_profile_sensor_data)
    ended_before_the_last_answer: list[bool] = []
    node.create_subscription(
        DiagnosticArray,
        Topics.DIAGNOSTICS,
        lambda msg: ended_before_the_last_answer.extend(
            last_ns not in answered for status in msg.status if is_the_end(status)
        ),
        50,
    )
    statuses = run_to_the_end(node, params, lambda: f"answered {answered}", ("camera_driver",))

    assert ended_before_the_last_answer and not any(ended_before_the_last_answer)
    ended = {v.key: v.value for v in next(s for s in statuses if is_the_end(s)).values}
    answerable = sum(k * FRAME_PERIOD_NS >= WARMUP_NS for k in range(frame_sets))
    assert len(answered) == answerable
    assert ended["lockstep_answered"] == str(answerable)
    assert ended["lockstep_timeouts"] == "0"


def test_camera_sets_with_no_feasible_plan_are_answered_by_the_candidates(
    rclpy_context: Context, tmp_path: Path
) -> None:
    """Every sample accelerates a little, so an acceleration bound of 1e-6 m/s^2 leaves no
    feasible plan: no trajectory comes, and a driver that waited for one would hold each
    camera set for its whole answer bound."""
    options = record(tmp_path, "video")
    trajectories, values = play(
        rclpy_context,
        tmp_path,
        options,
        planner={"max_abs_acceleration": 1e-6, **NO_STAND_OFF},
    )
    assert trajectories == {}
    frame_sets = SECONDS * NS_PER_S // FRAME_PERIOD_NS
    answerable = sum(k * FRAME_PERIOD_NS >= WARMUP_NS for k in range(frame_sets))
    assert values["lockstep_answered"] == str(answerable)
    assert values["lockstep_timeouts"] == "0"


def test_a_bag_replayed_in_lockstep_gives_the_planner_its_logged_set_speed(
    rclpy_context: Context, tmp_path: Path
) -> None:
    """A free road driven at about 13 m/s, recorded with the planner's set speed of 16:
    replayed by the camera driver in lock-step, the planner has the set speed the bag
    logged (the clock starts once it subscribes), as `evaluate --bag` plans with it."""
    bag = tmp_path / "drive"
    write_drive_bag(bag, 3000701, "free_road", 3.0, set_speed=16.0)
    params = parameter_file(
        tmp_path,
        "embedded_vla",
        camera_driver={
            "source": "bag",
            "bag": {
                "path": str(bag),
                "topics": [camera_topic(camera) for camera in CAMERA_ORDER],
                "odometry_topic": ODOMETRY_TOPIC,
            },
            "lockstep": True,
            "lockstep_settle_s": 2.0,
        },
    )
    node = Node("set_speed_probe", context=rclpy_context)
    statuses = run_to_the_end(node, params, lambda: "")
    planner = [s for s in statuses if s.name.endswith("diffusion_planner")]
    set_speed = {value.key: value.value for value in planner[-1].values}["set_speed_mps"]
    assert set_speed == "16.0", [s.message for s in planner]
