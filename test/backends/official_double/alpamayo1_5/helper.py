"""The double's `alpamayo1_5.helper`: as R1's, with which cameras the frames are and the
route as navigation text."""

from __future__ import annotations

from typing import Any

import torch
from alpamayo_r1.helper import create_message as _create_message
from alpamayo_r1.helper import get_processor, to_device

__all__ = ["create_message", "get_processor", "to_device"]


def create_message(
    frames: torch.Tensor, camera_indices: torch.Tensor, navigation_text: str | None = None
) -> list[dict[str, Any]]:
    if frames.shape[0] % len(camera_indices):
        raise ValueError(f"{frames.shape[0]} frames for {len(camera_indices)} cameras")
    return _create_message(frames, camera_indices=camera_indices, navigation_text=navigation_text)
