import numpy as np
import pytest

from alpamayo_ros.core.kinematics import integrate_unicycle
from alpamayo_ros.core.meta_actions import (
    InvalidRollout,
    Lateral,
    Longitudinal,
    label_lateral,
    label_longitudinal,
    label_meta_action,
)

STEPS = 64
T = 0.1 * np.arange(1, STEPS + 1)


def _rollout(acceleration=0.0, curvature=0.0, v0=10.0):
    return integrate_unicycle(np.broadcast_to(acceleration, STEPS), curvature, v0=v0)


def test_enum_values_match_the_message_constants():
    assert [(m.name, m.value) for m in Longitudinal] == [
        ("UNKNOWN", 0),
        ("GENTLE_ACCELERATE", 1),
        ("STRONG_ACCELERATE", 2),
        ("GENTLE_DECELERATE", 3),
        ("STRONG_DECELERATE", 4),
        ("MAINTAIN_SPEED", 5),
        ("STOP", 6),
        ("REVERSE", 7),
    ]
    assert [(m.name, m.value) for m in Lateral] == [
        ("UNKNOWN", 0),
        ("STEER_LEFT", 1),
        ("STEER_RIGHT", 2),
        ("SHARP_STEER_LEFT", 3),
        ("SHARP_STEER_RIGHT", 4),
        ("REVERSE_LEFT", 5),
        ("REVERSE_RIGHT", 6),
        ("GO_STRAIGHT", 7),
    ]


@pytest.mark.parametrize(
    ("acceleration", "v0", "expected"),
    [
        (0.0, 10.0, Longitudinal.MAINTAIN_SPEED),
        (0.2, 10.0, Longitudinal.MAINTAIN_SPEED),
        (0.8, 10.0, Longitudinal.GENTLE_ACCELERATE),
        (2.5, 10.0, Longitudinal.STRONG_ACCELERATE),
        (-1.0, 15.0, Longitudinal.GENTLE_DECELERATE),
        (-3.0, 15.0, Longitudinal.STRONG_DECELERATE),
        (0.0, 0.0, Longitudinal.STOP),  # standing still
        (np.where(T <= 2.0, -3.0, 0.0), 6.0, Longitudinal.STOP),  # braking to a stop
        (-1.0, 0.0, Longitudinal.REVERSE),
        (np.where(T <= 3.0, 0.0, 4.0), 10.0, Longitudinal.MAINTAIN_SPEED),  # beyond the horizon
    ],
)
def test_longitudinal_labels(acceleration, v0, expected):
    assert label_longitudinal(_rollout(acceleration=acceleration, v0=v0)) is expected


@pytest.mark.parametrize(
    ("curvature", "v0", "expected"),
    [
        (0.0, 10.0, Lateral.GO_STRAIGHT),
        (0.001, 10.0, Lateral.GO_STRAIGHT),  # 0.03 rad in 3 s
        (0.005, 10.0, Lateral.STEER_LEFT),  # 0.15 rad
        (-0.005, 10.0, Lateral.STEER_RIGHT),
        (0.1, 5.0, Lateral.SHARP_STEER_LEFT),  # 1.5 rad: an intersection turn
        (-0.1, 5.0, Lateral.SHARP_STEER_RIGHT),
        (0.005, 30.0, Lateral.SHARP_STEER_LEFT),  # 0.45 rad, but 4.5 m/s^2 lateral
        (0.1, 0.0, Lateral.GO_STRAIGHT),  # steering at standstill does not turn
    ],
)
def test_lateral_labels(curvature, v0, expected):
    assert label_lateral(_rollout(curvature=curvature, v0=v0)) is expected


def test_lane_change_counts_as_steering_despite_zero_net_heading_change():
    curvature = np.where(T <= 3.0, 0.01 * np.sin(2 * np.pi * T / 3.0), 0.0)
    rollout = _rollout(curvature=curvature)
    assert abs(rollout.until(3.0).yaw[-1]) < 1e-3
    assert label_lateral(rollout) is Lateral.STEER_LEFT


@pytest.mark.parametrize(
    ("curvature", "expected"), [(0.1, Lateral.REVERSE_LEFT), (-0.1, Lateral.REVERSE_RIGHT)]
)
def test_reversing_labels_the_steering_direction(curvature, expected):
    rollout = _rollout(acceleration=-1.0, curvature=curvature, v0=0.0)
    # Backing up with the wheels turned left swings the heading to the right.
    assert np.sign(rollout.until(3.0).yaw[-1]) == -np.sign(curvature)
    assert label_meta_action(rollout) == (Longitudinal.REVERSE, expected)


def test_non_finite_rollout_is_unknown():
    acceleration = np.zeros(STEPS)
    acceleration[3] = np.nan
    labels = label_meta_action(_rollout(acceleration=acceleration))
    assert labels == (Longitudinal.UNKNOWN, Lateral.UNKNOWN)


def test_batch_is_rejected():
    with pytest.raises(InvalidRollout):
        label_meta_action(integrate_unicycle(np.zeros((2, STEPS)), 0.0, v0=5.0))
