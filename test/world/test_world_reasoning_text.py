"""Chain-of-Causation text: every generated sentence parses back to the behaviour it was
generated for, tokenizes losslessly into the fixed vocabulary, and AR1 phrasing parses."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.meta_actions import Lateral, Longitudinal
from alpamayo_ros.core.text import join_words, split_words
from alpamayo_ros.world.reasoning_text import (
    LATERAL_CLASSES,
    LONGITUDINAL_CLASSES,
    Situation,
    TextError,
    action_clause,
    coarse_meta_action,
    compose_text,
    intended_behaviour,
    is_consistent,
    parse_decision,
    vocabulary,
)
from alpamayo_ros.world.scenarios import SCENARIO_TYPES, make_scenario
from alpamayo_ros.world.simulation import Simulation, decisions

VARIANTS = range(30)


def all_texts() -> list[tuple[str, str, str]]:
    texts = []
    for situation, decision, longitudinal, lateral, standing, variant in itertools.product(
        Situation, LateralDecision, LONGITUDINAL_CLASSES, LATERAL_CLASSES, (False, True), VARIANTS
    ):
        text = compose_text(situation, decision, longitudinal, lateral, variant, standing)
        texts.append((text, longitudinal, lateral))
    return texts


TEXTS = all_texts()


def test_every_generated_text_states_its_behaviour() -> None:
    wrong = []
    for text, longitudinal, lateral in set(TEXTS):
        stated = intended_behaviour(text)
        if (stated[0] or "maintain", stated[1] or "straight") != (longitudinal, lateral):
            wrong.append((text, longitudinal, lateral, stated))
    assert not wrong, wrong[:10]


def test_texts_round_trip_through_the_vocabulary() -> None:
    words = set(vocabulary())
    for text in {text for text, _, _ in TEXTS}:
        tokens = split_words(text)
        assert join_words(tokens) == text
        assert set(tokens) <= words, set(tokens) - words
        assert text[0].isupper() and text.endswith(".")


def test_vocabulary_is_small_sorted_and_lowercase() -> None:
    words = vocabulary()
    assert words == sorted(set(words))
    assert all(word == word.lower() for word in words)
    assert {".", "slow", "stop", "nudge", "left", "pedestrian"} <= set(words)
    assert len(words) < 200


def test_tokenizer_splits_punctuation() -> None:
    assert split_words("Slow down, then stop.") == ["slow", "down", ",", "then", "stop", "."]
    assert join_words(["slow", "down", ",", "then", "stop", "."]) == "Slow down, then stop."


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Slow down because a pedestrian is crossing into the lane ahead.", ("decelerate", None)),
        (
            "Keep distance to the lead vehicle since it is directly ahead in our lane.",
            ("maintain", None),
        ),
        (
            "Nudge to the left to increase clearance from the construction cones encroaching "
            "into the lane.",
            (None, "left"),
        ),
        ("Stop at the stop line because the traffic light is red.", ("stop", None)),
        ("Change to the left lane to pass the stopped vehicle ahead.", (None, "left")),
        ("Maintain speed since the lane ahead is clear.", ("maintain", None)),
        ("Slow down for the curve ahead.", ("decelerate", None)),
        ("Decelerate to keep a safe gap to the truck.", ("decelerate", None)),
        ("Yield to the pedestrian at the crosswalk.", ("decelerate", None)),
        ("Come to a stop behind the stopped bus.", ("stop", None)),
        (
            "Proceed straight through the intersection since the light is green.",
            ("maintain", "straight"),
        ),
        ("Merge into the right lane to follow the route.", ("maintain", "right")),
        ("Accelerate to merge into the left lane.", ("accelerate", "left")),
        ("Turn right at the intersection.", (None, "right")),
        ("Keep lane and maintain speed.", ("maintain", "straight")),
        ("Slow down because the lead vehicle is braking.", ("decelerate", None)),
        ("Keep distance to the lead vehicle because it is braking.", ("maintain", None)),
        ("Reverse out of the parking spot.", ("reverse", None)),
        ("Wait for the pedestrian to cross.", ("stop", None)),
        ("Remain stopped at the red light.", ("stop", None)),
        ("Follow the road as it curves to the left.", ("maintain", "left")),
        ("The weather is nice.", (None, None)),
    ],
)
def test_intended_behaviour_parses_ar1_phrasing(
    text: str, expected: tuple[str | None, str | None]
) -> None:
    assert intended_behaviour(text) == expected


def test_cause_clauses_do_not_count_as_intent() -> None:
    assert action_clause("Slow down because the car is merging from the right.") == "slow down "
    assert intended_behaviour("Slow down because the car is merging from the right.") == (
        "decelerate",
        None,
    )


def test_coarse_meta_action_mapping() -> None:
    assert coarse_meta_action(Longitudinal.STRONG_ACCELERATE, Lateral.SHARP_STEER_LEFT) == (
        "accelerate",
        "left",
    )
    assert coarse_meta_action(Longitudinal.GENTLE_DECELERATE, Lateral.REVERSE_RIGHT) == (
        "decelerate",
        "right",
    )
    assert coarse_meta_action(Longitudinal.MAINTAIN_SPEED, Lateral.GO_STRAIGHT) == (
        "maintain",
        "straight",
    )
    assert coarse_meta_action(Longitudinal.STOP, Lateral.UNKNOWN) == ("stop", None)
    assert coarse_meta_action(Longitudinal.UNKNOWN, Lateral.STEER_RIGHT) == (None, "right")


def test_consistency_needs_both_axes() -> None:
    nudge = "Nudge to the left to increase clearance from the cyclist ahead."
    assert is_consistent(nudge, Longitudinal.MAINTAIN_SPEED, Lateral.STEER_LEFT)
    assert not is_consistent(nudge, Longitudinal.GENTLE_DECELERATE, Lateral.STEER_LEFT)
    assert not is_consistent(nudge, Longitudinal.MAINTAIN_SPEED, Lateral.GO_STRAIGHT)
    keep = "Keep distance to the lead vehicle since it is directly ahead in our lane."
    assert is_consistent(keep, Longitudinal.MAINTAIN_SPEED, Lateral.GO_STRAIGHT)
    assert not is_consistent(keep, Longitudinal.GENTLE_DECELERATE, Lateral.GO_STRAIGHT)


def test_unknown_classes_are_rejected() -> None:
    with pytest.raises(TextError):
        compose_text(Situation.CLEAR, LateralDecision.LANE_KEEPING, "hover", "straight")
    with pytest.raises(TextError):
        compose_text(Situation.CLEAR, LateralDecision.LANE_KEEPING, "maintain", "up")


def test_variants_change_the_wording_not_the_meaning() -> None:
    texts = {
        compose_text(
            Situation.PEDESTRIAN_CROSSING, LateralDecision.LANE_KEEPING, "decelerate", "straight", v
        )
        for v in range(12)
    }
    assert len(texts) > 1
    assert {intended_behaviour(text)[0] for text in texts} == {"decelerate"}


@pytest.mark.parametrize(
    ("text", "longitudinal", "lateral", "cause"),
    [
        # Alpamayo-R1's published examples (../shared/AR1_CONTRACT.md).
        (
            "Nudge to the left to increase clearance from the construction cones encroaching "
            "into the lane.",
            LongitudinalDecision.SET_SPEED_TRACKING,
            LateralDecision.IN_LANE_NUDGE,
            Cause.CONSTRUCTION,
        ),
        (
            "Keep distance to the lead vehicle since it is directly ahead in our lane.",
            LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING,
            LateralDecision.LANE_KEEPING,
            Cause.LEAD_VEHICLE,
        ),
        (
            "Slow down because a pedestrian is stepping into the lane ahead.",
            LongitudinalDecision.YIELD,
            LateralDecision.LANE_KEEPING,
            Cause.PEDESTRIAN,
        ),
        (
            "Stop at the stop line because the traffic light is red.",
            LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT,
            LateralDecision.LANE_KEEPING,
            Cause.TRAFFIC_LIGHT,
        ),
        (
            "Change to the left lane to pass the stopped truck ahead.",
            LongitudinalDecision.SET_SPEED_TRACKING,
            LateralDecision.LANE_CHANGE,
            Cause.STOPPED_VEHICLE,
        ),
        (
            "Turn right at the intersection.",
            LongitudinalDecision.SET_SPEED_TRACKING,
            LateralDecision.TURN,
            Cause.INTERSECTION,
        ),
        ("Proceed carefully because of the puddle.", None, None, Cause.OTHER),
        # Another vehicle's lights are not a traffic light.
        (
            "Slow down because the lead vehicle ahead is braking, its brake lights are on.",
            LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING,
            LateralDecision.LANE_KEEPING,
            Cause.LEAD_VEHICLE,
        ),
        (
            "Keep distance since the car ahead has its turn signal on.",
            None,
            None,
            Cause.LEAD_VEHICLE,
        ),
        (
            "Accelerate since the road is clear.",
            LongitudinalDecision.SET_SPEED_TRACKING,
            None,
            Cause.NONE,
        ),
    ],
)
def test_a_free_text_is_parsed_into_decisions_and_cause(
    text: str,
    longitudinal: LongitudinalDecision | None,
    lateral: LateralDecision | None,
    cause: Cause,
) -> None:
    decision = parse_decision(text)
    assert decision.text == text and decision.cause is cause
    if longitudinal is not None:
        assert decision.longitudinal_decision is longitudinal
    if lateral is not None:
        assert decision.lateral_decision is lateral


def test_parsing_recovers_the_worlds_own_decisions() -> None:
    """Round trip over the texts the world writes with known decisions: the cause is
    always recovered; a decision is lost only where the same words serve several (a text
    cannot say what it does not state)."""
    right: Counter[str] = Counter()
    total = 0
    for seed in range(12):
        for scenario_type in SCENARIO_TYPES:
            scenario = make_scenario(seed, scenario_type)
            trace = Simulation(scenario).run(scenario.steps)
            for truth in decisions(trace, seed)[::9]:
                parsed = parse_decision(truth.text)
                total += 1
                for name in ("cause", "longitudinal_decision", "lateral_decision"):
                    right[name] += getattr(parsed, name) == getattr(truth, name)
    assert total > 400
    assert right["cause"] == total
    assert right["longitudinal_decision"] / total > 0.88
    assert right["lateral_decision"] / total > 0.93
