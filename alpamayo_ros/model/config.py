"""Architecture hyper-parameters of the embedded VLA, stored with its weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from alpamayo_ros.core.contract import (
    CAMERA_ORDER,
    FRAMES_PER_CAMERA,
    HISTORY_POSES,
    TRAJECTORY_STEPS,
)


@dataclass(frozen=True)
class ModelConfig:
    # Inputs (Alpamayo-R1 contract, images downscaled for a CPU).
    image_width: int = 128
    image_height: int = 64
    cameras: int = len(CAMERA_ORDER)
    frames: int = FRAMES_PER_CAMERA
    history_poses: int = HISTORY_POSES
    horizon: int = TRAJECTORY_STEPS
    # False: the network reads the ego history as the speed profile along a straight line,
    # not the path's shape (ego_features), so it cannot copy the curvature it has been
    # driving and must see the road's in the images.
    lateral_history: bool = True
    # Vision: a light CNN per image, attention over each camera's frames, a fusion encoder.
    patch_size: int = 8
    cnn_channels: tuple[int, ...] = (48, 96)
    width: int = 128
    heads: int = 4
    fusion_layers: int = 2
    # > 0: the pooled scene also reads every camera's token grid position by position
    # (each token projected to this many channels, then one linear map over all of them).
    # Attention pooling alone lost where the lane edges are: a probe on the pooled latent
    # explained under half of the car's offset in its lane, a linear map over the grid
    # of the same image encoder almost all of it. 0: the pooled token only.
    scene_readout: int = 0
    # Reasoning decoder over a word vocabulary.
    vocabulary: tuple[str, ...] = ()
    decoder_layers: int = 2
    max_text_tokens: int = 28
    # Flow-matching action expert over normalised (acceleration, curvature).
    expert_hidden: int = 512
    flow_steps: int = 10
    acceleration_scale: float = 4.0
    curvature_scale: float = 0.05

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        raw = json.loads(text)
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(unknown)}")
        for name in ("cnn_channels", "vocabulary"):
            if name in raw:
                raw[name] = tuple(raw[name])
        return cls(**raw)
