"""Diffusion planner node: samples K control sequences from the backend's action expert,
integrates them with the unicycle model, checks them and selects one.

Publishes every candidate with its checks (for RViz and evaluation) and the selected
trajectory. When no candidate is feasible it publishes no trajectory, so the control
bridge's watchdog brings the car to a safe stop rather than tracking a bad plan.
"""

from __future__ import annotations

import time

import numpy as np
from alpamayo_ros_msgs.msg import PlannerConditioning, Trajectory, TrajectoryCandidates
from rclpy.node import Node

from alpamayo_ros.backends import create_backend
from alpamayo_ros.core.trajectory_checks import Limits, select_trajectory
from alpamayo_ros.nodes import conversions
from alpamayo_ros.nodes.runtime import (
    ERROR,
    OK,
    Diagnostics,
    declare_parameters,
    run,
)


class DiffusionPlanner(Node):
    def __init__(self) -> None:
        super().__init__("diffusion_planner")
        self.params = declare_parameters(self, "diffusion_planner")
        self.backend = create_backend(self.params["backend"], self.params["weights_file"])
        self.limits = Limits(
            max_abs_acceleration=self.params["max_abs_acceleration"],
            max_abs_curvature=self.params["max_abs_curvature"],
            max_lateral_acceleration=self.params["max_lateral_acceleration"],
            max_abs_jerk=self.params["max_abs_jerk"],
        )
        self.rng = np.random.default_rng(self.params["seed"])
        self.diagnostics = Diagnostics(self, hardware_id=self.backend.name)
        self.trajectory_publisher = self.create_publisher(Trajectory, "trajectory", 10)
        self.candidates_publisher = self.create_publisher(TrajectoryCandidates, "candidates", 10)
        self.create_subscription(PlannerConditioning, "conditioning", self.plan, 10)

    def plan(self, msg: PlannerConditioning) -> None:
        started = time.perf_counter()
        conditioning = conversions.planner_input(msg)
        samples = self.backend.sample_trajectories(
            conditioning, self.params["num_samples"], self.rng
        )
        rollouts, scores = samples.rollouts, samples.scores
        selection = select_trajectory(rollouts, scores, self.limits)
        candidates = [
            conversions.trajectory_msg(rollouts[k], msg.header, msg.info, k, scores[k])
            for k in range(len(scores))
        ]
        self.candidates_publisher.publish(
            TrajectoryCandidates(
                header=msg.header,
                info=msg.info,
                candidates=candidates,
                scores=[float(s) for s in scores],
                feasible=[bool(f) for f in selection.feasible],
                rejection_reasons=["; ".join(v) for v in selection.violations],
                selected_index=(
                    TrajectoryCandidates.NONE_SELECTED
                    if selection.index is None
                    else selection.index
                ),
            )
        )
        planning_ms = f"{(time.perf_counter() - started) * 1e3:.1f}"
        if selection.index is None:
            self.diagnostics.update(
                ERROR,
                f"no feasible trajectory for inference {msg.info.inference_id}: "
                + " | ".join("; ".join(v) for v in selection.violations),
                planning_ms=planning_ms,
            )
            return
        self.trajectory_publisher.publish(candidates[selection.index])
        self.diagnostics.update(
            OK,
            "planning",
            inference_id=msg.info.inference_id,
            feasible=int(selection.feasible.sum()),
            planning_ms=planning_ms,
        )


def main(args: list[str] | None = None) -> int:
    return run(DiffusionPlanner, args)


if __name__ == "__main__":
    raise SystemExit(main())
