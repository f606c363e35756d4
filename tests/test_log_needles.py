"""Log lines are searched for many secrets at a cost that does not grow with their number,
and every secret is still found, wherever it sits in the line."""

from __future__ import annotations

import random
import string

import orjson
import pytest

from router.observability import logs
from router.observability.needles import SCAN_AT_MOST, SCAN_AT_MOST_SLICED, Needles


def _secrets(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "-_"
    return ["sk-" + "".join(rnd.choices(alphabet, k=rnd.randint(5, 45))) for _ in range(n)]


@pytest.mark.parametrize("count", [3, SCAN_AT_MOST + 1, 2_000])
def test_every_secret_is_masked_wherever_it_sits(count: int) -> None:
    secrets = _secrets(count, count)
    needles = Needles({s.encode() for s in secrets})
    rnd = random.Random(7)
    for secret in rnd.sample(secrets, min(count, 300)):
        head = "".join(rnd.choices('ab{}":, .', k=rnd.randint(0, 13)))
        line = orjson.dumps({"note": f"{head}{secret}{head}", "model": secret})
        masked = needles.replace(line, b"***")
        assert secret.encode() not in masked and masked.count(b"***") == 2


def test_longest_first_and_unrelated_text_untouched() -> None:
    secrets = {s.encode() for s in _secrets(100, 1)} | {b"sk-abcdefgh", b"sk-abcdefghijkl"}
    needles = Needles(secrets)
    assert needles.replace(b'{"k":"x sk-abcdefghijkl y"}', b"***") == b'{"k":"x *** y"}'
    line = b'{"event":"access","status":200,"path":"/v1/chat/completions"}'
    assert needles.replace(line, b"***") is line


def test_short_needles_are_refused() -> None:
    with pytest.raises(ValueError):
        Needles({b"short"})


def test_mask_with_thousands_of_secrets() -> None:
    secrets = _secrets(3_000, 3)
    logs.register_secrets(secrets)
    try:
        text = f"upstream said: bad key {secrets[1234]}, try {secrets[17]}."
        assert logs.mask(text) == "upstream said: bad key ***, try ***."
    finally:
        logs.register_secrets([])


@pytest.mark.parametrize("shortest", [8, 12, 16, 30])
def test_a_longer_stride_for_long_secrets_still_finds_each_at_every_offset(shortest: int) -> None:
    """Secrets all at least `shortest` long let the line be cut into fewer pieces; each is
    still found at every offset of the line."""
    rnd = random.Random(shortest)
    alphabet = string.ascii_letters + string.digits
    secrets = [
        "".join(rnd.choices(alphabet, k=rnd.randint(shortest, shortest + 30)))
        for _ in range(SCAN_AT_MOST_SLICED * 3)
    ]
    needles = Needles({s.encode() for s in secrets})
    for offset in range(14):
        for secret in rnd.sample(secrets, 20):
            line = ("x" * offset + secret + "y" * offset).encode()
            assert needles.replace(line, b"***") == b"x" * offset + b"***" + b"y" * offset


@pytest.mark.parametrize("shortest", [9, 15, 40])
def test_lines_of_every_length_find_a_secret_at_every_position(shortest: int) -> None:
    """A line of bytes is cut into pieces by one unpack whose layout depends on the line's
    length; a text line by slices. Both find a secret wherever it sits, in lines of every
    length, the shortest and the ones a piece short of the next cut included."""
    rnd = random.Random(shortest)
    secrets = ["".join(rnd.choices(string.ascii_letters, k=shortest)) for _ in range(40)]
    as_bytes = Needles({s.encode() for s in secrets})
    as_text = Needles(set(secrets))
    secret = secrets[7]
    for length in range(shortest, shortest + 60):
        for at in range(length - shortest + 1):
            line = "." * at + secret + "," * (length - shortest - at)
            expected = "." * at + "***" + "," * (length - shortest - at)
            assert as_text.replace(line, "***") == expected
            assert as_bytes.replace(line.encode(), b"***") == expected.encode()
    assert as_bytes.replace(b"", b"***") == b"" and as_bytes.replace(b"abcd", b"***") == b"abcd"
    for at in (0, 1, 2_500, 4_990 - shortest):  # a line longer than any kept layout
        line = "." * at + secret + "," * (5_000 - shortest - at)
        assert secret.encode() not in as_bytes.replace(line.encode(), b"***")
