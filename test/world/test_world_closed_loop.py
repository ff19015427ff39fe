"""The closed-loop world: the expert's world around an ego the commands drive, the expert
at the wheel until the handover."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpamayo_ros.core.contract import CAMERA_ORDER, NS_PER_S, TRAJECTORY_STEPS
from alpamayo_ros.core.meta_actions import Lateral
from alpamayo_ros.core.meta_actions import label_meta_action as meta_action_of
from alpamayo_ros.world.closed_loop import DEFAULT_HANDOVER_NS, ClosedLoopWorld, Command
from alpamayo_ros.world.simulation import causal_decision, future_rollout

STEP_NS = 20_000_000  # 50 Hz control
SEED = 3


def test_the_expert_drives_until_the_handover_exactly_as_in_its_own_run() -> None:
    world = ClosedLoopWorld(SEED)
    while world.expert_driving:
        world.step(STEP_NS, Command(0.5, -5.0))  # ignored before the handover
        if world.now_ns % 100_000_000 == 0:
            k = world.now_ns // 100_000_000
            expert = world.expert.ego[k]
            assert (world.ego.x, world.ego.y, world.ego.yaw, world.ego.v) == pytest.approx(
                (expert.x, expert.y, expert.yaw, expert.v)
            )
    assert world.now_ns == DEFAULT_HANDOVER_NS


def test_after_the_handover_the_commands_drive() -> None:
    world = ClosedLoopWorld(SEED)
    while world.expert_driving:
        world.step(STEP_NS, None)
    speed = world.ego.v
    assert speed > 1.0
    for _ in range(150):  # 3 s of hard braking
        world.step(STEP_NS, Command(0.0, -6.0))
    assert world.ego.v == 0.0
    # The expert, at the same time, is still moving.
    assert world.expert.ego[world.world_step].v > 1.0


def test_commands_that_copy_the_expert_follow_its_path_closely() -> None:
    world = ClosedLoopWorld(SEED)
    while world.expert_driving:
        world.step(STEP_NS, None)
    gaps = []
    for _ in range(100):  # 2 s
        control = world.expert.controls[world.world_step]
        steering = math.atan(2.85 * control.curvature)
        world.step(STEP_NS, Command(steering, control.acceleration))
        if world.now_ns % 100_000_000 == 0:
            expert = world.expert.ego[world.world_step]
            gaps.append(math.hypot(world.ego.x - expert.x, world.ego.y - expert.y))
    assert max(gaps) < 0.5, gaps


def test_the_world_changes_every_tenth_of_a_second_and_the_drive_ends() -> None:
    world = ClosedLoopWorld(SEED, duration_s=1.0)
    states = []
    while not world.finished:
        states.append(world.state.time)
        world.step(STEP_NS, None)
    assert states[:6] == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.0, 0.1])
    assert world.now_ns == NS_PER_S
    record = world.record()
    assert record.t_s.shape == (51,) and record.state.shape == (51, 4)
    assert np.all(np.diff(record.t_s) > 0)
    assert world.expert_states().shape[1] == 4


def test_it_renders_the_world_from_the_ego() -> None:
    world = ClosedLoopWorld(SEED, duration_s=1.0)
    images = world.render(CAMERA_ORDER, 64, 32)
    assert images.shape == (4, 32, 64, 3) and images.dtype == np.uint8
    assert images.std() > 0


def test_bad_steps_are_refused() -> None:
    world = ClosedLoopWorld(SEED, duration_s=1.0)
    with pytest.raises(ValueError, match="step must be positive"):
        world.step(0, None)
    with pytest.raises(ValueError, match="positive duration"):
        ClosedLoopWorld(SEED, duration_s=0.0)


def test_the_experts_plan_from_its_own_state_is_its_own_future() -> None:
    world = ClosedLoopWorld(SEED)
    while world.expert_driving:
        world.step(STEP_NS, None)
    # At the handover the ego is exactly where the expert's run has it: its plan from
    # there is the run's own next 6.4 s.
    k = world.world_step
    plan = world.expert_plan()
    assert plan.xyz() == pytest.approx(future_rollout(world.expert, k).xyz(), abs=1e-6)
    trace = world.expert_trace()
    assert len(trace.controls) == len(trace.intents) == TRAJECTORY_STEPS
    assert len(trace.ego) == len(trace.states) == TRAJECTORY_STEPS + 1
    assert trace.states[0] is world.expert.states[k]


def test_the_expert_plans_against_the_worlds_future_up_to_the_drives_end() -> None:
    """Not a world frozen at the end: a label near the end sees agents still moving."""
    world = ClosedLoopWorld(SEED, duration_s=3.0)
    while not world.finished:
        world.step(STEP_NS, None)
    trace = world.expert_trace()
    assert [state.time for state in trace.states] == pytest.approx(
        [3.0 + 0.1 * k for k in range(TRAJECTORY_STEPS + 1)]
    )


def test_from_a_drifted_state_the_expert_steers_back() -> None:
    """The label a policy that bends off its path learns from: a recovery towards the
    lane, explained by the expert's own reasoning."""
    world = ClosedLoopWorld(SEED)
    while world.expert_driving:
        world.step(STEP_NS, None)
    start_y = world.ego.y
    for _ in range(75):  # 1.5 s of a left bend the road does not have
        world.step(STEP_NS, Command(0.15, 0.0))
    assert world.ego.y - start_y > 0.3
    trace = world.expert_trace()
    recovery = future_rollout(trace, 0)
    assert recovery.curvature[:10].mean() < 0.0  # to the right, back to the lane
    assert meta_action_of(recovery)[1] in (Lateral.STEER_RIGHT, Lateral.SHARP_STEER_RIGHT)
    decision = causal_decision(trace, 0, meta_action_of(recovery), 0)
    assert decision.text
