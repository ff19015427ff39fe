"""Word-level tokenizer of Chain-of-Causation text.

The reasoning vocabulary of a driving model is small and closed, so whole words are the
natural tokens: short sequences, cheap autoregressive decoding on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from alpamayo_ros.core.text import join_words, split_words

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


class Tokenizer:
    def __init__(self, vocabulary: Sequence[str]) -> None:
        """`vocabulary` starts with the special tokens, as stored in the model config."""
        if tuple(vocabulary[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}")
        self.vocabulary = tuple(vocabulary)
        self._ids = {word: index for index, word in enumerate(self.vocabulary)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(len(SPECIALS))

    @classmethod
    def from_words(cls, words: Iterable[str]) -> Tokenizer:
        return cls((*SPECIALS, *sorted(set(words) - set(SPECIALS))))

    def __len__(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str, length: int) -> list[int]:
        """<bos> words <eos>, padded or cut to `length` ids."""
        ids = [self.bos_id, *(self._ids.get(w, self.unk_id) for w in split_words(text))]
        ids = [*ids[: length - 1], self.eos_id]
        return ids + [self.pad_id] * (length - len(ids))

    def decode(self, ids: Iterable[int]) -> str:
        words = []
        for index in ids:
            if index == self.eos_id:
                break
            if index not in (self.bos_id, self.pad_id):
                words.append(self.vocabulary[index])
        return join_words(words)
