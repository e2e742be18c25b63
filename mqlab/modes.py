"""What each delivery mode promises, for `verify`, the README table and the tests.

The services own the mode names (``mqlab_services.settings.MODES``); this table says
how the ledger must judge a run in each of them.

- ``competing``: consumers share the work; every acked message is due once to the group.
- ``fanout``: every subscriber gets every message published while it was subscribed.
- ``routed``: a message is due to the consumers whose binding matches its routing key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    broker: str
    name: str
    kind: str  # competing | fanout | routed
    safe: bool  # nothing acked is lost, even across broker restarts
    durable: bool  # messages wait for consumers that are not there yet, and survive a restart
    order: str  # what order is promised, in words ("" for none)
    guarantee: str


MODES: dict[tuple[str, str], Mode] = {
    (m.broker, m.name): m
    for m in (
        Mode("rabbitmq", "work", "competing", True, True, "per queue, with a single consumer",
             "at-least-once: durable queue, persistent messages, publisher confirms, ack after processing"),
        Mode("rabbitmq", "fanout", "fanout", True, False, "per subscriber queue, with one consumer each",
             "at-least-once to each subscriber connected when the message is published"),
        Mode("rabbitmq", "topic", "routed", True, True, "per queue, with a single consumer",
             "at-least-once to each binding's durable queue once a consumer declared it; keys no binding matches are dropped"),
        Mode("rabbitmq", "transient", "competing", False, False, "per queue, with a single consumer",
             "confirmed and acked, but the messages are transient: a broker restart loses every queued one"),
        Mode("rabbitmq", "autoack", "competing", False, True, "per queue, with a single consumer",
             "at-most-once: the broker forgets a message as it is sent; a consumer crash loses it"),
        Mode("redis", "stream", "competing", True, True, "per stream, with a single consumer",
             "at-least-once: consumer group, XACK after processing, stuck entries reclaimed (XPENDING + XCLAIM)"),
        Mode("redis", "stream-fanout", "fanout", True, False, "per subscriber",
             "at-least-once to each subscriber, from the moment it created its group"),
        Mode("redis", "pubsub", "fanout", False, False, "per subscriber",
             "at-most-once: nothing is stored; a subscriber that is not connected misses the message"),
        Mode("kafka", "group", "competing", True, True, "per partition",
             "at-least-once: acks=all, idempotent producer, commit after processing"),
        Mode("kafka", "fanout", "fanout", True, False, "per partition, for each subscriber",
             "at-least-once to each subscriber (one group each), from the moment it joined"),
        Mode("kafka", "keyed", "competing", True, True, "per key",
             "at-least-once, and messages with the same key arrive in the order sent"),
        Mode("kafka", "autocommit", "competing", False, True, "per partition",
             "at-most-once in effect: offsets are committed on a timer, before processing finishes"),
    )
}


def mode_info(broker: str, name: str) -> Mode | None:
    return MODES.get((broker, name))


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: words split on '.', '*' is one word, '#' is zero or more."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        head, rest = p[0], p[1:]
        if head == "#":
            return any(match(rest, k[i:]) for i in range(len(k) + 1))
        return bool(k) and (head == "*" or head == k[0]) and match(rest, k[1:])

    return match(pattern.split("."), key.split(".") if key else [])
