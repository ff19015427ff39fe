"""The command line explains itself: every option of every command has help, and an
option with a default says what it is."""

from __future__ import annotations

import argparse

from alpamayo_ros.cli import build_parser


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
