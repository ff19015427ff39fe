"""What Python 3.11 added that the package uses, for Python 3.10: ROS 2 Humble and JetPack 6
(Ubuntu 22.04) run 3.10, and the pure layers must run there (test/test_python310.py)."""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:

    class StrEnum(str, Enum):
        """enum.StrEnum: members are strings, and print as their value."""

        def __str__(self) -> str:
            return str(self.value)


__all__ = ["StrEnum"]
