"""Chain-of-Causation text: one AR1-style sentence "behaviour + cause", and its rule parser.

Generation. A sentence is  <action> <cause phrase> "."  where the action states the
longitudinal behaviour (accelerate / slow down / stop / maintain speed, or a situation's own
wording such as "keep distance to the lead vehicle") and, when the ego steers, the lateral
behaviour joined by "and" (nudge to the left / change to the left lane / steer left ...).
Behaviour words come from the coarse classes of the meta-action the trajectory is labelled
with, the cause phrase from the expert's `Situation`; a seeded variant index picks among a
few fixed wordings. Everything comes from the fixed tables below, so `vocabulary()` lists
every word the generator can emit, for a word-level tokenizer.

Parsing (`intended_behaviour`). Keyword rules, applied to the lowercased ACTION CLAUSE: the
text before the first cause connector ("because", "since", "due to", "given that",
"now that", "as the/a/an/our/we/there"), so that "... because the lead vehicle is braking"
does not read as the ego braking. Purpose clauses ("to keep distance", "for the curve")
stay in the action clause: they state what the ego does.
  longitudinal, highest priority first (so "slow down to stop" is a stop):
    reverse     reverse, back up
    stop        stop (not "stop line/sign/bar"), come to a stop/halt/standstill,
                remain/stay stopped|stationary, halt, wait, hold position
    decelerate  slow (down), decelerate, brake, reduce/lower speed, yield, give way, ease off
    accelerate  accelerate, speed up, pick up speed, increase/resume speed
    maintain    maintain, keep/hold (the|a) (current|steady|same) speed|distance|gap,
                follow, proceed, continue, cruise, steady/constant speed
  lateral, the FIRST match in the clause wins:
    left/right  a lateral verb (nudge, steer, turn, veer, swerve, shift, move, merge, bear,
                curve, pull, change) followed within three words by "left"/"right"
                ("nudge to the left", "change lanes to the right", "turn left"),
                or keep/stay (to the) left/right
    straight    go/proceed/continue/drive/keep straight, straight ahead,
                keep/stay/remain in (the|our) (current) lane, lane keeping
None means the text does not state that axis. `is_consistent` scores a text against a
meta-action as AR1 does: 1 only if both coarse axes match, where an unstated longitudinal
intent counts as "maintain" and an unstated lateral one as "straight" (a text that says
only "Nudge to the left ..." implies keeping speed). "Keep distance / follow" is
"maintain": a text that means slowing down must say so.
"""

from __future__ import annotations

import re

from alpamayo_ros.core.compat import StrEnum
from alpamayo_ros.core.decisions import Cause, LateralDecision, LongitudinalDecision
from alpamayo_ros.core.meta_actions import (
    ACCELERATE,
    DECELERATE,
    LATERAL_CLASSES,
    LEFT,
    LONGITUDINAL_CLASSES,
    MAINTAIN,
    REVERSE,
    RIGHT,
    STOP,
    STRAIGHT,
    Lateral,
    Longitudinal,
    coarse_meta_action,
)
from alpamayo_ros.core.model_io import CausalDecision
from alpamayo_ros.core.text import join_words, split_words


class TextError(ValueError):
    """A behaviour class the generator has no words for."""


class Situation(StrEnum):
    """What the expert reacts to, at the granularity the text distinguishes."""

    CLEAR = "clear"
    CURVE = "curve"
    LEAD = "lead"
    LEAD_BRAKING = "lead_braking"
    LEAD_STOPPED = "lead_stopped"
    STOPPED_PASS = "stopped_pass"
    STOPPED_WAIT = "stopped_wait"
    STOPPED_BLOCKED = "stopped_blocked"
    CUT_IN = "cut_in"
    PEDESTRIAN_CROSSING = "pedestrian_crossing"
    PEDESTRIAN_CLEARED = "pedestrian_cleared"
    CYCLIST_PASS = "cyclist_pass"
    CYCLIST_FOLLOW = "cyclist_follow"
    LIGHT_RED = "light_red"
    LIGHT_YELLOW_STOP = "light_yellow_stop"
    LIGHT_YELLOW_GO = "light_yellow_go"
    LIGHT_GREEN = "light_green"
    CONES = "cones"


# ----------------------------------------------------------------------------- tables
_LONGITUDINAL_WORDS: dict[str, tuple[str, ...]] = {
    ACCELERATE: ("accelerate", "speed up"),
    DECELERATE: ("slow down", "decelerate"),
    STOP: ("stop", "come to a stop"),
    MAINTAIN: ("maintain speed", "keep the current speed"),
    REVERSE: ("reverse",),
}
# Used instead of STOP words when the ego is already standing.
_STAND_STILL_WORDS: tuple[str, ...] = ("remain stopped", "stay stopped")
_HOLD = "hold"  # key of a situation's phrases for an ego already standing (class stop)

# (action words or None for the class's default words, cause phrase); key "*" is the default.
Phrase = tuple[str | None, str]
_SITUATION_PHRASES: dict[Situation, dict[str, tuple[Phrase, ...]]] = {
    Situation.CLEAR: {
        "*": ((None, "since the lane ahead is clear"), (None, "because the road ahead is clear")),
        ACCELERATE: (
            (None, "to reach the cruising speed since the lane ahead is clear"),
            (None, "since the road ahead is clear"),
        ),
        DECELERATE: ((None, "to settle at the cruising speed"),),
    },
    Situation.CURVE: {
        "*": ((None, "for the curve ahead"), (None, "because the road curves ahead")),
    },
    Situation.LEAD: {
        "*": ((None, "to keep distance to the lead vehicle ahead"),),
        MAINTAIN: (
            ("keep distance to the lead vehicle", "since it is directly ahead in our lane"),
            ("follow the lead vehicle", "at a safe distance"),
        ),
        DECELERATE: (
            (None, "to keep distance to the lead vehicle ahead"),
            (None, "since the lead vehicle ahead is slower"),
        ),
        ACCELERATE: (
            (None, "since the lead vehicle ahead is pulling away"),
            (None, "to follow the lead vehicle ahead"),
        ),
        STOP: ((None, "behind the lead vehicle ahead"),),
        _HOLD: ((None, "behind the lead vehicle ahead"),),
    },
    Situation.LEAD_BRAKING: {
        "*": (
            (None, "because the lead vehicle is braking"),
            (None, "since the lead vehicle ahead is braking"),
        ),
        MAINTAIN: (("keep distance to the lead vehicle", "since it is braking gently"),),
        STOP: (
            ("come to a stop", "behind the lead vehicle because it is braking"),
            ("stop", "behind the braking lead vehicle"),
        ),
        _HOLD: ((None, "behind the lead vehicle"),),
    },
    Situation.LEAD_STOPPED: {
        "*": ((None, "since the lead vehicle ahead has stopped"),),
        STOP: ((None, "behind the lead vehicle since it has stopped"),),
        _HOLD: ((None, "behind the lead vehicle since it has stopped"),),
    },
    Situation.STOPPED_PASS: {
        "*": (
            (None, "to pass the stopped vehicle ahead"),
            (None, "to get around the stopped vehicle in our lane"),
        ),
    },
    Situation.STOPPED_WAIT: {
        "*": (
            (None, "for the stopped vehicle ahead in our lane"),
            (None, "because a stopped vehicle blocks our lane"),
        ),
        STOP: (
            (None, "behind the stopped vehicle blocking our lane"),
            (None, "behind the stopped vehicle ahead"),
        ),
        _HOLD: ((None, "behind the stopped vehicle blocking our lane"),),
    },
    Situation.STOPPED_BLOCKED: {
        "*": ((None, "for the stopped vehicle ahead since the left lane is blocked"),),
        STOP: (
            (None, "behind the stopped vehicle since the left lane is blocked too"),
            (None, "behind the stopped vehicle because the left lane is also blocked"),
        ),
        _HOLD: ((None, "behind the stopped vehicle since the left lane is blocked too"),),
    },
    Situation.CUT_IN: {
        "*": (
            (None, "because a vehicle is cutting in ahead of us"),
            (None, "to keep distance to the vehicle cutting into our lane"),
        ),
        MAINTAIN: (
            ("keep distance to the vehicle cutting in", "ahead of us"),
            (None, "since the vehicle cutting in ahead of us is not slower"),
        ),
        ACCELERATE: ((None, "since the vehicle cutting in ahead of us is faster"),),
    },
    Situation.PEDESTRIAN_CROSSING: {
        "*": (
            (None, "because a pedestrian is crossing into the lane ahead"),
            (None, "for the pedestrian crossing the road ahead"),
        ),
        DECELERATE: (
            ("yield", "to the pedestrian crossing the road ahead"),
            (None, "because a pedestrian is crossing into the lane ahead"),
        ),
        STOP: (
            (None, "to yield to the pedestrian crossing the road"),
            (None, "because a pedestrian is crossing into the lane ahead"),
        ),
        _HOLD: ((None, "while the pedestrian crosses the road"),),
        ACCELERATE: ((None, "since the pedestrian is clearing the lane"),),
    },
    Situation.PEDESTRIAN_CLEARED: {
        "*": (
            (None, "since the pedestrian has cleared the lane"),
            (None, "because the pedestrian has finished crossing"),
        ),
    },
    Situation.CYCLIST_PASS: {
        "*": (
            (None, "to increase clearance from the cyclist ahead"),
            (None, "to pass the cyclist riding at the edge of the lane"),
        ),
    },
    Situation.CYCLIST_FOLLOW: {
        "*": (
            (None, "to stay behind the cyclist since there is no room to pass"),
            (None, "because the cyclist ahead leaves no room to pass"),
        ),
        MAINTAIN: (("follow the cyclist", "since there is no room to pass"),),
    },
    Situation.LIGHT_RED: {
        "*": (
            (None, "for the red traffic light ahead"),
            (None, "because the traffic light is red"),
        ),
        STOP: (
            (None, "at the stop line because the traffic light is red"),
            (None, "at the red traffic light"),
        ),
        _HOLD: (
            (None, "at the stop line because the traffic light is red"),
            (None, "at the red traffic light"),
        ),
        MAINTAIN: ((None, "since the red traffic light is still far ahead"),),
        ACCELERATE: ((None, "since the red traffic light is still far ahead"),),
    },
    Situation.LIGHT_YELLOW_STOP: {
        "*": (
            (None, "because the traffic light turned yellow"),
            (None, "since the light turned yellow with enough room to stop"),
        ),
        STOP: ((None, "at the stop line because the light turned yellow"),),
        _HOLD: ((None, "at the stop line because the light is turning red"),),
    },
    Situation.LIGHT_YELLOW_GO: {
        "*": (
            (None, "through the intersection since it is too late to stop for the yellow light"),
        ),
    },
    Situation.LIGHT_GREEN: {
        "*": (
            (None, "through the intersection since the traffic light is green"),
            (None, "because the traffic light ahead is green"),
        ),
    },
    Situation.CONES: {
        "*": (
            (None, "to increase clearance from the construction cones encroaching into the lane"),
            (None, "to keep clear of the cones narrowing the lane"),
        ),
        STOP: ((None, "before the construction cones blocking the lane"),),
        _HOLD: ((None, "before the construction cones blocking the lane"),),
    },
}

# Lateral words per lateral decision; the lane-keeping words serve every other decision.
_LATERAL_WORDS: dict[LateralDecision, dict[str, tuple[str, ...]]] = {
    LateralDecision.IN_LANE_NUDGE: {
        LEFT: ("nudge to the left", "nudge slightly to the left"),
        RIGHT: ("nudge back to the right",),
    },
    LateralDecision.OUT_OF_LANE_NUDGE: {
        LEFT: ("nudge to the left into the adjacent lane",),
        RIGHT: ("nudge back to the right into our lane",),
    },
    LateralDecision.LANE_CHANGE: {
        LEFT: ("change to the left lane", "change lanes to the left"),
        RIGHT: ("steer right to complete the lane change",),
    },
    LateralDecision.LANE_KEEPING: {
        LEFT: ("steer left to follow the road", "bear left with the road"),
        RIGHT: ("steer right to follow the road", "bear right with the road"),
    },
}
# In a curve the turn is the whole story: no cause phrase follows these.
_CURVE_WORDS: dict[str, tuple[str, ...]] = {
    LEFT: ("steer left through the curve", "follow the curve to the left"),
    RIGHT: ("steer right through the curve", "follow the curve to the right"),
}
_PUNCTUATION = (".", ",")


# ------------------------------------------------------------------------- generation
def compose_text(
    situation: Situation,
    lateral_decision: LateralDecision,
    longitudinal_class: str,
    lateral_class: str,
    variant: int = 0,
    standing: bool = False,
) -> str:
    """The sentence for a situation and the coarse behaviour classes of the trajectory.

    `standing` (the ego is already at rest and stays there) words a stop as "remain
    stopped". `variant` (any non-negative int, e.g. drawn from the sample's seed) picks
    among the wordings.
    """
    if longitudinal_class not in LONGITUDINAL_CLASSES:
        raise TextError(f"unknown longitudinal class {longitudinal_class!r}")
    if lateral_class not in LATERAL_CLASSES:
        raise TextError(f"unknown lateral class {lateral_class!r}")
    variant = abs(int(variant))
    phrases = _SITUATION_PHRASES[situation]
    hold = standing and longitudinal_class == STOP
    key = _HOLD if hold and _HOLD in phrases else longitudinal_class
    options = phrases.get(key, phrases["*"])
    action, cause = options[variant % len(options)]
    if action is None:
        words = _STAND_STILL_WORDS if hold else _LONGITUDINAL_WORDS[longitudinal_class]
        action = words[(variant // 3) % len(words)]

    lateral = ""
    if lateral_class != STRAIGHT:
        if situation is Situation.CURVE:
            lateral_words = _CURVE_WORDS[lateral_class]
            cause = ""
        else:
            table = _LATERAL_WORDS.get(
                lateral_decision, _LATERAL_WORDS[LateralDecision.LANE_KEEPING]
            )
            lateral_words = table[lateral_class]
        lateral = lateral_words[(variant // 5) % len(lateral_words)]
        if action in _LONGITUDINAL_WORDS[MAINTAIN]:
            action = ""  # "Nudge to the left to ..." implies keeping speed
    parts = [part for part in (action, "and" if action and lateral else "", lateral, cause) if part]
    return join_words(split_words(" ".join(parts) + "."))


def vocabulary() -> list[str]:
    """Every token `compose_text` can emit, sorted."""
    fragments: list[str] = ["and", *_PUNCTUATION]
    for words in (*_LONGITUDINAL_WORDS.values(), _STAND_STILL_WORDS, *_CURVE_WORDS.values()):
        fragments.extend(words)
    for table in _SITUATION_PHRASES.values():
        for options in table.values():
            for action, cause in options:
                fragments.extend([action or "", cause])
    for lateral_table in _LATERAL_WORDS.values():
        for words in lateral_table.values():
            fragments.extend(words)
    return sorted({token for fragment in fragments for token in split_words(fragment)})


# ---------------------------------------------------------------------------- parsing
_CONNECTOR = re.compile(
    r"\b(because|since|due to|given that|now that|as the|as a|as an|as our|as we|as there)\b"
)
_LONGITUDINAL_RULES: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = tuple(
    (name, tuple(re.compile(pattern) for pattern in patterns))
    for name, patterns in (
        (REVERSE, (r"\brevers\w*", r"\bback(s|ing)?\s+up\b")),
        (
            STOP,
            (
                r"\b(stop|stops|stopping)\b(?!\s+(line|lines|sign|signs|bar)\b)",
                r"\b(come|comes|coming|bring|brings)\s+(\w+\s+){0,3}?(stop|halt|standstill)\b",
                r"\b(remain|remains|stay|stays|be|keep)\s+(stopped|stationary|at a standstill)\b",
                r"\b(halt|halts|wait|waits|waiting)\b",
                r"\bhold\s+(position|still)\b",
            ),
        ),
        (
            DECELERATE,
            (
                r"\b(slow|slows|slowing|slowed)\b",
                r"\bdecelerat\w*",
                r"\b(brake|brakes|braking)\b",
                r"\b(reduce|reduces|reducing|lower|lowers|lowering)\s+(the\s+|our\s+)?speed\b",
                r"\b(yield|yields|yielding)\b",
                r"\bgive\s+way\b",
                r"\bease\s+off\b",
            ),
        ),
        (
            ACCELERATE,
            (
                r"\baccelerat\w*",
                r"\bspeed(s|ing)?\s+up\b",
                r"\bpick(s|ing)?\s+up\s+speed\b",
                r"\b(increase|increases|increasing|resume|resumes)\s+(the\s+|our\s+)?speed\b",
            ),
        ),
        (
            MAINTAIN,
            (
                r"\bmaintain\w*",
                r"\b(keep|keeps|keeping|hold|holds)\s+(the\s+|our\s+|a\s+)?"
                r"(current\s+|steady\s+|constant\s+|same\s+|safe\s+)?(speed|pace|distance|gap)\b",
                r"\bfollow\w*",
                r"\bproceed\w*",
                r"\bcontinu\w*",
                r"\bcruis\w*",
                r"\b(steady|constant)\s+speed\b",
            ),
        ),
    )
)
_LATERAL_VERBS = (
    r"nudg\w*|steer\w*|turn\w*|veer\w*|swerv\w*|shift\w*|move|moves|moving|merg\w*"
    r"|bear|bears|bearing|curv\w*|pull\w*|chang\w*"
)
_DIRECTION = re.compile(
    rf"\b(?:{_LATERAL_VERBS})\b(?:\s+\w+){{0,3}}?\s+(left|right)\b"
    r"|\b(?:keep|keeps|keeping|stay|stays|staying)\s+(?:to\s+the\s+)?(left|right)\b"
)
_STRAIGHT = re.compile(
    r"\b(?:go|goes|going|proceed\w*|continu\w*|driv\w*|head\w*|keep\w*|stay\w*|travel\w*)"
    r"\s+straight\b"
    r"|\bstraight\s+ahead\b"
    r"|\b(?:keep|keeps|keeping|stay|stays|staying|remain|remains|remaining)\s+(?:in\s+)?"
    r"(?:the\s+|our\s+|its\s+|this\s+)?(?:current\s+|same\s+)?lane\b"
    r"|\blane\s+keeping\b"
)


def action_clause(text: str) -> str:
    """The lowercased text before the first cause connector (see the module docstring)."""
    lowered = " ".join(split_words(text))
    match = _CONNECTOR.search(lowered)
    return lowered[: match.start()] if match else lowered


def intended_behaviour(text: str) -> tuple[str | None, str | None]:
    """Coarse (longitudinal, lateral) intent a text states; None for an unstated axis."""
    clause = action_clause(text)
    longitudinal = next(
        (name for name, patterns in _LONGITUDINAL_RULES if any(p.search(clause) for p in patterns)),
        None,
    )
    lateral: str | None = None
    direction = _DIRECTION.search(clause)
    straight = _STRAIGHT.search(clause)
    if direction and (straight is None or direction.start() <= straight.start()):
        lateral = direction.group(1) or direction.group(2)
    elif straight:
        lateral = STRAIGHT
    return longitudinal, lateral


def is_consistent(text: str, longitudinal: Longitudinal, lateral: Lateral) -> bool:
    """AR1 reasoning-action consistency: both coarse axes of the text match the
    meta-action; an unstated axis counts as maintain / straight."""
    stated_longitudinal, stated_lateral = intended_behaviour(text)
    if stated_longitudinal is None and stated_lateral is None:
        return False  # unparseable text scores 0
    expected = coarse_meta_action(longitudinal, lateral)
    return (stated_longitudinal or MAINTAIN, stated_lateral or STRAIGHT) == expected


# ------------------------------------------------------------------- decision parsing
# The cause a text names, first match wins: the object or condition words of the AR1
# paper's Table 1 causes (a cut-in before other vehicles, a light before an intersection).
_CAUSE_RULES: tuple[tuple[Cause, re.Pattern[str]], ...] = tuple(
    (cause, re.compile(pattern))
    for cause, pattern in (
        (Cause.CUT_IN, r"\bcut(s|ting)?\s+(in|into)\b|\bcut-in\b"),
        (Cause.PEDESTRIAN, r"\bpedestrians?\b|\bperson\b|\bpeople\b|\bwalkers?\b"),
        (Cause.CYCLIST, r"\bcyclists?\b|\bbicycl\w*|\bbikes?\b"),
        # Not another vehicle's brake, tail, head or turn lights or signal.
        (
            Cause.TRAFFIC_LIGHT,
            r"(?<!brake\s)(?<!tail\s)(?<!head\s)(?<!turn\s)\b(traffic\s+)?lights?\b"
            r"|(?<!turn\s)\bsignal\b",
        ),
        (Cause.CONSTRUCTION, r"\bcones?\b|\bconstruction\b|\bwork\s+zone\b|\bbarriers?\b"),
        (
            Cause.STOPPED_VEHICLE,
            r"\b(stopped|parked|stalled|disabled|stationary)\s+(vehicle|car|truck|bus)s?\b",
        ),
        (Cause.LEAD_VEHICLE, r"\blead\s+(vehicle|car)\b|\b(vehicle|car|truck)\s+ahead\b"),
        (Cause.INTERSECTION, r"\bintersection\b|\bjunction\b"),
        (
            Cause.ROAD_GEOMETRY,
            r"\bcurves?\b|\bbends?\b|\bwith\s+the\s+road\b|\bfollow\s+the\s+road\b",
        ),
        (Cause.NONE, r"\b(lane|road)(\s+ahead)?\s+is\s+clear\b|\bcruising\s+speed\b"),
    )
)
_LATERAL_DECISION_RULES: tuple[tuple[LateralDecision, re.Pattern[str]], ...] = tuple(
    (decision, re.compile(pattern))
    for decision, pattern in (
        (LateralDecision.LATERAL_MANEUVER_ABORT, r"\babort\w*"),
        (
            LateralDecision.LANE_CHANGE,
            r"\bchange\s+(to\s+the\s+\w+\s+lane|lanes?)\b|\blane\s+change\b",
        ),
        (LateralDecision.PULL_OVER, r"\bpull(s|ing)?\s+over\b"),
        (
            LateralDecision.OUT_OF_LANE_NUDGE,
            r"\bnudg\w*\b.*\b(adjacent|other|neighbou?ring)\s+lane\b",
        ),
        (LateralDecision.IN_LANE_NUDGE, r"\bnudg\w*"),
        (LateralDecision.MERGE_SPLIT, r"\bmerg\w*|\bsplit\w*"),
        (LateralDecision.TURN, r"\bturn(s|ing)?\s+(left|right)\b"),
        # A purpose that only a sideways move within the lane serves.
        (LateralDecision.IN_LANE_NUDGE, r"\bincrease\s+clearance\b|\bkeep\s+clear\s+of\b"),
    )
)
_YIELD = re.compile(r"\byield\w*|\bgive\s+way\b|\bwhile\s+the\s+pedestrian\b")
_FOLLOW = re.compile(
    r"\bkeep\w*\s+distance\b|\bstay\s+behind\b"
    r"|\bfollow\w*\s+(the\s+|a\s+)?(lead\w*|vehicle|car|truck|cyclist)\b"
)
_PASS = re.compile(r"\bpass\w*\b|\bget\s+around\b|\bovertak\w*")
# Causes a stop holds for without an agent to follow.
_STATIC_CAUSES = frozenset(
    {Cause.TRAFFIC_LIGHT, Cause.CONSTRUCTION, Cause.STOPPED_VEHICLE, Cause.INTERSECTION}
)


def parse_decision(text: str) -> CausalDecision:
    """The structured decision a free Chain-of-Causation text states, by rules (for a
    model that writes text only, as Alpamayo-R1 does): the cause from the object or
    condition it names, the lateral decision from the manoeuvre words, the longitudinal
    decision from the stated behaviour (`intended_behaviour`) and the cause. A text that
    names no manoeuvre keeps its lane; one that states no reason to change speed tracks its
    set speed; a cause clause naming nothing known is OTHER, no cause clause NONE."""
    lowered = " ".join(split_words(text))
    cause = next((cause for cause, rule in _CAUSE_RULES if rule.search(lowered)), None)
    if cause is None:
        cause = Cause.OTHER if _CONNECTOR.search(lowered) else Cause.NONE
    clause = action_clause(text)
    lateral = next(
        (decision for decision, rule in _LATERAL_DECISION_RULES if rule.search(clause)),
        LateralDecision.LANE_KEEPING,
    )
    longitudinal_intent, _ = intended_behaviour(text)
    return CausalDecision(
        text=text,
        longitudinal_decision=_longitudinal_decision(lowered, longitudinal_intent, cause),
        lateral_decision=lateral,
        cause=cause,
    )


def _longitudinal_decision(lowered: str, intent: str | None, cause: Cause) -> LongitudinalDecision:
    if _YIELD.search(lowered) or (cause is Cause.PEDESTRIAN and intent in (STOP, DECELERATE)):
        return LongitudinalDecision.YIELD
    if intent in (STOP, DECELERATE) and cause in _STATIC_CAUSES:
        return LongitudinalDecision.STOP_FOR_STATIC_CONSTRAINT
    if intent == ACCELERATE and _PASS.search(lowered):
        return LongitudinalDecision.ACCELERATE_TO_PASS
    if cause in (Cause.LEAD_VEHICLE, Cause.CUT_IN) or _FOLLOW.search(lowered):
        return LongitudinalDecision.LEAD_OBSTACLE_FOLLOWING
    if intent == DECELERATE:
        return LongitudinalDecision.SPEED_ADAPTATION
    if intent in (MAINTAIN, ACCELERATE, None):
        return LongitudinalDecision.SET_SPEED_TRACKING
    return LongitudinalDecision.UNKNOWN
