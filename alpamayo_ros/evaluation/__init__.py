"""Offline evaluation of backends on synthetic scenarios (open-loop metrics)."""
