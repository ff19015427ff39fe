"""Replays are reproducible: a recorded drive replayed twice into the same VLA and planner
nodes, the first time without its first second of camera frames, gives identical
trajectories (and candidates) at every t0 both replays planned.

Why it holds: the VLA is deterministic given the frames and ego history it aligns to t0,
and the planner's sampling noise is a pure function of (seed, t0) (planning.sampling_rng),
not of how many plans came before. So neither the lost frames, nor the t0s a loaded model
skips, nor the plans of the other replay (the nodes are not restarted; the clock jumping
back resets their input buffers) change what is planned at a given t0.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from alpamayo_ros_msgs.msg import PlannerConditioning, Trajectory, TrajectoryCandidates
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
from recorded_drive import CAMERA_TOPICS, SPECS, record_drive, spin_until, trajectory_array

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.frame_alignment import DEFAULT_JITTER_TOLERANCE_NS
from alpamayo_ros.graph import Topics, default_parameter_file
from alpamayo_ros.launcher import GraphProcesses
from alpamayo_ros.nodes.bag_player import BagPlayerNode
from alpamayo_ros.replay.bag import BagRecorder, bag_contents, read_messages
from alpamayo_ros.ros.conversions import TRAJECTORY_COLUMNS, stamp_ns
from alpamayo_ros.ros.runtime import message_class

DROPPED_NS = 1 * NS_PER_S  # camera messages of the bag's first second are lost
MODEL_INPUT_SPAN_NS = 300_000_000  # the model needs frames at t0-0.3 s .. t0
DRAIN_S = 3.0  # after a play, what the nodes still publish arrives within this
TOLERANCE = 1e-9

Play = dict[str, dict[int, Any]]  # topic -> t0 -> message


def drop_first_camera_second(source: Path, target: Path) -> int:
    """Copy of `source` without the camera frames (image_raw and camera_info) of the bag's
    first second, odometry whole, byte for byte at the recorded receive times; returns the
    bag's start. A frame's time is its stamp, the time t0 is counted in (it is received up
    to ~0.1 s later)."""
    contents = bag_contents(source)
    with BagRecorder(target) as bag:
        for topic, msgtype in contents.topics.items():
            bag.add_topic(topic, msgtype)
        for message in read_messages(source):
            if message.topic in CAMERA_TOPICS:
                frame = deserialize_message(message.raw, message_class(message.msgtype))
                if stamp_ns(frame.header.stamp) < contents.start_ns + DROPPED_NS:
                    continue
            bag.write(message.topic, message.timestamp_ns, message.raw)
    return contents.start_ns


def camera_stamps(path: Path) -> list[int]:
    return [
        stamp_ns(deserialize_message(m.raw, message_class(m.msgtype)).header.stamp)
        for m in read_messages(path, CAMERA_TOPICS)
    ]


def quaternion(pose: Any) -> tuple[float, float, float, float]:
    q = pose.orientation
    return q.x, q.y, q.z, q.w


# Every number of every candidate.
CANDIDATE_COLUMNS = (*TRAJECTORY_COLUMNS, "scores")


class Outputs:
    """What the VLA and the planner publish, per replay, keyed by t0."""

    def __init__(self, node: Node) -> None:
        self.lock = threading.Lock()
        self.plays: list[Play] = []
        self.next_play()
        depth = QoSProfile(depth=200)
        for topic, kind in (
            (Topics.TRAJECTORY, Trajectory),
            (Topics.CANDIDATES, TrajectoryCandidates),
            (Topics.CONDITIONING, PlannerConditioning),
        ):
            node.create_subscription(kind, topic, lambda msg, t=topic: self.add(t, msg), depth)

    def next_play(self) -> None:
        with self.lock:
            self.plays.append(
                {Topics.TRAJECTORY: {}, Topics.CANDIDATES: {}, Topics.CONDITIONING: {}}
            )

    def add(self, topic: str, msg: Any) -> None:
        with self.lock:
            by_t0 = self.plays[-1][topic]
            t0_ns = stamp_ns(msg.header.stamp)
            assert t0_ns not in by_t0, f"{topic}: two outputs at t0 {t0_ns} in one replay"
            by_t0[t0_ns] = msg


def differences(t0_ns: int, first: Play, second: Play) -> list[str]:
    """What differs at t0 between two replays, from the VLA's input to the selected plan."""
    found = []
    conditioning = [play[Topics.CONDITIONING].get(t0_ns) for play in (first, second)]
    if None not in conditioning:
        a, b = conditioning
        if [stamp_ns(s) for s in a.info.input_stamps] != [stamp_ns(s) for s in b.info.input_stamps]:
            found.append("camera frames used (info.input_stamps)")
        poses = [
            np.array([(p.position.x, p.position.y, p.position.z, *quaternion(p)) for p in c])
            for c in (a.ego_history, b.ego_history)
        ]
        if not np.array_equal(*poses):
            found.append(f"ego history (max diff {np.abs(poses[0] - poses[1]).max():.3g})")
        if (a.speed_mps, a.acceleration_mps2, a.yaw_rate_rps) != (
            b.speed_mps,
            b.acceleration_mps2,
            b.yaw_rate_rps,
        ):
            found.append("ego state")
        if a.reasoning.text != b.reasoning.text:
            found.append(f"reasoning text ({a.reasoning.text!r} vs {b.reasoning.text!r})")
        if (a.meta_action.longitudinal, a.meta_action.lateral) != (
            b.meta_action.longitudinal,
            b.meta_action.lateral,
        ):
            found.append("meta-action")
        latents = np.asarray(a.latent), np.asarray(b.latent)
        if latents[0].shape != latents[1].shape or not np.array_equal(*latents):
            found.append("conditioning latent")
    candidates = [play[Topics.CANDIDATES].get(t0_ns) for play in (first, second)]
    if None not in candidates:
        a, b = candidates
        for column in CANDIDATE_COLUMNS:
            x, y = np.asarray(getattr(a, column)), np.asarray(getattr(b, column))
            if x.shape != y.shape or not np.allclose(x, y, rtol=0, atol=TOLERANCE):
                found.append(f"candidates' {column}")
        if a.selected_index != b.selected_index:
            found.append(f"selected index ({a.selected_index} vs {b.selected_index})")
        if list(a.feasible) != list(b.feasible):
            found.append("feasibility")
    trajectories = [play[Topics.TRAJECTORY].get(t0_ns) for play in (first, second)]
    if None not in trajectories:
        a, b = trajectories
        x, y = trajectory_array(a), trajectory_array(b)
        if x.shape != y.shape or not np.allclose(x, y, rtol=0, atol=TOLERANCE):
            found.append("selected trajectory")
        if a.sample_index != b.sample_index:
            found.append("selected sample index")
    return found


def test_replay_losing_its_first_second_plans_the_same_at_every_common_t0(
    rclpy_context: Context, tmp_path: Path
) -> None:
    full_bag, truncated_bag = tmp_path / "drive", tmp_path / "drive_truncated"
    record_drive(rclpy_context, full_bag, messages_per_topic=50)
    start_ns = drop_first_camera_second(full_bag, truncated_bag)
    recorded, kept = camera_stamps(full_bag), camera_stamps(truncated_bag)
    assert min(recorded) < start_ns + DROPPED_NS <= min(kept), "no frames were lost"
    assert len(recorded) - len(kept) >= 4 * 2 * 8, (len(recorded), len(kept))

    probe = Node("probe", context=rclpy_context)
    outputs = Outputs(probe)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(probe)
    nodes = (SPECS["vla_inference"], SPECS["diffusion_planner"])
    try:
        with GraphProcesses(default_parameter_file(), use_sim_time=True, nodes=nodes) as graph:
            players = [
                BagPlayerNode(path, context=rclpy_context) for path in (truncated_bag, full_bag)
            ]
            try:
                ready = lambda: (  # noqa: E731
                    all(
                        player.publishers_by_topic[CAMERA_TOPICS[0]].get_subscription_count() > 0
                        for player in players
                    )
                    and probe.count_subscribers(Topics.CONDITIONING) >= 2  # planner and probe
                    and probe.count_publishers(Topics.CONDITIONING) >= 1
                    and probe.count_publishers(Topics.TRAJECTORY) >= 1
                )
                assert spin_until(executor, ready, 30.0, graph.check)
                time.sleep(1.0)  # the nodes' other subscriptions match in the meantime
                for index, player in enumerate(players):
                    if index:
                        outputs.next_play()  # the clock jumps back: the nodes reset
                    playing = threading.Thread(target=player.play)
                    playing.start()
                    while playing.is_alive():
                        executor.spin_once(timeout_sec=0.05)
                    playing.join()
                    spin_until(executor, lambda: False, DRAIN_S)  # what the nodes still publish
                    graph.check()
            finally:
                for player in players:
                    player.destroy_node()
    finally:
        executor.shutdown()
        probe.destroy_node()

    truncated, full = outputs.plays
    # The replays are told apart right: every output of the second came from a later
    # inference of the VLA node than every output of the first.
    ids = [
        [m.info.inference_id for by_t0 in play.values() for m in by_t0.values()]
        for play in (truncated, full)
    ]
    assert max(ids[0]) < min(ids[1]), ids
    truncated_plans = truncated[Topics.TRAJECTORY]
    full_plans = full[Topics.TRAJECTORY]
    assert truncated_plans and full_plans, (len(truncated_plans), len(full_plans))
    # The truncated replay ran on the truncated bag: nothing at a t0 before the model had
    # 0.3 s of frames after the lost second (a frame may serve a target up to the jitter
    # tolerance before it).
    earliest = min(truncated[Topics.CONDITIONING] | truncated_plans)
    first_t0 = start_ns + DROPPED_NS + MODEL_INPUT_SPAN_NS - DEFAULT_JITTER_TOLERANCE_NS
    assert earliest >= first_t0, (earliest - start_ns) / 1e9

    common = sorted(truncated_plans.keys() & full_plans.keys())
    assert len(common) >= 5, (sorted(truncated_plans), sorted(full_plans))
    differing = [
        f"t0 = bag start + {(t0 - start_ns) / 1e9:.3f} s: {', '.join(found)}"
        for t0 in sorted(
            (truncated[Topics.CANDIDATES].keys() & full[Topics.CANDIDATES].keys()) | set(common)
        )
        if (found := differences(t0, truncated, full))
    ]
    assert not differing, "the replays differ at\n" + "\n".join(differing)
    for t0 in common:
        assert truncated_plans[t0].sample_index == full_plans[t0].sample_index
        np.testing.assert_allclose(
            trajectory_array(truncated_plans[t0]),
            trajectory_array(full_plans[t0]),
            rtol=0,
            atol=TOLERANCE,
            err_msg=f"trajectory at t0 = bag start + {(t0 - start_ns) / 1e9:.3f} s",
        )
