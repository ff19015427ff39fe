"""The command line explains itself (every option of every command has help, and an
option with a default says what it is) and stops cleanly when told to."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

import pytest

from alpamayo_ros.backends.worker_server import build_parser as worker_parser
from alpamayo_ros.cli import INTERRUPTED, build_parser


def test_every_option_has_help_that_shows_its_default() -> None:
    problems = []
    for name, action in every_option():
        if isinstance(action, argparse._HelpAction):
            continue
        option = "/".join(action.option_strings) or action.dest
        if not action.help:
            problems.append(f"{name} {option}: no help")
        elif (
            name != "alpamayo-ros-model-worker"  # its help formatter shows every default
            and action.option_strings
            and action.default not in (None, False, [], ())
            and "default" not in action.help
        ):
            problems.append(f"{name} {option}: default {action.default!r} not shown")
    assert not problems, "\n".join(problems)


def every_option() -> list[tuple[str, argparse.Action]]:
    """(command, option) of every subcommand of alpamayo-ros, and of the model worker."""
    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    parsers = {**commands.choices, "alpamayo-ros-model-worker": worker_parser()}
    return [(name, action) for name, parser in parsers.items() for action in parser._actions]


def test_every_number_option_states_its_range() -> None:
    """A bare int or float lets 0 or -1 through, to fail deep in the work or measure
    nothing (alpamayo_ros/arguments.py has the bounded types)."""
    bare = [
        f"{name} {'/'.join(action.option_strings)}"
        for name, action in every_option()
        if action.type in (int, float) or (action.type is None and is_number(action.default))
    ]
    assert not bare, bare


def is_number(value: object) -> bool:
    """A number, or a string that reads as one (an untyped option's default)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["evaluate", "--seeds", "1", "--num-samples", "0"],
            "--num-samples: 0 is not an integer >= 1",
        ),
        (["benchmark", "--cycles", "-2"], "--cycles: -2 is not an integer >= 1"),
        (["benchmark", "--graph", "--duration", "nan"], "--duration: nan is not a number > 0"),
        (["train", "--output", "w", "--batch-size", "0"], "--batch-size: 0 is not an integer >= 1"),
        (
            ["train", "--output", "w", "--learning-rate", "-1"],
            "--learning-rate: -1 is not a number > 0",
        ),
        (["replay", "bag", "--rate", "0"], "--rate: 0 is not a number > 0"),
        (["record", "--output", "b", "--duration", "-1"], "--duration: -1 is not a number >= 0"),
        (["demo", "--seed", str(2**63)], f"--seed: {2**63} is not a seed in [0, {2**63 - 1}]"),
        (["demo", "--seed", "x"], "--seed: 'x' is not a seed"),
        (["demo", "--type", "bogus"], "--type: invalid choice: 'bogus'"),
        (["launch", "--log-level", "loud"], "--log-level: log_level must be one of debug"),
        (["launch", "--respawn-delay", "inf"], "--respawn-delay: respawn_delay must be seconds"),
        (["demo", "--seed", "1" + "0" * 400], f"--seed: 1{'0' * 400} is not a seed in"),
        (["evaluate", "--seeds", "1", "--backends", ""], "--backends: '' names none"),
        (["simulate", "--seeds", "1", "--drivers", ","], "--drivers: ',' names none"),
        (["simulate", "--seeds", "1", "--workers", "0"], "--workers: 0 is not an integer >= 1"),
    ],
)
def test_a_value_out_of_range_is_refused_before_any_work(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(arguments)
    assert exited.value.code == 2
    assert f"argument {message}" in capsys.readouterr().err


def test_what_rcl_and_ros2_launch_accept_the_command_line_accepts_too() -> None:
    """One rule for both launchers (graph.py's), and an empty type list still means each
    seed's own type."""
    launch = build_parser().parse_args(["launch", "--log-level", "WARN"])
    assert (launch.log_level, launch.respawn_delay) == ("warn", 1.0)
    assert build_parser().parse_args(["simulate", "--seeds", "1", "--types", ""]).types == []


def test_the_model_workers_counts_are_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        worker_parser().parse_args(["--threads", "0"])
    assert exited.value.code == 2
    assert "--threads: 0 is not an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--camera-dropout", "--drift", "--speed-drift"])
def test_a_probability_outside_0_1_is_refused_before_any_work(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["train", "--output", "w.safetensors", option, "1.5"])
    assert exited.value.code == 2
    assert f"{option}: 1.5 is not a probability in [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_long_command_stops_cleanly_on_a_signal(signum: signal.Signals) -> None:
    """Ctrl-C or SIGTERM in the middle of a long evaluation: one line on stderr, status
    130, no traceback."""
    command = [sys.executable, "-m", "alpamayo_ros.cli", "evaluate", "--seeds", "1-100000"]
    process = subprocess.Popen(
        [*command, "--backends", "constant_velocity"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a shell starts a background job (this suite under `cmd &`)
        # with SIGINT ignored, and the command would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stderr is not None
        progress = process.stderr.readline()  # the first progress line: it is running
        assert progress.startswith("evaluated "), progress
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == INTERRUPTED, stderr
    assert "evaluate: interrupted" in stderr and "Traceback" not in stderr, stderr
