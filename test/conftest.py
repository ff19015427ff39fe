"""Shared fixtures: every test that touches DDS gets its own ROS_DOMAIN_ID."""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

# Domains 0..101 are valid for Fast DDS on one host; spread test workers over them.
_domains = itertools.count(10 + (os.getpid() % 40))


def pytest_configure(config: pytest.Config) -> None:
    """The test process talks DDS with the settings the command line uses (`alpamayo-ros
    replay` plays a bag from its own process with them). Fast DDS reads its profile file
    once per process, at the first participant, so they are set before any test runs.
    Where ROS is absent (the Python 3.10 run of the pure tests) there is nothing to set."""
    if importlib.util.find_spec("rclpy") is None:
        return
    from alpamayo_ros.launcher import dds_environment

    os.environ.update(dds_environment(os.environ))


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> int:
    """A fresh domain id, exported so that child processes use it too."""
    domain = 1 + next(_domains) % 100
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    return domain


@pytest.fixture
def rclpy_context(ros_domain: int) -> Iterator[object]:
    """An initialised rclpy context on the test's own domain."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=ros_domain)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture
def address() -> Iterator[str]:
    """A private ipc address for a model worker (short: socket paths are limited to ~107
    characters)."""
    directory = tempfile.mkdtemp(prefix="wk", dir="/tmp")
    try:
        yield f"ipc://{directory}/worker"
    finally:
        shutil.rmtree(directory, ignore_errors=True)
