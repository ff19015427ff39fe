"""Start the node graph as plain processes, for machines without launch_ros.

Builds each node's command line from alpamayo_ros.graph and the same parameter file the
launch_ros file uses and validates that file first. A node that dies is reported and, if
asked, restarted; it never takes the others (above all the control bridge) down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import IO

from alpamayo_ros.graph import DEFAULT_GRAPH, OUTLIVES_ALL, NodeSpec, fastdds_profile_file
from alpamayo_ros.parameters import load_parameter_file


class GraphError(RuntimeError):
    """A node of the graph failed to start or died."""


def dds_environment(base: Mapping[str, str]) -> dict[str, str]:
    """Fast DDS settings for camera-sized messages, unless the user chose their own."""
    environment = dict(base)
    # Jazzy reads the first name, Kilted the second: a profile the user named under either
    # is theirs under both.
    names = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
    chosen = [environment[name] for name in names if environment.get(name)]
    profile = chosen[0] if chosen else str(fastdds_profile_file())
    environment.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    for name in names:
        environment.setdefault(name, profile)
    return environment


def ros_arguments(
    spec: NodeSpec, params_file: Path, use_sim_time: bool, log_level: str
) -> list[str]:
    arguments = [
        "--ros-args",
        "-r",
        f"__node:={spec.name}",
        "--params-file",
        str(params_file),
        "-p",
        f"use_sim_time:={'true' if use_sim_time else 'false'}",
        "--log-level",
        log_level,
    ]
    for source, target in spec.remappings:
        arguments += ["-r", f"{source}:={target}"]
    return arguments


# A node that ran this long before it exited counts as having started well: its next
# respawn waits the configured delay again.
STABLE_RUN_S = 10.0
# The longest wait between restarts of a node that keeps exiting at once.
MAX_RESPAWN_DELAY_S = 30.0
MAX_DOUBLINGS = 16  # bounds the power of two long before the cap applies


class GraphProcesses:
    """The running graph; use as a context manager so every node is stopped on exit.

    A node that exits takes nothing else down: `supervise` reports it and restarts the
    nodes named in `respawn` after `respawn_delay_s` (as launch_ros's `respawn`). The
    control bridge is started first and stopped last, so the car is always commanded.
    `check` is the strict alternative for measurements and tests: any exit is an error.
    """

    def __init__(
        self,
        params_file: Path,
        use_sim_time: bool = False,
        log_level: str = "info",
        nodes: tuple[NodeSpec, ...] = DEFAULT_GRAPH,
        respawn: Collection[str] = (),
        respawn_delay_s: float = 1.0,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """`environment` adds to the nodes' environment (a run's own ROS_DOMAIN_ID)."""
        load_parameter_file(params_file)  # raises ParameterError before anything starts
        self.params_file = Path(params_file)
        self.use_sim_time = use_sim_time
        self.log_level = log_level
        # The node that outlives all the others first (started first, stopped last).
        self.nodes = tuple(sorted(nodes, key=lambda spec: spec.name != OUTLIVES_ALL))
        self.respawn = frozenset(respawn)
        self.respawn_delay_s = respawn_delay_s
        self.environment = dict(environment or {})
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, IO[bytes]] = {}
        # Nodes that exited and are not running again yet -> when (time.monotonic()).
        self.exits: dict[str, float] = {}
        self.restarts: Counter[str] = Counter()
        self.started: dict[str, float] = {}  # node -> when it last started (time.monotonic())
        self.quick_exits: Counter[str] = Counter()  # exits in a row soon after starting

    def __enter__(self) -> GraphProcesses:
        try:
            for spec in self.nodes:
                self._start(spec)
        except BaseException:
            self.__exit__()  # what did start is stopped, not orphaned
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            for log in self.logs.values():
                log.close()

    def _start(self, spec: NodeSpec) -> None:
        self.started[spec.name] = time.monotonic()
        if spec.name not in self.logs:  # one log across restarts, read by `output`
            self.logs[spec.name] = tempfile.TemporaryFile()  # noqa: SIM115 - open for the run
        self.processes[spec.name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                spec.module,
                *ros_arguments(spec, self.params_file, self.use_sim_time, self.log_level),
            ],
            env=dds_environment({**os.environ, **self.environment}),
            stdout=self.logs[spec.name],
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in the terminal reaches the launcher only, which then
            # stops the nodes in order, the control bridge last.
            start_new_session=True,
        )

    def output(self, name: str) -> str:
        log = self.logs[name]
        log.seek(0)
        return log.read().decode(errors="replace")

    def check(self) -> None:
        """Raise GraphError naming the first node that exited, with its output."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                raise GraphError(f"node {name} exited with status {code}:\n{self.output(name)}")

    def supervise(self) -> list[str]:
        """Note exits and restart what is due; returns a line per event, for the user."""
        events = []
        now = time.monotonic()
        for spec in self.nodes:
            name = spec.name
            code = self.processes[name].poll()
            if code is not None and name not in self.exits:
                self.exits[name] = now
                if now - self.started[name] >= STABLE_RUN_S:
                    self.quick_exits[name] = 0
                self.quick_exits[name] += 1
                then = (
                    f"respawning in {self.respawn_delay(name):g} s"
                    if name in self.respawn
                    else "not respawned; the other nodes keep running"
                )
                tail = "\n".join(self.output(name).strip().splitlines()[-5:])
                events.append(f"node {name} exited with status {code}; {then}\n{tail}".rstrip())
            exited_at = self.exits.get(name)
            if (
                name in self.respawn
                and exited_at is not None
                and now - exited_at >= self.respawn_delay(name)
            ):
                del self.exits[name]
                self.restarts[name] += 1
                self._start(spec)
                events.append(f"node {name} respawned (restart {self.restarts[name]})")
        return events

    def respawn_delay(self, name: str) -> float:
        """`respawn_delay_s`, doubled for each exit in a row within STABLE_RUN_S of its
        start, up to MAX_RESPAWN_DELAY_S: a node that cannot start (a missing device, a
        bad file) is retried ever more slowly instead of flooding the log. Not the node
        that outlives all: while it is down nothing commands the car."""
        if name == OUTLIVES_ALL:
            return self.respawn_delay_s
        doublings = min(max(self.quick_exits[name] - 1, 0), MAX_DOUBLINGS)
        return min(
            self.respawn_delay_s * 2.0**doublings, max(MAX_RESPAWN_DELAY_S, self.respawn_delay_s)
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every node, the one that outlives all the others after them. Interrupted
        meanwhile (a second Ctrl-C), it kills what still runs before it lets go: no node
        is left behind without its launcher."""
        try:
            self._stop_in_order(timeout_s)
        except BaseException:
            for process in self.processes.values():
                if process.poll() is None:
                    process.kill()
            raise

    def _stop_in_order(self, timeout_s: float) -> None:
        last = [name for name in self.processes if name == OUTLIVES_ALL]
        first = [name for name in self.processes if name != OUTLIVES_ALL]
        for names in (first, last):
            for name in names:
                if self.processes[name].poll() is None:
                    self.processes[name].send_signal(signal.SIGINT)
            deadline = time.monotonic() + timeout_s
            for name in names:
                process = self.processes[name]
                try:
                    process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
