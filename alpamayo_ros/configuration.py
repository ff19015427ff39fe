"""What every start-up failure has in common, and the name -> implementation registries.

A node that cannot start because of how it was configured (a parameter, a backend or
source name, a rig or weights file) raises a ConfigurationError; the node runner turns it
into one clear line and exit status 2 instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any, Generic, TypeVar

Product = TypeVar("Product")


class ConfigurationError(ValueError):
    """The configuration cannot start the graph; the message says what to fix."""


class UnknownName(ConfigurationError):
    """A name that is not registered."""


class Registry(Generic[Product]):
    """Implementations by name, imported only when created (a kinematic baseline never
    loads a deep-learning framework)."""

    def __init__(self, kind: str, targets: dict[str, str]) -> None:
        self.kind = kind
        self._targets = targets  # name -> "module:attribute"

    def names(self) -> tuple[str, ...]:
        return tuple(self._targets)

    def factory(self, name: str) -> Callable[..., Product]:
        """What makes `name` (its module imported now); UnknownName for another name."""
        try:
            target = self._targets[name]
        except KeyError:
            raise UnknownName(
                f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})"
            ) from None
        module_name, attribute = target.split(":")
        factory: Callable[..., Product] = getattr(import_module(module_name), attribute)
        return factory

    def create(self, name: str, *args: Any, **kwargs: Any) -> Product:
        return self.factory(name)(*args, **kwargs)
