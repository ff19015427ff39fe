"""Training of the embedded VLA on generated driving scenarios, on a CPU in bounded time.

Deterministic for a seed: the data are a pure function of the sample seeds, and the
network's initialisation, batch order and flow noise come from seeded generators.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.model.config import ModelConfig
from alpamayo_ros.model.network import CAUSE_POSITION_SCALE, HEAD_NAMES, EmbeddedVla
from alpamayo_ros.model.tokenizer import Tokenizer
from alpamayo_ros.model.weights import load_weights_to_continue, save_weights
from alpamayo_ros.world.dataset import NO_DRIFT, DriftRates, Sample, make_sample
from alpamayo_ros.world.reasoning_text import vocabulary
from alpamayo_ros.world.scenarios import SCENARIO_TYPES


@dataclass(frozen=True)
class TrainingConfig:
    samples: int = 8000
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    first_sample_seed: int = 0  # training scenarios are seeds first .. first+samples-1
    workers: int = 2
    init_weights: Path | None = None  # continue from these weights instead of a fresh network
    # Relative frequency per scenario type, e.g. {"cut_in": 3}: unnamed types count 1.
    # Empty: each seed draws its own type, as at evaluation.
    scenario_weights: tuple[tuple[str, int], ...] = ()
    # Probability that a batch trains with one or more cameras missing.
    camera_dropout: float = 0.0
    # How often a sample's car drifts off its path before t0 (and how often it also ends up
    # too slow or too fast), the expert's recovery as the label: states a policy that errs
    # visits in closed loop (world.dataset.drift_for). DriftRates checks its own bounds.
    drift: DriftRates = NO_DRIFT
    # Fraction of samples whose t0 is anywhere in the span a closed-loop drive covers, not
    # near the scenario's event (world.dataset.t0_anywhere, which checks its bounds).
    any_time: float = 0.0
    # DAgger: scenarios the initial weights drive closed loop (the seeds after the
    # open-loop ones); every `closed_loop_label_every`-th state they visit, labelled by the
    # expert planning from it, joins the data.
    closed_loop_scenarios: int = 0
    closed_loop_label_every: int = 2
    # Weight of an auxiliary loss: a linear probe on the scene latent the action expert is
    # conditioned on predicts where the car is on its road (world.dataset.road_pose). It
    # makes the encoder see a lateral offset or heading error, which steering back after a
    # closed-loop error needs. The probe exists only while training (0: none).
    road_pose_weight: float = 0.0
    # The network reads the ego history as a speed profile only (ModelConfig.lateral_history
    # False), kept in the weights so inference reads it the same way.
    speed_only_history: bool = False
    # > 0: the pooled scene also reads each camera's token grid by position
    # (ModelConfig.scene_readout), added to continued weights that lack it; 0: as the
    # continued weights are (a fresh network has none).
    scene_readout: int = 0


# The road pose's units in the probe's loss: about what a drifting car strays (m, rad).
ROAD_POSE_SCALE = (1.0, 0.1)


# The states a policy visits driving closed loop, labelled by the expert: (weights file,
# scenario seeds, label every n-th plan, worker processes, progress) -> samples. The
# model layer cannot drive the pipeline, so the caller passes it in
# (evaluation.rollout.visited_states).
VisitStates = Callable[[Path, range, int, int, Callable[[str], None]], Sequence[Sample]]


class TrainingError(ConfigurationError):
    """Training settings that cannot work; the CLI prints the message and exits 2."""


def check_config(config: TrainingConfig, visit: VisitStates | None) -> None:
    counts = {
        "samples": config.samples,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "workers": config.workers,
    }
    for name, count in counts.items():
        if count < 1:
            raise TrainingError(f"{name} must be >= 1, got {count}")
    if not config.learning_rate > 0.0:
        raise TrainingError(f"learning_rate must be > 0, got {config.learning_rate}")
    if not config.closed_loop_scenarios:
        # Checked before minutes of generating data, not after (closed-loop states add
        # samples that cannot be counted before they are driven: checked again then).
        _check_one_batch(config.samples, config.batch_size)
    if not 0.0 <= config.camera_dropout <= 1.0:
        raise TrainingError(
            f"camera_dropout must be a probability in [0, 1], got {config.camera_dropout}"
        )
    if config.scene_readout < 0:
        raise TrainingError(f"scene_readout must be >= 0, got {config.scene_readout}")
    if not config.road_pose_weight >= 0.0:
        raise TrainingError(f"road_pose_weight must be >= 0, got {config.road_pose_weight}")
    if config.closed_loop_scenarios < 0 or config.closed_loop_label_every < 1:
        raise TrainingError(
            "closed_loop_scenarios must be >= 0 and closed_loop_label_every >= 1, got "
            f"{config.closed_loop_scenarios} and {config.closed_loop_label_every}"
        )
    if config.closed_loop_scenarios and config.init_weights is None:
        raise TrainingError("closed-loop states need initial weights: the policy that drives")
    if config.closed_loop_scenarios and visit is None:
        raise TrainingError("closed-loop states need a closed loop to drive in")


def _check_one_batch(samples: int, batch_size: int) -> None:
    """Every training step takes a full batch: fewer samples than one would train nothing."""
    if samples < batch_size:
        raise TrainingError(
            f"{samples} samples make no batch of {batch_size}: raise samples or lower batch_size"
        )


def scenario_schedule(weights: tuple[tuple[str, int], ...]) -> tuple[str | None, ...]:
    """Scenario type per seed position, cycled: seed s gets schedule[s % len(schedule)].

    Oversampling the types a model gets wrong keeps the data a pure function of the seed.
    """
    if not weights:
        return (None,)
    counts = dict.fromkeys(SCENARIO_TYPES, 1)
    for name, weight in weights:
        if name not in counts:
            raise TrainingError(f"unknown scenario type {name!r}; known: {SCENARIO_TYPES}")
        if weight < 0:
            raise TrainingError(f"negative weight {weight} for {name!r}")
        counts[name] = weight
    schedule = tuple(name for name, count in counts.items() for _ in range(count))
    if not schedule:
        raise TrainingError("every scenario type has weight 0")
    return schedule


@dataclass
class Dataset:
    """Samples as stacked arrays, ready to batch."""

    images: np.ndarray  # uint8 [N, C, F, H, W, 3]
    ego_xyz: np.ndarray  # float32 [N, 16, 3]
    ego_rotations: np.ndarray  # float32 [N, 16, 3, 3]
    controls: np.ndarray  # float32 [N, 64, 2]
    text: np.ndarray  # int64 [N, L]
    labels: dict[str, np.ndarray]  # int64 [N] per classification head
    cause_position: np.ndarray  # float32 [N, 3] in the t0 frame; zeros where no object
    cause_known: np.ndarray  # bool [N]: the decision refers to an object
    road_pose: np.ndarray  # float32 [N, 2] in ROAD_POSE_SCALE units
    scenario_types: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: np.ndarray) -> dict[str, Tensor]:
        return {
            "images": torch.from_numpy(self.images[indices]),
            "ego_xyz": torch.from_numpy(self.ego_xyz[indices]),
            "ego_rotations": torch.from_numpy(self.ego_rotations[indices]),
            "controls": torch.from_numpy(self.controls[indices]),
            "text": torch.from_numpy(self.text[indices]),
            "cause_position": torch.from_numpy(self.cause_position[indices]),
            "cause_known": torch.from_numpy(self.cause_known[indices]),
            "road_pose": torch.from_numpy(self.road_pose[indices]),
            **{name: torch.from_numpy(values[indices]) for name, values in self.labels.items()},
        }


def _sample_for(
    arguments: tuple[int, str | None, tuple[int, int], DriftRates, float],
) -> Sample:
    seed, scenario_type, image_size, drift, any_time = arguments
    return make_sample(seed, scenario_type, image_size=image_size, drift=drift, any_time=any_time)


def build_dataset(
    seeds: range,
    config: ModelConfig,
    workers: int,
    progress: Callable[[str], None],
    schedule: tuple[str | None, ...] = (None,),
    drift: DriftRates = NO_DRIFT,
    visited: Sequence[Sample] = (),
    any_time: float = 0.0,
) -> Dataset:
    """The samples of `seeds`, generated in `workers` processes, then the `visited` ones."""
    tokenizer = Tokenizer(config.vocabulary)
    n = len(seeds) + len(visited)
    size = (config.image_width, config.image_height)
    images = np.empty(
        (n, config.cameras, config.frames, config.image_height, config.image_width, 3), np.uint8
    )
    ego_xyz = np.empty((n, config.history_poses, 3), np.float32)
    ego_rotations = np.empty((n, config.history_poses, 3, 3), np.float32)
    controls = np.empty((n, config.horizon, 2), np.float32)
    text = np.empty((n, config.max_text_tokens), np.int64)
    labels = {name: np.empty(n, np.int64) for name in HEAD_NAMES}
    cause_position = np.zeros((n, 3), np.float32)
    cause_known = np.zeros(n, bool)
    road_pose = np.empty((n, 2), np.float32)
    scenario_types = []
    started = time.perf_counter()
    # Spawned, not forked: a fork copies whatever lock a torch or I/O thread of this
    # process holds at that instant, and a worker that inherits a held one never exits
    # (seen: training hung after its data was generated, the pool waiting on a worker).
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        jobs = ((seed, schedule[seed % len(schedule)], size, drift, any_time) for seed in seeds)
        samples = itertools.chain(pool.imap(_sample_for, jobs, chunksize=16), visited)
        for i, sample in enumerate(samples):
            images[i] = sample.images
            ego_xyz[i] = sample.ego_xyz
            ego_rotations[i] = sample.ego_rotations
            controls[i, :, 0] = sample.future_acceleration
            controls[i, :, 1] = sample.future_curvature
            text[i] = tokenizer.encode(sample.decision.text, config.max_text_tokens)
            labels["longitudinal"][i] = sample.meta_action[0]
            labels["lateral"][i] = sample.meta_action[1]
            labels["longitudinal_decision"][i] = sample.decision.longitudinal_decision
            labels["lateral_decision"][i] = sample.decision.lateral_decision
            labels["cause"][i] = sample.decision.cause
            road_pose[i] = sample.road_pose / ROAD_POSE_SCALE
            scenario_types.append(sample.scenario_type)
            if sample.decision.cause_object_id:
                cause_known[i] = True
                cause_position[i] = sample.decision.cause_object_position
            if (i + 1) % 1000 == 0:
                progress(f"generated {i + 1}/{n} samples ({time.perf_counter() - started:.0f} s)")
    return Dataset(
        images,
        ego_xyz,
        ego_rotations,
        controls,
        text,
        labels,
        cause_position,
        cause_known,
        road_pose,
        scenario_types,
    )


def dropped_cameras(cameras: int, probability: float, rng: np.random.Generator) -> Tensor | None:
    """The cameras a batch keeps (slot indices, in order) when it drops some, else None.

    With `probability` a batch loses one camera, or now and then more (never all), so the
    model learns to drive on the views that still arrive when a camera fails."""
    if cameras < 2 or rng.random() >= probability:
        return None
    lost = min(int(rng.geometric(0.6)), cameras - 1)  # 1 mostly, 2 or 3 less often
    kept = np.sort(rng.choice(cameras, size=cameras - lost, replace=False))
    return torch.from_numpy(kept)


def losses(
    model: EmbeddedVla,
    batch: dict[str, Tensor],
    cameras: Tensor | None = None,
    road_pose_probe: RoadPoseProbe | None = None,
) -> dict[str, Tensor]:
    """Training losses; `cameras`: the slots the batch keeps (default all);
    `road_pose_probe`: the auxiliary road-pose loss's probe, weighted (none by default)."""
    images = batch["images"] if cameras is None else batch["images"][:, cameras]
    encoding = model.encode(images, batch["ego_xyz"], batch["ego_rotations"], cameras)
    heads = model.classify(encoding)
    text = batch["text"]
    logits = model.text_logits(encoding, text[:, :-1])
    result = {
        name: functional.cross_entropy(getattr(heads, name), batch[name]) for name in HEAD_NAMES
    }
    result["text"] = functional.cross_entropy(
        logits.flatten(0, 1), text[:, 1:].flatten(), ignore_index=model.tokenizer.pad_id
    )
    known = batch["cause_known"]
    located = model.locate_cause(encoding)[known] / CAUSE_POSITION_SCALE
    target = batch["cause_position"][known] / CAUSE_POSITION_SCALE
    # A batch without any object cause still contributes a (zero) term, so logs line up.
    result["cause_position"] = (
        functional.smooth_l1_loss(located, target) if bool(known.any()) else located.sum()
    )
    # The expert learns from the ground-truth meta-action (teacher forcing), so it follows
    # whatever behaviour the reasoning half decides at inference.
    truth = torch.cat(
        [
            functional.one_hot(batch["longitudinal"], heads.longitudinal.shape[-1]),
            functional.one_hot(batch["lateral"], heads.lateral.shape[-1]),
        ],
        dim=-1,
    ).float()
    condition = torch.cat([encoding.pooled, truth], dim=-1)
    result["flow"] = model.flow_matching_loss(condition, batch["controls"])
    if road_pose_probe is not None:
        result["road_pose"] = road_pose_probe.loss_weight * functional.smooth_l1_loss(
            road_pose_probe(encoding.pooled), batch["road_pose"]
        )
    return result


class RoadPoseProbe(nn.Module):
    """The auxiliary loss's probe: linear, so what it reads must be plainly in the latent."""

    def __init__(self, width: int, loss_weight: float) -> None:
        super().__init__()
        self.linear = nn.Linear(width, len(ROAD_POSE_SCALE))
        self.loss_weight = loss_weight

    def forward(self, pooled: Tensor) -> Tensor:
        return self.linear(pooled)


def train(
    output: Path,
    config: TrainingConfig,
    model_version: str,
    progress: Callable[[str], None] = print,
    visit: VisitStates | None = None,
) -> dict[str, float | str | None]:
    """Train, write the weights to `output` and return the run's summary (kept in the
    weights' metadata)."""
    check_config(config, visit)
    torch.manual_seed(config.seed)
    # The words the text generator writes, which the model's vocabulary must match.
    words = Tokenizer.from_words(vocabulary()).vocabulary
    changes: dict[str, Any] = {}
    if config.speed_only_history:
        changes["lateral_history"] = False
    if config.scene_readout:
        changes["scene_readout"] = config.scene_readout
    if config.init_weights is not None:
        model, fresh = load_weights_to_continue(config.init_weights, **changes)
        if fresh:
            progress(f"{len(fresh)} tensors not in {config.init_weights} start fresh: {fresh}")
        model_config = model.config
    else:
        model_config = ModelConfig(vocabulary=words, **changes)
        model = EmbeddedVla(model_config)
    if model_config.vocabulary != words:
        raise TrainingError("the text generator's vocabulary differs from the model's: retrain")
    types = scenario_schedule(config.scenario_weights)
    seeds = range(config.first_sample_seed, config.first_sample_seed + config.samples)
    started = time.perf_counter()
    visited: Sequence[Sample] = ()
    if config.closed_loop_scenarios:
        assert visit is not None and config.init_weights is not None
        closed_loop_seeds = range(seeds.stop, seeds.stop + config.closed_loop_scenarios)
        visited = visit(
            config.init_weights,
            closed_loop_seeds,
            config.closed_loop_label_every,
            config.workers,
            progress,
        )
    data = build_dataset(
        seeds,
        model_config,
        config.workers,
        progress,
        types,
        config.drift,
        visited,
        config.any_time,
    )
    generation_s = time.perf_counter() - started
    _check_one_batch(len(data), config.batch_size)

    model.train()
    probe = (
        RoadPoseProbe(model_config.width, config.road_pose_weight)
        if config.road_pose_weight > 0.0
        else None
    )
    parameters = [*model.parameters(), *(probe.parameters() if probe is not None else ())]
    optimizer = torch.optim.AdamW(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = len(data) // config.batch_size
    learning_rates = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, config.learning_rate, total_steps=steps_per_epoch * config.epochs
    )
    order_rng = np.random.default_rng(config.seed)
    drop_rng = np.random.default_rng([config.seed, 1])
    cameras = model_config.cameras
    means: dict[str, float] = {}
    for epoch in range(config.epochs):
        order = order_rng.permutation(len(data))
        totals: dict[str, float] = {}
        for step in range(steps_per_epoch):
            batch = data.batch(order[step * config.batch_size : (step + 1) * config.batch_size])
            parts = losses(
                model, batch, dropped_cameras(cameras, config.camera_dropout, drop_rng), probe
            )
            loss: Tensor = functools.reduce(operator.add, parts.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            learning_rates.step()
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + value.item()
        means = {name: total / steps_per_epoch for name, total in totals.items()}
        progress(
            f"epoch {epoch + 1}/{config.epochs} "
            + " ".join(f"{name}={value:.3f}" for name, value in means.items())
            + f" ({time.perf_counter() - started:.0f} s)"
        )
    summary = {
        **{f"final_loss_{name}": value for name, value in means.items()},
        "generation_s": generation_s,
        "total_s": time.perf_counter() - started,
        "samples": config.samples,
        "epochs": config.epochs,
        "seed": config.seed,
        "first_sample_seed": config.first_sample_seed,
        "learning_rate": config.learning_rate,
        "init_weights": str(config.init_weights) if config.init_weights else None,
        "scenario_weights": ",".join(
            f"{name}={weight}" for name, weight in config.scenario_weights
        ),
        "camera_dropout": config.camera_dropout,
        "drift": config.drift.probability,
        "speed_drift": config.drift.speed_probability,
        "any_time": config.any_time,
        "closed_loop_scenarios": config.closed_loop_scenarios,
        "closed_loop_label_every": config.closed_loop_label_every,
        "closed_loop_samples": len(visited),
        "road_pose_weight": config.road_pose_weight,
        "speed_only_history": config.speed_only_history,
        "scene_readout": model_config.scene_readout,
        "torch_threads": torch.get_num_threads(),
    }
    save_weights(model.eval(), output, model_version, summary)
    return summary
