"""Camera renderer of the synthetic world for the AR1 rig: flat-shaded pinhole images.

Geometry is built once per world state in the world frame (`build_scene`): the road surface,
markings, stop line, crosswalk and crossing road as ground quads, every agent and traffic
light as boxes (vehicles: chassis, body, cabin and brake lights; pedestrians and cyclists:
upright silhouettes; cones: orange with a white band; lights: pole, arm, housings and the
lit lamp with a glow so its colour survives down-sampling). Each camera then projects it
with its pinhole model (CameraModel.intrinsics, optical_rotation, position) and paints far
to near with cv2.fillPoly (painter's algorithm): background (sky gradient above the
horizon, ground below), ground layers in a fixed order, then objects sorted by distance.
Polygons crossing the near plane are clipped in 3-D (Sutherland-Hodgman) before projection,
so nothing behind or beside a camera smears into its image; back faces are culled.

Speed (the 2-core development CPU, 256x128 per camera): about 2.3 ms for all four AR1 cameras
of a typical scene (time.perf_counter, `python -m alpamayo_ros.world.dataset --benchmark`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.contract import CAMERA_ORDER
from alpamayo_ros.core.planar import Pose2D, yaw_to_rotation
from alpamayo_ros.core.rig import CameraModel, CameraRig
from alpamayo_ros.resources import config_file
from alpamayo_ros.world.agents import AgentKind, AgentState, LightColour, LightState, Rgb
from alpamayo_ros.world.road import (
    DASH_LENGTH_M,
    DASH_PERIOD_M,
    MARKING_WIDTH_M,
    STOP_LINE_DEPTH_M,
    Road,
)
from alpamayo_ros.world.state import WorldState

FloatArray = npt.NDArray[np.float64]
Image = npt.NDArray[np.uint8]

NEAR_PLANE_M = 0.2
# Scene extent around the ego (m of arc length behind / ahead), and object range.
BEHIND_M = 60.0
AHEAD_M = 160.0
OBJECT_RANGE_M = 160.0
GROUND_STEP_M = 4.0
SHOULDER_M = 0.4  # asphalt beyond the edge lines
CROSSING_ROAD_EXTENT_M = 120.0
# Sub-pixel precision of polygon vertices (cv2 `shift`): 1/8 px.
SHIFT = 3
_SCALE = float(1 << SHIFT)
# Smallest glow radius of a lit lamp (px at the render resolution).
MIN_GLOW_PX = 1.2

_SHADE_TOP, _SHADE_FRONT, _SHADE_SIDE = 1.0, 0.85, 0.7
# Box corner i has local x sign bit 2, y bit 1, z bit 0. Faces (outward normal in local
# axes, corner cycle); the bottom face is never visible from above the ground.
_FACES: tuple[tuple[tuple[float, float, float], tuple[int, int, int, int], float], ...] = (
    ((1.0, 0.0, 0.0), (4, 5, 7, 6), _SHADE_FRONT),
    ((-1.0, 0.0, 0.0), (0, 1, 3, 2), _SHADE_FRONT),
    ((0.0, 1.0, 0.0), (2, 3, 7, 6), _SHADE_SIDE),
    ((0.0, -1.0, 0.0), (0, 1, 5, 4), _SHADE_SIDE),
    ((0.0, 0.0, 1.0), (1, 3, 7, 5), _SHADE_TOP),
)
_FACE_INDEX = np.array([face[1] for face in _FACES])
_FACE_NORMALS = np.array([face[0] for face in _FACES])
_FACE_SHADES = np.array([face[2] for face in _FACES])
_CORNER_SIGNS = np.array(
    [[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=float
)  # 0/1 per axis

_CHASSIS_RGB: Rgb = (35, 35, 38)
_GLASS_RGB: Rgb = (45, 55, 70)
_SKIN_RGB: Rgb = (215, 175, 145)
_TROUSERS_RGB: Rgb = (50, 50, 70)
_BIKE_RGB: Rgb = (40, 40, 45)
_POLE_RGB: Rgb = (95, 95, 100)
_HOUSING_RGB: Rgb = (28, 28, 30)
_WHITE_RGB: Rgb = (245, 245, 245)
_BRAKE_ON_RGB: Rgb = (255, 30, 25)
_BRAKE_OFF_RGB: Rgb = (105, 20, 20)
_LAMP_ON: dict[LightColour, Rgb] = {
    LightColour.RED: (255, 35, 25),
    LightColour.YELLOW: (255, 200, 0),
    LightColour.GREEN: (40, 255, 90),
}
_LAMP_OFF: dict[LightColour, Rgb] = {
    LightColour.RED: (70, 25, 25),
    LightColour.YELLOW: (70, 60, 20),
    LightColour.GREEN: (20, 60, 30),
}


class RenderError(ValueError):
    """A camera the rig does not have, or an image size that cannot be rendered."""


# ------------------------------------------------------------------------------ scene
@dataclass
class _Scene:
    """World-frame geometry of one world state around the ego, shared by all cameras.

    Objects (an agent, a traffic light) are groups of boxes, then flat quads on them (brake
    lights, lamps), then glows, drawn in that order; objects are depth-sorted per camera.
    """

    ground_layers: list[tuple[Rgb, FloatArray]] = field(default_factory=list)  # in order
    box_corners: list[FloatArray] = field(default_factory=list)  # each [8, 3]
    box_colours: list[Rgb] = field(default_factory=list)
    box_yaw: list[float] = field(default_factory=list)
    box_object: list[int] = field(default_factory=list)
    quads: list[FloatArray] = field(default_factory=list)  # each [4, 3]
    quad_colours: list[Rgb] = field(default_factory=list)
    quad_normals: list[tuple[float, float, float]] = field(default_factory=list)
    quad_object: list[int] = field(default_factory=list)
    glows: list[tuple[int, tuple[float, float, float], float, Rgb]] = field(default_factory=list)
    anchors: list[tuple[float, float, float]] = field(default_factory=list)  # per object

    def new_object(self, anchor: tuple[float, float, float]) -> int:
        self.anchors.append(anchor)
        return len(self.anchors) - 1

    def add_box(
        self,
        obj: int,
        origin: FloatArray,
        yaw: float,
        centre: tuple[float, float],
        size: tuple[float, float],
        z: tuple[float, float],
        colour: Rgb,
    ) -> None:
        """A box in an object's frame (origin, yaw): centre (x, y), size (length, width),
        vertical extent z."""
        cos, sin = math.cos(yaw), math.sin(yaw)
        lx = centre[0] + (_CORNER_SIGNS[:, 0] - 0.5) * size[0]
        ly = centre[1] + (_CORNER_SIGNS[:, 1] - 0.5) * size[1]
        world = np.empty((8, 3))
        world[:, 0] = origin[0] + cos * lx - sin * ly
        world[:, 1] = origin[1] + sin * lx + cos * ly
        world[:, 2] = np.where(_CORNER_SIGNS[:, 2] > 0, z[1], z[0])
        self.box_corners.append(world)
        self.box_colours.append(colour)
        self.box_yaw.append(yaw)
        self.box_object.append(obj)

    def add_quad(
        self,
        obj: int,
        origin: FloatArray,
        yaw: float,
        x: float,
        y: tuple[float, float],
        z: tuple[float, float],
        colour: Rgb,
        facing: float,
    ) -> None:
        """A vertical rectangle at local x, seen from +x (facing=1) or -x (facing=-1)."""
        cos, sin = math.cos(yaw), math.sin(yaw)
        world = np.empty((4, 3))
        for i, (ly, lz) in enumerate(((y[0], z[0]), (y[1], z[0]), (y[1], z[1]), (y[0], z[1]))):
            world[i] = (origin[0] + cos * x - sin * ly, origin[1] + sin * x + cos * ly, lz)
        self.quads.append(world)
        self.quad_colours.append(colour)
        self.quad_normals.append((facing * cos, facing * sin, 0.0))
        self.quad_object.append(obj)

    def pack(self) -> _PackedScene:
        return _PackedScene.from_scene(self)


@dataclass(frozen=True)
class _PackedScene:
    """_Scene as arrays: one matrix product projects everything for a camera."""

    points: FloatArray  # [N, 3]: ground quads, box corners, quads, glow centres
    ground_count: int
    ground_layer: npt.NDArray[np.int64]  # [G]
    layer_colours: tuple[Rgb, ...]
    box_count: int
    box_face_colours: list[list[tuple[int, int, int]]]  # [B][F]
    face_normals: FloatArray  # [B, F, 3]
    face_centres: FloatArray  # [B, F, 3]
    quad_count: int
    quad_colours: list[Rgb]
    quad_normals: FloatArray  # [Q, 3]
    quad_centres: FloatArray  # [Q, 3]
    glow_radius: list[float]
    glow_colours: list[Rgb]
    anchors: FloatArray  # [O, 3]
    object_boxes: list[list[int]]
    object_quads: list[list[int]]
    object_glows: list[list[int]]

    @classmethod
    def from_scene(cls, scene: _Scene) -> _PackedScene:
        ground = [quads for _, quads in scene.ground_layers]
        layer = [np.full(len(quads), i) for i, quads in enumerate(ground)]
        ground_quads = np.concatenate(ground) if ground else np.zeros((0, 4, 3))
        boxes = np.stack(scene.box_corners) if scene.box_corners else np.zeros((0, 8, 3))
        quads = np.stack(scene.quads) if scene.quads else np.zeros((0, 4, 3))
        glows = np.array([g[1] for g in scene.glows]).reshape(-1, 3)
        yaw = np.array(scene.box_yaw)
        cos, sin = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        normals = np.empty((len(yaw), len(_FACES), 3))
        normals[..., 0] = cos * _FACE_NORMALS[:, 0] - sin * _FACE_NORMALS[:, 1]
        normals[..., 1] = sin * _FACE_NORMALS[:, 0] + cos * _FACE_NORMALS[:, 1]
        normals[..., 2] = _FACE_NORMALS[:, 2]
        colours = np.array(scene.box_colours, dtype=float).reshape(-1, 3)
        face_colours = (colours[:, None, :] * _FACE_SHADES[None, :, None]).astype(int)
        objects = len(scene.anchors)
        object_boxes: list[list[int]] = [[] for _ in range(objects)]
        for index, obj in enumerate(scene.box_object):
            object_boxes[obj].append(index)
        object_quads: list[list[int]] = [[] for _ in range(objects)]
        for index, obj in enumerate(scene.quad_object):
            object_quads[obj].append(index)
        object_glows: list[list[int]] = [[] for _ in range(objects)]
        for index, glow in enumerate(scene.glows):
            object_glows[glow[0]].append(index)
        return cls(
            points=np.concatenate(
                [ground_quads.reshape(-1, 3), boxes.reshape(-1, 3), quads.reshape(-1, 3), glows]
            ),
            ground_count=len(ground_quads),
            ground_layer=np.concatenate(layer) if layer else np.zeros(0, np.int64),
            layer_colours=tuple(colour for colour, _ in scene.ground_layers),
            box_count=len(boxes),
            box_face_colours=[[tuple(c) for c in box] for box in face_colours.tolist()],
            face_normals=normals,
            face_centres=boxes[:, _FACE_INDEX].mean(axis=2) if len(boxes) else normals,
            quad_count=len(quads),
            quad_colours=scene.quad_colours,
            quad_normals=np.array(scene.quad_normals).reshape(-1, 3),
            quad_centres=quads.mean(axis=1) if len(quads) else np.zeros((0, 3)),
            glow_radius=[g[2] for g in scene.glows],
            glow_colours=[g[3] for g in scene.glows],
            anchors=np.array(scene.anchors).reshape(-1, 3),
            object_boxes=object_boxes,
            object_quads=object_quads,
            object_glows=object_glows,
        )


def build_scene(state: WorldState, ego_pose: Pose2D) -> _Scene:
    """World-frame geometry near the ego, for rendering every camera of the rig."""
    road = state.road
    s_ego, _ = road.project(ego_pose.x, ego_pose.y)
    scene = _Scene()
    _add_road(scene, road, s_ego, state)
    ego_xy = np.array([ego_pose.x, ego_pose.y])
    if state.agents:
        s = np.array([agent.s for agent in state.agents])
        d = np.array([agent.d for agent in state.agents])
        x, y, path_yaw = road.to_world(s, d)
        for i, agent in enumerate(state.agents):
            if math.hypot(x[i] - ego_xy[0], y[i] - ego_xy[1]) > OBJECT_RANGE_M:
                continue
            _add_agent(scene, agent, np.array([x[i], y[i]]), float(path_yaw[i] + agent.heading))
    for light in state.lights:
        light_x, light_y, light_yaw = road.world_point(light.s, light.d)
        if math.hypot(light_x - ego_xy[0], light_y - ego_xy[1]) <= OBJECT_RANGE_M:
            _add_light(scene, light, road, np.array([light_x, light_y]), light_yaw)
    return scene


def _strip(road: Road, s: FloatArray, d_low: float, d_high: float) -> FloatArray:
    """Quads [len(s)-1, 4, 3] covering d_low..d_high between consecutive arc lengths."""
    xl, yl, _ = road.to_world(s, d_low)
    xh, yh, _ = road.to_world(s, d_high)
    quads = np.zeros((len(s) - 1, 4, 3))
    quads[:, 0, 0], quads[:, 0, 1] = xl[:-1], yl[:-1]
    quads[:, 1, 0], quads[:, 1, 1] = xl[1:], yl[1:]
    quads[:, 2, 0], quads[:, 2, 1] = xh[1:], yh[1:]
    quads[:, 3, 0], quads[:, 3, 1] = xh[:-1], yh[:-1]
    return quads


def _pieces(
    road: Road, s0: FloatArray, s1: FloatArray, d0: FloatArray, d1: FloatArray
) -> FloatArray:
    """Quads [N, 4, 3] of road rectangles s0..s1 x d0..d1 (short: corners on the path)."""
    corners_s = np.stack([s0, s1, s1, s0], axis=1)
    corners_d = np.stack([d0, d0, d1, d1], axis=1)
    x, y, _ = road.to_world(corners_s, corners_d)
    return np.stack([x, y, np.zeros_like(x)], axis=-1)


def _add_road(scene: _Scene, road: Road, s_ego: float, state: WorldState) -> None:
    appearance = state.appearance
    first = math.floor((s_ego - BEHIND_M) / GROUND_STEP_M) * GROUND_STEP_M
    s = np.arange(first, s_ego + AHEAD_M + GROUND_STEP_M, GROUND_STEP_M)
    right, left = road.right_edge, road.left_edge
    scene.ground_layers.append(
        (appearance.asphalt, _strip(road, s, right - SHOULDER_M, left + SHOULDER_M))
    )

    half = MARKING_WIDTH_M / 2.0
    markings: list[FloatArray] = []
    intersection = road.intersection
    for marking in road.markings():
        if marking.dashed:
            k = np.arange(math.floor(s[0] / DASH_PERIOD_M), math.ceil(s[-1] / DASH_PERIOD_M))
            starts = k * DASH_PERIOD_M
            ends = starts + DASH_LENGTH_M
        else:
            starts, ends = s[:-1], s[1:]
        if intersection is not None:
            keep = (ends <= intersection.stop_line_s - STOP_LINE_DEPTH_M) | (
                starts >= intersection.far_edge_s
            )
            starts, ends = starts[keep], ends[keep]
        if len(starts):
            d0 = np.full(len(starts), marking.d - half)
            markings.append(_pieces(road, starts, ends, d0, d0 + MARKING_WIDTH_M))
    if markings:
        scene.ground_layers.append((appearance.marking, np.concatenate(markings)))

    if (
        intersection is not None
        and s[0] < intersection.far_edge_s
        and s[-1] > intersection.near_edge_s
    ):
        mid = (left + right) / 2.0
        extent = CROSSING_ROAD_EXTENT_M
        one = np.ones(1)
        crossing = _pieces(
            road,
            one * intersection.near_edge_s,
            one * intersection.far_edge_s,
            one * (mid - extent),
            one * (mid + extent),
        )
        scene.ground_layers.append((appearance.asphalt, crossing))
        lines = []
        for edge_s in (intersection.near_edge_s + 0.2, intersection.far_edge_s - 0.4):
            for near_d, far_d in (
                (mid - extent, right - SHOULDER_M),
                (left + SHOULDER_M, mid + extent),
            ):
                lines.append(
                    _pieces(road, one * edge_s, one * (edge_s + 0.2), one * near_d, one * far_d)
                )
        centre_starts = np.arange(mid - extent, mid + extent, DASH_PERIOD_M / 2.0)
        centre = centre_starts[
            (centre_starts + DASH_LENGTH_M < right - SHOULDER_M)
            | (centre_starts > left + SHOULDER_M)
        ]
        lines.append(
            _pieces(
                road,
                np.full(len(centre), intersection.s - half),
                np.full(len(centre), intersection.s + half),
                centre,
                centre + DASH_LENGTH_M,
            )
        )
        scene.ground_layers.append((appearance.marking, np.concatenate(lines)))
        stop = intersection.stop_line_s
        scene.ground_layers.append(
            (
                _WHITE_RGB,
                _pieces(
                    road, one * (stop - STOP_LINE_DEPTH_M), one * stop, one * right, one * left
                ),
            )
        )
    if road.crosswalk_s is not None and s[0] - 3.0 < road.crosswalk_s < s[-1] + 3.0:
        stripes = np.arange(right + 0.25, left - 0.25, 1.0)
        count = len(stripes)
        scene.ground_layers.append(
            (
                _WHITE_RGB,
                _pieces(
                    road,
                    np.full(count, road.crosswalk_s - 1.5),
                    np.full(count, road.crosswalk_s + 1.5),
                    stripes,
                    stripes + 0.5,
                ),
            )
        )


def _add_agent(scene: _Scene, agent: AgentState, xy: FloatArray, yaw: float) -> None:
    obj = scene.new_object((float(xy[0]), float(xy[1]), agent.height / 2.0))
    length, width = agent.length, agent.width
    colour = agent.colour
    box = scene.add_box
    if agent.kind is AgentKind.VEHICLE:
        box(obj, xy, yaw, (0.0, 0.0), (length * 0.92, width * 0.92), (0.0, 0.35), _CHASSIS_RGB)
        box(obj, xy, yaw, (0.0, 0.0), (length, width), (0.35, 0.95), colour)
        cabin = _mix(colour, _GLASS_RGB, 0.6)
        box(
            obj,
            xy,
            yaw,
            (-0.12 * length, 0.0),
            (0.55 * length, 0.88 * width),
            (0.95, agent.height),
            cabin,
        )
        lamp = _BRAKE_ON_RGB if agent.brake_lights else _BRAKE_OFF_RGB
        rear = -length / 2.0 - 0.02
        for side in (-1.0, 1.0):
            outer, inner = side * (width / 2.0 - 0.05), side * (width / 2.0 - 0.45)
            scene.add_quad(obj, xy, yaw, rear, (inner, outer), (0.62, 0.85), lamp, facing=-1.0)
    elif agent.kind is AgentKind.PEDESTRIAN:
        box(obj, xy, yaw, (0.0, 0.0), (0.28, 0.4), (0.0, 0.85), _TROUSERS_RGB)
        box(obj, xy, yaw, (0.0, 0.0), (0.3, width), (0.85, 1.5), colour)
        box(obj, xy, yaw, (0.0, 0.0), (0.22, 0.22), (1.5, agent.height), _SKIN_RGB)
    elif agent.kind is AgentKind.CYCLIST:
        box(obj, xy, yaw, (0.0, 0.0), (length, 0.2), (0.0, 0.9), _BIKE_RGB)
        box(obj, xy, yaw, (-0.1, 0.0), (0.5, 0.45), (0.9, 1.5), colour)
        box(obj, xy, yaw, (0.0, 0.0), (0.22, 0.22), (1.5, agent.height), _SKIN_RGB)
    elif agent.kind is AgentKind.CONE:
        box(obj, xy, yaw, (0.0, 0.0), (length, width), (0.0, 0.06), colour)
        box(obj, xy, yaw, (0.0, 0.0), (0.7 * length, 0.7 * width), (0.06, agent.height), colour)
        box(obj, xy, yaw, (0.0, 0.0), (0.78 * length, 0.78 * width), (0.3, 0.45), _WHITE_RGB)


def _add_light(
    scene: _Scene, light: LightState, road: Road, xy: FloatArray, path_yaw: float
) -> None:
    """Pole at the far right corner, an arm over the road, and two housings facing the
    approaching traffic (-x of the road direction)."""
    obj = scene.new_object((float(xy[0]), float(xy[1]), 3.0))
    box = scene.add_box
    box(obj, xy, path_yaw, (0.0, 0.0), (0.2, 0.2), (0.0, 6.2), _POLE_RGB)
    over = (road.left_edge + road.right_edge) / 2.0 - light.d  # arm reach to the road middle
    box(obj, xy, path_yaw, (0.0, over / 2.0), (0.15, abs(over)), (5.95, 6.1), _POLE_RGB)
    for lateral, (z0, z1) in ((0.0, (3.0, 4.3)), (over, (4.65, 5.95))):
        box(obj, xy, path_yaw, (-0.25, lateral), (0.3, 0.55), (z0, z1), _HOUSING_RGB)
        face = -0.25 - 0.15 - 0.02
        for index, colour in enumerate((LightColour.RED, LightColour.YELLOW, LightColour.GREEN)):
            z_centre = z1 - 0.22 - index * (z1 - z0 - 0.44) / 2.0
            lit = colour is light.colour
            scene.add_quad(
                obj,
                xy,
                path_yaw,
                face,
                (lateral - 0.15, lateral + 0.15),
                (z_centre - 0.15, z_centre + 0.15),
                _LAMP_ON[colour] if lit else _LAMP_OFF[colour],
                facing=-1.0,
            )
            if lit:
                cos, sin = math.cos(path_yaw), math.sin(path_yaw)
                centre = (
                    float(xy[0] + cos * (face - 0.01) - sin * lateral),
                    float(xy[1] + sin * (face - 0.01) + cos * lateral),
                    z_centre,
                )
                scene.glows.append((obj, centre, 0.2, _LAMP_ON[colour]))


def _mix(a: Rgb, b: Rgb, weight: float) -> Rgb:
    return tuple(round(x * (1.0 - weight) + y * weight) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


# ----------------------------------------------------------------------------- cameras
@dataclass(frozen=True)
class _View:
    """One camera at one image size: projection and the cached background."""

    camera: CameraModel
    width: int
    height: int
    focal: float
    cx: float
    cy: float
    rotation: FloatArray  # optical frame in base_link
    horizon: int


class Renderer:
    """Renders the world for the cameras of a rig (default: config/rig.yaml, AR1 order)."""

    def __init__(self, rig: CameraRig | None = None, near: float = NEAR_PLANE_M) -> None:
        self.rig = rig if rig is not None else default_rig()
        self.near = near
        self._views: dict[tuple[str, int, int], _View] = {}
        self._backgrounds: dict[tuple[str, int, int, object], Image] = {}

    def render(
        self, state: WorldState, ego_pose: Pose2D, camera_name: str, width: int, height: int
    ) -> Image:
        """RGB uint8 [height, width, 3] of one camera."""
        scene = build_scene(state, ego_pose).pack()
        return self._draw(scene, state, ego_pose, camera_name, width, height)

    def render_cameras(
        self,
        state: WorldState,
        ego_pose: Pose2D,
        width: int,
        height: int,
        cameras: tuple[str, ...] = CAMERA_ORDER,
    ) -> Image:
        """RGB uint8 [cameras, height, width, 3], sharing one scene build."""
        scene = build_scene(state, ego_pose).pack()
        return np.stack(
            [self._draw(scene, state, ego_pose, name, width, height) for name in cameras]
        )

    # ------------------------------------------------------------------ internals
    def _view(self, name: str, width: int, height: int) -> _View:
        key = (name, width, height)
        view = self._views.get(key)
        if view is None:
            if name not in self.rig.cameras:
                raise RenderError(f"camera {name!r} is not in the rig ({sorted(self.rig.cameras)})")
            if width < 2 or height < 2:
                raise RenderError(f"image size must be at least 2x2, got {width}x{height}")
            camera = self.rig.cameras[name]
            K = camera.intrinsics(width, height)
            rotation = camera.optical_rotation()
            # Horizon: the row of a far point straight ahead of the camera, level with it.
            forward = camera.body_rotation()[:, 0]
            level = np.array([forward[0], forward[1], 0.0])
            optical = rotation.T @ (level / max(float(np.linalg.norm(level)), 1e-9))
            horizon = round(K[1, 2] + K[1, 1] * optical[1] / max(optical[2], 1e-6))
            view = _View(camera, width, height, K[0, 0], K[0, 2], K[1, 2], rotation, horizon)
            self._views[key] = view
        return view

    def _background(self, view: _View, state: WorldState) -> Image:
        key = (view.camera.name, view.width, view.height, state.appearance)
        image = self._backgrounds.get(key)
        if image is None:
            if len(self._backgrounds) > 64:
                self._backgrounds.clear()
            appearance = state.appearance
            image = np.empty((view.height, view.width, 3), np.uint8)
            horizon = min(max(view.horizon, 0), view.height)
            if horizon > 0:
                weight = np.linspace(0.0, 1.0, horizon)[:, None]
                top, bottom = np.array(appearance.sky_top), np.array(appearance.sky_horizon)
                image[:horizon] = (top * (1.0 - weight) + bottom * weight).astype(np.uint8)[:, None]
            image[horizon:] = appearance.ground
            self._backgrounds[key] = image
        return image

    def _draw(
        self,
        scene: _PackedScene,
        state: WorldState,
        ego_pose: Pose2D,
        name: str,
        width: int,
        height: int,
    ) -> Image:
        view = self._view(name, width, height)
        image: Image = self._background(view, state).copy()
        ego_rotation = yaw_to_rotation(ego_pose.yaw)
        to_camera = view.rotation.T @ ego_rotation.T  # world axes -> optical axes
        origin = np.array([ego_pose.x, ego_pose.y, 0.0]) + ego_rotation @ view.camera.position
        camera = (scene.points - origin) @ to_camera.T
        near = self.near
        in_front = camera[:, 2] > near
        z = np.maximum(camera[:, 2], near)
        scale = view.focal * _SCALE
        uv = np.empty((len(camera), 2))
        np.multiply(camera[:, 0] / z, scale, out=uv[:, 0])
        np.multiply(camera[:, 1] / z, scale, out=uv[:, 1])
        uv[:, 0] += view.cx * _SCALE
        uv[:, 1] += view.cy * _SCALE
        np.clip(uv, -1e6, 1e6, out=uv)  # int32-safe; clipping bounds real polygons anyway
        pixels = uv.round().astype(np.int32)
        clipper = _Clipper(view, near)

        # Ground layers, in order; polygons of one layer never overlap.
        g = scene.ground_count
        if g:
            ground_cam = camera[: 4 * g].reshape(g, 4, 3)
            ground_in = in_front[: 4 * g].reshape(g, 4)
            ground_px = pixels[: 4 * g].reshape(g, 4, 2)
            whole = ground_in.all(axis=1)
            shown = whole & _on_screen(ground_px, view)
            partial = np.flatnonzero(ground_in.any(axis=1) & ~whole)
            clipped = clipper.clip(ground_cam[partial])
            layers = scene.ground_layer
            for layer, colour in enumerate(scene.layer_colours):
                polygons = list(ground_px[shown & (layers == layer)])
                polygons += [
                    polygon
                    for index, polygon in zip(partial.tolist(), clipped, strict=True)
                    if polygon is not None and layers[index] == layer
                ]
                if polygons:
                    cv2.fillPoly(image, polygons, colour, cv2.LINE_8, SHIFT)
        if len(scene.anchors):
            self._draw_objects(image, scene, camera, in_front, pixels, origin, clipper)
        return image

    def _draw_objects(
        self,
        image: Image,
        scene: _PackedScene,
        camera: FloatArray,
        in_front: npt.NDArray[np.bool_],
        pixels: npt.NDArray[np.int32],
        origin: FloatArray,
        clipper: _Clipper,
    ) -> None:
        view = clipper.view
        first = 4 * scene.ground_count
        b = scene.box_count
        box_cam = camera[first : first + 8 * b].reshape(b, 8, 3)
        box_in = in_front[first : first + 8 * b].reshape(b, 8)
        box_px = pixels[first : first + 8 * b].reshape(b, 8, 2)
        first += 8 * b
        q = scene.quad_count
        quad_cam = camera[first : first + 4 * q].reshape(q, 4, 3)
        quad_in = in_front[first : first + 4 * q].reshape(q, 4)
        quad_px = pixels[first : first + 4 * q].reshape(q, 4, 2)
        first += 4 * q
        glow_cam = camera[first:]

        # Back-face culling in the world frame: the camera is on the outer side of a face.
        faces_seen = (((origin - scene.face_centres) * scene.face_normals).sum(-1) > 1e-9).tolist()
        quads_seen = (((origin - scene.quad_centres) * scene.quad_normals).sum(-1) > 1e-9).tolist()
        box_draw = (box_in.any(axis=1) & _on_screen(box_px, view, box_in)).tolist()
        # Lists, not arrays: indexed once per face in the loop below.
        box_whole = cast(list[bool], box_in.all(axis=1).tolist())
        quad_whole = cast(list[bool], quad_in.all(axis=1).tolist())
        quad_any = cast(list[bool], quad_in.any(axis=1).tolist())

        order = np.argsort(-np.linalg.norm(scene.anchors - origin, axis=1), kind="stable")
        for obj in order.tolist():
            for box in scene.object_boxes[obj]:
                if not box_draw[box]:
                    continue
                colours = scene.box_face_colours[box]
                for face, seen in enumerate(faces_seen[box]):
                    if not seen:
                        continue
                    index = _FACE_INDEX[face]
                    if box_whole[box]:
                        polygon = box_px[box, index]
                    else:
                        polygon = clipper.clip(box_cam[box, index][None])[0]
                        if polygon is None:
                            continue
                    cv2.fillConvexPoly(image, polygon, colours[face], cv2.LINE_8, SHIFT)
            for quad in scene.object_quads[obj]:
                if not quads_seen[quad] or not quad_any[quad]:
                    continue
                polygon = (
                    quad_px[quad] if quad_whole[quad] else clipper.clip(quad_cam[quad][None])[0]
                )
                if polygon is not None:
                    cv2.fillConvexPoly(image, polygon, scene.quad_colours[quad], cv2.LINE_8, SHIFT)
            for glow in scene.object_glows[obj]:
                x, y, depth = glow_cam[glow]
                if depth <= clipper.near:
                    continue
                radius = max(view.focal * scene.glow_radius[glow] / depth, MIN_GLOW_PX)
                centre = (
                    round((view.focal * x / depth + view.cx) * _SCALE),
                    round((view.focal * y / depth + view.cy) * _SCALE),
                )
                cv2.circle(
                    image,
                    centre,
                    round(radius * _SCALE),
                    scene.glow_colours[glow],
                    -1,
                    cv2.LINE_AA,
                    SHIFT,
                )


class _Clipper:
    """Near-plane clipping (Sutherland-Hodgman against z = near) and projection."""

    def __init__(self, view: _View, near: float) -> None:
        self.view = view
        self.near = near

    def clip(self, polygons: FloatArray) -> list[npt.NDArray[np.int32] | None]:
        """Clip camera-frame polygons [P, N, 3] to z >= near and project them; None for
        polygons wholly behind the plane."""
        if len(polygons) == 0:
            return []
        near = self.near + 1e-6
        a = polygons
        b = np.roll(polygons, -1, axis=1)
        a_in, b_in = a[..., 2] >= near, b[..., 2] >= near
        dz = b[..., 2] - a[..., 2]
        t = (near - a[..., 2]) / np.where(dz == 0.0, 1.0, dz)
        crossing = a + t[..., None] * (b - a)
        count, vertices = a.shape[:2]
        sequence = np.stack([a, crossing], axis=2).reshape(count, 2 * vertices, 3)
        keep = np.stack([a_in, a_in != b_in], axis=2).reshape(count, 2 * vertices)
        view = self.view
        scale = view.focal * _SCALE
        result: list[npt.NDArray[np.int32] | None] = []
        for points, mask in zip(sequence, keep, strict=True):
            points = points[mask]
            if len(points) < 3:
                result.append(None)
                continue
            u = points[:, 0] / points[:, 2] * scale + view.cx * _SCALE
            v = points[:, 1] / points[:, 2] * scale + view.cy * _SCALE
            result.append(np.clip(np.stack([u, v], axis=1), -1e6, 1e6).round().astype(np.int32))
        return result


def _on_screen(
    pixels: npt.NDArray[np.int32], view: _View, in_front: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.bool_]:
    """Whether each polygon's projected bounding box meets the image. Polygons crossing the
    near plane (when `in_front` is given) are kept: their projection is not yet valid."""
    width, height = view.width * _SCALE, view.height * _SCALE
    u, v = pixels[..., 0], pixels[..., 1]
    inside: npt.NDArray[np.bool_] = (
        (u.max(axis=-1) >= 0)
        & (u.min(axis=-1) < width)
        & (v.max(axis=-1) >= 0)
        & (v.min(axis=-1) < height)
    )
    return inside if in_front is None else inside | ~in_front.all(axis=-1)


@lru_cache(maxsize=1)
def default_rig() -> CameraRig:
    """The AR1 rig of config/rig.yaml, cameras in contract order."""
    return CameraRig.load(config_file("rig.yaml"), CAMERA_ORDER)


@lru_cache(maxsize=1)
def _default_renderer() -> Renderer:
    return Renderer()


def render(
    world_state: WorldState, ego_pose: Pose2D, camera_name: str, width: int, height: int
) -> Image:
    """One camera image (RGB uint8 [H, W, 3]) of the world with the AR1 rig."""
    return _default_renderer().render(world_state, ego_pose, camera_name, width, height)
