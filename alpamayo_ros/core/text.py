"""How reasoning text is split into words and joined back.

Shared by the text generator, the rule parser of stated behaviour and the model's
tokenizer, so a sentence means the same words to all three.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PUNCTUATION = frozenset(".,;:!?")
_WORD = re.compile(r"[a-z0-9']+|[.,;:!?]")


def split_words(text: str) -> list[str]:
    """Lower-case words and punctuation marks, in order (other symbols are dropped)."""
    return _WORD.findall(text.lower())


def join_words(words: Iterable[str]) -> str:
    """Inverse of split_words up to capitalisation: a sentence with its first letter upper."""
    text = ""
    for word in words:
        text += word if not text or word in PUNCTUATION else " " + word
    return text[:1].upper() + text[1:]
