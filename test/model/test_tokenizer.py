"""Word tokenizer: round trip, specials, unknown words, fixed length."""

from __future__ import annotations

import pytest

from alpamayo_ros.core.text import join_words, split_words
from alpamayo_ros.model.tokenizer import SPECIALS, Tokenizer

TEXT = "Slow down because a pedestrian is crossing, ahead."


def test_split_and_join_round_trip() -> None:
    words = split_words(TEXT)
    assert words[:2] == ["slow", "down"] and "," in words and words[-1] == "."
    assert join_words(words) == TEXT


def test_encode_decode_with_padding_and_unknown_words() -> None:
    tokenizer = Tokenizer.from_words(split_words(TEXT))
    ids = tokenizer.encode(TEXT, 16)
    assert len(ids) == 16 and ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.pad_id
    assert tokenizer.decode(ids) == TEXT
    unknown = tokenizer.encode("Slow down for the llama.", 10)
    assert tokenizer.unk_id in unknown
    assert tokenizer.decode(unknown).startswith("Slow down <unk>")


def test_long_text_is_cut_but_keeps_its_end_marker() -> None:
    tokenizer = Tokenizer.from_words(split_words(TEXT))
    ids = tokenizer.encode(TEXT, 5)
    assert ids == [tokenizer.bos_id, *ids[1:4], tokenizer.eos_id]


def test_vocabulary_must_start_with_the_specials() -> None:
    assert Tokenizer.from_words(["b", "a"]).vocabulary == (*SPECIALS, "a", "b")
    with pytest.raises(ValueError, match="must start with"):
        Tokenizer(("a", "b"))
