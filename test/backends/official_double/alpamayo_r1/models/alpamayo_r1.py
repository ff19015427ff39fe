"""The double's `AlpamayoR1`: `from_pretrained` and the rollout's signature and shapes.

It keeps the history's speed and draws K arcs of scripted curvatures; each arc's reasoning
says which way it goes. The last call's inputs are kept for the test to look at. A
checkpoint whose config.json gives sizes loads the sized double instead (`sized.py`: a
random-initialised network that does the released model's work, for timing).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import sized
from .api import Call, OfficialRollout, reasoning_for

# Curvature (1/m) of each sample, in order; the straight one is the one the others agree on.
SAMPLE_CURVATURES = (0.0, 0.004, -0.004, 0.008, -0.008, 0.0005)


class AlpamayoR1(OfficialRollout):
    def __init__(self, checkpoint: Path, dtype: torch.dtype) -> None:
        super().__init__()
        self.checkpoint, self.dtype_loaded = checkpoint, dtype
        self.tokenizer = object()

    @classmethod
    def from_pretrained(cls, path: str, dtype: torch.dtype = torch.float32, **_: Any) -> Any:
        checkpoint = Path(path)
        if not (checkpoint / "config.json").is_file():
            raise OSError(f"{path} is not a checkpoint folder (no config.json)")
        sized_model = sized.load(checkpoint, dtype)
        return cls(checkpoint, dtype) if sized_model is None else sized_model

    def rollout(self, call: Call) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        history, num_traj_samples = call.data["ego_history_xyz"], call.samples
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
        texts = [reasoning_for(c) for c in curvatures]
        shape = (1, call.sets, num_traj_samples)
        return (
            torch.from_numpy(xyz).float().reshape(*shape, 64, 3),
            torch.from_numpy(rotations).float().reshape(*shape, 64, 3, 3),
            {"cot": np.array(texts, dtype=object).reshape(shape)},
        )
