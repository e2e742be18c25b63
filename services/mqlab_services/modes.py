"""Every delivery mode, defined once. The services run them; the host judges them.

One row per (broker, mode), read by the services (``Settings.safe``, ``Settings.fanout``),
by ``invoke verify`` (how a run is judged, which order it promises, whether a message
that kept failing was dead-lettered or dropped), by ``invoke bench`` (the lossy
counterpart of a safe mode) and by the README's mode table (a unit test compares them).
The first mode of each broker is its default. Standard library only: the services image
imports it.

Kinds:

- ``competing``: consumers share the work; every acked message is due once to the group.
- ``fanout``: every subscriber gets every message published while it was subscribed.
- ``routed``: a message is due to the consumers whose binding matches its routing key.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("competing", "fanout", "routed")


@dataclass(frozen=True)
class Mode:
    broker: str
    name: str
    kind: str  # competing | fanout | routed
    safe: bool  # nothing the broker confirmed is lost, even across broker restarts
    durable: bool  # messages wait for consumers that are not there yet, and survive a restart
    order: str  # the order promised, in words: per queue, per partition, per key...
    # Where `verify` holds the mode to that order: "partition" (within each Kafka partition),
    # "subscriber" (each subscriber's own queue, group or subscription), "single consumer"
    # (the shared queue or stream, when one consumer reads it).
    order_scope: str
    guarantee: str
    lossy: str  # the same client without the safety, for `invoke bench` ("" in a lossy mode)
    dead_letter: str  # where a message that keeps failing goes ("" when it is dropped)
    replicated: bool = False  # needs a replicated stack (its acks wait for replicas)
    # Where the loss is, in a lossy mode whose other side is safe: "producer" (acks that do not
    # wait for the replicas; the consumer still commits after processing). "" means `safe`
    # holds for both sides.
    lossy_at: str = ""
    # What holds when a replicated stack loses its leader or primary (a failover), where that
    # differs from one node: what the proof measured (README "What the proof can see").
    failover: str = ""
    # Kafka transactions (``txn``): the producer writes each batch in a transaction, and the
    # consumer is a consume-transform-produce stage whose output and input offsets commit together.
    transactional: bool = False

    @property
    def fanout(self) -> bool:
        return self.kind == "fanout"


MODES: tuple[Mode, ...] = (
    Mode("rabbitmq", "work", "competing", True, True, "per queue, with a single consumer", "single consumer",
         "at-least-once: durable queue, persistent messages, publisher confirms, ack after processing",
         "autoack", "mailbox.dead"),
    Mode("rabbitmq", "quorum", "competing", True, True, "per queue, with a single consumer", "single consumer",
         "at-least-once: a quorum queue (Raft), persistent messages, publisher confirms once a majority "
         "of the nodes has the message, ack after processing",
         "autoack", "mailbox.dead"),
    Mode("rabbitmq", "fanout", "fanout", True, False, "per subscriber queue, with one consumer each", "subscriber",
         "at-least-once to each subscriber connected when the message is published",
         "autoack", "mailbox.dead"),
    Mode("rabbitmq", "topic", "routed", True, True, "per queue, with a single consumer", "single consumer",
         "at-least-once to each binding's durable queue once a consumer declared it; keys no binding "
         "matches are dropped",
         "autoack", "mailbox.dead"),
    Mode("rabbitmq", "stream", "competing", True, True, "per stream, with the single active consumer",
         "single consumer",
         "at-least-once from a log: a stream queue (replicated on a cluster), persistent messages, publisher "
         "confirms; read with the stream protocol from the offset the broker stored for the group, stored again "
         "after processing; one active consumer at a time",
         "autoack", "mailbox.dead"),
    Mode("rabbitmq", "transient", "competing", False, False, "per queue, with a single consumer", "single consumer",
         "confirmed and acked, but the messages are transient (in a durable queue, so no deprecated feature "
         "is used): a broker restart loses every queued one",
         "", "mailbox.dead"),
    Mode("rabbitmq", "autoack", "competing", False, True, "per queue, with a single consumer", "single consumer",
         "at-most-once: the broker forgets a message as it is sent; a consumer crash loses it",
         "", ""),
    Mode("redis", "stream", "competing", True, True, "per stream, with a single consumer", "single consumer",
         "at-least-once: consumer group, XACK after processing, stuck entries reclaimed (XPENDING + XCLAIM)",
         "pubsub", "chatroom.stream.dead",
         failover="lossy under Sentinel: the primary acks before any replica has the entry, so the writes an "
                  "old primary took while cut off from its replicas are gone from the log after the failover"),
    Mode("redis", "stream-fanout", "fanout", True, False, "per subscriber", "subscriber",
         "at-least-once to each subscriber, from the moment it created its group",
         "pubsub", "chatroom.stream.dead"),
    Mode("redis", "stream-wait", "competing", False, True, "per stream, with a single consumer", "single consumer",
         "acked once the primary and one replica have the entry (WAIT 1, min-replicas-to-write 1); "
         "replication is asynchronous, so a failover can still lose acked entries: measured, not hidden",
         "", "chatroom.stream.dead", replicated=True,
         failover="no acked entry gone from the log in the measured failovers; WAIT narrows the window, "
                  "it does not close it (Redis documents that it is not strongly consistent)"),
    Mode("redis", "pubsub", "fanout", False, False, "per subscriber", "subscriber",
         "at-most-once: nothing is stored; a subscriber that is not connected misses the message",
         "", ""),
    Mode("kafka", "group", "competing", True, True, "per partition", "partition",
         "at-least-once: acks=all, idempotent producer, commit after processing",
         "autocommit", "datascience.dlq"),
    Mode("kafka", "fanout", "fanout", True, False, "per partition, for each subscriber", "partition",
         "at-least-once to each subscriber (one group each), from the moment it joined",
         "autocommit", "datascience.dlq"),
    Mode("kafka", "keyed", "competing", True, True, "per key", "partition",
         "at-least-once, and messages with the same key arrive in the order sent",
         "autocommit", "datascience.dlq"),
    Mode("kafka", "autocommit", "competing", False, True, "per partition", "partition",
         "at-most-once in effect: offsets are committed on a timer, before processing finishes",
         "", "datascience.dlq"),
    Mode("kafka", "txn", "competing", True, True, "per partition", "partition",
         "exactly-once processing, as Kafka means it: a transactional producer, and a consume-transform-produce "
         "stage that reads read_committed and writes each result to datascience.out with its input offsets in "
         "the same transaction; judged on the output topic, read read_committed",
         "autocommit", "datascience.dlq", transactional=True,
         failover="exactly once in the output topic under the measured faults; the stage's own receipts are a "
                  "side effect outside the transaction, so they can repeat"),
    Mode("kafka", "leader-ack", "competing", False, True, "per partition", "partition",
         "acks=1: the leader acks before its followers have the record, no idempotence; the consumer "
         "commits after processing. A leader cut off from its followers acks writes its successor never had",
         "", "datascience.dlq", lossy_at="producer",
         failover="lossy: records an old leader acked while cut off are truncated from its log"),
)

BROKERS: tuple[str, ...] = tuple(dict.fromkeys(m.broker for m in MODES))

_BY_KEY = {(m.broker, m.name): m for m in MODES}


def modes_of(broker: str) -> tuple[Mode, ...]:
    """The modes of ``broker``, the default first."""
    return tuple(m for m in MODES if m.broker == broker)


def names_of(broker: str) -> tuple[str, ...]:
    return tuple(m.name for m in modes_of(broker))


def default_mode(broker: str) -> Mode:
    return modes_of(broker)[0]


def mode_info(broker: str, name: str) -> Mode | None:
    return _BY_KEY.get((broker, name))
