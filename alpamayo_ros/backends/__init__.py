"""Model backends behind the VLA and planner nodes, selected by name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alpamayo_ros.configuration import Registry

if TYPE_CHECKING:
    from alpamayo_ros.pipeline.backend import Backend

BACKENDS: Registry[Backend] = Registry(
    "backend",
    {
        "constant_velocity": "alpamayo_ros.backends.constant_velocity:ConstantVelocityBackend",
        "embedded_vla": "alpamayo_ros.backends.embedded:EmbeddedVlaBackend",
    },
)


def available_backends() -> tuple[str, ...]:
    return BACKENDS.names()


def weights_for(backend: str, weights: Path | None) -> str:
    """A weights file (a command's --weights) for the backend it belongs to: the embedded
    VLA; any other backend keeps its own ("": its packaged weights, or none)."""
    return str(weights) if weights is not None and backend == "embedded_vla" else ""


def create_backend(name: str, weights_file: str = "", cpu_threads: int = 0) -> Backend:
    """`weights_file` empty means the backend's packaged weights, if it has any;
    `cpu_threads` 0 leaves the math library's thread count as it is."""
    return BACKENDS.create(name, weights_file=weights_file, cpu_threads=cpu_threads)
