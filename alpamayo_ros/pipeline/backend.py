"""The one interface the pipeline drives a model through.

A backend has two halves, like Alpamayo-R1 itself: `reason` is the vision-language part
(frames + ego history -> Chain-of-Causation reasoning, meta-action, latent conditioning),
run by the inference step; `sample_controls` is the action expert (conditioning -> K control
sequences of (acceleration, curvature) per 0.1 s step), run by the planning step, which
integrates, scores, checks and selects them the same way for every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from alpamayo_ros.core.model_io import ControlSamples, PlannerInput, ReasoningOutput, VlaInput


class Backend(ABC):
    name: str
    version: str
    # (width, height) the backend wants its images in; None takes them as they come.
    image_size: tuple[int, int] | None = None
    # Wall time of the stages of the last `reason` call, for diagnostics and benchmarks.
    stage_ms: dict[str, float]

    @abstractmethod
    def reason(self, inputs: VlaInput) -> ReasoningOutput:
        """Vision-language half: runs once per inference."""

    @abstractmethod
    def sample_controls(
        self, conditioning: PlannerInput, num_samples: int, rng: np.random.Generator
    ) -> ControlSamples:
        """Action-expert half: K control sequences [K, 64], drawn only from `rng`, so the
        same generator state gives the same samples."""
