"""The classical detectors run beside the model on the frames of each t0, as one set.

The VLA node chooses each by a parameter; the closed loop in one process, the replay of
a recorded drive and the benchmark run all of them over the packaged rig, as the node does
by default, through `Detectors.for_rig`.
"""

from __future__ import annotations

from dataclasses import dataclass

from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.perception.free_space import FreeSpaceDetector
from alpamayo_ros.perception.lane import LaneDetector
from alpamayo_ros.perception.traffic_light import TrafficLightDetector


@dataclass(frozen=True)
class Detectors:
    """None where a detector is off (or the rig lacks its cameras)."""

    lane: LaneDetector | None = None
    light: TrafficLightDetector | None = None
    free_space: FreeSpaceDetector | None = None

    @classmethod
    def for_rig(cls, rig: CameraRig) -> Detectors:
        """Every detector over the rig's cameras (each None where it has none of its own)."""
        return cls(
            LaneDetector.for_rig(rig),
            TrafficLightDetector.for_rig(rig),
            FreeSpaceDetector.for_rig(rig),
        )


NO_DETECTORS = Detectors()  # the model alone
