"""The embedded VLA's device and precision options: what this machine cannot run is a
configuration error naming the option, bf16 runs on a CPU, and on a CUDA device (tested
where there is one) the model decides and samples as on the CPU."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from alpamayo_ros.backends import BackendOptionError, create_backend, parse_device
from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.evaluation.evaluate import vla_input
from alpamayo_ros.pipeline.backend import Backend
from alpamayo_ros.world.dataset import make_sample

SEEDS = range(2_000_000, 2_000_004)


def test_device_names() -> None:
    assert parse_device("cpu") == ("cpu", 0)
    assert parse_device("cuda") == ("cuda", 0)
    assert parse_device("cuda:1") == ("cuda", 1)
    for name in ("gpu", "cuda:", "cuda:x", "cpu:0", "CUDA"):
        with pytest.raises(BackendOptionError, match="is not cpu, cuda or cuda:N"):
            parse_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_device_this_machine_lacks_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="device 'cuda:0': no CUDA device is usable"):
        create_backend("embedded_vla", device="cuda:0")


def test_fp16_on_a_cpu_is_refused() -> None:
    with pytest.raises(BackendOptionError, match="precision 'fp16' is for CUDA devices"):
        create_backend("embedded_vla", precision="fp16")
    with pytest.raises(BackendOptionError, match="precision 'fp8' is not one of"):
        create_backend("embedded_vla", precision="fp8")


def test_options_at_their_defaults_reach_no_backend() -> None:
    """The nodes always pass device and precision; a backend without them still starts."""
    backend = create_backend("constant_velocity", device="cpu", precision="fp32")
    assert backend.name == "constant_velocity"
    with pytest.raises(BackendOptionError, match="backend constant_velocity has no device"):
        create_backend("constant_velocity", device="cuda")
    # Without CUDA graphs is how a backend without the option runs anyway.
    assert create_backend("constant_velocity", cuda_graphs=False).name == "constant_velocity"


def agreement(backend: Backend, reference: Backend, atol: float) -> float:
    """How many of SEEDS get the reference's meta-action and text; the latents and the
    samples on one generator state must be within `atol`."""
    same = 0
    for seed in SEEDS:
        ours, theirs = (
            b.reason(vla_input(make_sample(seed), b.image_size)) for b in (backend, reference)
        )
        np.testing.assert_allclose(
            ours.planner_input.latent, theirs.planner_input.latent, atol=atol
        )
        samples = [
            b.sample_controls(output.planner_input, 6, np.random.default_rng(seed))
            for b, output in ((backend, ours), (reference, theirs))
        ]
        np.testing.assert_allclose(samples[0].acceleration, samples[1].acceleration, atol=atol)
        np.testing.assert_allclose(samples[0].curvature, samples[1].curvature, atol=atol)
        same += (ours.planner_input.meta_action.longitudinal, ours.decision.text) == (
            theirs.planner_input.meta_action.longitudinal,
            theirs.decision.text,
        )
    return same / len(SEEDS)


@pytest.fixture(scope="module")
def reference() -> Backend:
    return create_backend("embedded_vla")


def test_bf16_on_the_cpu_stays_close_to_fp32(reference: Backend) -> None:
    backend = create_backend("embedded_vla", precision="bf16")
    assert agreement(backend, reference, atol=0.2) >= 0.75


@pytest.fixture
def ieee_fp32() -> Iterator[None]:
    """fp32 as the CPU computes it: cuDNN runs fp32 convolutions (the image encoder's) in
    TF32 by default, 10 bits of mantissa, which moves the latents by up to 3e-3."""
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        yield


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize(
    ("precision", "atol", "agree"), [("fp32", 1e-3, 1.0), ("bf16", 0.2, 0.75), ("fp16", 0.05, 0.75)]
)
def test_on_a_cuda_device_as_on_the_cpu(
    reference: Backend, precision: str, atol: float, agree: float, ieee_fp32: None
) -> None:
    backend = create_backend("embedded_vla", device="cuda", precision=precision)
    assert agreement(backend, reference, atol) >= agree
