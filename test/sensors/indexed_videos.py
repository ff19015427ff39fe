"""Shared by the video and device source tests: small video files whose frames say their
own index, so a test can tell exactly which frame a source returned."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

LEVEL_STEP = 8  # frame k is uniformly blue at level LEVEL_STEP * k


def write_video(path: Path, frames: int, fps: float) -> str:
    """An MJPG file of `frames` 64x48 frames at `fps`, frame k blue at LEVEL_STEP * k."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for index in range(frames):
        writer.write(np.full((48, 64, 3), (LEVEL_STEP * index, 0, 0), np.uint8))  # BGR
    writer.release()
    return str(path)
