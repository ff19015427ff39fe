"""The `alpamayo-ros` command: launch, demo, record and replay bags, train, evaluate, benchmark."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from alpamayo_ros.arguments import (
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    seed,
)
from alpamayo_ros.backends import add_cuda_graphs_option
from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.graph import (
    LAUNCH_ARGUMENTS,
    LOG_LEVELS,
    Topics,
    default_parameter_file,
    log_level,
    node_names,
    respawn_delay_s,
    select_nodes,
)
from alpamayo_ros.launcher import GraphError, GraphProcesses, dds_environment
from alpamayo_ros.parameters import load_parameter_file

if TYPE_CHECKING:
    from rclpy.node import Node

    from alpamayo_ros.scenario_file import ScenarioFile
    from alpamayo_ros.sensors.base import CameraSource


def _params_file_argument(parser: argparse.ArgumentParser, help_prefix: str = "") -> None:
    parser.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help=f"{help_prefix}ROS 2 parameter file (default: the packaged config/alpamayo.yaml)",
    )


Value = TypeVar("Value")


def _checked(check: Callable[[str], Value]) -> Callable[[str], Value]:
    """An argparse type from a launch argument's own check (graph.py), which `ros2 launch`
    runs too: one rule for both launchers, refused at parsing here."""

    def parse(text: str) -> Value:
        try:
            return check(text)
        except ConfigurationError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _graph_arguments(parser: argparse.ArgumentParser) -> None:
    _params_file_argument(parser)
    parser.add_argument("--use-sim-time", action="store_true", help="follow /clock (replay)")
    parser.add_argument(
        "--log-level",
        type=_checked(log_level),
        default=LAUNCH_ARGUMENTS["log_level"],
        help=f"the nodes' log level: {', '.join(LOG_LEVELS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--nodes",
        default=LAUNCH_ARGUMENTS["nodes"],
        help="comma-separated node names (default: all), e.g. all but camera_driver for a bag",
    )
    parser.add_argument(
        "--foxglove",
        action="store_true",
        help="also serve the graph to Foxglove or Lichtblick over a WebSocket "
        "(foxglove_bridge, ws://127.0.0.1:8765 by default)",
    )
    parser.add_argument(
        "--respawn",
        default=LAUNCH_ARGUMENTS["respawn"],
        help="comma-separated nodes restarted when they exit ('' for none; default: %(default)s)",
    )
    parser.add_argument(
        "--respawn-delay",
        type=_checked(respawn_delay_s),
        default=LAUNCH_ARGUMENTS["respawn_delay"],
        help="seconds between a node's exit and its restart (default: %(default)s)",
    )


# The status of a command a signal cut short (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _graph(args: argparse.Namespace) -> GraphProcesses:
    """The graph the launch arguments describe; a node that exits is reported and, when
    named in --respawn, restarted, and never stops the others. The nodes run in their own
    session, so a SIGTERM to the launcher stops them (in order) as Ctrl-C does."""
    return GraphProcesses(
        args.params_file,
        args.use_sim_time,
        args.log_level,
        select_nodes(args.nodes, "true" if args.foxglove else "false"),
        respawn=node_names(args.respawn),
        respawn_delay_s=args.respawn_delay,
    )


def _report(event: str) -> None:
    print(f"[launcher] {event}", file=sys.stderr, flush=True)


def _supervise(graph: GraphProcesses) -> None:
    """Report the nodes' exits and restarts since the last call."""
    for event in graph.supervise():
        _report(event)


def command_launch(args: argparse.Namespace) -> int:
    """Run the graph, reporting node exits and restarts, and every WARN/ERROR diagnostic
    as it changes (and its recovery), so a person sees why the car stopped."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import ExternalShutdownException

    from alpamayo_ros.nodes.topic_monitor import describe
    from alpamayo_ros.ros.runtime import StatusChanges

    with _graph(args) as graph:
        print(f"started {', '.join(graph.processes)}; Ctrl-C stops", flush=True)
        rclpy.init()
        try:
            watcher = rclpy.create_node("launcher_diagnostics")
            changes = StatusChanges()
            watcher.create_subscription(
                DiagnosticArray,
                Topics.DIAGNOSTICS,
                lambda msg: [_report(describe(status)) for status in changes(msg)],
                10,
            )
            # Ctrl-C: rclpy's handler ends the context (the spin then raises
            # ExternalShutdownException) and Python's raises KeyboardInterrupt, whichever
            # comes first; either is a clean stop.
            with contextlib.suppress(KeyboardInterrupt, ExternalShutdownException):
                _spin_for(
                    watcher,
                    args.duration if args.duration > 0 else float("inf"),
                    lambda: _supervise(graph),
                )
        finally:
            rclpy.try_shutdown()
    return 0


def command_demo(args: argparse.Namespace) -> int:
    """One closed-loop scenario through the real nodes, recorded, scored and reported
    (alpamayo_ros.demo); Ctrl-C or SIGTERM ends it early with the bag closed, status 0."""
    from alpamayo_ros.demo import run_demo, status, summary_lines

    load_parameter_file(args.params_file)
    os.environ.update(dds_environment(os.environ))
    with contextlib.ExitStack() as stack:
        stopped = _stop_on_signals(stack)
        outcome = run_demo(
            args.output,
            args.seed,
            args.type,
            args.params_file,
            stopped,
            lambda line: print(line, flush=True),
            args.quiet,
        )
    _print_counts("\noutputs seen:", outcome.watched)
    print()
    for line in summary_lines(outcome):
        print(line)
    return status(outcome)


def command_record(args: argparse.Namespace) -> int:
    """Record until --duration passes or SIGINT/SIGTERM stops it; either way the bag is
    closed, the counts printed and the exit status 0. A bag that caught nothing is still a
    valid bag, with a warning that says why (recording every topic of an empty graph is
    not an error); only a topic named in --topics that never appeared makes it exit 1."""
    import rclpy
    from rclpy.parameter import Parameter
    from rclpy.signals import SignalHandlerOptions

    from alpamayo_ros.nodes.bag_recorder import BagRecorderNode
    from alpamayo_ros.replay.bag import BagRecorder

    os.environ.update(dds_environment(os.environ))
    with contextlib.ExitStack() as stack:
        stopped = _stop_on_signals(stack)
        bag = stack.enter_context(BagRecorder(args.output))
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        try:
            node = BagRecorderNode(bag, args.topics)
            node.set_parameters([Parameter("use_sim_time", value=args.use_sim_time)])
            print(f"recording into {args.output}; Ctrl-C stops", flush=True)
            _spin_for(node, args.duration if args.duration > 0 else float("inf"), until=stopped)
            missing = node.missing
        finally:
            rclpy.try_shutdown()
    _print_counts(f"\nwrote {args.output}:", {topic: bag.counts[topic] for topic in bag.topics})
    if not bag.topics:
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        print(
            f"warning: {args.output} is empty: no topic to record appeared; was anything "
            f"running and publishing on ROS_DOMAIN_ID {domain}?",
            file=sys.stderr,
        )
    elif not any(bag.counts.values()):
        print(
            f"warning: {args.output} is empty: {', '.join(bag.topics)} had publishers but "
            "none published while recording",
            file=sys.stderr,
        )
    if missing:
        print(f"error: no publisher appeared on {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def command_replay(args: argparse.Namespace) -> int:
    """Play the bag once; SIGINT/SIGTERM stops it between two messages, with the counts
    printed and exit status 0."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from alpamayo_ros import topic_map
    from alpamayo_ros.nodes.bag_player import BagPlayerNode
    from alpamayo_ros.replay.bag import BagError, bag_contents, missing_inputs

    os.environ.update(dds_environment(os.environ))
    inputs: list[str] = []  # the topics to wait for: the map's inputs, else every topic
    if args.topic_map is not None:
        mapped = topic_map.load(args.topic_map).inputs()
        problems = missing_inputs(bag_contents(args.bag), mapped)
        if problems:
            raise BagError(f"{args.bag} cannot feed {args.topic_map}: " + "; ".join(problems))
        inputs = [topic for topic in mapped if not args.topics or topic in args.topics]
    with contextlib.ExitStack() as stack:
        stopped = _stop_on_signals(stack)
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        try:
            player = BagPlayerNode(args.bag, args.topics, args.rate)
            contents = player.contents
            seconds = (contents.end_ns - contents.start_ns) / 1e9
            print(
                f"playing {contents.message_count} messages ({seconds:.1f} s) at {args.rate}x "
                "with /clock; start nodes with use_sim_time:=true",
                flush=True,
            )
            player.wait_for_subscribers(inputs, args.delay, stopped)
            for topic in player.without_subscribers():
                print(
                    f"warning: nothing subscribes to {topic}; its messages go nowhere", flush=True
                )
            player.play(stopped)
        finally:
            rclpy.try_shutdown()
    _print_counts("\nplayed:", dict(sorted(player.counts.items())))
    return 0


def _stop_on_signals(stack: contextlib.ExitStack) -> Callable[[], bool]:
    """Whether SIGINT or SIGTERM has come since the call; `stack` puts the previous handlers
    back. The signals only set a flag that record and replay check between spins and
    publishes: raised as KeyboardInterrupt, one would land inside a callback, a bag write or
    a publish (a truncated bag, "publisher's context is invalid"), and rclpy's own handler,
    which is off (SignalHandlerOptions.NO), shuts the context down under the running node."""
    import threading

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        stack.callback(signal.signal, signum, signal.signal(signum, lambda *_: stop.set()))
    return stop.is_set


def _spin_for(
    node: Node,
    seconds: float,
    check: Callable[[], object] = lambda: None,
    until: Callable[[], bool] | None = None,
) -> bool:
    """Spin one in-process node for `seconds`, or until `until()` holds (then True),
    calling `check` (e.g. the graph's) between."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            check()
            executor.spin_once(timeout_sec=0.1)
            if until is not None and until():
                return True
        return False
    finally:
        executor.remove_node(node)


def _print_counts(heading: str, counts: dict[str, int]) -> None:
    """Messages per topic, one aligned row each."""
    print(heading)
    width = max(map(len, counts), default=0) + 2
    for topic, count in counts.items():
        print(f"  {topic:<{width}}{count}")


def command_check_config(args: argparse.Namespace) -> int:
    resolved = load_parameter_file(args.params_file)
    print(f"{args.params_file}: ok ({', '.join(resolved)})")
    return 0


def parse_seeds(text: str) -> list[int]:
    """The seeds of '11,12,13' or '100-199' for argparse (world.scenarios.parse_seeds)."""
    from alpamayo_ros.world.scenarios import parse_seeds as seeds_of

    try:
        return seeds_of(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_some_names(text: str) -> list[str]:
    """parse_names for an option that means nothing without one name (backends, drivers)."""
    names = parse_names(text)
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names none: give one or more, comma-separated")
    return names


def parse_weights(text: str) -> tuple[tuple[str, int], ...]:
    """'cut_in=3,cyclist=2' as ((name, weight), ...)."""
    weights = []
    for item in parse_names(text):
        name, separator, value = item.partition("=")
        if not separator or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(f"{item!r} is not name=integer")
        weights.append((name.strip(), int(value)))
    return tuple(weights)


def command_train(args: argparse.Namespace) -> int:
    from alpamayo_ros.evaluation.rollout import visited_states
    from alpamayo_ros.model.training import TrainingConfig, train
    from alpamayo_ros.world.dataset import DriftRates

    config = TrainingConfig(
        samples=args.samples,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        first_sample_seed=args.first_sample_seed,
        workers=args.workers,
        learning_rate=args.learning_rate,
        init_weights=args.init_weights,
        scenario_weights=args.scenario_weights,
        camera_dropout=args.camera_dropout,
        drift=DriftRates(args.drift, args.speed_drift),
        any_time=args.any_time,
        closed_loop_scenarios=args.closed_loop_scenarios,
        closed_loop_label_every=args.closed_loop_label_every,
        road_pose_weight=args.road_pose_weight,
        speed_only_history=args.speed_only_history,
        scene_readout=args.scene_readout,
    )
    summary = train(args.output, config, args.model_version, visit=visited_states)
    print(f"wrote {args.output} in {summary['total_s']:.0f} s")
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    if args.bag is not None:
        return _evaluate_recording(args)
    if args.topic_map is not None:
        raise ConfigurationError("--topic-map goes with --bag")
    import json

    from alpamayo_ros.backends import create_backend, weights_for
    from alpamayo_ros.core.contract import CAMERA_ORDER
    from alpamayo_ros.evaluation.evaluate import evaluate
    from alpamayo_ros.evaluation.metrics import METRICS, aggregate, as_dict
    from alpamayo_ros.world.scenarios import SCENARIO_TYPES

    unknown = sorted(set(args.types or ()) - set(SCENARIO_TYPES))
    if unknown:
        raise ConfigurationError(
            f"unknown scenario type(s) {', '.join(unknown)} (known: {', '.join(SCENARIO_TYPES)})"
        )
    unknown = sorted(set(args.missing_cameras) - set(CAMERA_ORDER))
    if unknown or len(args.missing_cameras) >= len(CAMERA_ORDER):
        raise ConfigurationError(
            f"--missing-cameras must name some, not all, of {', '.join(CAMERA_ORDER)}"
        )
    backends = [
        create_backend(
            name,
            weights_for(name, args.weights),
            device=args.device,
            precision=args.precision,
            cuda_graphs=args.cuda_graphs,
        )
        for name in args.backends
    ]
    results = evaluate(
        backends,
        args.seeds,
        args.types,
        args.num_samples,
        missing_cameras=args.missing_cameras,
        progress=_progress if not args.json else None,
    )
    summary = {name: aggregate(rows) for name, rows in results.items()}
    if args.json:
        report = {"summary": summary}
        if args.per_sample:
            report["samples"] = {name: [as_dict(r) for r in rows] for name, rows in results.items()}
        print(json.dumps(report, indent=2))
    else:
        for group in next(iter(summary.values())):
            print(f"\n[{group}]")
            print(f"  {'metric':<22}" + "".join(f"{name:>20}" for name in summary))
            for metric in (*METRICS, "count"):
                values = (summary[name][group][metric] for name in summary)
                print(f"  {metric:<22}" + "".join(_cell(value) for value in values))
    if args.report:  # last: the figures are out whatever happens to the report
        from alpamayo_ros.evaluation.report import write_open_loop_report

        index = write_open_loop_report(results, summary, args.report)
        print(f"report: {index} (open it in a browser)", file=sys.stderr)
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def recording_source(bag: Path, topic_map_file: Path | None) -> CameraSource:
    """The bag's cameras (in the rig's order) and odometry, where the topic map says or on
    the graph's names, and the set speed on the graph's name if the bag has it; a mapped
    camera that needs reprojecting is refused (the VLA node reprojects it when the bag is
    replayed through the graph)."""
    from alpamayo_ros.core.contract import CAMERA_ORDER
    from alpamayo_ros.core.rig import CameraRig
    from alpamayo_ros.parameters import CAMERA_NAMESPACE
    from alpamayo_ros.resources import config_file
    from alpamayo_ros.sensors.bag import BagSource
    from alpamayo_ros.topic_map import GRAPH_ODOMETRY, TopicMap

    topics = TopicMap.for_node(
        str(topic_map_file or ""), CAMERA_ORDER, str(CAMERA_NAMESPACE.default), "raw"
    )
    adapted = [name for name, entry in topics.cameras.items() if entry.adapted]
    if adapted:
        raise ConfigurationError(
            f"{topic_map_file}: camera(s) {', '.join(adapted)} need reprojecting into the rig, "
            "which evaluating a bag in one process does not do; replay the bag through the "
            "graph (camera_driver source: bag, lockstep: true) instead"
        )
    odometry = Topics.ODOMETRY if topics.odometry == GRAPH_ODOMETRY else topics.odometry
    rig = CameraRig.load(config_file("rig.yaml"), CAMERA_ORDER)
    return BagSource(
        rig,
        str(bag),
        [entry.topic for entry in topics.cameras.values()],
        odometry,
        set_speed_topic=Topics.SET_SPEED,
    )


def _evaluate_recording(args: argparse.Namespace) -> int:
    """`evaluate --bag`: each backend replays the bag in lock-step in one process, scored
    against the logged future; with --json --per-sample one line per cycle first."""
    import json

    from alpamayo_ros.backends import create_backend, weights_for
    from alpamayo_ros.core.contract import CAMERA_ORDER
    from alpamayo_ros.evaluation.recorded import ReplaySettings, evaluate_recording

    if args.types or args.missing_cameras:
        raise ConfigurationError("--types and --missing-cameras go with --seeds")
    settings = ReplaySettings(num_samples=args.num_samples)
    results = []
    for name in args.backends:
        backend = create_backend(
            name,
            weights_for(name, args.weights),
            device=args.device,
            precision=args.precision,
            cuda_graphs=args.cuda_graphs,
        )
        with contextlib.closing(recording_source(args.bag, args.topic_map)) as source:
            results.append(evaluate_recording(backend, source, CAMERA_ORDER, settings, _progress))
        result = results[-1]
        _progress(
            f"{name}: {len(result.cycles)} plans over {result.recorded_s:.1f} s of the "
            f"recording in {result.wall_s:.1f} s ({result.speed:.1f}x real time)"
        )
    summary = {result.backend: result.summary() for result in results}
    if args.json:
        report: dict[str, object] = {"bag": str(args.bag), "summary": summary}
        if args.per_sample:
            report["cycles"] = {
                result.backend: [cycle.as_dict(with_paths=True) for cycle in result.cycles]
                for result in results
            }
        print(json.dumps(report, indent=2))
    else:
        _print_recording_summary(summary)
    if args.report:  # last: the figures are out whatever happens to the report
        from alpamayo_ros.evaluation.report import write_recording_report

        index = write_recording_report(results, args.report, f"{args.bag}")
        print(f"report: {index} (open it in a browser)", file=sys.stderr)
    return 0


def _print_recording_summary(summary: dict[str, dict[str, Any]]) -> None:
    from alpamayo_ros.evaluation.recorded import SUMMARY_FIGURES

    print(f"  {'figure':<22}" + "".join(f"{name:>20}" for name in summary))
    for figure in SUMMARY_FIGURES:
        print(f"  {figure:<22}" + "".join(_cell(summary[name][figure]) for name in summary))


SIMULATE_FIGURES = (
    "scenarios",
    "pass_rate",
    "mean_score",
    "at_fault_collision_rate",
    "collision_rate",
    "off_road_rate",
    "red_light_violation_rate",
    "stop_line_violation_rate",
    "mean_progress_ratio",
    "peak_jerk_p90",
    "plan_latency_p90_s",
    "mean_consistency",
    "lockstep_speed",
    "answer_timeouts",
)


def command_simulate(args: argparse.Namespace) -> int:
    import json

    from alpamayo_ros.simulate import (
        known_drivers,
        print_progress,
        run_all,
        run_specs,
        summary_by_driver,
    )
    from alpamayo_ros.world.scenarios import SCENARIO_TYPES

    known = known_drivers()
    unknown = sorted(set(args.drivers) - set(known))
    if unknown or not args.drivers:
        raise ConfigurationError(
            f"--drivers: unknown or none {', '.join(unknown)} (known: {', '.join(known)})"
        )
    unknown = sorted(set(args.types or ()) - set(SCENARIO_TYPES))
    if unknown:
        raise ConfigurationError(
            f"unknown scenario type(s) {', '.join(unknown)} (known: {', '.join(SCENARIO_TYPES)})"
        )
    load_parameter_file(args.params_file)
    specs = run_specs(args.drivers, args.seeds, args.types or (), args.weights)
    print(
        f"{len(specs)} closed-loop runs ({len(args.seeds)} scenarios x {', '.join(args.drivers)}) "
        f"on {args.workers} worker(s)",
        file=sys.stderr,
        flush=True,
    )
    # In one process the packaged defaults drive; another parameter file is refused there.
    params_file = (
        None
        if args.in_process and args.params_file == default_parameter_file()
        else args.params_file
    )
    results = run_all(
        specs, params_file, args.workers, args.ray_address, print_progress, args.in_process
    )
    summary = summary_by_driver(results)
    if args.output:
        args.output.write_text(json.dumps({"summary": summary, "runs": results}))
    if args.report:
        from alpamayo_ros.evaluation.report import write_report

        index = write_report(results, summary, args.report, "alpamayo-ros simulate")
        print(f"report: {index} (open it in a browser)", file=sys.stderr)
    if args.json:
        print(json.dumps({"summary": summary, "runs": [_run_row(r) for r in results]}, indent=2))
        return 0
    print(f"  {'figure':<26}" + "".join(f"{driver:>20}" for driver in summary))
    for figure in SIMULATE_FIGURES:
        print(f"  {figure:<26}" + "".join(_cell(summary[d].get(figure)) for d in summary))
    return 0


def command_scenario(args: argparse.Namespace) -> int:
    """Run a scenario file: one JSON line per drive as it ends, one per condition, a last
    line with the verdict; status 0 when every condition holds, 1 when one does not."""
    import json

    from alpamayo_ros.scenario_file import load_scenario
    from alpamayo_ros.simulate import known_drivers, run_all, run_specs, summary_by_driver

    scenario = load_scenario(args.file, known_drivers())
    if scenario.bag is not None:
        summary, write_report = _scenario_on_bag(scenario)
        return _judged(scenario, summary, write_report, args.report)
    specs = run_specs(scenario.drivers, scenario.seeds, scenario.types, scenario.weights)
    print(
        f"scenario {scenario.name!r}: {len(specs)} closed-loop runs "
        f"({'in one process' if scenario.in_process else 'through the graph'})",
        file=sys.stderr,
        flush=True,
    )

    def drive_line(done: int, total: int, result: dict[str, Any]) -> None:
        metrics = result["metrics"]
        line = {
            "drive": f"{done}/{total}",
            "driver": result["driver"],
            "seed": result["seed"],
            "scenario_type": result["scenario_type"],
            "score": metrics["score"],
            "passed": metrics["passed"],
            "failures": list(metrics["failures"]),
        }
        print(json.dumps(line), flush=True)

    load_parameter_file(args.params_file)
    params_file = None if scenario.in_process else args.params_file
    results = run_all(specs, params_file, scenario.workers, None, drive_line, scenario.in_process)

    def write_report(directory: Path) -> Path:
        from alpamayo_ros.evaluation.report import write_report

        return write_report(results, summary, directory, f"scenario {scenario.name}")

    summary = summary_by_driver(results)
    return _judged(scenario, summary, write_report, args.report)


def _scenario_on_bag(
    scenario: ScenarioFile,
) -> tuple[dict[str, dict[str, Any]], Callable[[Path], Path]]:
    """Each driver replays the scenario's bag, one JSON line per plan as it is scored;
    the summaries by driver, and how to write their report."""
    import json

    from alpamayo_ros.backends import create_backend, weights_for
    from alpamayo_ros.core.contract import CAMERA_ORDER
    from alpamayo_ros.evaluation.recorded import CycleResult, evaluate_recording

    assert scenario.bag is not None
    print(
        f"scenario {scenario.name!r}: {scenario.bag} replayed by {', '.join(scenario.drivers)}",
        file=sys.stderr,
        flush=True,
    )
    results = []
    for driver in scenario.drivers:

        def cycle_line(cycle: CycleResult, driver: str = driver) -> None:
            print(json.dumps({"driver": driver, **cycle.as_dict()}), flush=True)

        backend = create_backend(driver, weights_for(driver, scenario.weights))
        with contextlib.closing(recording_source(scenario.bag, scenario.topic_map)) as source:
            results.append(evaluate_recording(backend, source, CAMERA_ORDER, on_cycle=cycle_line))

    def write_report(directory: Path) -> Path:
        from alpamayo_ros.evaluation.report import write_recording_report

        return write_recording_report(results, directory, f"scenario {scenario.name}")

    # By driver, as the conditions name them (a worker's results carry its model's name).
    summaries = {driver: r.summary() for driver, r in zip(scenario.drivers, results, strict=True)}
    return summaries, write_report


def _judged(
    scenario: ScenarioFile,
    summary: dict[str, dict[str, Any]],
    write_report: Callable[[Path], Path],
    report: Path | None,
) -> int:
    """One JSON line per condition and driver, a last one with the verdict and the
    summary, the report if asked for; status 0 when every condition holds, else 1."""
    import json

    from alpamayo_ros.scenario_file import judge

    verdicts = judge(scenario, summary)
    for verdict in verdicts:
        line = {
            "driver": verdict.driver,
            "condition": str(verdict.condition),
            "value": verdict.value,
            "passed": verdict.passed,
        }
        print(json.dumps(line), flush=True)
    passed = all(verdict.passed for verdict in verdicts)
    print(json.dumps({"scenario": scenario.name, "passed": passed, "summary": summary}))
    failed = [f"{v.driver}: {v.condition} (got {v.value})" for v in verdicts if not v.passed]
    print(
        f"scenario {scenario.name!r} " + ("passed" if passed else "FAILED: " + "; ".join(failed)),
        file=sys.stderr,
    )
    if report:  # last: the verdict is out whatever happens to the report
        index = write_report(report)
        print(f"report: {index} (open it in a browser)", file=sys.stderr)
    return 0 if passed else 1


def _run_row(result: dict[str, object]) -> dict[str, object]:
    """A run without its per-step drive (in --output's file)."""
    return {key: value for key, value in result.items() if key != "ego"}


def _cell(value: float | None) -> str:
    if value is None:
        return f"{'-':>20}"
    return f"{value:>20d}" if isinstance(value, int) else f"{value:>20.3f}"


def command_benchmark(args: argparse.Namespace) -> int:
    if args.graph:
        return _benchmark_graph(args)
    if args.busy_cores:
        raise SystemExit("--busy-cores applies to --graph only")
    from alpamayo_ros.evaluation.benchmark import run_benchmark

    result = run_benchmark(
        args.backend,
        args.cycles,
        args.num_samples,
        args.weights,
        device=args.device,
        precision=args.precision,
        cuda_graphs=args.cuda_graphs,
    )
    print(result.table())
    return 0


def _benchmark_graph(args: argparse.Namespace) -> int:
    """The real node processes over DDS on the packaged parameters, timed by a listener."""
    import json

    import rclpy

    from alpamayo_ros.core.contract import CAMERA_ORDER
    from alpamayo_ros.evaluation.latency import busy_cores, summary
    from alpamayo_ros.nodes.latency_probe import LatencyProbe

    with (
        GraphProcesses(args.params_file or default_parameter_file()) as graph,
        busy_cores(args.busy_cores),
    ):
        load = f" with {args.busy_cores} core(s) kept busy" if args.busy_cores else ""
        print(
            f"started {', '.join(graph.processes)}; measuring for {args.duration:.0f} s{load}",
            flush=True,
        )
        rclpy.init()
        try:
            probe = LatencyProbe(f"/sensing/camera/{CAMERA_ORDER[0]}/image_raw")
            _spin_for(probe, args.duration, graph.check)
        finally:
            rclpy.shutdown()
    result = summary(probe.log)
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from alpamayo_ros.demo import DEMO_SEED
    from alpamayo_ros.world.scenarios import SCENARIO_TYPES

    parser = argparse.ArgumentParser(prog="alpamayo-ros", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    launch = commands.add_parser("launch", help="start the node graph (without launch_ros)")
    _graph_arguments(launch)
    launch.add_argument(
        "--duration", type=non_negative_float, default=0.0, help="seconds; 0 runs until Ctrl-C"
    )
    launch.set_defaults(handler=command_launch)

    demo = commands.add_parser(
        "demo",
        help="drive one scenario closed loop through the real nodes: outputs as they come, "
        "a zstd MCAP bag of every topic, the scores and an HTML report",
    )
    _params_file_argument(demo)
    demo.add_argument(
        "--seed",
        type=seed,
        default=DEMO_SEED,
        help="the scenario (default: %(default)s, a held-out traffic light)",
    )
    demo.add_argument(
        "--type",
        default=None,
        choices=SCENARIO_TYPES,
        help="scenario type (default: the one the seed draws)",
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("alpamayo_demo"),
        help="each run writes a new time-stamped folder here with the bag, the scores and "
        "the report (default: %(default)s)",
    )
    demo.add_argument("--quiet", action="store_true", help="print only diagnostics and the summary")
    demo.set_defaults(handler=command_demo)

    train = commands.add_parser("train", help="generate scenarios and train the embedded VLA")
    train.add_argument("--output", type=Path, required=True, help="safetensors file to write")
    train.add_argument(
        "--samples",
        type=positive_int,
        default=8000,
        help="open-loop samples, one per scenario seed (default: %(default)s)",
    )
    train.add_argument("--epochs", type=positive_int, default=12, help="default: %(default)s")
    train.add_argument("--batch-size", type=positive_int, default=32, help="default: %(default)s")
    train.add_argument(
        "--seed", type=seed, default=0, help="initialisation and batch order (default: %(default)s)"
    )
    train.add_argument(
        "--first-sample-seed",
        type=seed,
        default=0,
        help="the first scenario seed; keep training seeds below 1000000, the held-out "
        "ones (default: %(default)s)",
    )
    train.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        help="processes generating data and driving (default: %(default)s)",
    )
    train.add_argument(
        "--model-version",
        default="dev",
        help="version written into the weights; the planner refuses a VLA of another "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--learning-rate", type=positive_float, default=2e-3, help="default: %(default)s"
    )
    train.add_argument(
        "--init-weights", type=Path, default=None, help="continue training these weights"
    )
    train.add_argument(
        "--scenario-weights",
        type=parse_weights,
        default=(),
        help="oversample scenario types, e.g. cut_in=3,cyclist=2 (default: every type counts 1)",
    )
    train.add_argument(
        "--camera-dropout",
        type=probability,
        default=0.0,
        help="probability that a batch trains with one or more cameras missing",
    )
    train.add_argument(
        "--drift",
        type=probability,
        default=0.0,
        help="fraction of samples whose car drifts off its path before t0, labelled with the "
        "expert's recovery (the states closed-loop errors lead to; default 0)",
    )
    train.add_argument(
        "--any-time",
        type=probability,
        default=0.0,
        help="fraction of samples whose t0 is anywhere in the drive a closed loop covers "
        "(long before the scenario's event and after it), not near the event (default 0)",
    )
    train.add_argument(
        "--speed-drift",
        type=probability,
        default=0.0,
        help="fraction of the drifting samples whose car also ends up 1-3 m/s slower or "
        "faster than the expert (the states a policy that keeps braking, or does not "
        "brake, reaches; default 0)",
    )
    train.add_argument(
        "--closed-loop-scenarios",
        type=non_negative_int,
        default=0,
        help="DAgger: scenarios the --init-weights drive closed loop (the seeds after the "
        "open-loop ones); the states they visit, labelled by the expert planning from "
        "there, join the data (default: %(default)s)",
    )
    train.add_argument(
        "--closed-loop-label-every",
        type=positive_int,
        default=2,
        help="keep every n-th closed-loop plan's state (default: %(default)s)",
    )
    train.add_argument(
        "--road-pose-weight",
        type=non_negative_float,
        default=0.0,
        help="weight of an auxiliary loss that makes the scene latent tell where the car is "
        "on its road (lateral position, heading), read by a linear probe that exists only "
        "while training (default: %(default)s, none)",
    )
    train.add_argument(
        "--speed-only-history",
        action="store_true",
        help="the network reads the ego history as its speed profile only, not the path's "
        "shape, so it cannot copy the curvature it has been driving (kept in the weights; "
        "continuing weights trained otherwise switches them)",
    )
    train.add_argument(
        "--scene-readout",
        type=non_negative_int,
        default=0,
        metavar="CHANNELS",
        help="the scene latent also reads every camera's token grid by position, each token "
        "projected to CHANNELS (kept in the weights; added to continuing weights that lack "
        "it; default: %(default)s, as the continued weights are, none when fresh)",
    )
    train.set_defaults(handler=command_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="open-loop metrics on seeded scenarios, or on a recorded drive against its "
        "logged future",
    )
    evaluate_input = evaluate.add_mutually_exclusive_group(required=True)
    evaluate_input.add_argument(
        "--seeds", type=parse_seeds, help="synthetic scenarios, e.g. 11,12,13 or 1000-1199"
    )
    evaluate_input.add_argument(
        "--bag",
        type=Path,
        help="a recorded rosbag2 bag (sqlite3 or MCAP) with the cameras and the odometry, "
        "replayed in lock-step in one process; the logged ego path is the ground truth",
    )
    evaluate.add_argument(
        "--topic-map",
        type=Path,
        help="with --bag: where the bag's cameras and odometry are (default: the graph's "
        "topic names, as `alpamayo-ros record` holds them)",
    )
    evaluate.add_argument(
        "--types", type=parse_names, default=None, help="scenario types, comma-separated"
    )
    evaluate.add_argument(
        "--backends",
        type=parse_some_names,
        default=["embedded_vla", "constant_velocity"],
        help="model backends to compare, comma-separated (default: embedded_vla,constant_velocity)",
    )
    evaluate.add_argument(
        "--num-samples",
        type=positive_int,
        default=6,
        help="K trajectories per plan (default: %(default)s)",
    )
    evaluate.add_argument(
        "--weights",
        type=Path,
        help="the embedded VLA's weights or an Alpamayo checkpoint folder (default: packaged)",
    )
    evaluate.add_argument(
        "--device", default="cpu", help="the models' device: cpu, cuda, cuda:N (default: cpu)"
    )
    evaluate.add_argument(
        "--precision",
        default="fp32",
        help="the models' precision: fp32, fp16, bf16 (default: fp32)",
    )
    add_cuda_graphs_option(evaluate)
    evaluate.add_argument(
        "--missing-cameras",
        type=parse_names,
        default=[],
        help="cameras left out of every input, as when they fail, e.g. front_tele_30fov "
        "(default: none)",
    )
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.add_argument(
        "--per-sample",
        action="store_true",
        help="with --json: every sample (with --bag: every cycle, with its paths)",
    )
    evaluate.add_argument(
        "--report",
        type=Path,
        help="also write an HTML report with figures to this folder (index.html)",
    )
    evaluate.set_defaults(handler=command_evaluate)

    simulate = commands.add_parser(
        "simulate",
        help="closed-loop scenarios through the real nodes: the car driven by the stack",
    )
    simulate.add_argument(
        "--seeds",
        type=parse_seeds,
        default="3000000-3000009",
        help="scenario seeds, e.g. 11,12 or 3000000-3000099 (default: %(default)s; training "
        "uses seeds below 1,000,000)",
    )
    simulate.add_argument(
        "--types", type=parse_names, default=None, help="scenario types, comma-separated"
    )
    simulate.add_argument(
        "--drivers",
        type=parse_some_names,
        default=["expert", "constant_velocity", "embedded_vla"],
        help="who plans, comma-separated: expert (the ceiling) or a backend "
        "(default: expert,constant_velocity,embedded_vla)",
    )
    _params_file_argument(simulate, "simulator, node and backend parameters; ")
    simulate.add_argument("--weights", type=Path, help="embedded_vla weights (default: packaged)")
    simulate.add_argument(
        "--workers", type=positive_int, default=1, help="runs at once, on Ray when > 1 (default: 1)"
    )
    simulate.add_argument(
        "--ray-address", default=None, help="a Ray cluster to run on (default: a local Ray)"
    )
    simulate.add_argument(
        "--in-process",
        action="store_true",
        help="drive through the pipeline in one process, without ROS or the parameter file: "
        "a quick check of many seeds; the graph stays the reference",
    )
    simulate.add_argument("--json", action="store_true", help="machine-readable output")
    simulate.add_argument(
        "--output", type=Path, help="also write every run, with its drive, to this JSON file"
    )
    simulate.add_argument(
        "--report",
        type=Path,
        help="write an HTML report here (index.html: the summary, and per run a bird's-eye "
        "view of the drive, its signals over time and its metrics)",
    )
    simulate.set_defaults(handler=command_simulate)

    scenario = commands.add_parser(
        "scenario",
        help="run a scenario file (drives and the conditions they must meet); status 1 when "
        "a condition fails",
    )
    scenario.add_argument("file", type=Path, help="the scenario YAML (see scenario_file.py)")
    _params_file_argument(scenario, "for runs through the graph: ")
    scenario.add_argument(
        "--report", type=Path, help="also write an HTML report of the drives to this folder"
    )
    scenario.set_defaults(handler=command_scenario)

    benchmark = commands.add_parser("benchmark", help="cost of one 10 Hz cycle, per stage")
    benchmark.add_argument(
        "--backend", default="embedded_vla", help="model backend to time (default: %(default)s)"
    )
    benchmark.add_argument(
        "--cycles",
        type=positive_int,
        default=50,
        help="timed cycles, after 3 warm-up ones (default: %(default)s)",
    )
    benchmark.add_argument(
        "--num-samples",
        type=positive_int,
        default=6,
        help="K trajectories per plan (default: %(default)s)",
    )
    benchmark.add_argument(
        "--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)"
    )
    benchmark.add_argument(
        "--precision", default="fp32", help="fp32, fp16 or bf16 (default: %(default)s)"
    )
    add_cuda_graphs_option(benchmark)
    benchmark.add_argument(
        "--weights",
        type=Path,
        help="the embedded VLA's weights or an Alpamayo checkpoint folder (default: packaged)",
    )
    benchmark.add_argument(
        "--graph",
        action="store_true",
        help="time the running node graph over DDS hop by hop instead of one in-process cycle",
    )
    benchmark.add_argument(
        "--duration",
        type=positive_float,
        default=30.0,
        help="with --graph: seconds to measure (default: %(default)s)",
    )
    benchmark.add_argument(
        "--busy-cores",
        type=non_negative_int,
        default=0,
        help="with --graph: keep this many cores busy with unrelated processes meanwhile",
    )
    _params_file_argument(benchmark, "with --graph: ")
    benchmark.add_argument("--json", action="store_true", help="with --graph: JSON output")
    benchmark.set_defaults(handler=command_benchmark)

    record = commands.add_parser(
        "record",
        help="record topics into an MCAP rosbag2 bag",
        description="Record topics into an MCAP rosbag2 bag (zstd-compressed chunks, each "
        "topic's QoS in its metadata). Ctrl-C or SIGTERM stops it: the bag is closed, the "
        "counts printed, exit status 0. A recording of nothing is warned about and still a "
        "bag; only a topic named in --topics that never appeared makes the exit status 1.",
    )
    record.add_argument("--output", type=Path, required=True, help="new bag directory")
    record.add_argument(
        "--topics",
        type=parse_names,
        default=[],
        help="comma-separated; exit status 1 if one never appears (default: every topic)",
    )
    record.add_argument(
        "--duration", type=non_negative_float, default=0.0, help="seconds; 0 until Ctrl-C"
    )
    record.add_argument("--use-sim-time", action="store_true", help="stamp with /clock time")
    record.set_defaults(handler=command_record)

    replay = commands.add_parser(
        "replay",
        help="play a rosbag2 bag with /clock",
        description="Play a rosbag2 bag once with /clock, each topic reliable and, where "
        "recorded so, transient local. Ctrl-C or SIGTERM stops it between two messages: the "
        "counts are printed, exit status 0.",
    )
    replay.add_argument("bag", type=Path, help="the bag's folder (sqlite3 or MCAP)")
    replay.add_argument(
        "--topics", type=parse_names, default=[], help="comma-separated (default: every topic)"
    )
    replay.add_argument(
        "--rate", type=positive_float, default=1.0, help="times real time (default: %(default)s)"
    )
    replay.add_argument(
        "--delay",
        type=non_negative_float,
        default=5.0,
        help="seconds to wait before playing for every played topic (with --topic-map: "
        "every mapped input) to have a subscriber; played topics still without one are "
        "named in a warning (default: %(default)s)",
    )
    replay.add_argument(
        "--topic-map",
        type=Path,
        default=None,
        help="topic-mapping YAML the graph runs with: the bag must hold its topics and types",
    )
    replay.set_defaults(handler=command_replay)

    check = commands.add_parser("check-config", help="validate a parameter file")
    check.add_argument("params_file", type=Path, help="the ROS 2 parameter file to check")
    check.set_defaults(handler=command_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "params_file", None) is None:
        args.params_file = default_parameter_file()
    # SIGTERM (a service manager, `kill`) ends every command as Ctrl-C does; record,
    # replay and the demo catch both themselves to close their bag and exit 0.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.handler(args)
    except (ConfigurationError, GraphError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{args.command}: interrupted, nothing more written", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
