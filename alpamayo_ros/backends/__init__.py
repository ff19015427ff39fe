"""Model backends behind the VLA and planner nodes, selected by name.

Backends are imported only when created, so choosing the kinematic baseline never loads a
deep-learning framework.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alpamayo_ros.backends.base import Backend

_REGISTRY: dict[str, str] = {
    "constant_velocity": "alpamayo_ros.backends.constant_velocity:ConstantVelocityBackend",
}


class UnknownBackend(ValueError):
    """A backend name that is not registered."""


def available_backends() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def create_backend(name: str) -> Backend:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise UnknownBackend(
            f"unknown backend {name!r} (known: {', '.join(available_backends())})"
        ) from None
    module_name, class_name = target.split(":")
    return getattr(import_module(module_name), class_name)()
