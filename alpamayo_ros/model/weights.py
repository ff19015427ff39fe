"""Weight files of the embedded VLA: safetensors with the model config and versions inside.

Loading checks everything it can before building the network and says exactly what is
wrong, because a node that silently runs a half-loaded model is worse than one that
refuses to start.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.network import EmbeddedVla

# Bumped when the file layout or the network's parameter names/meaning change.
FORMAT_VERSION = "1"
PACKAGED_WEIGHTS = Path(__file__).resolve().parent / "weights" / "embedded_vla.safetensors"


class WeightsError(ConfigurationError):
    """A weights file that cannot be loaded into the embedded VLA."""


def save_weights(
    model: EmbeddedVla, path: Path, model_version: str, training: dict[str, Any]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(
        tensors,
        str(path),
        metadata={
            "format_version": FORMAT_VERSION,
            "model_version": model_version,
            "config": model.config.to_json(),
            "training": json.dumps(training, sort_keys=True),
        },
    )


def read_metadata(path: Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"weights file not found: {path} (train one with `alpamayo-ros train`, "
            "or set the weights_file parameter)"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise WeightsError(f"{path}: not a readable safetensors file ({error})") from None
    for key in ("format_version", "model_version", "config"):
        if key not in metadata:
            raise WeightsError(f"{path}: metadata has no {key!r}; not an embedded VLA file")
    if metadata["format_version"] != FORMAT_VERSION:
        raise WeightsError(
            f"{path}: weights format version {metadata['format_version']}, this code reads "
            f"version {FORMAT_VERSION}; retrain or use a matching release"
        )
    return metadata


def load_weights(path: Path = PACKAGED_WEIGHTS) -> tuple[EmbeddedVla, dict[str, str]]:
    """The model in eval mode and the file's metadata."""
    model, metadata, _ = _load(path, allow_missing=False)
    return model, metadata


def load_weights_to_continue(path: Path, **changes: Any) -> tuple[EmbeddedVla, list[str]]:
    """Weights to continue training from, and the names of the tensors the file lacks.

    `changes` to the file's ModelConfig (a part switched on, a way of reading inputs)
    apply before the network is built. Parts the file lacks (added to the network after it
    was written, or by `changes`) keep their fresh initialisation; anything else that does
    not match is refused as in load_weights.
    """
    model, _, fresh = _load(path, allow_missing=True, changes=changes)
    return model, fresh


def _load(
    path: Path, allow_missing: bool, changes: dict[str, Any] | None = None
) -> tuple[EmbeddedVla, dict[str, str], list[str]]:
    metadata = read_metadata(path)
    try:
        config = replace(ModelConfig.from_json(metadata["config"]), **(changes or {}))
        model = EmbeddedVla(config)
    except (ValueError, TypeError) as error:
        raise WeightsError(f"{path}: invalid model config: {error}") from None
    expected = model.state_dict()
    with safe_open(str(path), framework="pt") as handle:
        names = set(handle.keys())
        missing = sorted(set(expected) - names)
        unexpected = sorted(names - set(expected))
        if (missing and not allow_missing) or unexpected:
            raise WeightsError(
                f"{path}: tensors do not match the model config: "
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
            )
        state = {name: expected[name] for name in missing}
        for name, reference in expected.items():
            if name in state:
                continue
            tensor = handle.get_tensor(name)
            if tensor.shape != reference.shape:
                raise WeightsError(
                    f"{path}: tensor {name!r} has shape {tuple(tensor.shape)}, "
                    f"the config needs {tuple(reference.shape)}"
                )
            if not torch.isfinite(tensor.float()).all():
                raise WeightsError(f"{path}: tensor {name!r} has non-finite values")
            state[name] = tensor
    model.load_state_dict(state)
    return model.eval(), metadata, missing
