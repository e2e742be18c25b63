"""What the two Kafka adapters share, free of either client library.

``kafka.py`` (kafka-python) and ``kafka_confluent.py`` (confluent-kafka) import this module;
it imports neither client, so choosing one client never loads the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .base import DeadHandler, Handler, Outgoing, Rejected, outcomes

CONFIRM_TIMEOUT = 30.0  # seconds to wait for a batch's acks; above the clients' delivery timeout
RETRY_PAUSE = 0.2  # seconds before a failed record is tried again (times the attempt number)
RECONNECT_BACKOFF_MAX_MS = 5_000  # a broker that is back is found within seconds, not 30 s


class Stopping(Exception):
    """Stopped while retrying a failed record: return without committing the poll."""


def bootstrap_servers(settings) -> list[str]:
    url = settings.url.split("://", 1)[-1]  # tolerate kafka://host:port
    return [server.strip() for server in url.split(",") if server.strip()]


def broker_rejects(sizes: list[int], indexes: list[int]) -> list[int]:
    """Of the records that failed with MESSAGE_TOO_LARGE, those to count as too large: the largest."""
    largest = max(sizes, default=0)
    return [index for index, size in zip(indexes, sizes) if size == largest]


def settle_too_large(acks: list, batch: Sequence[Outgoing], too_big: list[int], code: str) -> bool:
    """After a flush: reject the largest of the records the broker refused as too large (the
    error fails the records queued behind the culprit too; those stay unconfirmed, to be sent
    again). True when there were any: a refused batch leaves a gap in the idempotent
    producer's sequence, so the caller starts a new producer."""
    for index in broker_rejects([len(batch[i][0]) for i in too_big], too_big):
        acks[index] = Rejected(f"message of {len(batch[index][0])} bytes is above the broker limit ({code})")
    return bool(too_big)


def dead_headers(reason: str, attempts: int, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """The headers of a record produced to the dead-letter topic."""
    return [("mqlab-reason", reason.encode("utf-8", "replace")), ("mqlab-attempts", str(attempts).encode()),
            ("mqlab-topic", topic.encode()), ("mqlab-partition", str(partition).encode()),
            ("mqlab-offset", str(offset).encode())]


def record_key(settings, seq: int) -> str:
    """The ``keyed`` mode's record key for message ``seq``; "" (no key) in the other modes."""
    return f"key-{seq % settings.keys}" if settings.mode == "keyed" else ""


def describe_mode(settings) -> str:
    """One line on what the mode guarantees, for the start-up log."""
    s = settings
    if s.mode == "txn":
        return (f"topic {s.topic}, group {s.group}: transactional producer (acks=all, idempotent); the consumer "
                f"reads read_committed and writes each poll's results to {s.output} and commits its offsets "
                "in one transaction")
    if s.safe:
        what = {"group": f"group {s.group}, competing consumers",
                "fanout": f"a group per subscriber ({s.subscriber_group}) from the latest offset",
                "keyed": f"group {s.group}, {s.keys} record keys, ordered per key"}[s.mode]
        return f"topic {s.topic}, {what}: acks=all, idempotent producer, commit after processing"
    if s.consumer_safe:
        return (f"topic {s.topic}, group {s.group}: LOSSY acks=1 (the leader alone; no idempotence), "
                "commit after processing")
    return f"topic {s.topic}, group {s.group}: LOSSY acks=1, offsets auto-committed every second"


def _failures(results, count: int) -> list[tuple[int, str]]:
    """The (index, reason) of each failure among the handler's ``results`` for ``count`` records."""
    return [(i, reason) for i, reason in enumerate(outcomes(results, count)) if reason is not None]


def retry_failed(handler: Handler, batch, results, max_deliveries: int,
                 running: Callable[[], bool]) -> tuple[list[tuple[int, str]], int]:
    """Give the records of ``batch`` the handler failed to it again, up to ``max_deliveries`` attempts.

    Returns the (index, reason) of those that still fail, to dead-letter, and the attempts made.
    Raises Stopping when stopped before the last attempt: the poll is left uncommitted.
    """
    failed = _failures(results, len(batch))
    attempts = 1
    while failed and attempts < max_deliveries and running():
        attempts += 1
        time.sleep(RETRY_PAUSE * attempts)
        again = _failures(handler([batch[i] for i, _r in failed]), len(failed))
        failed = [(failed[j][0], reason) for j, reason in again]
    if failed and attempts < max_deliveries:
        raise Stopping()
    return failed, attempts




def retry_then_dead_letter(settings, handler: Handler, dead: DeadHandler, batch, results,
                           running: Callable[[], bool],
                           produce_dead: Callable[[list[tuple[int, str]], int], None]) -> None:
    """The failed records of a poll: tried again up to MQLAB_MAX_DELIVERIES attempts, then those
    that still fail go to the dead-letter topic through ``produce_dead(failed, attempts)`` (which
    raises when the topic did not take them: then the poll is not committed, and is read again),
    and only then are they recorded as dead."""
    failed, attempts = retry_failed(handler, batch, results, settings.max_deliveries, running)
    if failed:
        produce_dead(failed, attempts)
        dead([(*batch[i], attempts, reason) for i, reason in failed])
