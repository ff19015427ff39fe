"""Model backends behind the VLA and planner nodes, selected by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alpamayo_ros.configuration import Registry

if TYPE_CHECKING:
    from alpamayo_ros.backends.base import Backend

BACKENDS: Registry[Backend] = Registry(
    "backend",
    {
        "constant_velocity": "alpamayo_ros.backends.constant_velocity:ConstantVelocityBackend",
    },
)


def available_backends() -> tuple[str, ...]:
    return BACKENDS.names()


def create_backend(name: str) -> Backend:
    return BACKENDS.create(name)
