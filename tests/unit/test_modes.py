import itertools
import random

import pytest

from mqlab.modes import KINDS, MODES, default_mode, mode_info, topic_matches
from tests.conftest import ROOT


@pytest.mark.parametrize("pattern,key,expected", [
    ("#", "orders.eu", True),
    ("#", "", True),
    ("orders.*", "orders.eu", True),
    ("orders.*", "orders.eu.x", False),
    ("orders.#", "orders", True),
    ("orders.#", "orders.eu.x", True),
    ("*.eu", "audit.eu", True),
    ("*.eu", "eu", False),
    ("audit.eu", "audit.us", False),
    ("#.eu", "a.b.eu", True),
])
def test_topic_matches(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


def backtracking_topic_matches(pattern: str, key: str) -> bool:
    """The first topic_matches: plainly right, and exponential in the count of '#'."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        head, rest = p[0], p[1:]
        if head == "#":
            return any(match(rest, k[i:]) for i in range(len(k) + 1))
        return bool(k) and (head == "*" or head == k[0]) and match(rest, k[1:])

    return match(pattern.split("."), key.split(".") if key else [])


def test_topic_matches_agrees_with_backtracking_on_every_short_pattern_and_key():
    """Every pattern of up to four words and key of up to four, empty words included: '#' at
    the start, in the middle, at the end and twice in a row (``#.#``)."""
    patterns = [".".join(p) for n in range(1, 5) for p in itertools.product(["a", "b", "*", "#", ""], repeat=n)]
    keys = [""] + [".".join(k) for n in range(1, 5) for k in itertools.product(["a", "b", ""], repeat=n)]
    assert {"#.#", "#.a", "a.#.b", "a.#", ".#.", "*.#.*"} <= set(patterns) and {".", "a..b"} <= set(keys)
    disagree = [(p, k) for p in patterns for k in keys if topic_matches(p, k) != backtracking_topic_matches(p, k)]
    assert disagree == []


def test_topic_matches_agrees_with_backtracking_on_longer_random_ones():
    rng = random.Random(19)
    checked = {True: 0, False: 0}
    for _ in range(3000):
        key = ".".join(rng.choice(["a", "b", "c", ""]) for _ in range(rng.randint(0, 10)))
        pattern = ".".join(rng.choice(["a", "b", "*", "#", "#", ""]) for _ in range(rng.randint(1, 8)))
        expected = backtracking_topic_matches(pattern, key)
        assert topic_matches(pattern, key) is expected, (pattern, key)
        checked[expected] += 1
    assert min(checked.values()) > 300  # both answers are tried often


@pytest.mark.timeout(30)
def test_topic_matches_does_not_backtrack_on_many_hashes():
    """Seven '#' and 200 words: about 10**12 splits to try for the backtracking version."""
    key = ".".join(["a"] * 200)
    assert topic_matches("#.#.#.#.#.#.#.x", key) is False
    assert topic_matches("#.#.#.#.#.#.#.x", key + ".x") is True
    assert topic_matches("#.*.#.a.#.*.#.*.#", key) is True
    assert topic_matches("*." * 199 + "*", key) is True
    assert topic_matches("*." * 200 + "#", key) is True
    assert topic_matches("*." * 201 + "#", key) is False


def _readme_mode_rows() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    start = text.index("| stack | mode | kind | safe |")
    table = text[start:text.index("\n\n", start)].splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in row.strip("|").split("|")))) for row in table[2:]]


def test_the_readme_mode_table_says_what_the_code_does():
    rows = _readme_mode_rows()
    assert [(r["stack"], r["mode"]) for r in rows] == [
        (m.broker, f"`{m.name}`" + (" (default)" if default_mode(m.broker) == m else "")) for m in MODES]
    for row, mode in zip(rows, MODES):
        assert row["kind"] == mode.kind and mode.kind in KINDS
        assert row["safe"] == ("safe" if mode.safe else "**lossy**")
        assert row["delivery guarantee"] == mode.guarantee
        assert row["order promised"] == mode.order
        assert row["dead letters"] == (f"`{mode.dead_letter}`" if mode.dead_letter else "dropped (lost)")
        assert row["under a failover (clusters)"] == (mode.failover or "–")


def test_a_lossy_counterpart_is_a_lossy_mode_of_the_same_broker():
    for mode in MODES:
        counterpart = mode_info(mode.broker, mode.lossy) if mode.lossy else None
        assert (counterpart is None) is (not mode.safe), mode
        assert counterpart is None or not counterpart.safe
