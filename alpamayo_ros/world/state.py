"""One immutable snapshot of the synthetic world: what the expert reacts to and cameras see."""

from __future__ import annotations

from dataclasses import dataclass

from alpamayo_ros.world.agents import AgentState, LightState, Rgb
from alpamayo_ros.world.road import Road


@dataclass(frozen=True)
class Appearance:
    """Colours of the static scene, varied per scenario so a model cannot key on one shade."""

    sky_top: Rgb = (110, 160, 220)
    sky_horizon: Rgb = (190, 210, 235)
    ground: Rgb = (90, 125, 70)
    asphalt: Rgb = (75, 75, 80)
    marking: Rgb = (235, 235, 225)


@dataclass(frozen=True)
class WorldState:
    time: float  # s since the scenario started
    road: Road
    agents: tuple[AgentState, ...]
    lights: tuple[LightState, ...] = ()
    appearance: Appearance = Appearance()

    def agent(self, agent_id: str) -> AgentState | None:
        for agent in self.agents:
            if agent.agent_id == agent_id:
                return agent
        return None

    def light(self, light_id: str) -> LightState | None:
        for light in self.lights:
            if light.light_id == light_id:
                return light
        return None
