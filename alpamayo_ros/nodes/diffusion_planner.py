"""Diffusion planner node: the planning step (pipeline.planning.PlanningStep) per
conditioning message: K samples of the backend's action expert, integrated, ranked,
checked, one selected. The conditioning's reasoning comes along: a sample that drives into
the standing object it stops or yields for, passes too close beside the one it nudges
around, or crosses the stop line of a light it stops for, is refused, and a braking
candidate stops short of it when every sample is.

Where the reasoning tracks the set speed, the plan gains speed towards the one the
`set_speed` topic (latched; the simulator sends the scenario's, the camera driver a bag's)
or the `set_speed_mps` parameter gives, while the cameras show the lane clear; an invalid
one is reported and not driven to.

Publishes every candidate with its checks (for RViz and evaluation) and the selected
trajectory. When no candidate is feasible, or the conditioning comes from another model
than this node's backend, it publishes no trajectory, so the control bridge's watchdog
brings the car to a safe stop rather than tracking a bad plan; /diagnostics says why.
"""

from __future__ import annotations

from alpamayo_ros_msgs.msg import PlannerConditioning, Trajectory, TrajectoryCandidates
from rclpy.node import Node
from std_msgs.msg import Float64

from alpamayo_ros.backends import backend_from_parameters
from alpamayo_ros.core.decisions import Cause
from alpamayo_ros.core.trajectory_checks import Limits
from alpamayo_ros.pipeline.planning import ModelMismatch, PlanningStep, known_set_speed
from alpamayo_ros.ros import conversions
from alpamayo_ros.ros.runtime import (
    ERROR,
    LATCHED_QOS,
    OK,
    WARN,
    Diagnostics,
    declare_parameters,
    run,
)


def standing(cause: Cause | None) -> str:
    """What a diagnostic calls the standing thing a stop was for (pipeline.clear_road's
    CLEARED_CAUSES)."""
    return "cones" if cause is Cause.CONSTRUCTION else "stopped vehicle"


class DiffusionPlanner(Node):
    # Its work follows its messages: the events executor serves it on simulated time
    # too (runtime.spin).
    NO_ROS_TIME_TIMERS = True

    def __init__(self) -> None:
        super().__init__("diffusion_planner")
        self.params = declare_parameters(self, "diffusion_planner")
        backend = backend_from_parameters(self.params)
        self.step = PlanningStep(
            backend,
            num_samples=self.params["num_samples"],
            limits=Limits(
                max_abs_acceleration=self.params["max_abs_acceleration"],
                max_abs_curvature=self.params["max_abs_curvature"],
                max_lateral_acceleration=self.params["max_lateral_acceleration"],
                max_abs_jerk=self.params["max_abs_jerk"],
            ),
            seed=self.params["seed"],
            stand_off_clearance_m=self.params["stand_off_clearance_m"],
            stand_off_max_deceleration=self.params["stand_off_max_deceleration"],
            noise_scale=self.params["noise_scale"],
            stand_off_passing_clearance_m=self.params["stand_off_passing_clearance_m"],
            stand_off_stop_line_clearance_m=self.params["stand_off_stop_line_clearance_m"],
            stand_off_memory_s=self.params["stand_off_memory_s"],
            lane_keeping=self.params["lane_keeping"],
        )
        self.refused = 0
        self.failed = 0  # plans the backend could not make
        self.set_speed = known_set_speed(self.params["set_speed_mps"])
        self.set_speed_problem: str | None = None  # why the last one sent is not used
        self.diagnostics = Diagnostics(self, hardware_id=backend.name)
        self.trajectory_publisher = self.create_publisher(Trajectory, "trajectory", 10)
        self.candidates_publisher = self.create_publisher(TrajectoryCandidates, "candidates", 10)
        # Depth 1: a planner that falls behind plans the newest conditioning, never a queue.
        self.create_subscription(PlannerConditioning, "conditioning", self.on_conditioning, 1)
        self.create_subscription(Float64, "set_speed", self.on_set_speed, LATCHED_QOS)
        self.diagnostics.set_values(set_speed_mps=self.set_speed or "not known")

    def on_set_speed(self, msg: Float64) -> None:
        try:
            self.set_speed, self.set_speed_problem = known_set_speed(msg.data), None
        except ValueError as error:
            # Not driven to: the model's own speeds until a valid one comes.
            self.set_speed, self.set_speed_problem = None, f"set speed ignored: {error}"
            self.get_logger().error(self.set_speed_problem)
            self.diagnostics.update(
                max(self.diagnostics.level, WARN),
                f"{self.diagnostics.message}; {self.set_speed_problem}",
            )
        self.diagnostics.set_values(set_speed_mps=self.set_speed or "not known")

    def on_conditioning(self, msg: PlannerConditioning) -> None:
        try:
            self.step.check_model(msg.info.model_name, msg.info.model_version)
        except ModelMismatch as error:
            self.refused += 1
            self.diagnostics.update(ERROR, str(error), refused=self.refused)
            return
        light = conversions.traffic_light_view(msg.traffic_light)
        try:
            plan = self.step.plan(
                conversions.planner_input(msg),
                conversions.stamp_ns(msg.header.stamp),
                conversions.causal_decision(msg.reasoning),
                conversions.lane_estimate(msg.lane),
                light,
                conversions.free_space_estimate(msg.free_space),
                self.set_speed,
                conversions.ego_history(msg),
            )
        except Exception as error:
            # A model that fails (a model worker gone, a latent it cannot read) must not end
            # the node: no trajectory, so the control bridge's watchdog stops the car, and
            # the reason on /diagnostics until it works again.
            self.failed += 1
            reason = f"planning failed for inference {msg.info.inference_id}: {error}"
            if reason != self.diagnostics.message:
                self.get_logger().error(reason)
            self.diagnostics.update(ERROR, reason, failed=self.failed)
            return
        selection = plan.selection
        index = selection.index
        if index is not None:
            # The control bridge's input first; the candidates are for people and evaluation.
            self.trajectory_publisher.publish(
                conversions.trajectory_msg(
                    plan.rollouts[index],
                    msg.header,
                    msg.info,
                    index,
                    plan.scores[index],
                    planning_ns=round(plan.planning_ms * 1e6),
                )
            )
        self.candidates_publisher.publish(
            conversions.candidates_msg(plan.rollouts, plan.scores, selection, msg.header, msg.info)
        )
        planning_ms = f"{plan.planning_ms:.1f}"
        if index is None:
            self.diagnostics.update(
                ERROR,
                f"no feasible trajectory for inference {msg.info.inference_id}: "
                + " | ".join("; ".join(v) for v in selection.violations),
                planning_ms=planning_ms,
            )
            return
        level, message = OK, "planning"
        recalled = plan.recalled
        if recalled is not None:
            # The reasoning no longer names it; the plan still keeps clear of it.
            message = f"planning clear of {recalled.described()}"
        if plan.along_lane:
            message += " along the lane the cameras show"
        if plan.braked:
            # Safe, but the model's own plans were not: no sample both passed the checks and
            # kept off what its reasoning stops for or nudges around. Visible: a model that
            # keeps doing so needs looking at.
            level = WARN
            message = (
                f"braking for inference {msg.info.inference_id}: no sample is feasible and "
                f"keeps off what the reasoning stops for or nudges around (the first: "
                f"{'; '.join(selection.violations[0])})"
            )
            if recalled is not None:
                message += f"; remembered: {recalled.described()}"
        if plan.corrected_by_light:
            # The reasoning read the light's colour or placed its line otherwise.
            colour = light.colour.name.lower()
            message += (
                f"; stopping at the line of the {colour} light the cameras show"
                if plan.stops_at_light
                else f"; going on at the {colour} light the cameras show"
            )
        if plan.moved_stop is not None:
            # The reasoning (or the memory) put a stopped vehicle or cones within clear road.
            put_x, clear_to_x = plan.moved_stop
            message += (
                f"; the cameras show clear road past the {standing(plan.moved_cause)} put "
                f"{put_x:.1f} m ahead: stopping short of where it ends, {clear_to_x:.1f} m ahead"
            )
        if plan.moving_cause is not None:
            message += (
                f"; the {standing(plan.moving_cause)} the reasoning (or the memory) puts "
                "ahead is the thing the cameras follow moving on"
            )
        if plan.kept_off_seen is not None:
            # Nearer than anything the reasoning stops for: the cameras' own.
            seen_x, seen_speed = plan.kept_off_seen
            going = f"moving at {seen_speed:.1f} m/s" if seen_speed > 0.0 else "standing"
            message += (
                f"; keeping off what the cameras show in the lane {seen_x:.1f} m ahead ({going})"
            )
        if plan.nudged:
            # The model's plans passed it too close; the planner's own goes round it.
            message += " (going round it within the lane: the model's plans passed too close)"
        if plan.approached:
            message += " (driving up to it: the model's plans stopped well short of it)"
        if plan.gained_set_speed:
            message += (
                f"; gaining speed towards the set speed, {self.set_speed:.1f} m/s: the "
                "reasoning tracks it and the cameras show the lane clear"
            )
        if self.set_speed_problem is not None:
            level, message = max(level, WARN), f"{message}; {self.set_speed_problem}"
        self.diagnostics.update(
            level,
            message,
            inference_id=msg.info.inference_id,
            feasible=int(selection.feasible.sum()),
            planning_ms=planning_ms,
        )


def main(args: list[str] | None = None) -> int:
    return run(DiffusionPlanner, args)


if __name__ == "__main__":
    raise SystemExit(main())
