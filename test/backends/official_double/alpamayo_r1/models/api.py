"""The official model's rollout call as the doubles offer it: its public signature, the
input checks the public code makes, and a record of the last call for the tests; each
double draws the trajectories its own way (`rollout`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

HISTORY_POSES = 16


@dataclass(frozen=True)
class Call:
    """What a double's rollout is asked for."""

    data: dict[str, Any]
    top_p: float
    temperature: float
    samples: int
    sets: int


class OfficialRollout(torch.nn.Module):
    last_call: dict[str, Any] = {}  # noqa: RUF012 - the test double's record

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
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Positions [1, sets, samples, 64, 3], rotations [.., 64, 3, 3] and extra, whose
        "cot" holds each sample's reasoning."""
        history = data["ego_history_xyz"]
        if tuple(history.shape) != (1, 1, HISTORY_POSES, 3):
            raise ValueError(f"ego_history_xyz {tuple(history.shape)}, expected (1, 1, 16, 3)")
        if tuple(data["ego_history_rot"].shape) != (1, 1, HISTORY_POSES, 3, 3):
            raise ValueError(f"ego_history_rot {tuple(data['ego_history_rot'].shape)}")
        OfficialRollout.last_call = {
            "data": data,
            "top_p": top_p,
            "temperature": temperature,
            "num_traj_samples": num_traj_samples,
            **kwargs,
        }
        return self.rollout(Call(data, top_p, temperature, num_traj_samples, num_traj_sets))

    def rollout(self, call: Call) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        raise NotImplementedError


# The doubles' scripted reasoning for an arc of each direction.
STRAIGHT_TEXT = "Keep distance to the lead vehicle since it is directly ahead in our lane."
LEFT_TEXT = "Nudge to the left to increase clearance from the construction cones."
RIGHT_TEXT = "Steer right to follow the road."
STRAIGHT_BELOW = 0.003  # 1/m: an arc gentler than this is read as straight


def reasoning_for(curvature: float) -> str:
    """The scripted reasoning of an arc of this curvature (1/m, left positive)."""
    if abs(curvature) < STRAIGHT_BELOW:
        return STRAIGHT_TEXT
    return LEFT_TEXT if curvature > 0 else RIGHT_TEXT
