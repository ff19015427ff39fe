"""Simulator node: the closed loop. It owns the synthetic world and the time, and the
control bridge's commands drive the car (world.closed_loop).

It publishes what the camera driver would (ros.sensor_output: the cameras, the odometry,
/tf, /tf_static), /clock, the world's ground truth (agents, lights, lane markings) as a
MarkerArray on `ground_truth`, and the scenario's set speed on `set_speed` (latched: what a
driver would set the cruise control to); every other node runs on use_sim_time. The car
moves in steps of the control period through the simulated vehicle (kinematic bicycle,
lagging and rate-limited actuators) under the newest command; the expert drives until the
model can have its first plan.

Lock-step (the default, pipeline.lockstep): after each step the clock holds until the
control bridge has answered that step's odometry, and after a camera set until it tracks
the plan made from those frames (or the planner's candidates say none was feasible, and the
bridge has answered the step), each wait bounded and counted. So a run is
deterministic (same seed, same drive) and as fast as the stack allows; with `lockstep`
false the clock follows the wall clock and a slow stack is as slow as on a car.

When the drive ends, the closed-loop metrics (evaluation.closed_loop) are logged, put on
/diagnostics and written to `result_file`; the node then idles.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from alpamayo_ros_msgs.msg import ControlCommand, Reasoning, Trajectory, TrajectoryCandidates
from rclpy.clock import Clock, ClockType
from rclpy.timer import Timer
from std_msgs.msg import Float64
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.core.contract import NS_PER_S
from alpamayo_ros.core.kinematics import Rollout
from alpamayo_ros.core.planar import yaw_to_quaternion
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.evaluation.closed_loop import score_world
from alpamayo_ros.pipeline.lockstep import LOCKSTEP_START_NS, LockStep, StartGate, Step
from alpamayo_ros.resources import config_file
from alpamayo_ros.ros import conversions
from alpamayo_ros.ros.managed import ManagedNode
from alpamayo_ros.ros.runtime import LATCHED_QOS, OK, WARN, Diagnostics, declare_parameters, run
from alpamayo_ros.ros.sensor_output import SensorOutput
from alpamayo_ros.sensors.base import CameraFrame, EgoPose
from alpamayo_ros.visualisation.markers import ground_truth_markers
from alpamayo_ros.world.closed_loop import ClosedLoopWorld, Command
from alpamayo_ros.world.renderer import Renderer
from alpamayo_ros.world.vehicle import ActuatorLag

# How often the wall-clock timer checks discovery and the answers' bound (an answer itself
# steps at once).
POLL_S = 0.01


class Simulator(ManagedNode):
    # Its work follows its messages and a steady timer: the events executor serves it on
    # simulated time too (runtime.spin).
    NO_ROS_TIME_TIMERS = True

    def __init__(self) -> None:
        super().__init__("simulator")
        self.params = declare_parameters(self, "simulator")
        self.diagnostics = Diagnostics(self, hardware_id="synthetic world")
        self.diagnostics.update(WARN, "unconfigured: simulating nothing")
        self.timer: Timer | None = None
        self.world: ClosedLoopWorld | None = None

    def configure(self) -> None:
        params = self.params
        rig_file = params["rig_file"] or str(config_file("rig.yaml"))
        self.rig = CameraRig.load(rig_file, params["cameras"])
        self.world = ClosedLoopWorld(
            params["seed"],
            params["scenario_type"] or None,
            Renderer(self.rig),
            duration_s=params["duration_s"] or None,
            lag=ActuatorLag(params["steering_lag_s"], params["acceleration_lag_s"]),
        )
        self.output = SensorOutput(
            self,
            self.rig,
            params["camera_namespace"],
            params["frame_id"],
            params["odom_frame_id"],
            clock=True,
        )
        self.control_period_ns = round(NS_PER_S / params["control_rate_hz"])
        self.lockstep = LockStep(
            LOCKSTEP_START_NS,
            round(NS_PER_S / params["rate_hz"]),
            self.control_period_ns,
            params["lockstep_answer_timeout_s"],
            warmup_ns=self.world.handover_ns,
        )
        self.start_gate = StartGate(params["lockstep_start_timeout_s"], params["lockstep_settle_s"])
        self.commands = self.create_subscription(ControlCommand, "command", self.on_command, 100)
        self.inputs = [self.commands]  # destroyed by release
        # The ceiling: the expert plans from where the closed loop has the car, and the
        # control bridge tracks its plans (run without the VLA and the planner).
        self.expert_plans = (
            self.create_lifecycle_publisher(Trajectory, "trajectory", 10)
            if params["planner"] == "expert"
            else None
        )
        self.plans_published = 0
        # The stack's plans and reasonings by t0, for their consistency in closed loop.
        self.plans: dict[int, Rollout] = {}
        self.reasonings: dict[int, str] = {}
        if self.expert_plans is None:
            self.inputs += [
                self.create_subscription(Trajectory, "trajectory", self.on_plan, 10),
                self.create_subscription(Reasoning, "reasoning", self.on_reasoning, 10),
                self.create_subscription(
                    TrajectoryCandidates, "candidates", self.on_candidates, 10
                ),
            ]
        self.ground_truth = self.create_lifecycle_publisher(MarkerArray, "ground_truth", 10)
        self.set_speed_publisher = self.create_lifecycle_publisher(
            Float64, "set_speed", LATCHED_QOS
        )
        self.command: Command | None = None
        self.awaiting_plan = False  # the hold is for the plan made from a camera set
        self.frames_sent_ns = 0  # wall time of the last camera set
        self.newest_command_ns = 0  # the newest command's stamp
        self.newest_plan_ns = 0  # the newest plan a command tracks (its t0)
        self.newest_no_plan_ns = 0  # the newest t0 with no feasible plan (no trajectory)
        self.newest_reasoning_ns = 0  # the newest reasoning text's t0
        self.expert_plan_due_ns: int | None = None  # lock-step: after the step's command
        self.plan_latencies_s: list[float] = []  # frames out -> a command tracks their plan
        # (s since the start, watchdog mode) at every change of the commands' mode
        self.modes: list[tuple[float, str]] = []
        self.result: dict[str, object] | None = None
        # Real time: one step per control period of the wall clock.
        period_s = POLL_S if params["lockstep"] else self.control_period_ns / NS_PER_S
        self.timer = self.create_timer(
            period_s, self.on_tick, clock=Clock(clock_type=ClockType.STEADY_TIME), autostart=False
        )
        self.diagnostics.update(WARN, "inactive: simulating nothing")

    def activate(self) -> None:
        assert self.timer is not None
        assert self.world is not None
        self.output.publish_rig(LOCKSTEP_START_NS)
        self.set_speed_publisher.publish(Float64(data=self.world.scenario.set_speed))
        self.timer.reset()
        self.diagnostics.update(OK, "active: waiting for the graph")

    def deactivate(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.diagnostics.update(WARN, "inactive: simulating nothing")

    def release(self) -> None:
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None
        if self.world is not None:
            for subscription in self.inputs:
                self.destroy_subscription(subscription)
            self.world = None
        self.diagnostics.update(WARN, "unconfigured: simulating nothing")

    # ------------------------------------------------------------------ stepping
    def on_tick(self) -> None:
        if not self.start_gate.open:
            if not self.start_gate.check(self.undiscovered(), time.monotonic_ns()):
                # A control period before the start: the control bridge's timer fires on
                # the first clock it gets, maybe before this node's subscription matched
                # its commands (that command is lost). Had that been the start instant,
                # the first step's hold would wait for a command that never came (the
                # bridge answers a newer clock, and odometry at most at its rate).
                self.output.publish_clock(LOCKSTEP_START_NS - self.control_period_ns)
                return
            if self.start_gate.missing:
                self.get_logger().warning(
                    f"the simulation starts without {', '.join(self.start_gate.missing)}"
                )
        self.advance()

    def undiscovered(self) -> list[str]:
        """What the run waits for at the start: the control bridge's commands, and a
        subscriber of the odometry; with the stack planning, that subscriber is the VLA node
        (`lockstep_subscriber`), on the cameras too, and the set speed is subscribed to by
        `set_speed_subscriber` (the planner: its first plan must know it, or the drive
        would depend on discovery)."""
        odometry = self.output.odometry.topic_name
        if self.expert_plans is None:
            missing = self.output.unsubscribed(
                [*self.output.image_topics, odometry], self.params["lockstep_subscriber"]
            )
            missing += self.output.unsubscribed(
                [self.set_speed_publisher.topic_name], self.params["set_speed_subscriber"]
            )
        else:
            missing = self.output.unsubscribed([odometry], "")
        if self.count_publishers(self.commands.topic_name) == 0:
            missing.append(self.commands.topic_name)
        return missing

    def advance(self) -> None:
        """Step until the clock holds for an answer (lock-step), or one step (real time)."""
        assert self.world is not None
        while not self.world.finished:
            timeouts = self.lockstep.timeouts
            step = self.lockstep.next_step(time.monotonic_ns())
            if self.lockstep.timeouts > timeouts:
                self.get_logger().warning(
                    f"no answer within {self.params['lockstep_answer_timeout_s']} s to the "
                    f"step at {self.world.now_ns / NS_PER_S:.2f} s "
                    f"(waiting for {self.awaited()}); moving on"
                )
            if step is None:
                return
            self.simulate(step)
            if not self.params["lockstep"]:
                return
        if self.result is None:
            self.finish()

    def simulate(self, step: Step) -> None:
        """Move the world to the step's instant, publish what is due then, and (lock-step)
        hold for the answer."""
        assert self.world is not None
        elapsed_ns = step.stamp_ns - LOCKSTEP_START_NS - self.world.now_ns
        if elapsed_ns > 0:
            self.world.step(elapsed_ns, self.command)
        # The odometry before the clock: a node whose timer the new clock wakes (the
        # control bridge's) has the step's pose by then, so what it computes does not
        # depend on which message it happened to take first.
        self.output.publish_pose(self.ego_pose(step.stamp_ns))
        self.output.publish_clock(step.stamp_ns)
        wall_ns = time.monotonic_ns()
        plan_due = step.frames_due and not self.world.expert_driving
        if step.frames_due:
            self.frames_sent_ns = wall_ns
            if self.expert_plans is None:
                self.output.publish_frames(self.frames(step.stamp_ns))
            elif plan_due and not self.params["lockstep"]:
                self.publish_expert_plan(step.stamp_ns)
            # After the frames: in lock-step the stack works on them meanwhile.
            self.publish_ground_truth(step.stamp_ns)
        if not self.params["lockstep"]:
            return
        # In lock-step the expert's plan goes out once the command for the step's odometry
        # is in, as the stack's plan comes after it (its cameras take time): so the
        # command that tracks it always starts from the step's pose.
        self.expert_plan_due_ns = step.stamp_ns if plan_due and self.expert_plans else None
        # After the handover a camera set is answered by the command tracking the plan
        # made from it; before it (and between camera sets) by the command that follows
        # the odometry.
        self.awaiting_plan = plan_due and self.expert_plans is None
        self.hold(step.stamp_ns, wall_ns)

    def hold(self, stamp_ns: int, wall_ns: int) -> None:
        """Hold the clock for the answer to `stamp_ns`, unless it is in already (the
        control bridge's own timer may have answered an instant)."""
        if self.answered_ns() < stamp_ns:
            self.lockstep.expect(stamp_ns, wall_ns)
        else:
            self.answered(advance=False)  # the stepping loop goes on by itself

    def answered_ns(self) -> int:
        """How far the stack has answered: after a camera set, the plan made from it
        tracked and, from the stack, its reasoning text out too (so no text is dropped for
        the next frames and the consistency is the same on any machine); otherwise the
        command for the step's odometry."""
        if not self.awaiting_plan:
            return self.newest_command_ns
        if self.expert_plans is not None:
            return self.newest_plan_ns
        # With no feasible plan, the command for the step's odometry too: the car must not
        # move on the command of the step before.
        decided_ns = max(self.newest_plan_ns, self.newest_no_plan_ns)
        return min(decided_ns, self.newest_reasoning_ns, self.newest_command_ns)

    def since_start_s(self, stamp_ns: int) -> str:
        return f"{(stamp_ns - LOCKSTEP_START_NS) / NS_PER_S:.2f} s" if stamp_ns else "none yet"

    def awaited(self) -> str:
        """What the hold waits for, and the newest of each answer that came (for a
        timeout's warning: which node fell silent)."""
        newest = f"the newest command: {self.since_start_s(self.newest_command_ns)}"
        if not self.awaiting_plan:
            return f"the command; {newest}"
        tracked = f"{newest}, tracking the plan of: {self.since_start_s(self.newest_plan_ns)}"
        if self.expert_plans is not None:
            return f"the expert's plan tracked; {tracked}"
        return (
            f"the plan from its frames; {tracked}, the newest frames with no feasible plan: "
            f"{self.since_start_s(self.newest_no_plan_ns)}, the newest reasoning: "
            f"{self.since_start_s(self.newest_reasoning_ns)}"
        )

    def answered(self, advance: bool = True) -> None:
        """The awaited answer is in: the expert's plan goes out if it is due (and is
        waited for in turn), else the clock moves on."""
        if self.awaiting_plan and self.newest_plan_ns >= self.newest_no_plan_ns:
            self.plan_latencies_s.append((time.monotonic_ns() - self.frames_sent_ns) / NS_PER_S)
        if self.expert_plan_due_ns is not None:
            stamp_ns, self.expert_plan_due_ns = self.expert_plan_due_ns, None
            self.publish_expert_plan(stamp_ns)
            self.awaiting_plan = True
            self.hold(stamp_ns, time.monotonic_ns())
        elif advance and self.start_gate.open:
            self.advance()

    def publish_ground_truth(self, stamp_ns: int) -> None:
        """The world's agents, lights and lanes, for RViz and Foxglove (at the camera rate);
        not built while nothing subscribes (1.5 ms a camera set, in lock-step part of each
        step's wall time)."""
        assert self.world is not None
        if self.ground_truth.get_subscription_count() == 0:
            return
        ego_s, _ = self.world.scenario.road.project(self.world.ego.x, self.world.ego.y)
        head = conversions.header(stamp_ns, self.params["odom_frame_id"])
        self.ground_truth.publish(ground_truth_markers(self.world.state, ego_s, head))

    def publish_expert_plan(self, stamp_ns: int) -> None:
        assert self.world is not None and self.expert_plans is not None
        self.plans_published += 1
        info = conversions.inference_info_msg(self.plans_published, "expert", "", [], 0)
        head = conversions.header(stamp_ns, self.params["frame_id"])
        self.expert_plans.publish(
            conversions.trajectory_msg(self.world.expert_plan(), head, info, 0, 0.0)
        )

    def ego_pose(self, stamp_ns: int) -> EgoPose:
        assert self.world is not None
        ego = self.world.ego
        return EgoPose(
            stamp_ns=stamp_ns,
            position=np.array([ego.x, ego.y, 0.0]),
            orientation_xyzw=yaw_to_quaternion(ego.yaw),
            linear_velocity=np.array([ego.v, 0.0, 0.0]),
            angular_velocity=np.array([0.0, 0.0, self.world.yaw_rate]),
        )

    def frames(self, stamp_ns: int) -> list[CameraFrame]:
        assert self.world is not None
        cameras = tuple(self.rig.cameras)
        images = self.world.render(cameras, self.params["width"], self.params["height"])
        return [
            CameraFrame(camera, stamp_ns, image)
            for camera, image in zip(cameras, images, strict=True)
        ]

    def on_command(self, msg: ControlCommand) -> None:
        if self.world is None or self.result is not None:
            return
        if conversions.stamp_ns(msg.header.stamp) < LOCKSTEP_START_NS:
            return  # an answer to the clock before the start: no step asked for it
        if math.isfinite(msg.steering_tire_angle) and math.isfinite(msg.acceleration):
            self.command = Command(float(msg.steering_tire_angle), float(msg.acceleration))
        mode = conversions.command_mode_name(msg.mode)
        if not self.modes or self.modes[-1][1] != mode:
            self.modes.append(
                ((conversions.stamp_ns(msg.header.stamp) - LOCKSTEP_START_NS) / NS_PER_S, mode)
            )
        if not self.params["lockstep"]:
            return
        self.newest_command_ns = max(self.newest_command_ns, conversions.stamp_ns(msg.header.stamp))
        self.newest_plan_ns = max(self.newest_plan_ns, conversions.stamp_ns(msg.trajectory_stamp))
        if self.lockstep.answer(self.answered_ns()):
            self.answered()

    def on_plan(self, msg: Trajectory) -> None:
        # A plan that cannot be read is refused by the control bridge too, which says so.
        with contextlib.suppress(ValueError):
            self.plans[conversions.stamp_ns(msg.header.stamp)] = conversions.trajectory_rollout(msg)

    def on_candidates(self, msg: TrajectoryCandidates) -> None:
        # No feasible candidate: no trajectory comes for these frames, and the control
        # bridge goes on with the plan it has (or stops). That is the stack's answer, as
        # in one process (evaluation.rollout), not a stack that fell behind.
        if self.world is None or self.result is not None:
            return
        if msg.selected_index != TrajectoryCandidates.NONE_SELECTED:
            return
        self.newest_no_plan_ns = max(self.newest_no_plan_ns, conversions.stamp_ns(msg.header.stamp))
        if self.params["lockstep"] and self.lockstep.answer(self.answered_ns()):
            self.answered()

    def on_reasoning(self, msg: Reasoning) -> None:
        if self.world is None or self.result is not None:
            return
        stamp_ns = conversions.stamp_ns(msg.header.stamp)
        self.reasonings[stamp_ns] = msg.text
        self.newest_reasoning_ns = max(self.newest_reasoning_ns, stamp_ns)
        if self.params["lockstep"] and self.lockstep.answer(self.answered_ns()):
            self.answered()

    # ------------------------------------------------------------------ the end
    def finish(self) -> None:
        assert self.world is not None
        world = self.world
        metrics = score_world(
            world,
            self.plan_latencies_s,
            [(text, self.plans[t0]) for t0, text in self.reasonings.items() if t0 in self.plans],
        )
        report = self.lockstep.report()
        self.result = {
            "seed": self.params["seed"],
            "scenario_type": world.scenario.scenario_type,
            "metrics": asdict(metrics),
            "watchdog": [{"t_s": t, "mode": mode} for t, mode in self.modes],
            "reasoning": [
                {"t_s": (t0 - LOCKSTEP_START_NS) / NS_PER_S, "text": self.reasonings[t0]}
                for t0 in sorted(self.reasonings)
            ],
            "lockstep": asdict(report) | {"speed": report.speed},
            # The drive itself, every control step, for plots and reports.
            "ego": world.record().columns(),
        }
        if self.params["result_file"]:
            # Written beside and renamed into place: whoever waits for the file (a test,
            # `simulate`, the demo) and stops the graph once it appears reads it whole.
            result_file = Path(self.params["result_file"])
            partial = result_file.with_name(result_file.name + ".part")
            partial.write_text(json.dumps(self.result, indent=1))
            os.replace(partial, result_file)
        verdict = "passed" if metrics.passed else "failed: " + "; ".join(metrics.failures)
        self.get_logger().info(
            f"drive of seed {self.params['seed']} ({world.scenario.scenario_type}) ended: "
            f"score {metrics.score:.2f}, progress {metrics.progress_ratio:.2f} of the "
            f"expert's, {verdict}; {report.speed:.1f}x real time, "
            f"{report.timeouts} answers timed out"
        )
        self.diagnostics.update(
            OK if metrics.passed else WARN,
            f"drive ended: {verdict}",
            score=f"{metrics.score:.3f}",
            progress_ratio=f"{metrics.progress_ratio:.3f}",
            lockstep_speed=f"{report.speed:.2f}",
            lockstep_timeouts=report.timeouts,
        )
        # The clock has stopped, and with it the timers on it: say so now.
        self.diagnostics.publish()
        assert self.timer is not None
        self.timer.cancel()


def main(args: list[str] | None = None) -> int:
    return run(Simulator, args)


if __name__ == "__main__":
    raise SystemExit(main())
