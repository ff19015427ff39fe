"""Deterministic, non-default instances of every alpamayo_ros_msgs type.

Filled from rosidl introspection, so a field added to a .msg file is covered by the
round-trip tests without editing them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

MSG_DIR = Path(__file__).resolve().parents[2] / "msg"
INTERFACE_NAMES = sorted(path.stem for path in MSG_DIR.glob("*.msg"))

_PRIMITIVES = {
    "boolean": lambda seed: seed % 2 == 1,
    "byte": lambda seed: bytes([seed % 256]),
    "char": lambda seed: seed % 128,
    "float": lambda seed: seed + 0.25,
    "double": lambda seed: seed + 0.125,
    "octet": lambda seed: bytes([seed % 256]),
    "string": lambda seed: f"text-{seed}",
}


def interface_class(name: str) -> type:
    return getattr(importlib.import_module("alpamayo_ros_msgs.msg"), name)


def _value(type_name: str, seed: int) -> object:
    if type_name in _PRIMITIVES:
        return _PRIMITIVES[type_name](seed)
    if type_name.startswith(("int", "uint")):
        return seed % (127 if type_name.endswith("8") else 30000)
    if type_name.startswith("sequence<") or type_name.endswith("]"):
        inner = type_name.removeprefix("sequence<").split(">")[0].split(",")[0].split("[")[0]
        return [_value(inner, seed + i) for i in range(2)]
    if type_name.startswith("string<"):
        return f"t{seed}"
    package, name = type_name.split("/")
    module = importlib.import_module(f"{package}.msg")
    return filled(getattr(module, name)(), seed + 1)


def filled(msg: object, seed: int = 1) -> object:
    """`msg` with every field set to a value derived from `seed` and the field's position."""
    for offset, (field, type_name) in enumerate(msg.get_fields_and_field_types().items()):
        value = _value(type_name, seed + offset)
        if field == "nanosec":
            value = (seed * 7919) % 1_000_000_000
        setattr(msg, field, value)
    return msg


def sample(name: str, seed: int = 1) -> object:
    return filled(interface_class(name)(), seed)
