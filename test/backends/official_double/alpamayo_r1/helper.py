"""The double's `alpamayo_r1.helper`: the message, the processor and `to_device`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


def create_message(frames: torch.Tensor, **options: Any) -> list[dict[str, Any]]:
    """The chat messages around N frames [N, C, H, W], as the official helper builds them."""
    if frames.ndim != 4:
        raise ValueError(f"{frames.ndim=}, expected 4 (N, C, H, W)")
    content: list[dict[str, Any]] = [{"type": "image", "image": frame} for frame in frames]
    content.append({"type": "text", "text": "output the chain-of-thought reasoning"})
    return [
        {"role": "system", "content": [{"type": "text", "text": "driving assistant"}]},
        {"role": "user", "content": content, **options},
        {"role": "assistant", "content": [{"type": "text", "text": "<|cot_start|>"}]},
    ]


class Processor:
    def __init__(self, tokenizer: object) -> None:
        self.tokenizer = tokenizer

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        tokenize: bool,
        add_generation_prompt: bool,
        continue_final_message: bool,
        return_dict: bool,
        return_tensors: str,
    ) -> dict[str, Any]:
        assert tokenize and return_dict and return_tensors == "pt"
        assert continue_final_message and not add_generation_prompt
        user = messages[1]
        images = [item["image"] for item in user["content"] if item["type"] == "image"]
        tokenized = {
            "input_ids": torch.zeros((1, 8 + len(images)), dtype=torch.int64),
            "pixel_values": torch.stack(images).float() / 255.0,
        }
        tokenized.update(
            {key: value for key, value in user.items() if key not in ("role", "content")}
        )
        return tokenized


def get_processor(tokenizer: object) -> Processor:
    return Processor(tokenizer)


def to_device(data: Any, device: str | torch.device | None = None) -> Any:
    if isinstance(data, torch.Tensor):
        return data.to(device=device)
    if isinstance(data, Mapping):
        return {key: to_device(value, device) for key, value in data.items()}
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return [to_device(value, device) for value in data]
    return data
