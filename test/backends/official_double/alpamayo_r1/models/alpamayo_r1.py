"""The double's `AlpamayoR1`: `from_pretrained` and the rollout's signature and shapes.

It keeps the history's speed and draws K arcs of scripted curvatures; each arc's reasoning
says which way it goes. The last call's inputs are kept for the test to look at.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Curvature (1/m) of each sample, in order; the straight one is the one the others agree on.
SAMPLE_CURVATURES = (0.0, 0.004, -0.004, 0.008, -0.008, 0.0005)
STRAIGHT_TEXT = "Keep distance to the lead vehicle since it is directly ahead in our lane."
LEFT_TEXT = "Nudge to the left to increase clearance from the construction cones."
RIGHT_TEXT = "Steer right to follow the road."


class AlpamayoR1(torch.nn.Module):
    last_call: dict[str, Any] = {}  # noqa: RUF012 - the test double's record

    def __init__(self, checkpoint: Path, dtype: torch.dtype) -> None:
        super().__init__()
        self.checkpoint, self.dtype_loaded = checkpoint, dtype
        self.tokenizer = object()

    @classmethod
    def from_pretrained(cls, path: str, dtype: torch.dtype = torch.float32, **_: Any) -> Any:
        checkpoint = Path(path)
        if not (checkpoint / "config.json").is_file():
            raise OSError(f"{path} is not a checkpoint folder (no config.json)")
        return cls(checkpoint, dtype)

    def sample_trajectories_from_data_with_vlm_rollout(
        self,
        data: dict[str, Any],
        top_p: float = 0.98,
        top_k: int | None = None,
        temperature: float = 0.6,
        num_traj_samples: int = 6,
        num_traj_sets: int = 1,
        diffusion_kwargs: dict[str, Any] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, np.ndarray]]:
        history = data["ego_history_xyz"]
        if tuple(history.shape) != (1, 1, 16, 3):
            raise ValueError(f"ego_history_xyz {tuple(history.shape)}, expected (1, 1, 16, 3)")
        if tuple(data["ego_history_rot"].shape) != (1, 1, 16, 3, 3):
            raise ValueError(f"ego_history_rot {tuple(data['ego_history_rot'].shape)}")
        AlpamayoR1.last_call = {
            "data": data,
            "top_p": top_p,
            "temperature": temperature,
            "num_traj_samples": num_traj_samples,
            **kwargs,
        }
        step = history[0, 0, -1, :2] - history[0, 0, -2, :2]
        speed = float(torch.linalg.norm(step)) / 0.1
        curvatures = [
            SAMPLE_CURVATURES[k % len(SAMPLE_CURVATURES)] for k in range(num_traj_samples)
        ]
        xyz = np.zeros((num_traj_samples, 64, 3))
        rotations = np.zeros((num_traj_samples, 64, 3, 3))
        for k, curvature in enumerate(curvatures):
            s = speed * 0.1 * np.arange(1, 65)
            yaw = curvature * s
            if curvature:
                xyz[k, :, 0] = np.sin(yaw) / curvature
                xyz[k, :, 1] = (1 - np.cos(yaw)) / curvature
            else:
                xyz[k, :, 0] = s
            rotations[k] = [
                [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]]
                for a in yaw
            ]
        texts = [
            STRAIGHT_TEXT if abs(c) < 0.003 else LEFT_TEXT if c > 0 else RIGHT_TEXT
            for c in curvatures
        ]
        shape = (1, num_traj_sets, num_traj_samples)
        return (
            torch.from_numpy(xyz).float().reshape(*shape, 64, 3),
            torch.from_numpy(rotations).float().reshape(*shape, 64, 3, 3),
            {"cot": np.array(texts, dtype=object).reshape(shape)},
        )
