"""Scenarios are pure functions of their seed and put their event around the sample time."""

from __future__ import annotations

import collections

import pytest

from alpamayo_ros.core.contract import HISTORY_POSES
from alpamayo_ros.world.scenarios import (
    INTERACTIVE_TYPES,
    SCENARIO_TYPES,
    ScenarioError,
    make_scenario,
)


def test_types() -> None:
    assert len(SCENARIO_TYPES) == 9 and "free_road" in SCENARIO_TYPES
    assert set(INTERACTIVE_TYPES) == set(SCENARIO_TYPES) - {"free_road"}


@pytest.mark.parametrize("scenario_type", SCENARIO_TYPES)
def test_same_seed_same_scenario(scenario_type: str) -> None:
    assert make_scenario(7, scenario_type) == make_scenario(7, scenario_type)
    assert make_scenario(7, scenario_type) != make_scenario(8, scenario_type)


def test_type_drawn_from_the_seed_is_reproducible() -> None:
    drawn = [make_scenario(seed) for seed in range(90)]
    for scenario in drawn[:10]:
        assert scenario == make_scenario(scenario.seed, scenario.scenario_type)
    counts = collections.Counter(scenario.scenario_type for scenario in drawn)
    assert set(counts) == set(SCENARIO_TYPES)


@pytest.mark.parametrize("scenario_type", SCENARIO_TYPES)
def test_scenarios_are_well_formed(scenario_type: str) -> None:
    for seed in range(15):
        scenario = make_scenario(seed, scenario_type)
        assert scenario.scenario_type == scenario_type
        assert scenario.road.has_lane(scenario.ego_lane)
        assert 10.0 <= scenario.set_speed <= 15.0
        assert scenario.sample_step >= HISTORY_POSES
        assert scenario.steps == scenario.sample_step + 64
        ids = [agent.agent_id for agent in scenario.agents]
        assert len(ids) == len(set(ids))
        assert all(agent_id.rsplit("_", 1)[1].isdigit() for agent_id in ids)


def test_choices_follow_visible_structure() -> None:
    for seed in range(30):
        stopped = make_scenario(seed, "stopped_vehicle")
        if stopped.variant == "lane_change":
            assert stopped.road.has_lane(stopped.ego_lane + 1)
        if stopped.variant == "no_left_lane":
            assert not stopped.road.has_lane(stopped.ego_lane + 1)
        cut_in = make_scenario(seed, "cut_in")
        assert cut_in.road.lane_count >= 2
        assert any(agent.lane_change is not None for agent in cut_in.agents)
        light = make_scenario(seed, "traffic_light")
        assert light.road.intersection is not None and len(light.lights) == 1


def test_bad_requests() -> None:
    with pytest.raises(ScenarioError):
        make_scenario(1, "flying")
    with pytest.raises(ScenarioError):
        make_scenario(-1)
