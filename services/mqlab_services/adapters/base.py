"""The one small interface every broker adapter implements.

An adapter wraps one native client (pika, redis-py, kafka-python) for one
:class:`~mqlab_services.settings.Settings`. It is used from one thread::

    adapter.connect()                 # connect and declare the topology (idempotent)
    adapter.ping()                    # a real round trip; seconds
    key = adapter.key_for(seq)        # the routing/record key the mode gives message `seq`
    acks = adapter.publish(batch)     # [(body, key), ...] -> [ack_ns (an Acked) or None, ...]
    adapter.consume(handler, running, dead)  # until running() is False
    adapter.subscribed, adapter.assignment  # what the consumer reads, for its status file
    adapter.node                      # the node it reached (clusters), for its status file
    adapter.close()                   # never raises

Broker loss surfaces as one of ``adapter.errors``; the caller closes, backs off and
connects again. Configuration that retrying cannot fix raises BrokerConfigError.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

from ..settings import Settings

#: One outgoing message: the encoded envelope and its key from key_for() ("" for none).
Outgoing = tuple[bytes, str]

class Received(tuple):
    """One received message: ``(body, key)``, the key being the RabbitMQ routing key on a named
    exchange or the Kafka record key ("" when there is none).

    It unpacks as a pair; ``lane`` (an attribute, "" by default) says where the broker keeps
    order, for the ledger: ``p<N>`` for Kafka partition N, ``redelivered`` for a message that
    comes again (RabbitMQ redelivery or retry, a Redis entry taken up from the pending list),
    whose order nobody promises. Plain ``(body, key)`` tuples are accepted wherever a
    Received is, with no lane.
    """

    lane: str = ""

    def __new__(cls, body: bytes, key: str = "", lane: str = "") -> "Received":
        item = super().__new__(cls, (body, key))
        if lane:  # "" is the class's default: no instance dict to make, per message
            item.lane = lane
        return item


REDELIVERED = "redelivered"


class Acked(int):
    """publish()'s answer for a confirmed message: the time its confirm arrived (ns since the
    epoch), and ``pos``, where the broker put it, for reading it back from the log later
    (``p<partition>:<offset>`` for a Kafka record, the entry id of a Redis stream entry; ""
    where a broker gives no position, as a RabbitMQ queue). Plain ints are accepted wherever an
    Acked is, with no position."""

    pos: str = ""

    def __new__(cls, ack_ns: int, pos: str = "") -> "Acked":
        item = super().__new__(cls, ack_ns)
        if pos:
            item.pos = pos
        return item


def pos_of(ack) -> str:
    return getattr(ack, "pos", "")


def lane_of(item) -> str:
    return getattr(item, "lane", "")

#: Called with each batch of received messages (possibly empty when idle).
#: It returns, for each message in order, None when it was processed, or a one-line reason
#: why processing failed (returning None for the whole batch means all were processed).
#: The adapter acks or commits the processed ones; a failed one is tried again, up to
#: MQLAB_MAX_DELIVERIES attempts in all, and then dead-lettered (see DeadHandler).
#: When the handler raises, nothing in the batch is acked and the broker delivers it again.
Handler = Callable[[list[Received]], "list[str | None] | None"]

#: A message being dead-lettered: its body, key, the attempts made and the last reason.
Dead = tuple[bytes, str, int, str]

#: Called with the messages an adapter dead-lettered, after the dead-letter queue (stream,
#: topic) has them and before the originals are acked; returns once they are recorded.
DeadHandler = Callable[[list[Dead]], None]


class Rejected:
    """publish()'s answer for a message the client or the broker refused for good (too large).

    Not sent, not to be sent again; ``reason`` is the one-line explanation.
    """

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"Rejected({self.reason!r})"


def too_large(size: int, limit: int, whose: str = "client") -> str:
    """The one-line reason for a message above a size limit."""
    return f"message of {size} bytes is above the {whose} limit ({limit} bytes)"


def outcomes(result, n: int) -> list:
    """The handler's answer as one entry per message (None from the handler means all processed)."""
    if result is None:
        return [None] * n
    result = list(result)
    if len(result) != n:
        raise ValueError(f"handler returned {len(result)} outcomes for {n} messages")
    return result


def exhausted(attempts: int, max_deliveries: int) -> bool:
    """True when a message that failed its ``attempts``-th attempt is to be dead-lettered."""
    return attempts >= max_deliveries


def _no_dead(_items: list) -> None:
    pass


class BrokerConfigError(Exception):
    """The broker refused our topology or settings; retrying will not help."""


class Adapter(abc.ABC):
    """Base class: holds the settings and names the retryable errors."""

    #: Registry name, e.g. "rabbitmq".
    name: str = ""
    #: Exceptions that mean "the broker is gone or not there yet": reconnect.
    errors: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, settings: Settings):
        self.settings = settings
        #: True while consume() is really consuming (see status.py for what that means per broker).
        self.subscribed = False
        #: What this consumer reads: Kafka partition numbers, or one queue, group or channel name.
        self.assignment: list = []
        #: The broker node this client is connected to (a cluster's host name), "" when unknown.
        self.node = ""

    def key_for(self, seq: int) -> str:
        """The key the producer's message number ``seq`` is sent with; "" when the mode has none."""
        return ""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the connection and declare what this mode needs (queue, group, topic)."""

    @abc.abstractmethod
    def ping(self) -> float:
        """One round trip to the broker; returns its duration in seconds."""

    @abc.abstractmethod
    def publish(self, batch: Sequence[Outgoing]) -> list:
        """Send a batch and wait for the broker's confirms.

        Returns, for each message in order, the time (ns since epoch) its confirm
        arrived (an :class:`Acked` carrying where the broker put it, where it says), None when
        the broker did not confirm it (in time: send it again), or a :class:`Rejected` for a
        message that can never be sent (too large).
        Only confirmed messages may be recorded as sent.
        """

    @abc.abstractmethod
    def consume(self, handler: Handler, running: Callable[[], bool],
                dead: DeadHandler | None = None) -> None:
        """Deliver batches to ``handler`` and ack each after it returns, until ``running()`` is False.

        Messages the handler failed are retried and, after MQLAB_MAX_DELIVERIES attempts,
        put on the dead-letter queue, reported to ``dead`` and then acked.
        Returns at most about a second after ``running()`` turns False, having acked
        what the handler processed.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection; safe to call twice, after a failure, or before connect."""

    def lag(self) -> dict[int, int]:
        """A consumer's records behind the end of each partition it reads, from what its client
        already knows (no round trip); {} where the broker has no partitions (the backlog of a
        queue or stream is the broker's own metric)."""
        return {}

    def describe(self) -> str:
        """One line on what the current mode guarantees, for the start-up log."""
        return (self.__doc__ or self.name).strip().splitlines()[0]
