"""Camera sources behind the camera driver node, selected by name."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alpamayo_ros.sensors.base import CameraSource
    from alpamayo_ros.sensors.rig import CameraRig

_REGISTRY: dict[str, str] = {
    "synthetic": "alpamayo_ros.sensors.synthetic:SyntheticSource",
}


class UnknownSource(ValueError):
    """A camera source name that is not registered."""


def available_sources() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def create_source(name: str, rig: CameraRig, **options: object) -> CameraSource:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise UnknownSource(
            f"unknown camera source {name!r} (known: {', '.join(available_sources())})"
        ) from None
    module_name, class_name = target.split(":")
    return getattr(import_module(module_name), class_name)(rig, **options)
