"""The command line explains itself (every option of every command has help, and an
option with a default says what it is) and stops cleanly when told to."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

import pytest

from alpamayo_ros.cli import INTERRUPTED, build_parser


def test_every_option_has_help_that_shows_its_default() -> None:
    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    problems = []
    for name, command in commands.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            option = "/".join(action.option_strings) or action.dest
            if not action.help:
                problems.append(f"{name} {option}: no help")
            elif (
                action.option_strings
                and action.default not in (None, False, [], ())
                and "default" not in action.help
            ):
                problems.append(f"{name} {option}: default {action.default!r} not shown")
    assert not problems, "\n".join(problems)


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
