"""The embedded VLA on TensorRT engines, for Jetson (JetPack 6) and x86 NVIDIA GPUs.

The engines are built from the same ONNX files as the ONNX Runtime backend (model.export:
the scene, one decoder step with its cache, one flow step) by ONNX Runtime's TensorRT
execution provider, and cached on disk keyed by what makes an engine valid: the model's
weights (their SHA-256), the GPU and the TensorRT version. The first start on a machine
builds them (minutes on a Jetson); later starts load them. Parts TensorRT cannot take run
on the CUDA provider, then the CPU. Everything else (decoding loop, flow integration,
noise, decisions) is the embedded backends' one implementation (backends.embedded).

It runs where ONNX Runtime has its TensorRT provider (onnxruntime-gpu built with TensorRT,
as NVIDIA's Jetson wheels are) and `tensorrt` imports; elsewhere it refuses to start with
what is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import onnxruntime

from alpamayo_ros.backends import BackendOptionError, parse_device
from alpamayo_ros.backends.onnx_runtime import CUDA_PROVIDER, OnnxVlaBackend, cache_root

TENSORRT_PROVIDER = "TensorrtExecutionProvider"
PRECISIONS = ("fp32", "fp16")  # TensorRT builds half-precision engines from the fp32 graphs


def engine_cache_dir(root: Path, weights_sha256: str, gpu: str, tensorrt_version: str) -> Path:
    """Where the engines of these weights on this GPU and TensorRT live: an engine is valid
    for nothing else."""
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", gpu).strip("_") or "gpu"
    return root / weights_sha256 / "tensorrt" / f"{slug}-trt{tensorrt_version}"


def tensorrt_available() -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    available = onnxruntime.get_available_providers()
    if TENSORRT_PROVIDER not in available:
        return (
            f"this onnxruntime {onnxruntime.__version__} has no TensorRT execution provider "
            f"(it has {', '.join(available)}): install onnxruntime-gpu built with TensorRT"
        )
    try:
        import tensorrt  # noqa: F401 - the provider loads its libraries
    except ImportError as error:
        return f"tensorrt does not import ({error})"
    return None


class TensorRtVlaBackend(OnnxVlaBackend):
    """Options as every backend's: `device` must be cuda (or cuda:N); `precision` fp16
    builds half-precision engines."""

    name = "embedded_vla_tensorrt"

    def _execution_providers(
        self, device: str, precision: str, weights_sha256: str
    ) -> list[str | tuple[str, dict[str, str]]]:
        kind, index = parse_device(device)
        if kind != "cuda":
            raise BackendOptionError(f"device {device!r}: TensorRT runs on cuda or cuda:N")
        if precision not in PRECISIONS:
            raise BackendOptionError(
                f"precision {precision!r}: TensorRT engines here are {' or '.join(PRECISIONS)}"
            )
        problem = tensorrt_available()
        if problem:
            raise BackendOptionError(f"backend {self.name}: {problem}")
        import tensorrt
        import torch

        cache = engine_cache_dir(
            cache_root(), weights_sha256, torch.cuda.get_device_name(index), tensorrt.__version__
        )
        cache.mkdir(parents=True, exist_ok=True)
        options = {
            "device_id": str(index),
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": str(cache),
            "trt_fp16_enable": str(precision == "fp16"),
        }
        return [
            (TENSORRT_PROVIDER, options),
            (CUDA_PROVIDER, {"device_id": str(index)}),
            "CPUExecutionProvider",
        ]
