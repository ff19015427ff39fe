"""Model backends behind the VLA and planner nodes, selected by name."""

from __future__ import annotations

import argparse
import inspect
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpamayo_ros.configuration import ConfigurationError, Registry

if TYPE_CHECKING:
    from alpamayo_ros.pipeline.backend import Backend

BACKENDS: Registry[Backend] = Registry(
    "backend",
    {
        "alpamayo_r1": "alpamayo_ros.backends.alpamayo:AlpamayoBackend",
        "alpamayo1_5": "alpamayo_ros.backends.alpamayo:Alpamayo15Backend",
        "constant_velocity": "alpamayo_ros.backends.constant_velocity:ConstantVelocityBackend",
        "embedded_vla": "alpamayo_ros.backends.embedded:EmbeddedVlaBackend",
        "embedded_vla_onnx": "alpamayo_ros.backends.onnx_runtime:OnnxVlaBackend",
        "embedded_vla_tensorrt": "alpamayo_ros.backends.tensorrt:TensorRtVlaBackend",
        "worker": "alpamayo_ros.backends.worker:WorkerBackend",
    },
)


def available_backends() -> tuple[str, ...]:
    return BACKENDS.names()


# The backends that run the embedded VLA's weights (in PyTorch, ONNX Runtime, TensorRT).
EMBEDDED_VLA_BACKENDS = ("embedded_vla", "embedded_vla_onnx", "embedded_vla_tensorrt")
# Options a backend may have besides its weights and threads, at the values every backend
# runs with unless told otherwise: on the CPU, in 32-bit floats (and on a CUDA device, as
# CUDA graphs where the backend can).
DEFAULT_OPTIONS: dict[str, str | bool] = {"device": "cpu", "precision": "fp32", "cuda_graphs": True}
# Option values a backend without the option honours as it is (it runs no CUDA graphs).
HONOURED_WITHOUT: dict[str, str | bool] = {"cuda_graphs": False}
PRECISIONS = ("fp32", "fp16", "bf16")
_DEVICE = re.compile(r"(cpu|cuda)(?::(\d+))?")


def add_cuda_graphs_option(parser: argparse.ArgumentParser) -> None:
    """--cuda-graphs / --no-cuda-graphs, as the nodes' cuda_graphs parameter."""
    parser.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="on a CUDA device, run embedded_vla's parts as CUDA graphs (default: on)",
    )


class BackendOptionError(ConfigurationError):
    """A backend option (device, precision) the backend or this machine cannot honour;
    the message names the option."""


# The backends whose weights a command's --weights gives: the embedded VLA's runtimes and
# the Alpamayo releases (a checkpoint folder).
WEIGHTED_BACKENDS = (*EMBEDDED_VLA_BACKENDS, "alpamayo_r1", "alpamayo1_5")


def weights_for(backend: str, weights: Path | None) -> str:
    """A weights file or checkpoint (a command's --weights) for a backend that takes one;
    any other backend keeps its own ("": its packaged weights, or none)."""
    return str(weights) if weights is not None and backend in WEIGHTED_BACKENDS else ""


def device_problem(device: str) -> str | None:
    """Why `device` is not a device name ("cpu", "cuda" for CUDA device 0, "cuda:N"), or
    None; whether the machine has it, the backend checks."""
    match = _DEVICE.fullmatch(device)
    if match is None or (match.group(1) == "cpu" and match.group(2) is not None):
        return f"device {device!r} is not cpu, cuda or cuda:N"
    return None


def parse_device(device: str) -> tuple[str, int]:
    """("cpu", 0) or ("cuda", N) for a device option; BackendOptionError if it is none."""
    problem = device_problem(device)
    if problem:
        raise BackendOptionError(problem)
    kind, _, index = device.partition(":")
    return kind, int(index or 0)


def create_backend(
    name: str, weights_file: str = "", cpu_threads: int = 0, **options: str | bool
) -> Backend:
    """`weights_file` empty means the backend's packaged weights, if it has any;
    `cpu_threads` 0 leaves the math library's thread count as it is. `options` (device,
    precision, cuda_graphs) reach the backend only when they differ from DEFAULT_OPTIONS,
    so a backend without them runs with the nodes' defaults, and refuses others but for
    the values it honours by not having the option (HONOURED_WITHOUT)."""
    given = {key: value for key, value in options.items() if DEFAULT_OPTIONS.get(key) != value}
    factory = BACKENDS.factory(name)
    accepted = inspect.signature(factory).parameters
    for option, value in list(given.items()):
        if option in accepted:
            continue
        if HONOURED_WITHOUT.get(option) == value:
            del given[option]
            continue
        raise BackendOptionError(
            f"{option} {value!r}: backend {name} has no {option} option "
            f"(leave it at {DEFAULT_OPTIONS.get(option)!r})"
        )
    return factory(weights_file=weights_file, cpu_threads=cpu_threads, **given)


WORKER = "worker"  # the backend that forwards to a model worker process


def backend_from_parameters(params: Mapping[str, Any]) -> Backend:
    """A node's backend from its parameters (parameters.py): a model with its options, or
    the connection to a model worker (backends.worker), which runs the model elsewhere;
    only a node with `worker_command` starts the worker."""
    if params["backend"] == WORKER:
        for option, default in DEFAULT_OPTIONS.items():
            value = params[option]
            if value != default:
                flag = option.replace("_", "-")
                given = f"--no-{flag}" if value is False else f"--{flag} {value}"
                raise BackendOptionError(
                    f"{option} {value!r}: with backend worker the worker runs the model; "
                    f"give it there (alpamayo-ros-model-worker {given})"
                )
        return BACKENDS.create(
            WORKER,
            weights_file=params["weights_file"],
            address=params["worker_address"],
            timeout_s=params["worker_timeout_s"],
            startup_timeout_s=params["worker_startup_timeout_s"],
            command=params.get("worker_command", ""),
        )
    return create_backend(
        params["backend"],
        params["weights_file"],
        params["cpu_threads"],
        device=params["device"],
        precision=params["precision"],
        cuda_graphs=params["cuda_graphs"],
    )
