"""Scenario files: what to drive closed loop and what must hold, as driving_log_replayer_v2's
scenarios say it for a log. `alpamayo-ros scenario FILE` runs it, prints one JSON line per
drive as it ends and one per condition, and exits 0 when every condition holds, 1 when one
does not (2: the file itself is wrong, with what is wrong).

    name: pedestrians crossing          # optional, for the report
    seeds: 3000000-3000019              # or a list of seeds
    types: [pedestrian_crossing]        # optional: the seeds' own types otherwise
    drivers: [embedded_vla]             # default; expert and constant_velocity too
    weights: my.safetensors             # optional, the embedded VLA's
    in_process: false                   # true: the pipeline without ROS (quick)
    workers: 1                          # > 1: on a local Ray
    conditions:                         # per driver, on simulate's summary figures
      pass_rate: ">= 0.9"
      at_fault_collision_rate: "== 0"
      red_light_violation_rate: "== 0"
      mean_consistency: ">= 0.8"
      plan_latency_p90_s: "<= 0.5"

A scenario on a recorded drive names the bag instead of seeds; each driver (a backend)
replays it in lock-step in one process and is scored against the logged future
(evaluation.recorded), with one JSON line per plan:

    name: braking behind a lead vehicle
    bag: drives/braking                 # relative to this file
    topic_map: my_car.yaml              # optional: the bag's camera and odometry topics
    drivers: [embedded_vla]
    conditions:                         # on `evaluate --bag`'s summary figures
      min_ade_6_4s: "<= 2.0"
      longitudinal_accuracy: ">= 0.8"
      consistent_rate: ">= 0.9"
      plan_latency_p90_ms: "<= 100"

A condition on a figure that a driver does not have (no plans, so no latency) fails: a
condition says what must be shown, not what may be skipped.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alpamayo_ros.configuration import ConfigurationError
from alpamayo_ros.evaluation.recorded import SUMMARY_FIGURES
from alpamayo_ros.simulate import EXPERT
from alpamayo_ros.world.scenarios import SCENARIO_TYPES, parse_seeds

# The figures of simulate's summary a condition may name.
FIGURES = (
    "scenarios",
    "collision_rate",
    "at_fault_collision_rate",
    "off_road_rate",
    "red_light_violation_rate",
    "stop_line_violation_rate",
    "pass_rate",
    "mean_score",
    "mean_progress_ratio",
    "mean_min_ttc",
    "peak_jerk_p90",
    "plan_latency_p90_s",
    "mean_consistency",
    "lockstep_speed",
    "answer_timeouts",
)
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
KEYS = (
    "name",
    "seeds",
    "types",
    "bag",
    "topic_map",
    "drivers",
    "weights",
    "in_process",
    "workers",
    "conditions",
)
# What only a closed-loop scenario (seeds) has.
CLOSED_LOOP_KEYS = ("seeds", "types", "in_process", "workers")


class ScenarioFileError(ConfigurationError):
    """A scenario file that cannot be run; the message names the file and the field."""


@dataclass(frozen=True)
class Condition:
    figure: str
    comparison: str  # one of COMPARISONS
    threshold: float

    def holds(self, value: float | None) -> bool:
        return value is not None and COMPARISONS[self.comparison](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.figure} {self.comparison} {self.threshold:g}"


@dataclass(frozen=True)
class ScenarioFile:
    path: Path
    name: str
    seeds: tuple[int, ...]
    types: tuple[str, ...]
    drivers: tuple[str, ...]
    weights: Path | None
    in_process: bool
    workers: int
    conditions: tuple[Condition, ...]
    bag: Path | None = None  # a recorded drive instead of seeds
    topic_map: Path | None = None


@dataclass(frozen=True)
class Verdict:
    """One condition for one driver."""

    driver: str
    condition: Condition
    value: float | None
    passed: bool


def load_scenario(path: Path, known_drivers: Sequence[str]) -> ScenarioFile:
    """The scenario file at `path`, checked field by field."""

    def fail(what: str) -> ScenarioFileError:
        return ScenarioFileError(f"{path}: {what}")

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise fail(f"unreadable: {error}") from None
    if not isinstance(document, dict):
        raise fail("must be a mapping of the fields " + ", ".join(KEYS))
    unknown = sorted(set(document) - set(KEYS))
    if unknown:
        raise fail(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    bag, topic_map = (_file(document.get(key), key, path, fail) for key in ("bag", "topic_map"))
    if bag is not None:
        return _recorded(document, path, bag, topic_map, known_drivers, fail)
    if topic_map is not None:
        raise fail("topic_map goes with bag")
    seeds = _seeds(document.get("seeds"), fail)
    types = tuple(_names(document.get("types", []), "types", fail))
    unknown = sorted(set(types) - set(SCENARIO_TYPES))
    if unknown:
        raise fail(f"unknown scenario type(s) {', '.join(unknown)}")
    drivers = _drivers(document, known_drivers, "", fail)
    workers = document.get("workers", 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise fail(f"workers must be a whole number >= 1, got {workers!r}")
    in_process = document.get("in_process", False)
    if not isinstance(in_process, bool):
        raise fail(f"in_process must be true or false, got {in_process!r}")
    weights = _file(document.get("weights"), "weights", path, fail)
    conditions = _conditions(document.get("conditions"), FIGURES, fail)
    return ScenarioFile(
        path=path,
        name=str(document.get("name") or path.stem),
        seeds=seeds,
        types=types,
        drivers=drivers,
        weights=weights,
        in_process=in_process,
        workers=workers,
        conditions=conditions,
    )


def _recorded(
    document: dict[str, Any],
    path: Path,
    bag: Path,
    topic_map: Path | None,
    known_drivers: Sequence[str],
    fail: Callable[[str], ScenarioFileError],
) -> ScenarioFile:
    """A scenario on a recorded drive: backends replay the bag, no closed-loop field."""
    closed_loop = [key for key in CLOSED_LOOP_KEYS if key in document]
    if closed_loop:
        raise fail(f"{', '.join(closed_loop)}: only for simulated scenarios, not with bag")
    backends = [name for name in known_drivers if name != EXPERT]
    drivers = _drivers(document, backends, " for a recording", fail)
    weights = _file(document.get("weights"), "weights", path, fail)
    return ScenarioFile(
        path=path,
        name=str(document.get("name") or path.stem),
        seeds=(),
        types=(),
        drivers=drivers,
        weights=weights,
        in_process=True,
        workers=1,
        conditions=_conditions(document.get("conditions"), tuple(SUMMARY_FIGURES), fail),
        bag=bag,
        topic_map=topic_map,
    )


def _drivers(
    document: dict[str, Any],
    known: Sequence[str],
    context: str,
    fail: Callable[[str], ScenarioFileError],
) -> tuple[str, ...]:
    """The file's drivers (default: the embedded VLA), each one of `known`."""
    drivers = tuple(_names(document.get("drivers", ["embedded_vla"]), "drivers", fail))
    unknown = sorted(set(drivers) - set(known))
    if unknown or not drivers:
        raise fail(
            f"drivers: unknown or none {', '.join(unknown)}{context} (known: {', '.join(known)})"
        )
    return drivers


def _file(
    value: Any, field: str, path: Path, fail: Callable[[str], ScenarioFileError]
) -> Path | None:
    """A file named relative to the scenario file, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise fail(f"{field} must be a file name, got {value!r}")
    return path.parent / value


def _seeds(value: Any, fail: Callable[[str], ScenarioFileError]) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        value = ",".join(map(str, value))
    if not isinstance(value, str):
        raise fail(f"seeds must be seeds or ranges such as 3000000-3000019, got {value!r}")
    try:
        return tuple(parse_seeds(value))
    except ValueError as error:
        raise fail(f"seeds: {error}") from None


def _names(value: Any, field: str, fail: Callable[[str], ScenarioFileError]) -> list[str]:
    if isinstance(value, str):
        value = [name.strip() for name in value.split(",") if name.strip()]
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise fail(f"{field} must be a list of names, got {value!r}")
    return value


def _conditions(
    value: Any, figures: Sequence[str], fail: Callable[[str], ScenarioFileError]
) -> tuple[Condition, ...]:
    if not isinstance(value, dict) or not value:
        raise fail("conditions must map summary figures to checks such as '>= 0.9'")
    conditions = []
    for figure, check in value.items():
        if figure not in figures:
            raise fail(f"condition on unknown figure {figure!r} (known: {', '.join(figures)})")
        text = str(check).strip()
        comparison = next(
            (c for c in sorted(COMPARISONS, key=len, reverse=True) if text.startswith(c)), None
        )
        try:
            threshold = float(text[len(comparison) :]) if comparison else float("nan")
        except ValueError:
            threshold = float("nan")
        if comparison is None or threshold != threshold:
            raise fail(
                f"condition {figure}: {check!r} must be a comparison "
                f"({', '.join(COMPARISONS)}) and a number, e.g. '>= 0.9'"
            )
        conditions.append(Condition(figure, comparison, threshold))
    return tuple(conditions)


def judge(scenario: ScenarioFile, summary: Mapping[str, Mapping[str, Any]]) -> list[Verdict]:
    """Every condition for every driver of the scenario, against its summary (simulate's,
    or a recorded drive's)."""
    verdicts = []
    for driver in scenario.drivers:
        figures = summary.get(driver, {})
        for condition in scenario.conditions:
            value = figures.get(condition.figure)
            verdicts.append(Verdict(driver, condition, value, condition.holds(value)))
    return verdicts
