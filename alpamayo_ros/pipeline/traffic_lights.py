"""The light the reasoning names, against the one the front cameras show.

The model reads a light's colour wrong where it stands long at a red (standing long reads
as green in its training) and loses the light close to the line; it stops for a yellow it
cannot stop for gently and stands through the red. The cameras' colour and stop line
(perception.traffic_light) are taken over the reasoning's here, as the world's expert
drives a light: `light_corrected` turns the reasoning's decision into the one the colour
calls for, by the expert's rule for a yellow (`stops_for_light`). The planning step
(pipeline.planning) keeps each plan's stop for a light and its line for LIGHT_HOLD_S
(`LightPlan`). Why each rule, by seed: docs/closed_loop.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from alpamayo_ros.core.decisions import Cause, LongitudinalDecision
from alpamayo_ros.core.model_io import CausalDecision
from alpamayo_ros.core.stand_off import (
    BESIDE_THE_CAR_M,
    NUDGING_DECISIONS,
    STAND_OFF_MAX_DECELERATION,
    STANDING_CAUSES,
    STOP_LINE_CAUSES,
    STOPPING_DECISIONS,
)
from alpamayo_ros.perception.traffic_light import STOP_COLOURS, LightSeen, TrafficLightView

# The expert's rule for a yellow light: stop where braking at most this hard brings the
# car's front to the line, else go on (braking harder stops in the intersection).
YELLOW_STOP_DECELERATION = 3.0
# Slower than this, a car does not set off at a yellow it is too near to stop for: it
# stands at the line (m/s).
YELLOW_GO_MIN_SPEED = 1.0

# For this long after a plan, its stop for a light and the cameras' line hold: a yellow
# the car began to stop for is stopped for while it can (else it could go on half-way
# through braking), and a line missed in one frame is where it was, dead-reckoned.
LIGHT_HOLD_S = 1.0


def stops_for_light(light: LightSeen, line_x: float, speed: float, stopping: bool = False) -> bool:
    """Whether a car at `speed` stops at a light's line `line_x` m ahead of base_link,
    given the colour the cameras show: at a red where it can stop at all (braking at
    STAND_OFF_MAX_DECELERATION; else it is through the line before it could stand), and
    at a yellow where it can stop braking at most YELLOW_STOP_DECELERATION, or, already
    `stopping` for it, at STAND_OFF_MAX_DECELERATION."""
    if light not in STOP_COLOURS:
        return False
    gentle = light is LightSeen.YELLOW and not stopping
    deceleration = YELLOW_STOP_DECELERATION if gentle else STAND_OFF_MAX_DECELERATION
    gap = line_x - BESIDE_THE_CAR_M  # from the car's front
    return gap >= speed * speed / (2.0 * deceleration)


def light_corrected(
    decision: CausalDecision | None, light: TrafficLightView, speed: float, stopping: bool = False
) -> CausalDecision | None:
    """The decision with what the cameras show of the light it names: the light's colour is
    the cameras', not the reasoning's. Its line is the stop line the cameras show, where
    they show one (the model places a line 20-30 m off up to 15 m short: seed 3000297),
    else the reasoning's place; a reasoning that goes on because of a light (read as
    green) that the cameras show red, or yellow where the car can stop before that line
    (`stops_for_light`), stops at it; one that stops for a light the cameras show green
    goes on (standing at the line, the model can go on reading the red after it turned:
    seed 3000317 never moved again), and so does one that stops for a yellow the car
    cannot stop for gently and has not begun to stop for (the expert's rule: braking
    harder stops it late or in the intersection, and the yellow lasts past the line; the
    model braked hard and stood through the red on 15 of 185 light drives, progress
    0.3-0.5 of the expert's). Every stop for anything else stays a stop. The cameras
    report a line only with clear road up to it (perception.traffic_light), so it is not
    a line beyond a car in the lane.

    A reasoning that names no light, nor anything it stops for or goes round, where the
    cameras show a red (or a yellow it can stop for) with its line, stops at that line:
    close to the line the model lost the light and went on for the road ahead (seed
    3000102 crossed on red at 3 m/s)."""
    if decision is None:
        return decision
    if decision.cause not in STOP_LINE_CAUSES:
        seen_x = light.stop_line_x
        if (
            seen_x is None
            or decision.cause in STANDING_CAUSES
            or decision.longitudinal_decision in STOPPING_DECISIONS
            or decision.lateral_decision in NUDGING_DECISIONS
            or not stops_for_light(light.colour, seen_x, speed, stopping)
        ):
            return decision
        return replace(
            decision,
            cause=Cause.TRAFFIC_LIGHT,
            longitudinal_decision=LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT,
            cause_object_position=(seen_x, 0.0, 0.0),
        )
    x, y, z = decision.cause_object_position
    if not (math.isfinite(x) and math.isfinite(y)):
        return decision
    stop = LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT
    line_x = x if light.stop_line_x is None else light.stop_line_x
    goes_on = light.colour is LightSeen.GREEN or (
        light.colour is LightSeen.YELLOW
        and light.stop_line_x is not None  # the reasoning's line can be 15 m short
        and speed > YELLOW_GO_MIN_SPEED
        and not stopping
        and not stops_for_light(light.colour, line_x, speed)
    )
    if goes_on and decision.longitudinal_decision is stop:
        return replace(decision, longitudinal_decision=LongitudinalDecision.SET_SPEED_TRACKING)
    stops = decision.longitudinal_decision is stop or stops_for_light(
        light.colour, line_x, speed, stopping
    )
    if not stops or (decision.longitudinal_decision is stop and line_x == x):
        return decision
    return replace(decision, longitudinal_decision=stop, cause_object_position=(line_x, y, z))


@dataclass(frozen=True)
class LightPlan:
    """What a plan saw and did at a light: its t0, the stop line it took from the cameras,
    and whether it stopped for the light."""

    t0_ns: int
    line_x: float | None
    stopping: bool
