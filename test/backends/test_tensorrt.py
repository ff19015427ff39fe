"""The TensorRT backend: its engine cache key, its refusals where TensorRT is missing, and
(where ONNX Runtime has the TensorRT provider and a GPU) parity with the torch backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.backends import BackendOptionError, create_backend
from alpamayo_ros.backends.tensorrt import engine_cache_dir, tensorrt_available
from alpamayo_ros.evaluation.evaluate import vla_input
from alpamayo_ros.pipeline.planning import PlanningStep
from alpamayo_ros.world.dataset import make_sample

MISSING = tensorrt_available()


def test_engines_are_keyed_by_weights_gpu_and_tensorrt_version(tmp_path: Path) -> None:
    first = engine_cache_dir(tmp_path, "ab12", "NVIDIA Jetson AGX Orin", "10.3.0")
    assert first == tmp_path / "ab12" / "tensorrt" / "NVIDIA_Jetson_AGX_Orin-trt10.3.0"
    others = {
        engine_cache_dir(tmp_path, "cd34", "NVIDIA Jetson AGX Orin", "10.3.0"),
        engine_cache_dir(tmp_path, "ab12", "NVIDIA H200", "10.3.0"),
        engine_cache_dir(tmp_path, "ab12", "NVIDIA Jetson AGX Orin", "10.7.0"),
    }
    assert first not in others and len(others) == 3


def test_options_it_cannot_honour_are_refused() -> None:
    with pytest.raises(BackendOptionError, match="TensorRT runs on cuda"):
        create_backend("embedded_vla_tensorrt")  # the nodes' default device: cpu
    with pytest.raises(BackendOptionError, match="precision 'bf16'"):
        create_backend("embedded_vla_tensorrt", device="cuda", precision="bf16")


@pytest.mark.skipif(MISSING is None, reason="TensorRT is available here: the next test runs")
def test_without_tensorrt_it_says_what_is_missing() -> None:
    with pytest.raises(BackendOptionError, match=r"no TensorRT execution provider|tensorrt"):
        create_backend("embedded_vla_tensorrt", device="cuda")


@pytest.mark.skipif(
    MISSING is not None,
    reason=f"no TensorRT on this machine ({MISSING}); runs where onnxruntime-gpu has the "
    "TensorRT provider, e.g. a Jetson with JetPack 6",
)
def test_engines_match_the_torch_backend() -> None:
    torch_backend = create_backend("embedded_vla")
    engines = create_backend("embedded_vla_tensorrt", device="cuda")  # fp32 engines
    for seed in (2000000, 2000001):
        sample = make_sample(seed)
        plans = []
        for backend in (torch_backend, engines):
            output = backend.reason(vla_input(sample, backend.image_size))
            plans.append(PlanningStep(backend, 6).plan(output.planner_input, seed))
        np.testing.assert_allclose(plans[0].rollouts.xyz(), plans[1].rollouts.xyz(), atol=1e-2)
