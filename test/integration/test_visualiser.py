"""The visualiser node over real DDS: planner and reasoning messages in, RViz markers and
the selected path out; a malformed message is reported on /diagnostics, not a crash."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np
from alpamayo_ros_msgs.msg import InferenceInfo, Reasoning, TrajectoryCandidates
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Point
from nav_msgs.msg import Path
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.backends.constant_velocity import ConstantVelocityBackend
from alpamayo_ros.core.kinematics import EgoState
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.core.model_io import MetaActionEstimate, PlannerInput
from alpamayo_ros.core.trajectory_checks import Selection
from alpamayo_ros.graph import NODES, Topics, default_parameter_file
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.pipeline.planning import PlanningStep
from alpamayo_ros.ros.conversions import candidates_msg, stamp_ns, time_msg
from alpamayo_ros.visualisation.markers import CANDIDATES_NS, CAUSE_NS, REASONING_NS

VISUALISER = next(spec for spec in NODES if spec.name == "visualiser")
T0_NS = 1_700_000_000_500_000_000
HEADER = Header(stamp=time_msg(T0_NS), frame_id="base_link")


def candidates(selected: int, feasible: list[bool]) -> TrajectoryCandidates:
    """K constant-velocity plans at 8 m/s as the planner would publish them."""
    ego = PlannerInput(
        EgoState(8.0, 0.0, 0.0, 0.0),
        MetaActionEstimate.certain(Longitudinal.MAINTAIN_SPEED, Lateral.GO_STRAIGHT),
    )
    plan = PlanningStep(ConstantVelocityBackend(), len(feasible)).plan(ego, T0_NS)
    selection = Selection(
        None if selected == TrajectoryCandidates.NONE_SELECTED else selected,
        np.array(feasible),
        tuple(() if f else ("rejected",) for f in feasible),
    )
    return candidates_msg(
        plan.rollouts, plan.scores, selection, HEADER, InferenceInfo(inference_id=3)
    )


def test_markers_and_path_over_dds(rclpy_context: Context) -> None:
    received: dict[str, list] = defaultdict(list)
    node = Node("visualiser_probe", context=rclpy_context)
    publish_candidates = node.create_publisher(TrajectoryCandidates, Topics.CANDIDATES, 10)
    publish_reasoning = node.create_publisher(Reasoning, Topics.REASONING, 10)
    for msg_type, topic in (
        (MarkerArray, Topics.MARKERS),
        (Path, Topics.PATH),
        (DiagnosticArray, Topics.DIAGNOSTICS),
    ):
        node.create_subscription(msg_type, topic, received[topic].append, 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    reasoning = Reasoning(header=HEADER, text="Stop for the pedestrian crossing ahead.")
    reasoning.cause_object_id = "pedestrian"
    reasoning.cause_object_position = Point(x=18.0, y=-2.0, z=0.9)
    malformed = candidates(0, [True, True])
    malformed.selected_index = 9

    def namespaces() -> set[str]:
        return {m.ns for array in received[Topics.MARKERS] for m in array.markers}

    def skipped() -> bool:
        return any(
            status.level == DiagnosticStatus.WARN and "candidates skipped" in status.message
            for array in received[Topics.DIAGNOSTICS]
            for status in array.status
        )

    def publish_until(condition: Callable[[], bool], *messages: tuple) -> bool:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            graph.check()
            for publisher, msg in messages:
                publisher.publish(msg)
            for _ in range(4):
                executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return False

    try:
        with GraphProcesses(default_parameter_file(), nodes=(VISUALISER,)) as graph:
            assert publish_until(
                lambda: (
                    {CANDIDATES_NS, REASONING_NS, CAUSE_NS} <= namespaces()
                    and bool(received[Topics.PATH])
                ),
                (publish_candidates, candidates(1, [True, True, False])),
                (publish_reasoning, reasoning),
            ), graph.output("visualiser")
            assert publish_until(skipped, (publish_candidates, malformed))
            graph.check()  # still running
    finally:
        executor.shutdown()
        node.destroy_node()
    for array in received[Topics.MARKERS]:
        assert all(stamp_ns(m.header.stamp) == T0_NS for m in array.markers)
        assert all(m.header.frame_id == "base_link" for m in array.markers)
    path = received[Topics.PATH][0]
    assert stamp_ns(path.header.stamp) == T0_NS and len(path.poses) == 64
