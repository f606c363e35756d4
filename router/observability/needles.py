"""Searching a log line for many secrets at a cost that does not grow with their number.

Every log line is searched for every configured secret. One `find` per secret is the
quickest way for a few, but a config of 10,000 client keys read from the environment has
5,000 secrets or more, and 5,000 searches cost about 2 ms a line: ten times a request's own
CPU. Past `SCAN_AT_MOST` secrets a line is instead cut into `GRAM`-character pieces every
`STRIDE` characters (about 90 for an access-log line) and those are looked up, all at once,
among the pieces that start each secret's first `STRIDE` characters: only the secrets one of
them belongs to are searched for.

Why that finds every secret: a secret of at least `SHORTEST` characters at position p covers
a position q that is a multiple of `STRIDE` with q - p < `STRIDE`, and the `GRAM` characters
from q lie inside it (`STRIDE - 1 + GRAM <= SHORTEST`), so the line's piece at q is the
secret's piece at offset q - p, which is indexed.
"""

from __future__ import annotations

from typing import AnyStr, Generic

from router.observability.redaction import MIN_FREE_TEXT

SHORTEST = MIN_FREE_TEXT  # every needle is at least this long
STRIDE = 4
GRAM = SHORTEST - STRIDE + 1
SCAN_AT_MOST = 64  # up to this many needles, one `find` each is quicker (cutting costs ~60)


class Needles(Generic[AnyStr]):
    """Strings to replace in text, longest first, all at least `SHORTEST` long."""

    __slots__ = ("_index", "needles")

    def __init__(self, needles: set[AnyStr] | frozenset[AnyStr]) -> None:
        if any(len(n) < SHORTEST for n in needles):
            raise ValueError(f"needles shorter than {SHORTEST} characters")
        self.needles: tuple[AnyStr, ...] = tuple(sorted(needles, key=len, reverse=True))
        # Per piece: the ranks (in `needles`) of the needles it starts one of the first
        # STRIDE pieces of; empty when there are few enough needles to search one by one.
        self._index: dict[AnyStr, tuple[int, ...]] = {}
        if len(self.needles) > SCAN_AT_MOST:
            index: dict[AnyStr, list[int]] = {}
            for rank, needle in enumerate(self.needles):
                for offset in range(STRIDE):
                    ranks = index.setdefault(needle[offset : offset + GRAM], [])
                    if not ranks or ranks[-1] != rank:
                        ranks.append(rank)
            self._index = {piece: tuple(ranks) for piece, ranks in index.items()}

    def __len__(self) -> int:
        return len(self.needles)

    def replace(self, text: AnyStr, mask: AnyStr) -> AnyStr:
        """`text` with every needle in it replaced by `mask`, the longest needles first."""
        if not self._index:
            for needle in self.needles:
                if text.find(needle) != -1:  # (`in` on bytes first tries an int needle)
                    text = text.replace(needle, mask)
            return text
        pieces = self._index.keys() & {
            text[i : i + GRAM] for i in range(0, len(text) - GRAM + 1, STRIDE)
        }
        if not pieces:
            return text
        ranks = sorted({rank for piece in pieces for rank in self._index[piece]})
        for rank in ranks:
            needle = self.needles[rank]
            if text.find(needle) != -1:
                text = text.replace(needle, mask)
        return text
