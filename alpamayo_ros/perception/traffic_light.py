"""The colour of the traffic light ahead, from the lit lamps a front camera sees.

Why a check beside the model: the embedded VLA stops for a red light, then, after
standing at the line for a few seconds, reads the same red as green ("Speed up because
the traffic light ahead is green") and drives over the line: 7 of the 60 drives of the
traffic-light set 3000400-3000459 ran a red that way. A lit lamp is plain in the front
cameras (a saturated red, yellow or green disc in the sky), even in the frames the
model sees (128x64), so the planner takes the colour of the light the reasoning names
from them (pipeline.traffic_lights.light_corrected). Where the cameras also show the stop
line, the planner stops at it: the model places a line it stops at 1-3 m off close up (on seed
3000444 2.6 m beyond it, and the car crept over the line) and up to 15 m short further
off.

How: a lamp hangs above the road, higher than the camera, and lamps of that colour are
the only saturated, bright things there (brake lights, clothing and cones are below a car's
roof, and a car is no taller than the rig's cameras; the sky is a pale blue). So the pixels
of the named cameras whose ray rises more than `MIN_ELEVATION_DEG` above the horizontal
(the camera's calibration: `core.rig.CameraModel`) are classified by hue, and the light is
the most restrictive colour any of them shows in at least `MIN_LAMP_PX` pixels: red before
yellow before green (a far red beyond a near green stops the car at the near line: safe,
if slower).

The stop line is a thin bright band across the road: the darker of each lane camera's red
and green channels (`lane.marking_mask`'s paint) is kept where it is brighter than the
rows just above and below (a top-hat down each column), those pixels are cast onto the
ground in the car's corridor (`lane.ground_table`), and the nearest stretch of
`LINE_BIN_M` along x whose points fill the corridor across is the line. A crosswalk's
stripes fill half of it, lane markings run along it. A car ahead can look like one (its
body is a bright band above its dark chassis, and cast onto the ground it lands beyond
the car), so a line is reported only where the corridor up to it is clear road
(perception.free_space: nothing dark, coloured or off the asphalt's grey stands there).

What it cannot tell: which lane a light is for (a left-turn arrow beside a through green),
or a light behind a tree; the planner uses it only where the reasoning names a light, so
a light seen with none named changes nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.rig import CameraModel, CameraRig
from alpamayo_ros.perception import PerceptionError
from alpamayo_ros.perception.free_space import FreeSpaceDetector
from alpamayo_ros.perception.lane import (
    CHECK_SIZE,
    LANE_CAMERA_RANGES,
    MIN_CONTRAST,
    GroundTable,
    ground_table,
    pixel_rays,
    working_size,
)

FloatArray = npt.NDArray[np.float64]
Image = npt.NDArray[np.uint8]

# The cameras of the AR1 rig a light is looked for in: the wide one sees a light's head
# from the stop line (20 m off and 2-4 m above the camera), the tele one from 150 m.
LIGHT_CAMERAS = ("front_wide_120fov", "front_tele_30fov")
# How far above the horizontal a pixel's ray must rise: a lamp 1.5 m above the camera
# (3 m over the ground) is seen up to 86 m off; a car's roof at the camera's height is not.
MIN_ELEVATION_DEG = 1.0
# A lit lamp's pixels, in OpenCV's HSV (H in 0-179): bright and saturated. An unlit lamp
# is dark (value about 70), a pale sky unsaturated. Area-averaged to 128x64, a lamp's
# glow keeps a value above 200 and a saturation above 180 on seeds 3000400-3000479.
MIN_VALUE = 160
MIN_SATURATION = 130
# A colour counts where at least this many pixels show it: a lamp's glow covers 2-6 of
# them at 128x64 from the stop line to 150 m off (seeds 3000400-3000479).
MIN_LAMP_PX = 2
# Hue bands of the three colours (OpenCV degrees, half of the usual): orange (a cone,
# 13) falls between red and yellow.
RED_HUES = ((0, 8), (172, 179))
YELLOW_HUES = ((18, 35),)
GREEN_HUES = ((45, 90),)


# The stop line is looked for up to this far (m of x in base_link): beyond, a 0.5 m deep
# line is under a third of a pixel high in the tele camera at 128x64, and where it is
# found the error's p90 exceeds 1.5 m.
MAX_LINE_X_M = 40.0
LINE_BIN_M = 0.5  # a line's points fall in two neighbouring bins of this length
# The corridor a line must fill across (|y| <= half of it), in bins of its width.
CORRIDOR_HALF_WIDTH_M = 1.0
CORRIDOR_BINS = 8
MIN_CORRIDOR_FILLED = 7  # of CORRIDOR_BINS: a crosswalk's stripes fill about half
MIN_LINE_POINTS = 4
# A line is at most this many pixels high at the image's height of 128 (scaled with it):
# the stop line the car stands at fills the bottom 7 rows of the wide camera at 128x64.
LINE_TOP_HAT_PX_AT_128 = 21
# The corridor must be clear road (perception.free_space) up to this short of the line.
LINE_CLEARANCE_M = 0.3


class TrafficLightError(PerceptionError):
    """A light camera without a calibration, or one that cannot see above the horizon."""


class LightSeen(enum.IntEnum):
    """What the cameras show of the light ahead; the values are TrafficLight.msg's."""

    NONE = 0  # no lit lamp (no light, or none looked for)
    RED = 1
    YELLOW = 2
    GREEN = 3


@dataclass(frozen=True)
class TrafficLightView:
    """The light ahead in one camera set, and the stop line where it was looked for."""

    colour: LightSeen = LightSeen.NONE
    # x (m, base_link) of a stop line across the car's corridor (the median of its points:
    # within 0.1 m of where its paint begins close up); None where none was seen with clear
    # road up to it, or none looked for (only for a red or yellow light).
    stop_line_x: float | None = None


NO_LIGHT = TrafficLightView()  # none seen, or none looked for
# The colours a car stops for (where it can), and the only ones a stop line is looked for at.
STOP_COLOURS = frozenset({LightSeen.RED, LightSeen.YELLOW})


def sky_mask(camera: CameraModel, width: int, height: int) -> npt.NDArray[np.bool_]:
    """[H, W]: the pixels whose ray rises more than MIN_ELEVATION_DEG above the
    horizontal in base_link."""
    rays = pixel_rays(camera, width, height)
    elevation = np.degrees(np.arctan2(rays[..., 2], np.hypot(rays[..., 0], rays[..., 1])))
    mask: npt.NDArray[np.bool_] = elevation > MIN_ELEVATION_DEG
    return mask


def _in_bands(
    hue: npt.NDArray[np.uint8], bands: tuple[tuple[int, int], ...]
) -> npt.NDArray[np.bool_]:
    inside = np.zeros(hue.shape, dtype=bool)
    for low, high in bands:
        inside |= (hue >= low) & (hue <= high)
    return inside


def lamp_colours(image: Image, sky: npt.NDArray[np.bool_]) -> tuple[int, int, int]:
    """How many pixels of `sky` show a lit red, yellow and green lamp."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise TrafficLightError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    hsv = np.asarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV), np.uint8)
    lit = sky & (hsv[..., 2] >= MIN_VALUE) & (hsv[..., 1] >= MIN_SATURATION)
    if not lit.any():
        return (0, 0, 0)
    hue = hsv[..., 0][lit]
    red, yellow, green = (
        int(_in_bands(hue, bands).sum()) for bands in (RED_HUES, YELLOW_HUES, GREEN_HUES)
    )
    return red, yellow, green


def line_mask(image: Image, first_row: int = 0) -> npt.NDArray[np.bool_]:
    """[H, W]: pixels of thin bright bands across the image (a stop line's paint) from
    row `first_row` down."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise TrafficLightError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    paint = np.ascontiguousarray(image[..., :2].min(axis=2))
    height = max(3, round(LINE_TOP_HAT_PX_AT_128 * image.shape[0] / 128) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1, height))
    # Dark below the image, so that a line the car stands at (it runs off the bottom of
    # the wide camera's image) is still a band.
    padded = cv2.copyMakeBorder(paint, 0, height, 0, 0, cv2.BORDER_CONSTANT, value=0)
    bands = cv2.morphologyEx(padded, cv2.MORPH_TOPHAT, kernel)[: paint.shape[0]]
    mask: npt.NDArray[np.bool_] = bands >= MIN_CONTRAST
    mask[:first_row] = False
    return mask


def nearest_line(points: FloatArray) -> float | None:
    """The x (m) where the nearest band of ground points [N, 2] filling the corridor
    across begins (the median x of its points), or None."""
    across = np.abs(points[:, 1]) <= CORRIDOR_HALF_WIDTH_M
    points = points[across & (points[:, 0] <= MAX_LINE_X_M)]
    if len(points) < MIN_LINE_POINTS:
        return None
    x_edges = np.arange(0.0, MAX_LINE_X_M + 2 * LINE_BIN_M, LINE_BIN_M)
    y_edges = np.linspace(-CORRIDOR_HALF_WIDTH_M, CORRIDOR_HALF_WIDTH_M, CORRIDOR_BINS + 1)
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], (x_edges, y_edges))
    pairs = (counts[:-1] + counts[1:]) > 0  # [nx - 1, ny]: a line across two bins
    filled = pairs.sum(axis=1) >= MIN_CORRIDOR_FILLED
    enough = (counts[:-1].sum(axis=1) + counts[1:].sum(axis=1)) >= MIN_LINE_POINTS
    found = np.flatnonzero(filled & enough)
    if found.size == 0:
        return None
    low = x_edges[found[0]]
    band = points[(points[:, 0] >= low) & (points[:, 0] < low + 2 * LINE_BIN_M)]
    return float(np.median(band[:, 0]))


class TrafficLightDetector:
    """The light ahead in one camera set: the most restrictive lit colour any of its lamp
    cameras shows above the horizon; for a red or yellow one, the stop line in its line
    cameras (each over its own range of x)."""

    def __init__(
        self,
        cameras: Mapping[str, CameraModel],
        names: tuple[str, ...],
        line_ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        if not names:
            raise TrafficLightError("the traffic-light detector needs at least one camera")
        line_ranges = dict(line_ranges or {})
        missing = [name for name in (*names, *line_ranges) if name not in cameras]
        if missing:
            raise TrafficLightError(f"no calibration for light camera(s) {', '.join(missing)}")
        self.cameras = {name: cameras[name] for name in (*names, *line_ranges)}
        self.names = names
        self.line_ranges = line_ranges
        self._skies: dict[tuple[str, int, int], npt.NDArray[np.bool_]] = {}
        self._tables: dict[tuple[str, int, int], GroundTable] = {}
        for name in names:  # a camera that cannot see the sky fails here, not later
            if not self._sky(name, *CHECK_SIZE).any():
                raise TrafficLightError(f"camera {name} sees nothing above the horizon")
        for name in line_ranges:
            try:
                self._table(name, *CHECK_SIZE)
            except ValueError as error:
                raise TrafficLightError(str(error)) from error
        # Where the corridor up to a line is clear road (a car's body can look like one).
        self.free_space = FreeSpaceDetector(cameras, tuple(line_ranges)) if line_ranges else None

    @classmethod
    def for_rig(cls, rig: CameraRig) -> TrafficLightDetector | None:
        """The detector over the rig's cameras of LIGHT_CAMERAS, the stop line over its
        cameras of LANE_CAMERA_RANGES (at most MAX_LINE_X_M); None where it has none."""
        names = tuple(name for name in LIGHT_CAMERAS if name in rig.cameras)
        line_ranges = {
            name: (low, min(high, MAX_LINE_X_M))
            for name, (low, high) in LANE_CAMERA_RANGES.items()
            if name in rig.cameras and low < MAX_LINE_X_M
        }
        return cls(rig.cameras, names, line_ranges) if names else None

    def _sky(self, name: str, width: int, height: int) -> npt.NDArray[np.bool_]:
        key = (name, width, height)
        if key not in self._skies:
            self._skies[key] = sky_mask(self.cameras[name], width, height)
        return self._skies[key]

    def _table(self, name: str, width: int, height: int) -> GroundTable:
        key = (name, width, height)
        if key not in self._tables:
            self._tables[key] = ground_table(
                self.cameras[name], width, height, self.line_ranges[name]
            )
        return self._tables[key]

    def colour(self, images: Mapping[str, Image]) -> LightSeen:
        """The most restrictive lit colour in these frames (RGB per camera name; cameras
        it does not look at are ignored, and it goes on without one that is missing)."""
        red = yellow = green = 0
        for name in self.names:
            image = images.get(name)
            if image is None:
                continue
            image = working_size(image)
            r, y, g = lamp_colours(image, self._sky(name, image.shape[1], image.shape[0]))
            red, yellow, green = red + r, yellow + y, green + g
        if red >= MIN_LAMP_PX:
            return LightSeen.RED
        if yellow >= MIN_LAMP_PX:
            return LightSeen.YELLOW
        return LightSeen.GREEN if green >= MIN_LAMP_PX else LightSeen.NONE

    def stop_line(self, images: Mapping[str, Image]) -> float | None:
        """The x (m) of the nearest stop line across the car's corridor in these frames,
        with clear road up to it; None where there is none."""
        points = []
        for name in self.line_ranges:
            image = images.get(name)
            if image is None:
                continue
            image = working_size(image)
            table = self._table(name, image.shape[1], image.shape[0])
            mask = line_mask(image, table.first_row)
            xs, ys = table.x[mask], table.y[mask]
            found = np.isfinite(xs)
            points.append(np.stack([xs[found], ys[found]], -1))
        line_x = nearest_line(np.concatenate(points)) if points else None
        if line_x is None or self.free_space is None:
            return None
        # Straight ahead up to the line: what stands beyond it (cross traffic) is no matter,
        # and a line nearer than the cameras see the ground has nothing before it.
        space = self.free_space.detect(images, straight_reach_m=line_x - LINE_CLEARANCE_M)
        clear = space is None or space.clear_to_x >= space.range_x
        return line_x if clear else None

    def detect(self, images: Mapping[str, Image]) -> TrafficLightView:
        """The light in these frames, and for a red or yellow one its stop line."""
        colour = self.colour(images)
        if colour not in STOP_COLOURS:
            return TrafficLightView(colour)
        return TrafficLightView(colour, self.stop_line(images))
