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


def test_a_lossy_counterpart_is_a_lossy_mode_of_the_same_broker():
    for mode in MODES:
        counterpart = mode_info(mode.broker, mode.lossy) if mode.lossy else None
        assert (counterpart is None) is (not mode.safe), mode
        assert counterpart is None or not counterpart.safe
