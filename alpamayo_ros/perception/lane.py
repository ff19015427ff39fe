"""The ego lane's centre line ahead, from the lane markings a camera sees.

Why a classical detector beside the model: the embedded VLA turns into a bend 20-25 m
early on free roads (a left bend of 0.009 1/m, 25 m on: every sample starts at
0.008-0.019 1/m where the expert drives straight for another 15 m), and asked for the lane
centre its own features place it 1.2 m off at 20 m. The markings themselves are plain in
the front cameras, so the planner gets the lane from them and the model keeps deciding
what to do in it.

How: markings are thin bright stripes on a darker road, so each camera's image is
reduced to the darker of its red and green channels (white and yellow paint stay bright,
grass, sky and most cars do not) and a white top-hat along each row keeps what is
brighter than its surroundings and narrower than a few pixels; every such pixel below the
horizon is cast onto the ground plane (flat ground, the camera's calibration:
`core.rig.CameraModel`), which gives points in base_link (REP-103: x forward, y left).
The lane starts from the markings the car is between: the near points lined up along the
parallel curves (heading and bend) that gather them best, and of the lanes between the
nearest marking either side, the one nearest the car. It is then followed outwards in
steps of `STEP_M`: each step looks where the lane so far (a quadratic fitted to its last
25 m) predicts this lane's boundaries and the next lanes', so a dashed line's gaps, a
crosswalk stripe or a far edge do not pull it away. It ends where nothing was found for
`MAX_GAP_M`, where it leaves the cameras' view, or where it turns like no lane does; and
none is reported where too little of it shows near the car (at an intersection, a
crosswalk), or the near markings line up only at the edge of what a car in its lane sees.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.rig import CameraModel, CameraRig
from alpamayo_ros.perception import PerceptionError

FloatArray = npt.NDArray[np.float64]
Image = npt.NDArray[np.uint8]

STEP_M = 2.0  # length of road each search step covers
GATE_M = 0.6  # how far from its prediction a boundary may be found
MAX_GAP_M = 16.0  # a dashed line's gap (9 m) and a missed dash
DEFAULT_LANE_WIDTH_M = 3.5
MIN_LANE_WIDTH_M, MAX_LANE_WIDTH_M = 2.5, 4.5
MIN_CONTRAST = 24  # grey levels a marking stands above its row's surroundings
# A marking is at most this wide in pixels, at the image's width of 256 (scaled with it).
TOP_HAT_PX_AT_256 = 11
START_X_M = (3.0, 20.0)  # where the markings the car is between are looked for
START_BIN_M = 0.2
# The car's heading to its lane (rad) and half the lane's curvature near it (1/m): what a
# car driving its lane sees. Markings that line up best at the edge of this range are not
# a lane the car drives along (a crosswalk's stripes, the crossing road at an
# intersection), and no lane is reported.
MAX_START_SLOPE = 0.2
MAX_HALF_CURVATURE = 0.012
MIN_BOUNDARY_POINTS = 3
MAX_START_POINTS = 160
MIN_SPAN_M = 10.0  # a lane shorter than this ahead is not reported
WORKING_WIDTH_PX = 256  # frames wider than this are looked at this wide
CHECK_SIZE = (128, 64)  # the size each camera is checked at when the detector is made
# Boundaries looked for, in lane widths from the centre: this lane's and the next ones'.
LATTICE = (-1.5, -0.5, 0.5, 1.5)
MAX_KINK = 0.3  # change of the centre's heading between steps, at most (rad)
SMOOTHING_M = 4.0  # the centre is smoothed by a quadratic over this much road either side
# Beyond START_X_M, the lane is followed only if this much of it was found within it.
MIN_START_STATIONS = 3
MIN_START_SPAN_M = 6.0
END_FIT = 4  # stations a line past either end is fitted to


# The cameras of the AR1 rig the lane is looked for in, each over the x (m) where its
# pixels resolve a marking: the wide camera near the car, the tele one beyond.
LANE_CAMERA_RANGES: dict[str, tuple[float, float]] = {
    "front_wide_120fov": (3.0, 14.0),
    "front_tele_30fov": (12.0, 70.0),
}


class LaneError(PerceptionError):
    """A detector set up with a camera or range that cannot see the ground."""


@dataclass(frozen=True)
class LaneEstimate:
    """The ego lane's centre line in base_link at the frame's time: y(x) at stations x
    (increasing, STEP_M apart where markings were found), and the lane's width."""

    x: FloatArray
    y: FloatArray
    width_m: float

    def __post_init__(self) -> None:
        if len(self.x) < 2 or len(self.x) != len(self.y) or np.any(np.diff(self.x) <= 0.0):
            raise ValueError("a lane needs two or more stations in increasing x")

    def holds_car(self) -> bool:
        """Whether the car is in this lane (its centre at x = 0 within half its width):
        while the reasoning keeps its lane, one it is not in is a neighbouring lane the
        detector followed."""
        return abs(float(self.centre(0.0))) <= self.width_m / 2.0

    def centre(self, x: FloatArray | float) -> FloatArray:
        """The centre's lateral offset at x, carried on straight past the ends along the
        lines fitted to the first and the last END_FIT stations."""
        x = np.asarray(x, dtype=float)
        head = np.polyfit(self.x[:END_FIT], self.y[:END_FIT], 1)
        tail = np.polyfit(self.x[-END_FIT:], self.y[-END_FIT:], 1)
        inside = np.interp(x, self.x, self.y)
        result: FloatArray = np.where(
            x < self.x[0],
            np.polyval(head, x) - np.polyval(head, self.x[0]) + self.y[0],
            np.where(
                x > self.x[-1],
                np.polyval(tail, x) - np.polyval(tail, self.x[-1]) + self.y[-1],
                inside,
            ),
        )
        return result


@dataclass(frozen=True)
class GroundTable:
    """Where each pixel of one camera at one size meets the ground (NaN where it does not,
    or beyond the range it is trusted for)."""

    x: FloatArray  # [H, W]
    y: FloatArray
    first_row: int  # rows above it never see the ground in range
    intrinsics: FloatArray  # the camera's K at this size


def pixel_rays(camera: CameraModel, width: int, height: int) -> FloatArray:
    """[H, W, 3]: the direction of each pixel's ray in base_link (not normalised)."""
    intrinsics = camera.intrinsics(width, height)
    u, v = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    in_camera = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(intrinsics).T
    rays: FloatArray = in_camera @ camera.optical_rotation().T
    return rays


def ground_table(
    camera: CameraModel, width: int, height: int, x_range: tuple[float, float]
) -> GroundTable:
    """Cast each pixel's ray onto the flat ground (z = 0 in base_link)."""
    if camera.position[2] <= 0.0:
        raise LaneError(f"camera {camera.name} is not above the ground")
    intrinsics = camera.intrinsics(width, height)
    rays = pixel_rays(camera, width, height)
    down = rays[..., 2] < -1e-9
    scale = np.where(down, -camera.position[2] / np.where(down, rays[..., 2], -1.0), np.nan)
    x = camera.position[0] + scale * rays[..., 0]
    y = camera.position[1] + scale * rays[..., 1]
    keep = down & (x >= x_range[0]) & (x <= x_range[1])
    rows = np.flatnonzero(keep.any(axis=1))
    if rows.size == 0:
        raise LaneError(f"camera {camera.name} sees no ground between {x_range} m")
    return GroundTable(
        np.where(keep, x, np.nan), np.where(keep, y, np.nan), int(rows[0]), intrinsics
    )


def working_size(image: Image) -> Image:
    """The frame at most WORKING_WIDTH_PX wide (area-averaged): markings are a few pixels
    wide there, and a larger frame costs time without placing the lane better."""
    height, width = image.shape[:2]
    if width <= WORKING_WIDTH_PX:
        return image
    size = (WORKING_WIDTH_PX, max(1, round(height * WORKING_WIDTH_PX / width)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def marking_mask(image: Image, first_row: int = 0) -> npt.NDArray[np.bool_]:
    """[H, W]: pixels of thin bright stripes (lane paint) from row `first_row` down."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    paint = image[..., :2].min(axis=2)  # red and green: bright in white and yellow paint
    width = max(3, round(TOP_HAT_PX_AT_256 * image.shape[1] / 256) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (width, 1))
    stripes = cv2.morphologyEx(np.ascontiguousarray(paint), cv2.MORPH_TOPHAT, kernel)
    mask: npt.NDArray[np.bool_] = stripes >= MIN_CONTRAST
    mask[:first_row] = False
    return mask


class LaneDetector:
    """The lane from one camera set: each named camera trusted over its own range of x."""

    def __init__(
        self,
        cameras: Mapping[str, CameraModel],
        ranges: Mapping[str, tuple[float, float]],
    ) -> None:
        if not ranges:
            raise LaneError("the lane detector needs at least one camera")
        missing = [name for name in ranges if name not in cameras]
        if missing:
            raise LaneError(f"no calibration for lane camera(s) {', '.join(missing)}")
        self.cameras = {name: cameras[name] for name in ranges}
        self.ranges = dict(ranges)
        for name in self.ranges:  # a camera that cannot see its range fails here, not later
            ground_table(self.cameras[name], *CHECK_SIZE, self.ranges[name])
        self._tables: dict[tuple[str, int, int], GroundTable] = {}
        self._to_optical = {
            name: camera.optical_rotation().T for name, camera in self.cameras.items()
        }

    @classmethod
    def for_rig(cls, rig: CameraRig) -> LaneDetector | None:
        """The detector over the rig's cameras of LANE_CAMERA_RANGES; None where it has
        none of them."""
        ranges = {name: span for name, span in LANE_CAMERA_RANGES.items() if name in rig.cameras}
        return cls(rig.cameras, ranges) if ranges else None

    def _table(self, name: str, width: int, height: int) -> GroundTable:
        key = (name, width, height)
        if key not in self._tables:
            self._tables[key] = ground_table(self.cameras[name], width, height, self.ranges[name])
        return self._tables[key]

    def _ground_points(self, images: Mapping[str, Image]) -> FloatArray:
        """[N, 2] (x, y) in base_link of every marking pixel the cameras see in range (the
        lane cameras' frames, each at its working size)."""
        points = []
        for name, image in images.items():
            table = self._table(name, image.shape[1], image.shape[0])
            mask = marking_mask(image, table.first_row)
            xs, ys = table.x[mask], table.y[mask]
            seen = np.isfinite(xs)
            points.append(np.stack([xs[seen], ys[seen]], -1))
        return np.concatenate(points) if points else np.zeros((0, 2))

    def detect(self, images: Mapping[str, Image]) -> LaneEstimate | None:
        """The lane in these frames (RGB per camera name), or None where too little of it
        shows (no markings, or under MIN_SPAN_M of them). It ends where it leaves the
        cameras' view (a sharp bend out of the tele camera's 30 degrees)."""
        # The cameras the model had (it may go on without one), each looked at once.
        seen = {name: working_size(images[name]) for name in self.ranges if name in images}

        def visible(x: float, y: float) -> bool:
            return any(self._sees(name, image, x, y) for name, image in seen.items())

        return follow_lane(self._ground_points(seen), visible)

    def _sees(self, name: str, image: Image, x: float, y: float) -> bool:
        """Whether the ground point (x, y) is in the camera's image and trusted range."""
        low, high = self.ranges[name]
        if not low <= x <= high:
            return False
        height, width = image.shape[:2]
        optical = self._to_optical[name] @ (np.array([x, y, 0.0]) - self.cameras[name].position)
        if optical[2] <= 0.0:
            return False
        u, v, w = self._table(name, width, height).intrinsics @ optical
        return bool(0.0 <= u / w <= width - 1 and 0.0 <= v / w <= height - 1)


def _boundaries_at_car(points: FloatArray) -> tuple[FloatArray, float, float]:
    """Lateral offsets at x = 0 of the markings the car is between, and the slope and half
    curvature they share: the points of START_X_M moved along the parallel curves
    y = offset + slope x + half_curvature x^2 that line them up best (the car may be at an
    angle to its lane, and in a bend)."""
    near = points[(points[:, 0] >= START_X_M[0]) & (points[:, 0] <= START_X_M[1])]
    if len(near) < MIN_BOUNDARY_POINTS:
        return np.zeros(0), 0.0, 0.0
    near = near[:: -(-len(near) // MAX_START_POINTS)]  # every n-th: the cost is points x grid
    x, y = near[:, 0], near[:, 1]
    slope_grid, bend_grid = np.meshgrid(
        np.linspace(-MAX_START_SLOPE, MAX_START_SLOPE, 41),
        np.linspace(-MAX_HALF_CURVATURE, MAX_HALF_CURVATURE, 13),
    )
    slopes, bends = slope_grid.ravel(), bend_grid.ravel()
    offsets = y[None] - slopes[:, None] * x[None] - bends[:, None] * x[None] ** 2
    low = float(offsets.min()) - START_BIN_M
    bins = int((float(offsets.max()) - low) / START_BIN_M) + 2
    index = ((offsets - low) / START_BIN_M).astype(np.int64)
    rows = np.arange(len(slopes))[:, None] * bins
    counts = np.bincount((rows + index).ravel(), minlength=len(slopes) * bins).reshape(-1, bins)
    best_fit = int(np.argmax((counts.astype(float) ** 2).sum(1)))
    if abs(slopes[best_fit]) >= MAX_START_SLOPE or abs(bends[best_fit]) >= MAX_HALF_CURVATURE:
        return np.zeros(0), 0.0, 0.0
    best = counts[best_fit]
    peaks = [
        i
        for i in range(len(best))
        if best[i] >= MIN_BOUNDARY_POINTS
        and best[i] >= (best[i - 1] if i else 0)
        and best[i] > (best[i + 1] if i + 1 < len(best) else 0)
    ]
    centres = low + (np.arange(bins) + 0.5) * START_BIN_M
    return (
        np.asarray(centres[peaks], dtype=float),
        float(slopes[best_fit]),
        float(bends[best_fit]),
    )


def _start(points: FloatArray) -> tuple[float, float, float, float] | None:
    """(centre at x = 0, slope, half curvature, width) of the lane the car is in, from the
    markings beside it: the lanes between the nearest marking on its left and on its right
    (more than one where a dashed line between is in a gap), or beside the one marking it
    sees, and of those the one whose centre is nearest the car."""
    offsets, slope, bend = _boundaries_at_car(points)
    left = offsets[offsets > 0.0]
    right = offsets[offsets <= 0.0]
    if left.size and right.size:
        span = float(left.min() - right.max())
        lanes = max(1, round(span / DEFAULT_LANE_WIDTH_M))
        width = span / lanes
        if MIN_LANE_WIDTH_M <= width <= MAX_LANE_WIDTH_M:
            centres = float(right.max()) + (np.arange(lanes) + 0.5) * width
            return float(centres[np.argmin(np.abs(centres))]), slope, bend, width
    if not offsets.size:
        return None
    marking = float(offsets[np.argmin(np.abs(offsets))])
    width = DEFAULT_LANE_WIDTH_M
    lanes_between = max(0, round(abs(marking) / width - 0.5))
    return marking - np.sign(marking) * (lanes_between + 0.5) * width, slope, bend, width


def follow_lane(
    points: FloatArray, visible: Callable[[float, float], bool] | None = None
) -> LaneEstimate | None:
    """The ego lane's centre line through marking points [N, 2] on the ground (base_link),
    up to where neither of its boundaries is `visible` (a ground point a camera sees)."""
    if len(points) == 0:
        return None
    start = _start(points)
    if start is None:
        return None
    centre, slope, bend, width = start
    order = np.argsort(points[:, 0])
    along = np.ascontiguousarray(points[order, 0])
    across = np.ascontiguousarray(points[order, 1])
    stations: list[float] = []
    centres: list[float] = []
    widths: list[float] = []
    first = float(along[0])
    last_seen = first
    x0 = first
    end = float(along[-1])
    while x0 < end and x0 - last_seen <= MAX_GAP_M:
        if x0 + STEP_M > START_X_M[1] and (
            len(stations) < MIN_START_STATIONS or stations[-1] - stations[0] < MIN_START_SPAN_M
        ):
            break  # too little of the lane near the car to follow it further
        mid = x0 + STEP_M / 2.0
        predicted = _predict(stations, centres, mid, centre + slope * mid + bend * mid**2)
        if visible is not None and not any(
            visible(mid, predicted + side * width / 2.0) for side in (1, -1)
        ):
            break  # the lane leaves the cameras' view
        lo, hi = np.searchsorted(along, [x0, x0 + STEP_M])
        window = across[lo:hi].tolist()  # a few dozen points: plain floats are faster
        # Every marking near where a boundary of this lane or of the next one on either
        # side is predicted votes for the centre: on a wide road the ego lane's own
        # dashed lines are often in a gap where the edges still show.
        votes = []
        for boundary in LATTICE:
            offset = boundary * width
            near = [y for y in window if abs(y - (predicted + offset)) < GATE_M]
            if near:
                votes.append(statistics.median(near) - offset)
        left, right = (
            [y for y in window if abs(y - (predicted + side * width / 2.0)) < GATE_M]
            for side in (1, -1)
        )
        if left and right:
            measured = statistics.median(left) - statistics.median(right)
            if MIN_LANE_WIDTH_M <= measured <= MAX_LANE_WIDTH_M:
                widths.append(measured)
                width = statistics.median(widths)
        if votes:
            stations.append(mid)
            centres.append(statistics.median(votes))
            last_seen = x0 + STEP_M
        x0 += STEP_M
    kept = _without_kinks(np.asarray(stations), np.asarray(centres), slope + 2.0 * bend * first)
    stations, centres = stations[:kept], centres[:kept]
    if len(stations) < 2 or stations[-1] - stations[0] < MIN_SPAN_M:
        return None
    return LaneEstimate(np.array(stations), _smoothed(np.array(stations), np.array(centres)), width)


def _smoothed(stations: FloatArray, centres: FloatArray) -> FloatArray:
    """Each centre replaced by a quadratic's through the stations within SMOOTHING_M of it
    (itself where fewer than four are)."""
    smooth: FloatArray = centres.copy()
    for i, x in enumerate(stations):
        near = np.abs(stations - x) <= SMOOTHING_M
        if near.sum() >= 4:
            smooth[i] = _fitted_at(stations[near], centres[near], 2, float(x))
    return smooth


def _fitted_at(xs: FloatArray, ys: FloatArray, degree: int, x: float) -> float:
    """The least-squares polynomial of `degree` through (xs, ys), at x: centred on x, its
    value there is the constant term (the normal equations of a few points are well
    conditioned so, and cheaper than numpy.polyfit's general solver)."""
    basis = np.vander(xs - x, degree + 1, increasing=True)
    return float(np.linalg.solve(basis.T @ basis, basis.T @ ys)[0])


def _without_kinks(stations: FloatArray, centres: FloatArray, start_slope: float) -> int:
    """How many stations to keep: up to the first whose heading turns from the one before
    by more than a lane bends (MAX_KINK over a step): a marking of something else (the
    crossing road, a crosswalk) that the lane was led onto."""
    previous = start_slope
    for i in range(1, len(stations)):
        heading = (centres[i] - centres[i - 1]) / (stations[i] - stations[i - 1])
        if abs(heading - previous) > MAX_KINK:
            return i
        previous = heading
    return len(stations)


def _predict(stations: Sequence[float], centres: Sequence[float], x: float, start: float) -> float:
    """The centre at x as the lane found so far continues: a quadratic through the last
    25 m of it (a line where less is known, and `start`, the line the lane starts on,
    before two stations are)."""
    if not stations:
        return start
    xs = np.asarray(stations)
    ys = np.asarray(centres)
    recent = xs >= xs[-1] - 25.0
    xs, ys = xs[recent], ys[recent]
    if len(xs) >= 4 and xs[-1] - xs[0] >= 8.0:
        degree = 2
    elif len(xs) >= 2 and xs[-1] - xs[0] >= 3.0:
        degree = 1
    else:
        return start
    return _fitted_at(xs, ys, degree, x)
