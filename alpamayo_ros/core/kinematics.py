"""Unicycle kinematics of the Alpamayo-R1 action space and ego-state estimation.

The model outputs (acceleration, curvature) controls that become a trajectory only through
this integration, so the integrator, its inverse and the ego-state estimate must agree on
one discretisation: per 0.1 s step, speed changes linearly and the path is a circular arc.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from alpamayo_ros.core.contract import TRAJECTORY_DT_S, TRAJECTORY_STEPS
from alpamayo_ros.core.planar import Pose2D, rotation_to_yaw, wrap_angle, yaw_to_rotation

FloatArray = NDArray[np.float64]

# Below this speed, heading changes are dominated by noise and curvature = dyaw/ds is
# ill-conditioned (ds -> 0), so curvature is reported as 0 instead.
MIN_SPEED_FOR_CURVATURE = 0.5

# Ego-state fits use the last second of history: long enough to average odometry jitter,
# short enough that a degree-2 polynomial still describes the motion.
FIT_WINDOW_S = 1.0
FIT_DEGREE = 2

# Step times are multiples of dt in floating point: 30 * 0.1 s is 3.0000000000000004 s.
_TIME_TOLERANCE_S = 1e-9


class KinematicsError(ValueError):
    """Inputs that cannot describe a trajectory (shapes, time step, too little history)."""


@dataclass(frozen=True)
class Rollout:
    """States AFTER each step, at t0+dt .. t0+T*dt; every array has shape [..., T].

    Leading dimensions are a batch (e.g. K candidate trajectories).
    """

    t: FloatArray  # s since t0
    x: FloatArray  # m
    y: FloatArray  # m
    yaw: FloatArray  # rad, CCW positive
    v: FloatArray  # m/s, negative when reversing
    acceleration: FloatArray  # m/s^2, applied during the step ending at t
    curvature: FloatArray  # 1/m, of the arc driven during the step ending at t

    def __post_init__(self) -> None:
        shapes = {name: np.shape(getattr(self, name)) for name in self.__dataclass_fields__}
        if len(set(shapes.values())) != 1 or len(shapes["t"]) == 0:
            raise KinematicsError(f"rollout arrays need one common shape [..., T], got {shapes}")

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.t.shape[:-1]

    def __getitem__(self, index: int | slice | tuple[int, ...]) -> Rollout:
        """Index the batch dimensions, e.g. rollouts[k] is candidate k, rollouts[:k] a batch."""
        if len(index if isinstance(index, tuple) else (index,)) > len(self.batch_shape):
            raise KinematicsError(f"index {index!r} reaches into the time axis")
        return self._map_arrays(lambda values: values[index])

    def until(self, t_s: float) -> Rollout:
        """The states at or before t_s seconds after t0 (the batch shares its step times)."""
        step_times = self.t.reshape(-1, self.t.shape[-1])[0]
        steps = int(np.count_nonzero(step_times <= t_s + _TIME_TOLERANCE_S))
        return self._map_arrays(lambda values: values[..., :steps])

    def non_finite_fields(self) -> list[str]:
        """Names of the arrays holding NaN or inf (a diverged model output)."""
        fields = self.__dataclass_fields__
        return [name for name in fields if not np.all(np.isfinite(getattr(self, name)))]

    def xyz(self) -> FloatArray:
        """Positions [..., T, 3] on the ground plane (z = 0)."""
        return np.stack([self.x, self.y, np.zeros_like(self.x)], axis=-1)

    def rotations(self) -> FloatArray:
        """Rotation matrices [..., T, 3, 3] of the heading (yaw about z)."""
        return yaw_to_rotation(self.yaw)

    def lateral_acceleration(self) -> FloatArray:
        """Sideways acceleration [..., T] (m/s^2, v^2 x curvature; +left)."""
        return np.asarray(self.v**2 * self.curvature)

    def step_arc_lengths(self) -> FloatArray:
        """Signed distance driven in each step, consistent with integrate_unicycle."""
        step_dt = np.diff(self.t, axis=-1, prepend=0.0)
        return _trapezoid_arc(self.v - self.acceleration * step_dt, self.v, step_dt)

    def appended(self, candidate: Rollout) -> Rollout:
        """This batch [K, T] with one more rollout [T] after it: [K + 1, T]."""
        if len(self.batch_shape) != 1 or candidate.batch_shape:
            raise KinematicsError(
                f"appends one rollout to a batch [K, T], got batch {self.batch_shape} and "
                f"{candidate.batch_shape}"
            )
        fields = self.__dataclass_fields__
        return Rollout(
            **{
                name: np.concatenate([getattr(self, name), getattr(candidate, name)[None]])
                for name in fields
            }
        )

    def _map_arrays(self, function: Callable[[FloatArray], FloatArray]) -> Rollout:
        fields = self.__dataclass_fields__
        return Rollout(**{name: function(getattr(self, name)) for name in fields})


@dataclass(frozen=True)
class EgoState:
    """Ego motion at t0, as seen by the model's controls."""

    speed: float  # m/s
    acceleration: float  # m/s^2
    yaw_rate: float  # rad/s
    curvature: float  # 1/m; 0 when |speed| < MIN_SPEED_FOR_CURVATURE


@dataclass(frozen=True)
class VehicleState:
    """A vehicle's pose (base_link in its parent frame) and forward speed."""

    x: float
    y: float
    yaw: float
    v: float

    @property
    def pose(self) -> Pose2D:
        return Pose2D(self.x, self.y, self.yaw)

    def advance(
        self, acceleration: float, curvature: float, dt: float = TRAJECTORY_DT_S
    ) -> VehicleState:
        """One step of (acceleration, curvature): the discretisation of integrate_unicycle,
        so the world's cars and the model's trajectories move alike."""
        step = integrate_unicycle([acceleration], [curvature], self.v, dt, self.x, self.y, self.yaw)
        return VehicleState(
            float(step.x[0]), float(step.y[0]), float(step.yaw[0]), float(step.v[0])
        )


def integrate_unicycle(
    acceleration: ArrayLike,
    curvature: ArrayLike,
    v0: ArrayLike,
    dt: float = TRAJECTORY_DT_S,
    x0: ArrayLike = 0.0,
    y0: ArrayLike = 0.0,
    yaw0: ArrayLike = 0.0,
) -> Rollout:
    """Integrate controls [..., T] from the start state(s) (broadcast to the batch).

    Speed is linear within a step and the path is the exact circular arc of the step's
    curvature, so constant-speed circles and straight constant-acceleration runs are
    reproduced exactly. Speed is not clamped at zero: negative speed means reversing, as the
    model may request it; callers that forbid reversing must check v.
    """
    _require_positive_dt(dt)
    acceleration, curvature = np.broadcast_arrays(
        np.asarray(acceleration, dtype=float), np.asarray(curvature, dtype=float)
    )
    if acceleration.ndim == 0 or acceleration.shape[-1] == 0:
        raise KinematicsError("controls need a non-empty time axis [..., T]")
    batch = acceleration.shape[:-1]
    v0, x0, y0, yaw0 = (_per_batch(value, batch) for value in (v0, x0, y0, yaw0))

    v = v0 + np.cumsum(acceleration, axis=-1) * dt
    ds = _trapezoid_arc(_shift_in(v0, v), v, dt)
    dyaw = curvature * ds
    yaw = yaw0 + np.cumsum(dyaw, axis=-1)
    # The chord of an arc points at the mean heading and is ds*sinc(dyaw/2) long.
    chord = ds * _sinc(dyaw / 2.0)
    chord_heading = _shift_in(yaw0, yaw) + dyaw / 2.0
    x = x0 + np.cumsum(chord * np.cos(chord_heading), axis=-1)
    y = y0 + np.cumsum(chord * np.sin(chord_heading), axis=-1)
    t = np.broadcast_to(dt * np.arange(1, acceleration.shape[-1] + 1), acceleration.shape)
    return Rollout(
        t=t.copy(),
        x=x,
        y=y,
        yaw=yaw,
        v=v,
        acceleration=acceleration.copy(),
        curvature=curvature.copy(),
    )


def along_path(path: Rollout, acceleration: ArrayLike, speed: float) -> Rollout:
    """`path` [T] driven with `acceleration` [T] from `speed`, by distance: each step takes
    the curvature the path had where that step ends (its last step's past the path's end).

    Why: a path's curvature per time step, driven at other speeds, bends where the path
    did not (braking for a stand-off; holding a speed the samples braked from)."""
    acceleration = np.asarray(acceleration, dtype=float)
    along = np.concatenate([[0.0], np.cumsum(path.step_arc_lengths())])  # [T + 1]
    straight = integrate_unicycle(acceleration, np.zeros_like(acceleration), speed)
    travelled = np.cumsum(straight.step_arc_lengths())
    step = np.searchsorted(along[1:], travelled - 1e-9).clip(0, len(along) - 2)
    return integrate_unicycle(acceleration, path.curvature[step], speed, dt=TRAJECTORY_DT_S)


def stop_at_standstill(
    acceleration: ArrayLike, v0: ArrayLike, dt: float = TRAJECTORY_DT_S
) -> FloatArray:
    """Accelerations [..., T] changed so that speed from v0 never drops below zero.

    A braking command integrated past standstill would drive the car backwards; a car that
    brakes to a stop stays stopped until it accelerates again. The speed is the running sum
    reflected at zero, v_k = S_k - min(0, min_{j<=k} S_j) with S the unclamped speeds
    (a negative v0 counts as standing), and the returned accelerations reproduce it.
    """
    _require_positive_dt(dt)
    acceleration = np.asarray(acceleration, dtype=float)
    if acceleration.ndim == 0 or acceleration.shape[-1] == 0:
        raise KinematicsError("controls need a non-empty time axis [..., T]")
    v0 = _per_batch(v0, acceleration.shape[:-1])
    unclamped = np.concatenate([v0, v0 + np.cumsum(acceleration, axis=-1) * dt], axis=-1)
    floor = np.minimum(np.minimum.accumulate(unclamped, axis=-1), 0.0)
    speed = unclamped - floor
    return np.diff(speed, axis=-1) / dt


def controls_from_poses(
    x: ArrayLike, y: ArrayLike, yaw: ArrayLike, v0: ArrayLike, dt: float = TRAJECTORY_DT_S
) -> tuple[FloatArray, FloatArray]:
    """Recover (acceleration, curvature) [..., T] of poses driven from the origin at speed v0.

    Exact inverse of integrate_unicycle while the speed stays away from zero. Curvature is
    set to 0 in steps slower than MIN_SPEED_FOR_CURVATURE: there ds -> 0 and dyaw/ds turns
    pose noise into huge, meaningless curvatures.
    """
    _require_positive_dt(dt)
    x, y, yaw = np.broadcast_arrays(*(np.asarray(value, dtype=float) for value in (x, y, yaw)))
    if x.ndim == 0 or x.shape[-1] == 0:
        raise KinematicsError("poses need a non-empty time axis [..., T]")
    batch = x.shape[:-1]
    origin = np.zeros((*batch, 1))
    v0 = _per_batch(v0, batch)

    dyaw = wrap_angle(np.diff(yaw, axis=-1, prepend=origin))
    ds = _signed_arc_lengths(
        np.diff(x, axis=-1, prepend=origin),
        np.diff(y, axis=-1, prepend=origin),
        _shift_in(origin, yaw),
        dyaw,
    )
    # Trapezoidal distance per step: v_{k+1} = 2 ds_k / dt - v_k.
    v = np.empty_like(ds)
    speed_before = v0[..., 0]
    for step in range(ds.shape[-1]):
        v[..., step] = 2.0 * ds[..., step] / dt - speed_before
        speed_before = v[..., step]
    acceleration = (v - _shift_in(v0, v)) / dt
    curvature = np.divide(
        dyaw, ds, out=np.zeros_like(ds), where=np.abs(ds) >= MIN_SPEED_FOR_CURVATURE * dt
    )
    return acceleration, curvature


def controls_from_paths(
    x: ArrayLike, y: ArrayLike, yaw: ArrayLike, dt: float = TRAJECTORY_DT_S
) -> tuple[float, FloatArray, FloatArray]:
    """(start speed, acceleration, curvature [..., T]) of paths driven from the origin whose
    start speed is not known exactly (a model's trajectories, a logged path).

    `controls_from_poses` is exact for the true start speed, but any error in it makes the
    recovered speed alternate around the true one, step after step, and the acceleration
    swing by 2 error / dt: a few cm/s of error break any jerk limit. The recovered
    acceleration is linear in the start speed, so the one speed (shared by the batch, as a
    plan's candidates share the ego's) that makes the controls smoothest (least squared
    jerk) has a closed form; for exact paths it is the true speed.
    """
    at_zero, curvature = controls_from_poses(x, y, yaw, 0.0, dt)
    at_one, _ = controls_from_poses(x, y, yaw, 1.0, dt)
    jerk_at_zero = np.diff(at_zero, axis=-1)
    per_unit_speed = np.diff(at_one, axis=-1) - jerk_at_zero
    weight = float(np.sum(per_unit_speed * per_unit_speed))
    speed = -float(np.sum(jerk_at_zero * per_unit_speed)) / weight if weight > 0 else 0.0
    return speed, at_zero + speed * (at_one - at_zero), curvature


def estimate_ego_state(
    xyz: ArrayLike, rotations: ArrayLike, dt: float = TRAJECTORY_DT_S
) -> EgoState:
    """Estimate the ego state at t0 from a history [N] expressed in the t0 frame.

    Odometry jitter makes two-point differences noisy (and second differences useless), so
    distance along the path and yaw are least-squares fitted with a quadratic over the last
    FIT_WINDOW_S and differentiated at t0.
    """
    _require_positive_dt(dt)
    xyz, rotations = np.asarray(xyz, dtype=float), np.asarray(rotations, dtype=float)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or rotations.shape != (len(xyz), 3, 3):
        raise KinematicsError(
            f"history needs xyz [N,3] and rotations [N,3,3], got {xyz.shape} and {rotations.shape}"
        )
    window = min(len(xyz), round(FIT_WINDOW_S / dt) + 1)
    if window <= FIT_DEGREE:
        raise KinematicsError(f"need at least {FIT_DEGREE + 1} history poses, got {len(xyz)}")
    xyz, rotations = xyz[-window:], rotations[-window:]

    yaw = np.unwrap(rotation_to_yaw(rotations))
    steps = np.diff(xyz[:, :2], axis=0)
    ds = _signed_arc_lengths(steps[:, 0], steps[:, 1], yaw[:-1], np.diff(yaw))
    along_track = np.concatenate([[0.0], np.cumsum(ds)])
    t = (np.arange(window) - (window - 1)) * dt
    coefficients = np.polynomial.polynomial.polyfit(
        t, np.column_stack([along_track, yaw]), FIT_DEGREE
    )
    speed, yaw_rate = coefficients[1]
    curvature = yaw_rate / speed if abs(speed) >= MIN_SPEED_FOR_CURVATURE else 0.0
    return EgoState(
        speed=float(speed),
        acceleration=float(2.0 * coefficients[2, 0]),
        yaw_rate=float(yaw_rate),
        curvature=float(curvature),
    )


def constant_velocity_controls(
    state: EgoState, steps: int = TRAJECTORY_STEPS
) -> tuple[FloatArray, FloatArray]:
    """Controls of the constant-velocity baseline: straight ahead at the current speed.

    Zero acceleration and curvature; integrate with v0=state.speed. The state is taken so
    every baseline planner has the same call signature; this one needs nothing from it.
    """
    return np.zeros(steps), np.zeros(steps)


def _require_positive_dt(dt: float) -> None:
    if not dt > 0.0:
        raise KinematicsError(f"time step must be positive, got {dt}")


def _per_batch(value: ArrayLike, batch: tuple[int, ...]) -> FloatArray:
    """Broadcast a per-trajectory value to [..., 1] so it combines with [..., T] arrays."""
    try:
        return np.broadcast_to(np.asarray(value, dtype=float), batch)[..., np.newaxis]
    except ValueError as error:
        raise KinematicsError(f"cannot broadcast {np.shape(value)} to batch {batch}") from error


def _shift_in(first: FloatArray, values: FloatArray) -> FloatArray:
    """Values before each step: [first, values[..., :-1]]."""
    first = np.broadcast_to(first, (*values.shape[:-1], 1))
    return np.concatenate([first, values[..., :-1]], axis=-1)


def _trapezoid_arc(v_start: ArrayLike, v_end: ArrayLike, dt: ArrayLike) -> FloatArray:
    """Distance of a step with linearly changing speed."""
    distance: FloatArray = (np.asarray(v_start) + np.asarray(v_end)) / 2.0 * np.asarray(dt)
    return distance


def _sinc(angle: ArrayLike) -> FloatArray:
    """sin(a)/a, equal to 1 at a = 0 (np.sinc is the normalised sin(pi a)/(pi a))."""
    return np.sinc(np.asarray(angle) / np.pi)


def _signed_arc_lengths(
    dx: FloatArray, dy: FloatArray, heading_before: FloatArray, dyaw: FloatArray
) -> FloatArray:
    """Arc length of constant-curvature steps from their chords; negative when reversing.

    Projecting the chord on its expected direction (instead of taking its norm) keeps
    standstill jitter from adding up to a positive speed.
    """
    chord_heading = heading_before + dyaw / 2.0
    projected = dx * np.cos(chord_heading) + dy * np.sin(chord_heading)
    return projected / _sinc(dyaw / 2.0)
