"""The ONNX Runtime backend against the PyTorch one, on the packaged weights: the same
decisions, meta-actions and reasoning text, and trajectories within a millimetre through the
planning step on the same seed; its exported files are checked before they are run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.backends import (
    BACKENDS,
    BackendOptionError,
    create_backend,
    onnx_runtime,
    weights_for,
)
from alpamayo_ros.backends.onnx_runtime import OnnxVlaBackend
from alpamayo_ros.evaluation.evaluate import vla_input
from alpamayo_ros.model.export import MANIFEST, OnnxFilesError, export_onnx, file_sha256
from alpamayo_ros.model.weights import PACKAGED_WEIGHTS, load_weights, save_weights
from alpamayo_ros.pipeline.backend import Backend
from alpamayo_ros.pipeline.planning import PlanningStep
from alpamayo_ros.world.dataset import make_sample

HELD_OUT_SEEDS = range(2_000_000, 2_000_008)  # never used for training (seeds < 1e6)
MISSING = ("front_tele_30fov", "cross_left_120fov")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("onnx")
    export_onnx(PACKAGED_WEIGHTS, directory)
    return directory


@pytest.fixture(scope="module")
def backends(exported: Path) -> tuple[Backend, Backend]:
    return create_backend("embedded_vla"), OnnxVlaBackend(onnx_dir=str(exported))


@pytest.mark.parametrize("missing", [(), MISSING], ids=["all cameras", "two missing"])
def test_same_decisions_text_and_trajectories_as_pytorch(
    backends: tuple[Backend, Backend], missing: tuple[str, ...]
) -> None:
    torch_backend, onnx_backend = backends
    for seed in HELD_OUT_SEEDS:
        sample = make_sample(seed)
        ours, theirs = (
            backend.reason(vla_input(sample, backend.image_size, missing))
            for backend in (onnx_backend, torch_backend)
        )
        assert ours.decision.text == theirs.decision.text != "", seed
        assert (ours.decision.cause, ours.decision.cause_object_id) == (
            theirs.decision.cause,
            theirs.decision.cause_object_id,
        )
        assert ours.decision.longitudinal_decision == theirs.decision.longitudinal_decision
        assert ours.decision.lateral_decision == theirs.decision.lateral_decision
        np.testing.assert_allclose(
            ours.decision.cause_object_position, theirs.decision.cause_object_position, atol=1e-3
        )
        meta, expected = ours.planner_input.meta_action, theirs.planner_input.meta_action
        assert (meta.longitudinal, meta.lateral) == (expected.longitudinal, expected.lateral)
        np.testing.assert_allclose(
            meta.longitudinal_probabilities, expected.longitudinal_probabilities, atol=1e-5
        )
        np.testing.assert_allclose(
            ours.planner_input.latent, theirs.planner_input.latent, atol=1e-4
        )
        plans = [
            PlanningStep(backend, 6).plan(output.planner_input, t0_ns=seed)
            for backend, output in ((onnx_backend, ours), (torch_backend, theirs))
        ]
        np.testing.assert_allclose(plans[0].rollouts.xyz(), plans[1].rollouts.xyz(), atol=1e-3)
        assert plans[0].selection.index == plans[1].selection.index


def test_same_generator_state_gives_the_same_samples(backends: tuple[Backend, Backend]) -> None:
    _, onnx_backend = backends
    output = onnx_backend.reason(vla_input(make_sample(HELD_OUT_SEEDS[1]), (128, 64)))
    first, again, other = (
        onnx_backend.sample_controls(output.planner_input, 6, np.random.default_rng(seed))
        for seed in (5, 5, 6)
    )
    np.testing.assert_array_equal(first.acceleration, again.acceleration)
    assert not np.array_equal(first.acceleration, other.acceleration)


def test_registered_and_given_the_embedded_weights() -> None:
    assert "embedded_vla_onnx" in BACKENDS.names()
    assert weights_for("embedded_vla_onnx", Path("w.safetensors")) == "w.safetensors"


def test_files_from_other_weights_are_refused(exported: Path, tmp_path: Path) -> None:
    model, _ = load_weights(PACKAGED_WEIGHTS)
    other = tmp_path / "other.safetensors"
    save_weights(model, other, "other", {})
    with pytest.raises(OnnxFilesError, match="stale files"):
        OnnxVlaBackend(str(other), onnx_dir=str(exported))


def test_a_missing_or_damaged_file_is_named(exported: Path, tmp_path: Path) -> None:
    copy = tmp_path / "onnx"
    shutil.copytree(exported, copy)
    (copy / "decoder_step.onnx").unlink()
    with pytest.raises(OnnxFilesError, match=r"decoder_step\.onnx: missing ONNX file"):
        OnnxVlaBackend(onnx_dir=str(copy))
    # Damaged, with the manifest made to agree: ONNX Runtime itself refuses it.
    (copy / "decoder_step.onnx").write_bytes(b"not a model")
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["parts"]["decoder_step"]["sha256"] = file_sha256(copy / "decoder_step.onnx")
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(OnnxFilesError, match=r"decoder_step\.onnx: ONNX Runtime cannot load it"):
        OnnxVlaBackend(onnx_dir=str(copy))


def test_exports_into_the_cache_once(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without files given the backend exports into the cache folder of the weights' hash
    (here: a copy of the module's export stands for the slow export), then reuses it;
    a damaged cached export is made again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    exports = []

    def export(weights: Path, directory: Path) -> None:
        exports.append(weights)
        shutil.copytree(exported, directory, dirs_exist_ok=True)

    monkeypatch.setattr(onnx_runtime, "export_onnx", export)
    cached = tmp_path / "alpamayo_ros" / "onnx" / file_sha256(PACKAGED_WEIGHTS)
    OnnxVlaBackend()
    assert exports == [PACKAGED_WEIGHTS] and (cached / MANIFEST).is_file()
    OnnxVlaBackend()
    assert len(exports) == 1
    (cached / "scene.onnx").write_bytes(b"damaged")
    backend = OnnxVlaBackend()
    assert len(exports) == 2
    assert backend.reason(vla_input(make_sample(HELD_OUT_SEEDS[0]), (128, 64))).decision.text
    assert sorted(path.name for path in cached.parent.iterdir()) == [cached.name]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"device": "cuda:0"}, "no CUDA execution provider"),
        ({"device": "tpu"}, "device 'tpu' is not cpu, cuda or cuda:N"),
        ({"precision": "bf16"}, "precision 'bf16': the ONNX export is fp32"),
    ],
)
def test_options_it_cannot_honour_are_refused(
    exported: Path, options: dict[str, str], message: str
) -> None:
    has_cuda = onnx_runtime.CUDA_PROVIDER in onnx_runtime.onnxruntime.get_available_providers()
    if has_cuda and options.get("device") == "cuda:0":
        pytest.skip("this onnxruntime has a CUDA provider")
    with pytest.raises(BackendOptionError, match=message):
        OnnxVlaBackend(onnx_dir=str(exported), **options)


@pytest.mark.skipif(
    onnx_runtime.CUDA_PROVIDER not in onnx_runtime.onnxruntime.get_available_providers(),
    reason="this onnxruntime has no CUDA execution provider",
)
def test_on_the_cuda_provider_as_on_the_cpu(
    exported: Path, backends: tuple[Backend, Backend]
) -> None:
    _, on_cpu = backends
    on_cuda = OnnxVlaBackend(onnx_dir=str(exported), device="cuda")
    for seed in HELD_OUT_SEEDS[:3]:
        sample = make_sample(seed)
        ours, theirs = (b.reason(vla_input(sample, (128, 64))) for b in (on_cuda, on_cpu))
        assert ours.decision.text == theirs.decision.text
        np.testing.assert_allclose(
            ours.planner_input.latent, theirs.planner_input.latent, atol=1e-3
        )
