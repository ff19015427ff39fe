"""The `alpamayo-ros` command: start the graph, run the demo, check a parameter file."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.graph import LAUNCH_ARGUMENTS, default_parameter_file
from alpamayo_ros.launcher import GraphError, GraphProcesses
from alpamayo_ros.parameters import load_parameter_file


def _graph_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="ROS 2 parameter file (default: the packaged config/alpamayo.yaml)",
    )
    parser.add_argument("--use-sim-time", action="store_true", help="follow /clock (replay)")
    parser.add_argument("--log-level", default=LAUNCH_ARGUMENTS["log_level"])


def command_launch(args: argparse.Namespace) -> int:
    with GraphProcesses(args.params_file, args.use_sim_time, args.log_level) as graph:
        print(f"started {', '.join(graph.processes)}; Ctrl-C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            graph.run_for(args.duration if args.duration > 0 else float("inf"))
    return 0


def command_demo(args: argparse.Namespace) -> int:
    import rclpy
    from alpamayo_ros_msgs.msg import ControlCommand
    from rclpy.executors import SingleThreadedExecutor

    from alpamayo_ros.nodes.topic_monitor import TopicMonitor, describe

    last_control: list[tuple[int, int]] = []

    def show(topic: str, msg: object) -> None:
        """Every output once; control commands (50 Hz) only when their plan or mode changes."""
        if args.quiet:
            return
        if isinstance(msg, ControlCommand):
            key = (msg.inference_id, msg.mode)
            if last_control and last_control[-1] == key:
                return
            last_control.append(key)
        print(describe(msg), flush=True)

    with GraphProcesses(args.params_file, args.use_sim_time, args.log_level) as graph:
        print(f"started {', '.join(graph.processes)} for {args.duration:.0f} s", flush=True)
        rclpy.init()
        try:
            monitor = TopicMonitor(on_message=show)
            executor = SingleThreadedExecutor()
            executor.add_node(monitor)
            deadline = time.monotonic() + args.duration
            while time.monotonic() < deadline:
                graph.check()
                executor.spin_once(timeout_sec=0.1)
            counts = {topic: monitor.counts[topic] for _, topic in TopicMonitor.TOPICS}
        finally:
            rclpy.shutdown()
    print("\npublished:")
    for topic, count in counts.items():
        print(f"  {topic:<24} {count}")
    missing = [topic for topic, count in counts.items() if count == 0]
    if missing:
        print(f"error: nothing published on {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def command_check_config(args: argparse.Namespace) -> int:
    resolved = load_parameter_file(args.params_file)
    print(f"{args.params_file}: ok ({', '.join(resolved)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alpamayo-ros", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    launch = commands.add_parser("launch", help="start the node graph (without launch_ros)")
    _graph_arguments(launch)
    launch.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until Ctrl-C")
    launch.set_defaults(handler=command_launch)

    demo = commands.add_parser("demo", help="run the graph on generated frames and show outputs")
    _graph_arguments(demo)
    demo.add_argument("--duration", type=float, default=6.0, help="seconds to run")
    demo.add_argument("--quiet", action="store_true", help="print only the summary")
    demo.set_defaults(handler=command_demo)

    check = commands.add_parser("check-config", help="validate a parameter file")
    check.add_argument("params_file", type=Path)
    check.set_defaults(handler=command_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "params_file", None) is None:
        args.params_file = default_parameter_file()
    try:
        return args.handler(args)
    except (ConfigurationError, GraphError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
