"""Synthetic driving world with causal ground truth (no ROS imports).

road (geometry) -> agents (scripted behaviour) -> scenarios (seeded situations) -> expert
(rule-based driver: controls + intents) -> simulation (closed loop, hindsight decisions) ->
renderer (AR1 camera rig) -> dataset (AR1-contract samples, live WorldSimulation);
reasoning_text holds the Chain-of-Causation templates, tokenizer and rule parser.
"""
