"""The whole graph over real DDS: frames in; reasoning, meta-action, trajectories and control
out, every output traceable to the camera frames it came from; and the watchdog stopping
the car when the plan goes stale."""

from __future__ import annotations

import itertools
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from alpamayo_ros_msgs.msg import ControlCommand
from parameter_files import parameter_file
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo

from alpamayo_ros.core.contract import CAMERA_ORDER, FRAMES_PER_CAMERA, TRAJECTORY_STEPS
from alpamayo_ros.graph import Topics, default_parameter_file
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.nodes.topic_monitor import TopicMonitor
from alpamayo_ros.ros.conversions import candidate_paths, stamp_ns


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


@pytest.fixture(params=["default"])
def observed_graph(
    request: pytest.FixtureRequest, rclpy_context: Context, tmp_path: Path
) -> Iterator[tuple[GraphProcesses, GraphObserver]]:
    """The graph on the packaged parameters, or with the backend named by the parameter."""
    backend = request.param
    params = default_parameter_file() if backend == "default" else parameter_file(tmp_path, backend)
    with GraphProcesses(params) as graph:
        observer = GraphObserver(rclpy_context)
        try:
            yield graph, observer
        finally:
            observer.executor.shutdown()
            observer.monitor.destroy_node()


OUTPUTS = (Topics.REASONING, Topics.META_ACTION, Topics.CANDIDATES, Topics.TRAJECTORY)


def traceable_trajectories(observer: GraphObserver) -> dict[int, object]:
    """Trajectories of inferences the observer saw whole: every output topic already
    matched before it and has delivered an output of it or a later one (ids only grow, and
    reliable topics lose nothing in between), and every input frame sent after it saw the
    cameras."""
    if not observer.frame_stamps or not all(observer.of(topic) for topic in OUTPUTS):
        return {}
    first_seen = min(min(stamps) for stamps in observer.frame_stamps.values())
    first_whole_id = max(observer.of(topic)[0].info.inference_id for topic in OUTPUTS)
    last_whole_id = min(observer.of(topic)[-1].info.inference_id for topic in OUTPUTS)
    return {
        t.info.inference_id: t
        for t in observer.of(Topics.TRAJECTORY)
        if first_whole_id <= t.info.inference_id <= last_whole_id
        and min(stamp_ns(s) for s in t.info.input_stamps) > first_seen
    }


def observe_traced_outputs(graph: GraphProcesses, observer: GraphObserver) -> dict[int, object]:
    """Run until three whole inferences and 20 tracking commands are seen; check that every
    output of an inference carries its input time t0 and names the frames it came from."""

    def explained() -> dict[int, object]:
        """Traceable trajectories whose reasoning text arrived too (it is written after
        the planner's input goes out, newest first, so some inferences have none)."""
        texts = {r.info.inference_id for r in observer.of(Topics.REASONING)}
        return {i: t for i, t in traceable_trajectories(observer).items() if i in texts}

    def enough() -> bool:
        return len(explained()) >= 3 and len(observer.commands(ControlCommand.MODE_TRACKING)) >= 20

    assert observer.spin_until(enough, timeout_s=60.0, graph=graph), dict(observer.monitor.counts)
    reasoning = {r.info.inference_id: r for r in observer.of(Topics.REASONING)}
    meta_actions = {m.info.inference_id: m for m in observer.of(Topics.META_ACTION)}
    candidates = {c.info.inference_id: c for c in observer.of(Topics.CANDIDATES)}
    published = set().union(*observer.frame_stamps.values())
    traceable = explained()
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
        assert len(trajectory.time_from_start) == TRAJECTORY_STEPS
        assert trajectory.time_from_start[-1] == pytest.approx(6.4)
        chosen = candidates[inference_id]
        assert chosen.selected_index == trajectory.sample_index
        first = trajectory.sample_index * TRAJECTORY_STEPS  # candidate-major columns
        assert list(chosen.x[first : first + TRAJECTORY_STEPS]) == list(trajectory.x)
        assert reasoning[inference_id].text
    trajectories = {t.info.inference_id: t for t in observer.of(Topics.TRAJECTORY)}
    for command in observer.commands(ControlCommand.MODE_TRACKING):
        plan = trajectories.get(command.inference_id)
        if plan is not None:
            assert command.trajectory_stamp == plan.header.stamp
        # The plan being tracked is fresh: its age, measured from t0, is well below 0.5 s.
        age_s = (stamp_ns(command.header.stamp) - stamp_ns(command.trajectory_stamp)) / 1e9
        assert 0.0 <= age_s < 0.5
    return traceable


@pytest.mark.parametrize("observed_graph", ["constant_velocity"], indirect=True)
def test_baseline_graph_frames_in_trajectory_and_control_out(observed_graph) -> None:
    """With the kinematic baseline every output is known exactly: its samples drive
    straight on at the speed of t0, and the planner takes one, or those speeds along the
    lane the cameras show (the last candidate; its reasoning keeps the lane)."""
    traceable = observe_traced_outputs(*observed_graph)
    candidates = {c.info.inference_id: c for c in observed_graph[1].of(Topics.CANDIDATES)}
    for inference_id, trajectory in traceable.items():
        assert trajectory.info.model_name == "constant_velocity"
        speed = trajectory.longitudinal_velocity_mps[0]
        sample = candidate_paths(candidates[inference_id])
        assert sample.x[0, -1] == pytest.approx(6.4 * speed, abs=0.05)
        assert sample.y[0, -1] == pytest.approx(0.0, abs=1e-6)
        np.testing.assert_allclose(trajectory.longitudinal_velocity_mps, speed, atol=1e-3)
        steps = np.hypot(np.diff(trajectory.x, prepend=0.0), np.diff(trajectory.y, prepend=0.0))
        assert steps.sum() == pytest.approx(6.4 * speed, abs=0.05)
        if trajectory.sample_index == 0:
            assert trajectory.y[-1] == pytest.approx(0.0, abs=1e-6)
        else:
            last = len(candidates[inference_id].scores) - 1
            assert trajectory.sample_index == last and abs(trajectory.y[-1]) < 1.75
    _, observer = observed_graph
    trajectories = {t.info.inference_id: t for t in observer.of(Topics.TRAJECTORY)}
    for command in observer.commands(ControlCommand.MODE_TRACKING):
        plan = trajectories.get(command.inference_id)
        if plan is not None:
            speed = plan.longitudinal_velocity_mps[0]
            assert command.velocity == pytest.approx(speed, abs=0.5)


def test_default_graph_runs_the_embedded_vla(observed_graph) -> None:
    traceable = observe_traced_outputs(*observed_graph)
    _, observer = observed_graph
    for meta in observer.of(Topics.META_ACTION):
        assert meta.info.model_name == "embedded_vla"
        assert sum(meta.longitudinal_probabilities) == pytest.approx(1.0, abs=1e-4)
        assert 0.0 < meta.longitudinal_confidence <= 1.0
    assert all(t.info.model_name == "embedded_vla" for t in traceable.values())


def test_watchdog_stops_the_car_when_the_planner_dies(observed_graph) -> None:
    graph, observer = observed_graph
    tracking = lambda: bool(observer.commands(ControlCommand.MODE_TRACKING))  # noqa: E731
    assert observer.spin_until(tracking, timeout_s=40.0, graph=graph)

    graph.processes["diffusion_planner"].send_signal(signal.SIGKILL)
    killed_ns = time.time_ns()
    last_tracking = observer.commands(ControlCommand.MODE_TRACKING)[-1]
    # The stop profile: from the speed at the takeover at 3 m/s^2 (built up at 10 m/s^3)
    # to zero, whatever the (open-loop, still driving) car reports meanwhile; 0.3 s for a
    # loaded machine's scheduling of the bridge's commands.
    bound_s = 0.5 + last_tracking.velocity / 3.0 + 0.5 * 3.0 / 10.0 + 0.3

    def stopped() -> bool:
        stops = observer.commands(ControlCommand.MODE_SAFE_STOP)
        return bool(stops) and stops[-1].velocity == 0.0

    assert observer.spin_until(stopped, timeout_s=bound_s + 2.0, graph=None)
    stops = observer.commands(ControlCommand.MODE_SAFE_STOP)
    assert "trajectory" in stops[0].reason and "old" in stops[0].reason
    velocities = [c.velocity for c in stops]
    assert all(later <= earlier for earlier, later in itertools.pairwise(velocities))
    zero_at = next(c for c in stops if c.velocity == 0.0).header.stamp
    assert stamp_ns(zero_at) - killed_ns < bound_s * 1e9
    # The launcher reports the death and leaves the rest running.
    (event,) = graph.supervise()
    assert event.startswith("node diffusion_planner exited with status -9; not respawned")

    # Then the VLA node: the bridge keeps commanding the stop, held at zero.
    graph.processes["vla_inference"].send_signal(signal.SIGKILL)
    seen = len(observer.of(Topics.CONTROL_COMMAND))
    assert observer.spin_until(
        lambda: len(observer.of(Topics.CONTROL_COMMAND)) > seen + 25, timeout_s=5.0, graph=None
    )
    graph.processes["vla_inference"].wait(10)  # reaped, however loaded the machine
    assert [e.split(";")[0] for e in graph.supervise()] == [
        "node vla_inference exited with status -9"
    ]
    held = observer.of(Topics.CONTROL_COMMAND)[seen:]
    assert all(c.velocity == 0.0 and c.mode == ControlCommand.MODE_SAFE_STOP for c in held)
    assert graph.processes["control_bridge"].poll() is None


def test_a_node_respawned_by_the_launcher_brings_tracking_back(rclpy_context: Context) -> None:
    with GraphProcesses(
        default_parameter_file(), respawn={"diffusion_planner"}, respawn_delay_s=0.2
    ) as graph:
        observer = GraphObserver(rclpy_context)
        try:
            tracking = lambda: bool(observer.commands(ControlCommand.MODE_TRACKING))  # noqa: E731
            assert observer.spin_until(tracking, timeout_s=40.0, graph=graph)
            graph.processes["diffusion_planner"].send_signal(signal.SIGKILL)
            stopping = lambda: bool(observer.commands(ControlCommand.MODE_SAFE_STOP))  # noqa: E731
            assert observer.spin_until(stopping, timeout_s=5.0, graph=None)
            stopped_at = len(observer.of(Topics.CONTROL_COMMAND))
            events: list[str] = []

            def tracking_again() -> bool:
                events.extend(graph.supervise())
                return any(
                    c.mode == ControlCommand.MODE_TRACKING
                    for c in observer.of(Topics.CONTROL_COMMAND)[stopped_at:]
                )

            assert observer.spin_until(tracking_again, timeout_s=40.0, graph=None), events
            assert graph.restarts == {"diffusion_planner": 1}
            assert events[-1] == "node diffusion_planner respawned (restart 1)"
        finally:
            observer.executor.shutdown()
            observer.monitor.destroy_node()


def test_watchdog_stops_the_car_when_the_odometry_stops(rclpy_context: Context) -> None:
    """The camera driver (the odometry's source) dies while the car is tracking: the bridge
    brakes on its profile, monotonically to zero within the odometry bound plus speed /
    deceleration, and escalates to the emergency deceleration once odometry is lost."""
    with GraphProcesses(default_parameter_file()) as graph:
        observer = GraphObserver(rclpy_context)
        try:
            tracking = lambda: bool(observer.commands(ControlCommand.MODE_TRACKING))  # noqa: E731
            assert observer.spin_until(tracking, timeout_s=40.0, graph=graph)
            graph.processes["camera_driver"].send_signal(signal.SIGKILL)
            killed_ns = time.time_ns()
            speed = observer.commands(ControlCommand.MODE_TRACKING)[-1].velocity
            bound_s = 0.2 + speed / 3.0 + 0.5 * 3.0 / 10.0 + 0.3
            seen = len(observer.of(Topics.CONTROL_COMMAND))

            def stopped() -> bool:
                after = observer.of(Topics.CONTROL_COMMAND)[seen:]
                return any(
                    c.velocity == 0.0 and c.mode != ControlCommand.MODE_TRACKING for c in after
                )

            assert observer.spin_until(stopped, timeout_s=bound_s + 2.0, graph=None)
            observer.spin_until(lambda: False, timeout_s=1.5, graph=None)  # odometry lost
            after = [
                c
                for c in observer.of(Topics.CONTROL_COMMAND)[seen:]
                if c.mode != ControlCommand.MODE_TRACKING
            ]
            # Every stop once the odometry is past its 0.2 s bound names it (with the plan
            # where that went stale too: the driver's frames stopped with it; on a loaded
            # machine the plan can be the first to go).
            named = [c.reason for c in after if stamp_ns(c.header.stamp) - killed_ns > 0.3e9]
            assert named and all("odometry" in reason for reason in named), set(named)
            velocities = [c.velocity for c in after]
            assert all(later <= earlier for earlier, later in itertools.pairwise(velocities))
            zero_at = next(c for c in after if c.velocity == 0.0).header.stamp
            assert stamp_ns(zero_at) - killed_ns < bound_s * 1e9
            assert after[-1].mode == ControlCommand.MODE_EMERGENCY_STOP
            assert graph.processes["control_bridge"].poll() is None
        finally:
            observer.executor.shutdown()
            observer.monitor.destroy_node()
