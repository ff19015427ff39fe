"""High-level driving decisions and their causes (Alpamayo-R1 paper, Table 1).

Values equal the constants of alpamayo_ros_msgs/Reasoning (a test holds them together), so
pure code can use them without importing ROS.
"""

from __future__ import annotations

from enum import IntEnum


class LongitudinalDecision(IntEnum):
    UNKNOWN = 0
    SET_SPEED_TRACKING = 1
    LEAD_OBSTACLE_FOLLOWING = 2
    SPEED_ADAPTATION = 3
    GAP_SEARCHING = 4
    ACCELERATE_TO_PASS = 5
    YIELD = 6
    STOP_FOR_STATIC_CONSTRAINT = 7


class LateralDecision(IntEnum):
    UNKNOWN = 0
    LANE_KEEPING = 1
    MERGE_SPLIT = 2
    OUT_OF_LANE_NUDGE = 3
    IN_LANE_NUDGE = 4
    LANE_CHANGE = 5
    PULL_OVER = 6
    TURN = 7
    LATERAL_MANEUVER_ABORT = 8


class Cause(IntEnum):
    NONE = 0
    LEAD_VEHICLE = 1
    STOPPED_VEHICLE = 2
    CUT_IN = 3
    PEDESTRIAN = 4
    CYCLIST = 5
    TRAFFIC_LIGHT = 6
    CONSTRUCTION = 7
    ROAD_GEOMETRY = 8
    INTERSECTION = 9
    OTHER = 10


# Causes that are one object in the scene, whose position a reasoning can point at.
OBJECT_CAUSES = frozenset(
    {
        Cause.LEAD_VEHICLE,
        Cause.STOPPED_VEHICLE,
        Cause.CUT_IN,
        Cause.PEDESTRIAN,
        Cause.CYCLIST,
        Cause.TRAFFIC_LIGHT,
        Cause.CONSTRUCTION,
    }
)
