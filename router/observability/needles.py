"""Searching a log line for many secrets at a cost that does not grow with their number.

Every log line is searched for every configured secret. One `find` per secret is the
quickest way for a dozen, but a config of 10,000 client keys read from the environment has
5,000 secrets or more, and 5,000 searches cost about 2 ms a line: ten times a request's own
CPU. Past `SCAN_AT_MOST` secrets a line is instead cut into `GRAM`-character pieces every
`stride` characters and those are looked up, all at once, among the pieces that start each
secret's first `stride` characters: only the secrets one of them belongs to are searched for.
The stride is as long as the shortest secret allows (at most `MAX_STRIDE`): real keys are
long, and a line cut every 12 characters costs a third of one cut every 4. A line of bytes is
cut by one `struct` unpack (a layout of "5 bytes, skip 6" repeated, one per line length), not
a loop of slices: 1.2 us instead of 6-10 us for an access-log line of 530 bytes, which made
the search of 10,000 secrets cost five times the search of ten.

Why that finds every secret: a secret of at least `GRAM + stride - 1` characters at position
p covers a position q that is a multiple of the stride with q - p < stride, and the `GRAM`
characters from q lie inside it, so the line's piece at q is the secret's piece at offset
q - p, which is indexed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any, AnyStr, Generic

from router.observability.redaction import MIN_FREE_TEXT

SHORTEST = MIN_FREE_TEXT  # every needle is at least this long
GRAM = 5  # characters of a piece: `SHORTEST` allows a stride of 4 at least
MAX_STRIDE = 12  # (each secret is indexed under this many pieces at most)
# Up to this many needles, one `find` each is quicker than cutting the line: 12 when a line
# is cut by `struct` (about 2.4 us for a 530-byte line, 12 finds), 64 when by slices.
SCAN_AT_MOST = 12
SCAN_AT_MOST_SLICED = 64
# Lines of up to this many pieces (about 3 KB) are cut by `struct`: a layout per count, kept,
# so a few hundred of them at most (2 MB); longer lines, rare, are cut by slices.
CUT_AT_MOST = 256


class Needles(Generic[AnyStr]):
    """Strings to replace in text, longest first, all at least `SHORTEST` long."""

    __slots__ = ("_cutters", "_index", "_stride", "needles")

    def __init__(self, needles: set[AnyStr] | frozenset[AnyStr]) -> None:
        if any(len(n) < SHORTEST for n in needles):
            raise ValueError(f"needles shorter than {SHORTEST} characters")
        self.needles: tuple[AnyStr, ...] = tuple(sorted(needles, key=len, reverse=True))
        # Per piece: the ranks (in `needles`) of the needles it starts one of the first
        # STRIDE pieces of; empty when there are few enough needles to search one by one.
        self._index: dict[AnyStr, tuple[int, ...]] = {}
        self._stride = stride = min(MAX_STRIDE, len(self.needles[-1]) - GRAM + 1) if needles else 1
        if len(self.needles) > (SCAN_AT_MOST if stride >= GRAM else SCAN_AT_MOST_SLICED):
            index: dict[AnyStr, Any] = {}
            for rank, needle in enumerate(self.needles):
                for offset in range(stride):
                    ranks = index.setdefault(needle[offset : offset + GRAM], [])
                    if not ranks or ranks[-1] != rank:
                        ranks.append(rank)
            # Each list becomes a tuple in place, freed as it is replaced: a new dict would
            # leave the old one's hundreds of thousands of lists to free at once (20-40 ms
            # holding the interpreter, for 10,000 secrets, while a reload builds them).
            for piece, ranks in index.items():
                index[piece] = tuple(ranks)
            self._index = index
        # Per count of pieces: the unpacker that cuts a line of bytes into them (`_pieces`).
        self._cutters: dict[int, Callable[[bytes], tuple[bytes, ...]]] = {}

    def __len__(self) -> int:
        return len(self.needles)

    def replace(self, text: AnyStr, mask: AnyStr) -> AnyStr:
        """`text` with every needle in it replaced by `mask`, the longest needles first."""
        if not self._index:
            for needle in self.needles:
                if text.find(needle) != -1:  # (`in` on bytes first tries an int needle)
                    text = text.replace(needle, mask)
            return text
        pieces = self._index.keys() & self._pieces(text)
        if not pieces:
            return text
        ranks = sorted({rank for piece in pieces for rank in self._index[piece]})
        for rank in ranks:
            needle = self.needles[rank]
            if text.find(needle) != -1:
                text = text.replace(needle, mask)
        return text

    def _pieces(self, text: AnyStr) -> Iterable[AnyStr]:
        """The `GRAM`-character pieces of `text` that start every `stride` characters."""
        stride, count = self._stride, (len(text) - GRAM) // self._stride + 1
        if count <= 0:
            return ()
        if isinstance(text, bytes) and stride >= GRAM and count <= CUT_AT_MOST:
            cut = self._cutters.get(count)
            if cut is None:
                layout = f"{GRAM}s{stride - GRAM}x" * (count - 1) + f"{GRAM}s"
                cut = self._cutters[count] = struct.Struct(layout).unpack_from
            return cut(text)  # type: ignore[return-value]  # (`keys() &` takes any iterable)
        return {text[i : i + GRAM] for i in range(0, count * stride, stride)}
