"""The one interface the pipeline drives a model through.

A backend has two halves, like Alpamayo-R1 itself: the vision-language part (frames + ego
history -> Chain-of-Causation reasoning, meta-action, latent conditioning), run by the
inference step, and `sample_controls`, the action expert (conditioning -> K control
sequences of (acceleration, curvature) per 0.1 s step), run by the planning step, which
integrates, scores, checks and selects them the same way for every backend.

The vision-language half is `decide`: everything the planner needs. A backend whose action
expert does not read the reasoning text (the embedded model conditions on its decision
heads) may write the text afterwards (`Decided.write_text`), so the planner starts while the
text is still being written; one whose trajectory follows from the text (Alpamayo-R1 attends
to its reasoning tokens) returns the text with the decision.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from alpamayo_ros.core.model_io import ControlSamples, PlannerInput, ReasoningOutput, VlaInput


@dataclass(frozen=True)
class Decided:
    """A decision and the planner's input; the reasoning text is empty while `write_text`
    is pending."""

    output: ReasoningOutput
    write_text: Callable[[], str] | None = None

    def explained(self) -> ReasoningOutput:
        """The output with its reasoning text (written now if it was pending)."""
        if self.write_text is None:
            return self.output
        decision = replace(self.output.decision, text=self.write_text())
        return replace(self.output, decision=decision)


class Backend(ABC):
    name: str
    version: str
    # (width, height) the backend wants its images in; None takes them as they come.
    image_size: tuple[int, int] | None = None
    # Whether `decide` takes a VlaInput without some cameras (one that failed mid-drive, or
    # a rig with fewer); otherwise the inference step waits for every camera.
    accepts_missing_cameras: bool = False
    # Wall time of the stages of the last `decide` call, for diagnostics and benchmarks.
    stage_ms: dict[str, float]

    @abstractmethod
    def decide(self, inputs: VlaInput) -> Decided:
        """Vision-language half up to what the planner needs: runs once per inference."""

    def reason(self, inputs: VlaInput) -> ReasoningOutput:
        """The whole vision-language half, reasoning text included."""
        return self.decide(inputs).explained()

    @abstractmethod
    def sample_controls(
        self,
        conditioning: PlannerInput,
        num_samples: int,
        rng: np.random.Generator,
        noise_scale: float = 1.0,
    ) -> ControlSamples:
        """Action-expert half: K control sequences [K, 64], drawn only from `rng`, so the
        same generator state gives the same samples. A model that samples from noise here
        starts from `noise_scale` times it (a sampling temperature: below 1 the samples
        gather nearer the model's most likely plan); one whose samples are fixed by then
        (drawn at `decide`, or none drawn) has nothing to scale."""
