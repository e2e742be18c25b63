import pytest

from mqlab.modes import MODES, topic_matches


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


def test_every_mode_has_a_kind_and_a_guarantee():
    for (broker, name), mode in MODES.items():
        assert mode.kind in ("competing", "fanout", "routed"), name
        assert mode.guarantee and broker in ("rabbitmq", "redis", "kafka")
    # lossy modes are named as such
    assert not MODES[("redis", "pubsub")].safe and not MODES[("rabbitmq", "autoack")].safe
