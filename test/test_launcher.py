"""The project's launcher with real child processes: a node that cannot start is retried
ever more slowly, starting or stopping the graph leaves no process behind, and the DDS
profile it sets is one Fast DDS accepts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.graph import NodeSpec, default_parameter_file, log_level
from alpamayo_ros.launcher import GraphProcesses, dds_environment

# A "node" whose module does not exist: its process exits at once with status 1.
BROKEN = NodeSpec("broken_node", "alpamayo_ros.nodes.no_such_node", ())


def supervise_exits(spec: NodeSpec) -> tuple[GraphProcesses, list[str], list[float]]:
    """Run a node that exits at once, respawned 0.1 s after each exit, until the launcher
    has announced 5 respawns (at most 30 s: each start is a Python process's, slow on a
    loaded machine): the graph, the events and the respawn delays they announce."""
    events: list[str] = []
    with GraphProcesses(
        default_parameter_file(), nodes=(spec,), respawn={spec.name}, respawn_delay_s=0.1
    ) as graph:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and len(respawn_delays(events)) < 5:
            events.extend(graph.supervise())
            time.sleep(0.02)
    return graph, events, respawn_delays(events)


def respawn_delays(events: list[str]) -> list[float]:
    return [float(d) for d in re.findall(r"respawning in ([\d.]+) s", "\n".join(events))]


def test_a_node_that_keeps_exiting_is_respawned_with_a_doubling_delay(ros_domain: int) -> None:
    graph, events, delays = supervise_exits(BROKEN)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8], events
    assert "No module named alpamayo_ros.nodes.no_such_node" in events[0]
    assert graph.restarts[BROKEN.name] >= 3


def test_the_node_that_outlives_all_is_respawned_without_backing_off(ros_domain: int) -> None:
    """While the control bridge is down nothing commands the car: it is retried at the
    configured delay however often it exits."""
    _, events, delays = supervise_exits(NodeSpec("control_bridge", BROKEN.module, ()))
    assert len(delays) >= 4 and set(delays) == {0.1}, events


def test_a_node_that_fails_to_start_stops_the_ones_already_started(ros_domain: int) -> None:
    """Popen refuses the second node (a NUL in its command line): the control bridge,
    started first, is stopped, not orphaned."""
    bridge = NodeSpec("control_bridge", "alpamayo_ros.nodes.control_bridge", ())
    unstartable = NodeSpec("unstartable", "alpamayo_ros.nodes.\0", ())
    graph = GraphProcesses(default_parameter_file(), nodes=(bridge, unstartable))
    with pytest.raises(ValueError, match="null byte"), graph:
        pass
    assert graph.processes["control_bridge"].poll() is not None


def test_an_interrupted_stop_leaves_no_node_running(
    ros_domain: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C while the first nodes shut down (here: while the launcher waits for
    the visualiser): the rest, the control bridge among them, are killed rather than left
    running without their launcher."""
    nodes = tuple(
        NodeSpec(name, f"alpamayo_ros.nodes.{name}", ())
        for name in ("control_bridge", "visualiser")
    )
    graph = GraphProcesses(default_parameter_file(), nodes=nodes)
    graph.__enter__()
    visualiser = graph.processes["visualiser"]
    wait = visualiser.wait

    def interrupted(timeout: float | None = None) -> int:
        monkeypatch.setattr(visualiser, "wait", wait)  # once
        raise KeyboardInterrupt

    monkeypatch.setattr(visualiser, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        graph.__exit__(None, None, None)
    for name, process in graph.processes.items():
        try:
            process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"{name} was left running")


def test_a_log_level_rcl_does_not_know_is_refused() -> None:
    assert log_level(" WARN ") == "warn"
    with pytest.raises(ConfigurationError, match="log_level must be one of debug, info, warn"):
        log_level("loud")


def test_the_dds_settings_are_the_users_where_they_chose_them() -> None:
    packaged = dds_environment({})
    assert packaged["RMW_IMPLEMENTATION"] == "rmw_fastrtps_cpp"
    assert Path(packaged["FASTRTPS_DEFAULT_PROFILES_FILE"]).name == "fastdds_shm.xml"
    assert packaged["FASTDDS_DEFAULT_PROFILES_FILE"] == packaged["FASTRTPS_DEFAULT_PROFILES_FILE"]
    for name in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        theirs = dds_environment({name: "/theirs.xml", "RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})
        assert theirs["RMW_IMPLEMENTATION"] == "rmw_cyclonedds_cpp"
        assert theirs["FASTRTPS_DEFAULT_PROFILES_FILE"] == "/theirs.xml"
        assert theirs["FASTDDS_DEFAULT_PROFILES_FILE"] == "/theirs.xml"


def fast_dds_log(profile: Path) -> str:
    """What a process that starts a node under `profile` prints (Fast DDS reads the
    profile file when the node's participant is created)."""
    environment = {k: v for k, v in os.environ.items() if "PROFILES" not in k}
    environment.update(
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        FASTRTPS_DEFAULT_PROFILES_FILE=str(profile),
        FASTDDS_DEFAULT_PROFILES_FILE=str(profile),
    )
    script = "import rclpy; rclpy.init(); rclpy.create_node('profile_check'); print('created')"
    done = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout
    return done.stdout + done.stderr


def test_the_dds_profile_loads_without_an_error(ros_domain: int, tmp_path: Path) -> None:
    """Fast DDS skips a profile it cannot parse with no more than a log line, so a typo
    would quietly bring back the defaults (512 KB segments, a 3 s heartbeat)."""
    profile = Path(dds_environment({})["FASTRTPS_DEFAULT_PROFILES_FILE"])
    log = fast_dds_log(profile)
    assert "XMLPARSER" not in log, log
    # The same check sees a misspelled element.
    misspelled = tmp_path / "misspelled.xml"
    misspelled.write_text(profile.read_text().replace("heartbeatPeriod", "heartbeatPeriode"))
    assert "XMLPARSER" in fast_dds_log(misspelled)
