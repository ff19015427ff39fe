"""Camera sources behind the camera driver node, selected by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alpamayo_ros.configuration import Registry

if TYPE_CHECKING:
    from alpamayo_ros.core.rig import CameraRig
    from alpamayo_ros.sensors.base import CameraSource

SOURCES: Registry[CameraSource] = Registry(
    "camera source",
    {
        "synthetic": "alpamayo_ros.sensors.synthetic:SyntheticSource",
        "video": "alpamayo_ros.sensors.video:VideoSource",
        "folder": "alpamayo_ros.sensors.folder:FolderSource",
        "device": "alpamayo_ros.sensors.device:DeviceSource",
        "bag": "alpamayo_ros.sensors.bag:BagSource",
    },
)


def available_sources() -> tuple[str, ...]:
    return SOURCES.names()


def create_source(name: str, rig: CameraRig, **options: object) -> CameraSource:
    return SOURCES.create(name, rig, **options)
