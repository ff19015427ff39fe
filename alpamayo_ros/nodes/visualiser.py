"""Visualiser node: what the graph decided, for RViz.

MarkerArray of every planner candidate (selected, feasible, rejected), the reasoning text
and the object it names, the lane the VLA node found in the cameras; the selected
trajectory as a nav_msgs/Path. It only listens, so
nothing in the driving loop waits on it; a malformed message is reported on /diagnostics and
skipped.
"""

from __future__ import annotations

from alpamayo_ros_msgs.msg import PlannerConditioning, Reasoning, TrajectoryCandidates
from nav_msgs.msg import Path
from rclpy.node import Node
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.ros.runtime import OK, WARN, Diagnostics, declare_parameters, run
from alpamayo_ros.visualisation.markers import (
    MarkerStyle,
    candidate_markers,
    clear_road_markers,
    lane_markers,
    reasoning_markers,
    selected_path,
    stop_line_markers,
)


class Visualiser(Node):
    def __init__(self) -> None:
        super().__init__("visualiser")
        self.params = declare_parameters(self, "visualiser")
        self.style = MarkerStyle(lifetime_s=self.params["marker_lifetime_s"])
        self.diagnostics = Diagnostics(self)
        self.marker_publisher = self.create_publisher(MarkerArray, "markers", 10)
        self.path_publisher = self.create_publisher(Path, "path", 10)
        self.create_subscription(TrajectoryCandidates, "candidates", self.on_candidates, 10)
        self.create_subscription(Reasoning, "reasoning", self.on_reasoning, 10)
        self.create_subscription(PlannerConditioning, "conditioning", self.on_conditioning, 10)

    def on_candidates(self, msg: TrajectoryCandidates) -> None:
        try:
            markers = candidate_markers(msg, self.style)
        except ValueError as error:
            self.diagnostics.update(WARN, f"candidates skipped: {error}")
            return
        self.marker_publisher.publish(markers)
        path = selected_path(msg)
        if path is not None:
            self.path_publisher.publish(path)
        self.diagnostics.update(OK, "drawing", inference_id=msg.info.inference_id)

    def on_reasoning(self, msg: Reasoning) -> None:
        self.marker_publisher.publish(reasoning_markers(msg, self.style))

    def on_conditioning(self, msg: PlannerConditioning) -> None:
        markers = lane_markers(msg, self.style)
        markers.markers.extend(stop_line_markers(msg, self.style).markers)
        markers.markers.extend(clear_road_markers(msg, self.style).markers)
        self.marker_publisher.publish(markers)


def main(args: list[str] | None = None) -> int:
    return run(Visualiser, args)


if __name__ == "__main__":
    raise SystemExit(main())
