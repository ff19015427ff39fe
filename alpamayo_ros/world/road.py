"""Road geometry of the synthetic world: reference path, lanes, markings, intersection.

The reference path is the centre line of lane 0, the rightmost lane, built from straight and
constant-curvature segments. Road coordinates are (s, d): arc length along the path and
lateral offset from it, positive to the left (REP-103), so lane i is centred at
d = i * lane_width. The world frame has its origin at s = 0 with the path heading along +x.
Beyond its ends the path continues straight, so every s is valid: agents (and a live
simulation that runs on) never fall off the modelled road.

Scalar methods (`pose`, `project`) are used in the per-step control loop, where numpy
overhead on one point costs more than the arithmetic; vectorised ones (`poses`, `to_world`,
`to_road`) serve the renderer and tests.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

FloatArray = npt.NDArray[np.float64]

LANE_WIDTH_M = 3.5
MAX_LANES = 3
# Tighter than any road the expert is asked to drive (~0.02 1/m, a 50 m radius).
MAX_CURVATURE = 0.05
# An arc turning more than this makes the (s, d) projection ambiguous near its centre.
MAX_ARC_ANGLE_RAD = math.pi / 2.0
# Lane markings (m): dashed lines are DASH_LENGTH_M long every DASH_PERIOD_M.
MARKING_WIDTH_M = 0.15
DASH_LENGTH_M = 3.0
DASH_PERIOD_M = 12.0
STOP_LINE_DEPTH_M = 0.5
# The road around an intersection must be straight so that the crossing road is a rectangle.
INTERSECTION_STRAIGHT_MARGIN_M = 30.0


class RoadError(ValueError):
    """Road parameters that do not describe a drivable road."""


@dataclass(frozen=True)
class Segment:
    """A piece of the reference path: straight when curvature is 0, else a circular arc."""

    length: float  # m
    curvature: float = 0.0  # 1/m, positive turns left

    def __post_init__(self) -> None:
        if not self.length > 0.0:
            raise RoadError(f"segment length must be positive, got {self.length}")
        if abs(self.curvature) > MAX_CURVATURE:
            raise RoadError(f"|curvature| {self.curvature} exceeds {MAX_CURVATURE} 1/m")
        if abs(self.curvature) * self.length > MAX_ARC_ANGLE_RAD + 1e-9:
            raise RoadError("an arc may turn at most 90 degrees; split it into segments")


@dataclass(frozen=True)
class Intersection:
    """A crossing road perpendicular to the reference path, centred at arc length s."""

    s: float  # m, centre of the crossing road
    half_width: float = 7.0  # m, two lanes each way
    stop_line_gap: float = 2.0  # m between the stop line and the crossing road

    @property
    def near_edge_s(self) -> float:
        return self.s - self.half_width

    @property
    def far_edge_s(self) -> float:
        return self.s + self.half_width

    @property
    def stop_line_s(self) -> float:
        """Arc length of the stop line's far edge: where a stopping car's front must stay."""
        return self.near_edge_s - self.stop_line_gap


@dataclass(frozen=True)
class Marking:
    """A longitudinal lane marking at lateral offset d: a solid edge or a dashed divider."""

    d: float
    dashed: bool


@dataclass(frozen=True)
class Road:
    segments: tuple[Segment, ...]
    lane_count: int = 1
    lane_width: float = LANE_WIDTH_M
    intersection: Intersection | None = None
    crosswalk_s: float | None = None  # m, centre of a zebra crossing, if painted
    # Start state of every segment, derived in __post_init__.
    _s0: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _start: tuple[tuple[float, float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.segments:
            raise RoadError("a road needs at least one segment")
        if not 1 <= self.lane_count <= MAX_LANES:
            raise RoadError(f"lane_count must be 1..{MAX_LANES}, got {self.lane_count}")
        if not self.lane_width > 0.0:
            raise RoadError(f"lane_width must be positive, got {self.lane_width}")
        s0, starts = [], []
        s, x, y, yaw = 0.0, 0.0, 0.0, 0.0
        for segment in self.segments:
            s0.append(s)
            starts.append((x, y, yaw))
            x, y, yaw = _advance(x, y, yaw, segment.curvature, segment.length)
            s += segment.length
        object.__setattr__(self, "_s0", tuple(s0))
        object.__setattr__(self, "_start", tuple(starts))
        if self.intersection is not None:
            margin = INTERSECTION_STRAIGHT_MARGIN_M
            first = self.intersection.stop_line_s - margin
            last = self.intersection.far_edge_s + margin
            if self.max_abs_curvature(first, last) > 0.0:
                raise RoadError("the road must be straight around the intersection")

    # ----------------------------------------------------------------- path geometry
    @property
    def length(self) -> float:
        """Length of the modelled path; beyond it the road continues straight."""
        return self._s0[-1] + self.segments[-1].length

    def pose(self, s: float) -> tuple[float, float, float]:
        """(x, y, yaw) of the reference path at arc length s."""
        index = self._segment_index(s)
        if index < 0:  # straight extension behind the start
            return s, 0.0, 0.0
        x, y, yaw = self._start[index]
        segment = self.segments[index]
        local = s - self._s0[index]
        curvature = segment.curvature if local <= segment.length else 0.0
        if local > segment.length:  # straight extension beyond the end
            x, y, yaw = _advance(x, y, yaw, segment.curvature, segment.length)
            local -= segment.length
        return _advance(x, y, yaw, curvature, local)

    def curvature_at(self, s: float) -> float:
        index = self._segment_index(s)
        if index < 0 or s > self.length:
            return 0.0
        return self.segments[index].curvature

    def max_abs_curvature(self, s_from: float, s_to: float) -> float:
        """Largest |curvature| of the path between two arc lengths."""
        largest = 0.0
        for s0, segment in zip(self._s0, self.segments, strict=True):
            if s0 < s_to and s0 + segment.length > s_from:
                largest = max(largest, abs(segment.curvature))
        return largest

    def curves(self) -> list[tuple[float, float, float]]:
        """(start s, end s, curvature) of every arc of the path."""
        return [
            (s0, s0 + segment.length, segment.curvature)
            for s0, segment in zip(self._s0, self.segments, strict=True)
            if segment.curvature != 0.0
        ]

    def poses(self, s: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Vectorised `pose`: (x, y, yaw) arrays shaped like s."""
        s = np.asarray(s, dtype=float)
        s0 = np.asarray(self._s0)
        index = np.clip(np.searchsorted(s0, s, side="right") - 1, 0, None)
        starts = np.asarray(self._start)[index]
        lengths = np.asarray([segment.length for segment in self.segments])[index]
        curvature = np.asarray([segment.curvature for segment in self.segments])[index]
        local = s - s0[index]
        # Before the start: straight back along the initial heading (start pose is the origin).
        before = s < 0.0
        local = np.where(before, s, local)
        curvature = np.where(before, 0.0, curvature)
        x, y, yaw = _advance_array(
            starts[..., 0], starts[..., 1], starts[..., 2], curvature, np.minimum(local, lengths)
        )
        beyond = np.maximum(local - lengths, 0.0)  # straight extension after the end
        return x + beyond * np.cos(yaw), y + beyond * np.sin(yaw), yaw

    def to_world(self, s: ArrayLike, d: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """World (x, y) and path heading of road coordinates (s, d)."""
        s, d = np.broadcast_arrays(np.asarray(s, dtype=float), np.asarray(d, dtype=float))
        x, y, yaw = self.poses(s)
        return x - d * np.sin(yaw), y + d * np.cos(yaw), yaw

    def world_point(self, s: float, d: float) -> tuple[float, float, float]:
        """Scalar `to_world`: (x, y, path yaw)."""
        x, y, yaw = self.pose(s)
        return x - d * math.sin(yaw), y + d * math.cos(yaw), yaw

    def project(self, x: float, y: float) -> tuple[float, float]:
        """Road coordinates (s, d) of a world point: its closest point on the path."""
        best = (math.inf, 0.0, 0.0)
        for candidate in self._candidates(x, y):
            if candidate[0] < best[0]:
                best = candidate
        return best[1], best[2]

    def to_road(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Vectorised `project` (a loop: only tests and tools need many points)."""
        x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        sd = np.array([self.project(px, py) for px, py in zip(x.ravel(), y.ravel(), strict=True)])
        sd = sd.reshape((*x.shape, 2))
        return sd[..., 0], sd[..., 1]

    # ------------------------------------------------------------------------ lanes
    def lane_center(self, lane: int) -> float:
        return lane * self.lane_width

    @property
    def right_edge(self) -> float:
        return -self.lane_width / 2.0

    @property
    def left_edge(self) -> float:
        return (self.lane_count - 0.5) * self.lane_width

    def has_lane(self, lane: int) -> bool:
        return 0 <= lane < self.lane_count

    def lane_at(self, d: float) -> int | None:
        """Index of the lane containing lateral offset d, None off the road."""
        lane = self._lane_index(d)
        return lane if self.has_lane(lane) else None

    def nearest_lane(self, d: float) -> int:
        """The lane containing lateral offset d, or off the road the outermost on that side."""
        return min(max(self._lane_index(d), 0), self.lane_count - 1)

    def _lane_index(self, d: float) -> int:
        """The lane d would be in if the road had lanes on every side."""
        return math.floor(d / self.lane_width + 0.5)

    def markings(self) -> tuple[Marking, ...]:
        """Solid edges and dashed dividers between lanes, right to left."""
        return tuple(
            Marking((boundary - 0.5) * self.lane_width, 0 < boundary < self.lane_count)
            for boundary in range(self.lane_count + 1)
        )

    # --------------------------------------------------------------------- internals
    def _segment_index(self, s: float) -> int:
        """Index of the segment holding s; -1 before the start, the last one beyond the end."""
        if s < 0.0:
            return -1
        return bisect.bisect_right(self._s0, s) - 1

    def _candidates(self, x: float, y: float) -> list[tuple[float, float, float]]:
        """(squared distance, s, d) of the closest point on each piece of the path."""
        candidates = []
        # Straight extension behind the start: the -x axis.
        if x < 0.0:
            candidates.append((y * y, x, y))
        for index, segment in enumerate(self.segments):
            x0, y0, yaw0 = self._start[index]
            s0 = self._s0[index]
            candidates.append(_closest_on_piece(x - x0, y - y0, yaw0, segment, s0))
        # Straight extension beyond the end.
        end_x, end_y, end_yaw = self.pose(self.length)
        cos, sin = math.cos(end_yaw), math.sin(end_yaw)
        along = (x - end_x) * cos + (y - end_y) * sin
        if along > 0.0:
            lateral = -(x - end_x) * sin + (y - end_y) * cos
            candidates.append((lateral * lateral, self.length + along, lateral))
        return candidates


def _closest_on_piece(
    dx: float, dy: float, yaw0: float, segment: Segment, s0: float
) -> tuple[float, float, float]:
    """(squared distance, s, d) of the closest point of one segment to (dx, dy) from its start."""
    cos, sin = math.cos(yaw0), math.sin(yaw0)
    curvature, length = segment.curvature, segment.length
    if curvature == 0.0:
        along = dx * cos + dy * sin
        lateral = -dx * sin + dy * cos
        clamped = min(max(along, 0.0), length)
        return (along - clamped) ** 2 + lateral * lateral, s0 + clamped, lateral
    radius = 1.0 / curvature  # signed: the centre is at radius along the left normal
    cx, cy = -radius * sin, radius * cos
    px, py = dx - cx, dy - cy
    start_angle = math.atan2(-cy, -cx)
    angle = math.atan2(py, px) - start_angle
    angle = (angle + math.pi) % (2.0 * math.pi) - math.pi
    local = angle / curvature
    r = math.hypot(px, py)
    if 0.0 <= local <= length:
        lateral = radius - math.copysign(r, curvature)
        return lateral * lateral, s0 + local, lateral
    # Outside the arc the closest point is one of its ends.
    best = (math.inf, 0.0, 0.0)
    for end in (0.0, length):
        ex, ey, eyaw = _advance(0.0, 0.0, yaw0, curvature, end)
        ox, oy = dx - ex, dy - ey
        distance = ox * ox + oy * oy
        if distance < best[0]:
            best = (distance, s0 + end, -ox * math.sin(eyaw) + oy * math.cos(eyaw))
    return best


def _advance(
    x: float, y: float, yaw: float, curvature: float, distance: float
) -> tuple[float, float, float]:
    """Pose after driving `distance` along an arc of `curvature` (straight when 0)."""
    if curvature == 0.0:
        return x + distance * math.cos(yaw), y + distance * math.sin(yaw), yaw
    end_yaw = yaw + curvature * distance
    return (
        x + (math.sin(end_yaw) - math.sin(yaw)) / curvature,
        y - (math.cos(end_yaw) - math.cos(yaw)) / curvature,
        end_yaw,
    )


def _advance_array(
    x: FloatArray, y: FloatArray, yaw: FloatArray, curvature: FloatArray, distance: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    end_yaw = yaw + curvature * distance
    straight = np.abs(curvature) < 1e-12
    safe = np.where(straight, 1.0, curvature)
    dx = np.where(straight, distance * np.cos(yaw), (np.sin(end_yaw) - np.sin(yaw)) / safe)
    dy = np.where(straight, distance * np.sin(yaw), -(np.cos(end_yaw) - np.cos(yaw)) / safe)
    return x + dx, y + dy, end_yaw
