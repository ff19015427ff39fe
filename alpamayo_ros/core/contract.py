"""The Alpamayo-R1 input/output contract every backend and node shares.

Kept in one place so that alignment, resampling, kinematics and messages cannot drift apart.
"""

from __future__ import annotations

# Cameras in model order (dataset camera indices 0, 1, 2, 6).
CAMERA_ORDER: tuple[str, ...] = (
    "cross_left_120fov",
    "front_wide_120fov",
    "cross_right_120fov",
    "front_tele_30fov",
)

NS_PER_S = 1_000_000_000

# Four frames per camera at t0-0.3, -0.2, -0.1 and t0 (10 Hz).
FRAME_PERIOD_NS = 100_000_000
FRAMES_PER_CAMERA = 4
FRAME_OFFSETS_NS: tuple[int, ...] = tuple(
    -FRAME_PERIOD_NS * (FRAMES_PER_CAMERA - 1 - i) for i in range(FRAMES_PER_CAMERA)
)

# Sixteen ego poses at exactly 10 Hz, t0-1.5 s .. t0, in the ego frame at t0.
HISTORY_POSES = 16
HISTORY_PERIOD_NS = 100_000_000

# Sixty-four trajectory steps at 10 Hz, t0+0.1 .. t0+6.4 s.
TRAJECTORY_STEPS = 64
TRAJECTORY_DT_S = 0.1

# Control bounds of the action expert.
MAX_ABS_ACCELERATION = 9.8
MAX_ABS_CURVATURE = 0.33
