"""The whole graph over real DDS: frames in; reasoning, meta-action, trajectories and control
out, every output traceable to the camera frames it came from; and the watchdog stopping
the car when the plan goes stale."""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import pytest
from alpamayo_ros_msgs.msg import ControlCommand
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo

from alpamayo_ros.core.contract import CAMERA_ORDER, FRAMES_PER_CAMERA, TRAJECTORY_STEPS
from alpamayo_ros.graph import Topics, default_parameter_file
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.nodes.conversions import duration_ns, stamp_ns
from alpamayo_ros.nodes.topic_monitor import TopicMonitor


class GraphObserver:
    """A TopicMonitor plus the stamps of every camera frame the driver published."""

    def __init__(self, context: Context) -> None:
        self.monitor = TopicMonitor(context=context)
        self.frame_stamps: dict[str, set[int]] = defaultdict(set)
        for camera in CAMERA_ORDER:
            # CameraInfo carries the same stamp as its Image and is cheap to receive.
            self.monitor.create_subscription(
                CameraInfo,
                f"/sensing/camera/{camera}/camera_info",
                lambda msg, camera=camera: self.frame_stamps[camera].add(
                    stamp_ns(msg.header.stamp)
                ),
                qos_profile_sensor_data,
            )
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.monitor)

    def spin_until(
        self, condition: Callable[[], bool], timeout_s: float, graph: GraphProcesses | None
    ) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if graph is not None:
                graph.check()
            self.executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return False

    def of(self, topic: str) -> list:
        return self.monitor.messages[topic]

    def commands(self, mode: int) -> list[ControlCommand]:
        return [c for c in self.of(Topics.CONTROL_COMMAND) if c.mode == mode]


@pytest.fixture
def observed_graph(rclpy_context: Context) -> Iterator[tuple[GraphProcesses, GraphObserver]]:
    with GraphProcesses(default_parameter_file()) as graph:
        observer = GraphObserver(rclpy_context)
        try:
            yield graph, observer
        finally:
            observer.executor.shutdown()
            observer.monitor.destroy_node()


OUTPUTS = (Topics.REASONING, Topics.META_ACTION, Topics.CANDIDATES, Topics.TRAJECTORY)


def traceable_trajectories(observer: GraphObserver) -> dict[int, object]:
    """Trajectories of inferences the observer saw whole: every output topic already
    matched (ids only grow, and reliable topics lose nothing after that) and every input
    frame sent after it saw the cameras."""
    if not observer.frame_stamps or not all(observer.of(topic) for topic in OUTPUTS):
        return {}
    first_seen = min(min(stamps) for stamps in observer.frame_stamps.values())
    first_whole_id = max(observer.of(topic)[0].info.inference_id for topic in OUTPUTS)
    return {
        t.info.inference_id: t
        for t in observer.of(Topics.TRAJECTORY)
        if t.info.inference_id >= first_whole_id
        and min(stamp_ns(s) for s in t.info.input_stamps) > first_seen
    }


def test_frames_in_reasoning_trajectory_and_control_out(observed_graph) -> None:
    graph, observer = observed_graph

    def enough() -> bool:
        return (
            len(traceable_trajectories(observer)) >= 3
            and len(observer.commands(ControlCommand.MODE_TRACKING)) >= 20
        )

    assert observer.spin_until(enough, timeout_s=40.0, graph=graph), dict(observer.monitor.counts)

    reasoning = {r.info.inference_id: r for r in observer.of(Topics.REASONING)}
    meta_actions = {m.info.inference_id: m for m in observer.of(Topics.META_ACTION)}
    trajectories = {t.info.inference_id: t for t in observer.of(Topics.TRAJECTORY)}
    candidates = {c.info.inference_id: c for c in observer.of(Topics.CANDIDATES)}
    published = set().union(*observer.frame_stamps.values())
    traceable = traceable_trajectories(observer)

    for inference_id, trajectory in traceable.items():
        t0 = stamp_ns(trajectory.header.stamp)
        # One inference, one input time: every output carries t0, not its publish time.
        for output in (reasoning, meta_actions, candidates):
            assert stamp_ns(output[inference_id].header.stamp) == t0
        assert trajectory.header.frame_id == "base_link"
        # t0 and all 16 input stamps are stamps of frames the camera driver published.
        inputs = [stamp_ns(s) for s in trajectory.info.input_stamps]
        assert len(inputs) == len(CAMERA_ORDER) * FRAMES_PER_CAMERA
        assert set(inputs) <= published
        assert t0 in published and max(inputs) <= t0 + 20_000_000
        assert trajectory.info.model_name == "constant_velocity"
        assert len(trajectory.points) == TRAJECTORY_STEPS
        assert duration_ns(trajectory.points[-1].time_from_start) == 6_400_000_000
        # The synthetic ego drives straight at 10 m/s: the baseline plans 64 m ahead.
        assert trajectory.points[-1].pose.position.x == pytest.approx(64.0, abs=1.0)
        chosen = candidates[inference_id]
        assert chosen.candidates[chosen.selected_index] == trajectory

    for command in observer.commands(ControlCommand.MODE_TRACKING):
        plan = trajectories.get(command.inference_id)
        if plan is not None:
            assert command.trajectory_stamp == plan.header.stamp
        assert command.velocity == pytest.approx(10.0, abs=0.5)
        assert abs(command.steering_tire_angle) < 0.02
        # The plan being tracked is fresh: its age, measured from t0, is well below 0.5 s.
        age_s = (stamp_ns(command.header.stamp) - stamp_ns(command.trajectory_stamp)) / 1e9
        assert 0.0 <= age_s < 0.5


def test_watchdog_stops_the_car_when_the_planner_dies(observed_graph) -> None:
    graph, observer = observed_graph
    tracking = lambda: bool(observer.commands(ControlCommand.MODE_TRACKING))  # noqa: E731
    assert observer.spin_until(tracking, timeout_s=40.0, graph=graph)

    graph.processes["diffusion_planner"].send_signal(signal.SIGINT)
    stopping = lambda: bool(observer.commands(ControlCommand.MODE_SAFE_STOP))  # noqa: E731
    assert observer.spin_until(stopping, timeout_s=5.0, graph=None)
    safe_stop = observer.commands(ControlCommand.MODE_SAFE_STOP)[0]
    assert safe_stop.acceleration == pytest.approx(-3.0)
    assert "trajectory" in safe_stop.reason and "old" in safe_stop.reason
