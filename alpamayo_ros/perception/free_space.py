"""How far the road ahead in the car's corridor is clear, from the front cameras.

Why a check beside the model: the embedded VLA names stopped vehicles that are not there.
Slowed behind a car that cut in, or by a pedestrian it imagined, it says "Remain stopped
behind the stopped vehicle" with nothing within 60 m, and stays stopped for the rest of
the drive (seeds 3000223 and 3000227: progress 0.30 and 0.41 of the expert's); and it
places a stopped car that is there 10-15 m short of it, so the car stops far behind it.
Those stops cost more of the progress than anything else it does wrong. A stopped vehicle
stands on the road, so where the cameras show the car's corridor as clear road well past
the place the reasoning (or the planner's memory) puts one, it is not there: the planner
moves that stop to where the clear road ends (pipeline.clear_road).

How: each front camera's pixels are cast onto the ground (`lane.ground_table`, flat
ground), and those in the car's corridor (CORRIDOR_HALF_WIDTH_M either side of the centre
of the lane the cameras show, or of the car's axis where they show none: the car's width
and a margin) are looked at.
A thing standing on the road hides the ground behind it, and its own pixels, cast onto
the ground, land where it stands or beyond. So the road is clear up to the nearest of:
- at least MIN_OBSTACLE_PX pixels darker than DARK_FRACTION of the corridor's median
  brightness, or more saturated than ROAD_MAX_SATURATION (asphalt and paint are grey or
  white): a tyre, a car's paint, a tail light, a cone, clothing;
- a FILL_WINDOW_M stretch mostly (FILL_FRACTION, metre by metre) off the asphalt's grey
  (by more than ASPHALT_TOLERANCE of its brightness): the body of a white or grey car,
  whose only dark or coloured pixels are its tail lights, 1 m up, cast 15 m beyond it
  (seed 3000232). A stop line is half a metre of road, a crosswalk's stripes fill half
  the corridor for 3 m, a lane's markings run along its edges.

How far sideways the thing there reaches (`FreeSpace.extent_y`), so that a plan may pass
it with room rather than stop: the DAgger-trained model nudges past cyclists and cones,
some plans a metre short of clearing them, others in the clear (seed 3000122: 2.5 m
either way from one plan to the next); stopping for each costs what the round bought.
Its dark or coloured pixels at its foot are taken where their rays cross the face where
it begins (a pixel up its side, cast onto the ground, lands further out); what stands on
the ground over the next SEEN_LENGTH_M counts too (the next cone of a line that closes in).

What it cannot tell from one frame: whether the thing moves (a car ahead driving away is
where it is in this frame), what it is, or anything beyond MAX_FREE_X_M (at 128x64 a pixel
row of the tele camera covers about 3 m of road at 30 m); nor a thing lower than the kerb's
shade or coloured like the road. The planner moves a stop it is told of to where the clear road
ends, and keeps off what stands or moves slower there (it follows it from frame to frame
for its speed); it never drives further than the clear road because of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.rig import CameraModel, CameraRig
from alpamayo_ros.core.stand_off import SEEN_LENGTH_M
from alpamayo_ros.perception import PerceptionError
from alpamayo_ros.perception.lane import (
    CHECK_SIZE,
    LANE_CAMERA_RANGES,
    GroundTable,
    LaneEstimate,
    ground_table,
    working_size,
)

Image = npt.NDArray[np.uint8]

# The cameras looked along: those the lane is found in (the wide one close up, the tele
# one far off), each over all the ground it sees up to MAX_FREE_X_M (a car nearer than the
# tele camera's lane range still shows in it).
FREE_SPACE_CAMERAS = tuple(LANE_CAMERA_RANGES)
MAX_FREE_X_M = 40.0
# Straight ahead, where no lane is found (an intersection, a crosswalk, worn paint), the
# corridor is looked along this far: a bend's outer edge is 10 m ahead on the sharpest
# roads, and grass there would stand in the corridor like a wall.
STRAIGHT_REACH_M = 10.0
# Half the car's width (0.95 m) and a margin: a cyclist riding at the lane's edge whose
# body reaches into the car's path is in it (seed 3000122, with 1.0 m: hit; 3000233, with
# 1.25 m: a rider 1.4 m out missed while the model's plans swerved towards him), the
# lane's markings (1.75 m from its centre) are not.
CORRIDOR_HALF_WIDTH_M = 1.45
# Small things: how dark or how coloured a pixel must be, and how many there must be (one
# pixel can be a kerb's edge or noise).
DARK_FRACTION = 0.6
ROAD_MAX_SATURATION = 60
MIN_OBSTACLE_PX = 2
# Large things: a stretch this long (shorter, down to MIN_FILL_WINDOW_M, at the end of the
# range: a car there shows only its rear) of whose metres of
# corridor the pixels are, on average, at least this fraction off the asphalt (brighter
# or darker than its median by more than this fraction of it, or coloured), from at least
# this many pixels. A car's body, cast onto the ground, fills the corridor from its rear
# to beyond the range; a stop line is half a metre, a crosswalk's stripes 3 m of half the
# corridor, and road again after them.
FILL_WINDOW_M = 6.0
MIN_FILL_WINDOW_M = 4.0
FILL_FRACTION = 0.7
ASPHALT_TOLERANCE = 0.25
MIN_FILL_PX = 3
# The thing's width, for a plan that passes it: its dark or coloured pixels (a bright
# lane marking is neither) taken as its face where it begins, up to EXTENT_HEIGHT_M above
# the ground (a car's body, a bike's frame, a pedestrian's legs; higher, a pixel's ray
# lands on the ground too far beyond it to tell it from what stands there), at most
# EXTENT_REACH_M either side of the corridor's centre (a cyclist at a lane's edge reaches
# 1.9 m out).
EXTENT_HEIGHT_M = 0.5
EXTENT_REACH_M = 2.25
EXTENT_GAP_M = 0.3
# Only pixels cast this close beyond where it begins (m, and a fraction of its distance:
# a pixel row of the tele camera covers 3 m of road at 30 m): the next cone of a line,
# 3.5-5 m on, is not on this one's face.
EXTENT_DEPTH_M = 1.5
EXTENT_DEPTH_FRACTION = 0.05


class FreeSpaceError(PerceptionError):
    """A camera without a calibration, or one that sees no ground ahead."""


@dataclass(frozen=True)
class FreeSpace:
    """How far the car's corridor is clear road in one camera set."""

    # x (m, base_link) where the nearest thing in the corridor begins; range_x where there
    # is none within it.
    clear_to_x: float
    range_x: float = MAX_FREE_X_M  # the lane's length where shorter, STRAIGHT_REACH_M without one
    # How far sideways (right, left: y, m, base_link) what stands there reaches, over the
    # stretch a plan passing it must clear (`_face_extent`); None where nothing does.
    extent_y: tuple[float, float] | None = None

    def clear_past(self, x: float, margin_m: float) -> bool:
        """Whether the corridor is clear road from the car to `margin_m` past x, all of it
        within the range looked along."""
        return x + margin_m <= self.range_x and self.clear_to_x > x + margin_m


def corridor_centre(lane: LaneEstimate | None, x: float) -> float:
    """The corridor's centre at x (m, base_link): on the lane the cameras show, where the
    car is in it; straight ahead otherwise."""
    return float(lane.centre(x)) if lane is not None and lane.holds_car() else 0.0


class FreeSpaceDetector:
    """The clear road ahead in the named cameras' frames."""

    def __init__(self, cameras: Mapping[str, CameraModel], names: tuple[str, ...]) -> None:
        if not names:
            raise FreeSpaceError("the free-space detector needs at least one camera")
        missing = [name for name in names if name not in cameras]
        if missing:
            raise FreeSpaceError(f"no calibration for free-space camera(s) {', '.join(missing)}")
        self.cameras = {name: cameras[name] for name in names}
        self._tables: dict[tuple[str, int, int], GroundTable] = {}
        for name in names:  # a camera that cannot see the ground fails here, not later
            try:
                self._table(name, *CHECK_SIZE)
            except ValueError as error:
                raise FreeSpaceError(str(error)) from error

    @classmethod
    def for_rig(cls, rig: CameraRig) -> FreeSpaceDetector | None:
        """The detector over the rig's cameras of FREE_SPACE_CAMERAS; None where it has
        none of them."""
        names = tuple(name for name in FREE_SPACE_CAMERAS if name in rig.cameras)
        return cls(rig.cameras, names) if names else None

    def _table(self, name: str, width: int, height: int) -> GroundTable:
        key = (name, width, height)
        if key not in self._tables:
            self._tables[key] = ground_table(self.cameras[name], width, height, (0.0, MAX_FREE_X_M))
        return self._tables[key]

    def detect(
        self,
        images: Mapping[str, Image],
        lane: LaneEstimate | None = None,
        straight_reach_m: float = STRAIGHT_REACH_M,
    ) -> FreeSpace | None:
        """How far the corridor is clear in these frames (RGB per camera name; cameras it
        does not look along are ignored, and it goes on without one that is missing): along
        `lane` where the car is in it, as far as it was found (at most MAX_FREE_X_M);
        straight ahead otherwise, `straight_reach_m` far (a road may bend beyond). None
        where none of its cameras' frames shows the corridor: nothing is known of it."""
        if lane is not None and lane.holds_car():
            reach = min(float(lane.x[-1]), MAX_FREE_X_M)
        else:
            lane, reach = None, min(straight_reach_m, MAX_FREE_X_M)
        xs, ys, offsets, origins, values, saturations = [], [], [], [], [], []
        for name, camera in self.cameras.items():
            image = images.get(name)
            if image is None:
                continue
            if image.ndim != 3 or image.shape[2] != 3:
                raise FreeSpaceError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
            image = working_size(image)
            table = self._table(name, image.shape[1], image.shape[0])
            # Only the rows that see the ground in range: about half the frame.
            ground_x, ground_y = table.x[table.first_row :], table.y[table.first_row :]
            seen = ground_x <= reach  # False where NaN
            ground_x, ground_y = ground_x[seen], ground_y[seen]
            offset = ground_y - (lane.centre(ground_x) if lane is not None else 0.0)
            # Wider than the corridor by what a thing's face up to EXTENT_HEIGHT_M casts.
            near = np.abs(offset) <= EXTENT_REACH_M * _cast_factor(camera)
            ground = np.ascontiguousarray(image[table.first_row :])
            hsv = cv2.cvtColor(ground, cv2.COLOR_RGB2HSV)[seen][near]
            xs.append(ground_x[near])
            ys.append(ground_y[near])
            offsets.append(offset[near])
            origins.append(np.broadcast_to(camera.position, (int(near.sum()), 3)))
            values.append(hsv[:, 2].astype(np.float64))
            saturations.append(hsv[:, 1])
        x = np.concatenate(xs) if xs else np.zeros(0)
        offset = np.concatenate(offsets) if offsets else np.zeros(0)
        corridor = np.abs(offset) <= CORRIDOR_HALF_WIDTH_M
        if not corridor.any():
            return None
        value, saturation = np.concatenate(values), np.concatenate(saturations)
        level = float(np.median(value[corridor]))  # the asphalt's: most of any corridor is road
        odd = (value < DARK_FRACTION * level) | (saturation > ROAD_MAX_SATURATION)
        off = (np.abs(value - level) > ASPHALT_TOLERANCE * level) | (
            saturation > ROAD_MAX_SATURATION
        )
        small = _small_thing_x(x[corridor & odd], reach)
        large = _large_thing_x(x[corridor], off[corridor], reach)
        clear_to_x = min(small, large)
        if clear_to_x >= reach:
            return FreeSpace(clear_to_x, reach)
        # A thing found by its body off the asphalt's grey (a white car) is as wide as that
        # body, not as the few dark pixels about it.
        part = odd | off if large < small else odd
        extent = _face_extent(
            clear_to_x,
            corridor_centre(lane, clear_to_x),
            x[part],
            np.concatenate(ys)[part],
            np.concatenate(origins)[part],
        )
        return FreeSpace(clear_to_x, reach, extent)


def _cast_factor(camera: CameraModel) -> float:
    """How much further from the camera a point EXTENT_HEIGHT_M up lands on the ground,
    cast along its ray, than a point on the ground below it."""
    return float(camera.position[2] / max(camera.position[2] - EXTENT_HEIGHT_M, 1e-3))


def _face_extent(
    start_x: float,
    centre: float,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    origins: npt.NDArray[np.float64],
) -> tuple[float, float]:
    """(right, left) y of what stands from `start_x` to SEEN_LENGTH_M beyond (the stretch a
    plan passing it must clear), from the ground points (x, y) of dark or coloured pixels
    seen from cameras at `origins` [N, 3]: on its face, each taken where its ray crosses
    the vertical plane at start_x (those that cross it at most EXTENT_HEIGHT_M up), and
    beyond, where it meets the ground; at most EXTENT_REACH_M from the corridor's
    `centre`; the runs of them that reach into the corridor (its width where none does: a
    grey car's body is neither dark nor coloured)."""
    along = x - origins[:, 0]
    fraction = (start_x - origins[:, 0]) / np.where(along > 0.0, along, np.inf)
    height = origins[:, 2] * (1.0 - fraction)
    face_y = origins[:, 1] + (y - origins[:, 1]) * fraction
    depth = start_x + EXTENT_DEPTH_M + EXTENT_DEPTH_FRACTION * start_x
    on_face = (
        (x >= start_x)
        & (x <= depth)
        & (height <= EXTENT_HEIGHT_M)
        & (np.abs(face_y - centre) <= EXTENT_REACH_M)
    )
    # Beyond its face, over the stretch a plan passing it must clear, what stands on the
    # ground: the next cones of a line that closes in on the lane.
    beyond = (x > depth) & (x <= start_x + SEEN_LENGTH_M) & (np.abs(y - centre) <= EXTENT_REACH_M)
    face_y = np.sort(np.concatenate([face_y[on_face], y[beyond]]))
    # Runs of pixels closer than EXTENT_GAP_M sideways are one thing; those in the
    # corridor are what it found (beside them may stand another, or a verge's grass).
    runs = np.split(face_y, np.flatnonzero(np.diff(face_y) > EXTENT_GAP_M) + 1)
    inside = [run for run in runs if run.size and _meets_corridor(run, centre)]
    if not inside:
        return centre - CORRIDOR_HALF_WIDTH_M, centre + CORRIDOR_HALF_WIDTH_M
    return float(inside[0][0]), float(inside[-1][-1])  # each run meets the corridor


def _meets_corridor(run: npt.NDArray[np.float64], centre: float) -> bool:
    """Whether a sorted run of y reaches into the corridor about `centre`."""
    return bool(
        run[0] <= centre + CORRIDOR_HALF_WIDTH_M and run[-1] >= centre - CORRIDOR_HALF_WIDTH_M
    )


def _small_thing_x(odd_x: npt.NDArray[np.float64], reach: float) -> float:
    """Where MIN_OBSTACLE_PX of the dark or coloured corridor pixels (at `odd_x`) are
    nearer; `reach` where there are fewer."""
    nearest = np.sort(odd_x)
    return float(nearest[MIN_OBSTACLE_PX - 1]) if nearest.size >= MIN_OBSTACLE_PX else reach


def _large_thing_x(x: npt.NDArray[np.float64], off: npt.NDArray[np.bool_], reach: float) -> float:
    """Where the nearest FILL_WINDOW_M stretch of corridor (pixels at `x`, up to `reach`)
    that is mostly `off` the asphalt, metre by metre, begins (its nearest such pixel);
    `reach` where there is none. Metre by metre: near rows have many more pixels per metre than far
    ones, and a stop line close up would outweigh the road beyond it."""
    edges = np.arange(0.0, reach + 1.0, 1.0)
    every, _ = np.histogram(x, edges)
    odd, _ = np.histogram(x[off], edges)
    seen = every > 0
    fraction = np.where(seen, odd / np.maximum(every, 1), 0.0)
    window = round(FILL_WINDOW_M)
    for start in np.flatnonzero(odd[: len(odd) - round(MIN_FILL_WINDOW_M) + 1] > 0):
        stretch = slice(start, start + window)
        pixels = int(every[stretch].sum())
        if pixels >= MIN_FILL_PX and fraction[stretch][seen[stretch]].mean() >= FILL_FRACTION:
            inside = off & (x >= edges[start]) & (x < edges[start] + window)
            return float(x[inside].min())
    return reach
