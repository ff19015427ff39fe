"""The double's `Alpamayo1_5`: R1's double under 1.5's name."""

from __future__ import annotations

from alpamayo_r1.models.alpamayo_r1 import AlpamayoR1


class Alpamayo1_5(AlpamayoR1):
    pass
