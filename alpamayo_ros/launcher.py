"""Start the node graph as plain processes, for machines without launch_ros.

Builds each node's command line from alpamayo_ros.graph and the same parameter file the
launch_ros file uses, validates that file first, and stops the whole graph if any node dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from alpamayo_ros.graph import NODES, NodeSpec, fastdds_profile_file
from alpamayo_ros.parameters import load_parameter_file


class GraphError(RuntimeError):
    """A node of the graph failed to start or died."""


def dds_environment(base: Mapping[str, str]) -> dict[str, str]:
    """Fast DDS settings for camera-sized messages, unless the user chose their own."""
    environment = dict(base)
    profile = str(fastdds_profile_file())
    environment.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    # Jazzy reads the first name, Kilted the second.
    environment.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", profile)
    environment.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", profile)
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


class GraphProcesses:
    """The running graph; use as a context manager so every node is stopped on exit."""

    def __init__(
        self,
        params_file: Path,
        use_sim_time: bool = False,
        log_level: str = "info",
        nodes: tuple[NodeSpec, ...] = NODES,
    ) -> None:
        load_parameter_file(params_file)  # raises ParameterError before anything starts
        self.params_file = Path(params_file)
        self.use_sim_time = use_sim_time
        self.log_level = log_level
        self.nodes = nodes
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, IO[bytes]] = {}

    def __enter__(self) -> GraphProcesses:
        environment = dds_environment(os.environ)
        for spec in self.nodes:
            log = tempfile.TemporaryFile()
            self.logs[spec.name] = log
            self.processes[spec.name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    spec.module,
                    *ros_arguments(spec, self.params_file, self.use_sim_time, self.log_level),
                ],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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

    def run_for(self, seconds: float, poll_s: float = 0.1) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check()
            time.sleep(poll_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
