"""The GPU checks' script, dry-run on this CPU at the double's small size.

`tools/gpu_checks.sh` runs where a GPU machine is lent by chance, for minutes, with no
chance to mend it there: this runs the same script, the same commands and the same code
paths (the benchmark, the sized double written and loaded, the Alpamayo adapter in a model
worker and in-process) with the CPU and the tiny sizes standing in for CUDA and R1's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_checks_run_end_to_end_on_a_cpu(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "OUT": str(tmp_path),
        "PYTHON": sys.executable,
        "WHEELS": "",  # the GPU machine's wheels are for its Python, not this one's
        "DEVICE": "cpu",
        "PRECISIONS": "fp32",
        "R1_PRECISION": "bf16",  # the double's weights and cache as on the GPU
        "PRESET": "tiny",
        "CYCLES": "10",
    }
    run = subprocess.run(
        ["bash", str(ROOT / "tools" / "gpu_checks.sh")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in (tmp_path / "cuda_tests.txt").read_text()
    for name in ("embedded_cpu_fp32.txt", "embedded_cpu_fp32_eager.txt"):
        embedded = (tmp_path / name).read_text()
        assert "backend embedded_vla" in embedded and "plan 6 trajectories" in embedded
    for prefill in ("per_sample", "shared"):
        sized = (tmp_path / f"r1_sized_worker_{prefill}.txt").read_text()
        assert "in bf16" in sized and "identical to in-process in 7 of 7" in sized, sized
        for stage in ("vision", "prefill", "reasoning (6 tokens)", "trajectory (2 flow steps)"):
            assert f"model: {stage}" in sized
        assert "VLA node through the worker (decide)" in sized
