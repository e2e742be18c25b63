"""Kafka adapter (kafka-python >= 3.0.12).

Modes (all but ``autocommit`` use acks=all, the idempotent producer and commits after processing):
- ``group`` (safe, default): competing consumers. The producer uses ``acks=all`` and the
  idempotent producer (``enable_idempotence=True``: broker-side de-duplication of the
  producer's own retries), and a message counts as sent only when its send future
  succeeded. Consumers share the group ``MQLAB_GROUP`` (``mqlab``; new groups start at the
  earliest offset), with auto-commit off, commit the records of each poll only after the
  handler processed them, and commit again when partitions are revoked in a rebalance. A
  consumer that dies before the commit leaves its records to be read again by whoever gets
  the partition; one stopped with SIGTERM leaves the group at once, so the others take over
  its partitions without waiting for its session to time out.
- ``fanout`` (safe for each subscriber from its start): like ``group``, but each consumer is
  alone in its own group ``<MQLAB_GROUP>.<name>``, starting at the latest offset: every
  subscriber gets every record produced after it subscribed (status ``subscribed``).
- ``keyed`` (safe, ordered per key): like ``group``, but message ``seq`` has the record key
  ``key-<seq % MQLAB_KEYS>``, so all records of a key go to one partition and arrive in
  order. Receipts carry the key.
- ``autocommit`` (lossy): ``acks=1`` without idempotence, and offsets auto-committed every
  second in the background, whether or not the records were processed. A consumer that
  dies loses what was committed but not processed; a leader failure loses what was acked
  by the leader alone.

Failed records and dead-lettering: records of a poll that the handler failed are given
to it again at once, with a short pause, up to ``MQLAB_MAX_DELIVERIES`` attempts in all;
those that still fail are produced to the topic ``MQLAB_DLQ`` (``datascience.dlq``, created
like the main topic) with ``acks=all``, the same key and value and the headers
``mqlab-reason``, ``mqlab-attempts``, ``mqlab-topic``, ``mqlab-partition`` and
``mqlab-offset``; only when the dead-letter topic acked them is the poll committed past
them. A consumer that dies meanwhile leaves the poll uncommitted: it is read again, and
the attempts start over.

Oversized records: ``max_request_size`` is ``MQLAB_MAX_MESSAGE_BYTES`` (1 MiB). A record
the client refuses (MessageSizeTooLargeError) or the broker refuses (MESSAGE_TOO_LARGE,
above its ``message.max.bytes``) is reported as rejected, not sent again; after a broker
refusal the producer is replaced, so its sequence numbers start clean.

Connect with ``MQLAB_URL=host:port[,host:port...]`` (the bootstrap servers; inside the lab's
compose network ``kafka:19092``, from the host ``localhost:9092``).

Options:
- ``MQLAB_TOPIC``: ``datascience``, created if missing with ``MQLAB_PARTITIONS`` (3) partitions
  and ``MQLAB_REPLICATION`` (1) replicas; an existing topic is used as it is.
- ``MQLAB_GROUP``: the shared consumer group, and the prefix of the per-subscriber ones.
- ``MQLAB_KEYS``: how many record keys ``keyed`` uses (8).
- ``MQLAB_BATCH``: records per send/flush round and per poll/commit.
- ``MQLAB_DLQ``, ``MQLAB_MAX_DELIVERIES``, ``MQLAB_MAX_MESSAGE_BYTES``: see above.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import kafka.errors
from kafka import AsyncConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from .base import Acked, Adapter, BrokerConfigError, DeadHandler, Handler, Outgoing, Received, Rejected, _no_dead, too_large
from .kafka_common import (CONFIRM_TIMEOUT, RECONNECT_BACKOFF_MAX_MS, Stopping, bootstrap_servers, dead_headers,
                           describe_mode, record_key, retry_then_dead_letter, settle_too_large)

log = logging.getLogger("mqlab")

POLL_MS = 500  # consumer poll wait; also how quickly a stop request is seen
CLOSE_TIMEOUT_MS = 5_000  # leaving the group on close: a minimal effort, never a long wait
TOPIC_ALREADY_EXISTS = kafka.errors.TopicAlreadyExistsError.errno


def producer_config(settings) -> dict:
    safe = settings.safe
    return {
        "bootstrap_servers": bootstrap_servers(settings),
        "client_id": f"mqlab-{settings.name}",
        "acks": "all" if safe else 1,
        "enable_idempotence": safe,
        "linger_ms": 5,
        "max_block_ms": 10_000,  # fail a send fast when there is no metadata (broker away)
        "request_timeout_ms": 15_000,
        "delivery_timeout_ms": 25_000,
        "bootstrap_timeout_ms": 10_000,
        "max_request_size": settings.max_message_bytes,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }


def consumer_config(settings) -> dict:
    return {
        "bootstrap_servers": bootstrap_servers(settings),
        "client_id": f"mqlab-{settings.name}",
        "group_id": settings.subscriber_group,
        # txn: records of aborted transactions, and of open ones, are never read.
        "isolation_level": "read_committed" if settings.info.transactional else "read_uncommitted",
        "enable_auto_commit": not settings.consumer_safe,
        "auto_commit_interval_ms": 1000,
        "auto_offset_reset": "latest" if settings.fanout else "earliest",
        "max_poll_records": settings.batch,
        # A consumer that dies without leaving the group holds its partitions this long
        # (heartbeats come from the client's I/O thread, so slow processing does not count).
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,  # also how soon a member notices a rebalance to join
        # Also the rebalance timeout: how long a rebalance waits for every member to rejoin.
        # Our polls are at most a batch apart, so 30 s instead of 5 minutes means a stuck
        # member holds up scaling for 30 s at worst.
        "max_poll_interval_ms": 30_000,
        "bootstrap_timeout_ms": 10_000,
        "request_timeout_ms": 30_000,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }


def topic_spec(settings, topic: str | None = None) -> dict:
    """The argument for KafkaAdminClient.create_topics (the main topic unless ``topic``)."""
    return {topic or settings.topic: {"num_partitions": settings.partitions,
                                      "replication_factor": settings.replication}}


class KafkaAdapter(Adapter):
    """Kafka with acks=all, an idempotent producer and commits after processing."""

    name = "kafka"
    errors = (kafka.errors.KafkaError, OSError)

    def __init__(self, settings):
        super().__init__(settings)
        self._admin = None
        self._producer = None
        self._consumer = None
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}  # processed, not committed
        self._assigned: set[TopicPartition] | None = None  # a new assignment, positions unknown
        self._next: dict[TopicPartition, int] = {}  # the offset after the last record read, for lag()

    def describe(self) -> str:
        return describe_mode(self.settings)

    def key_for(self, seq: int) -> str:
        return record_key(self.settings, seq)

    def connect(self) -> None:
        self.close()
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers(self.settings),
                                       client_id=f"mqlab-{self.settings.name}-admin",
                                       request_timeout_ms=10_000,
                                       # Fail an attempt quickly; the services retry with back-off.
                                       bootstrap_timeout_ms=5_000)
        self._ensure_topic()

    def _ensure_topic(self) -> None:
        s = self.settings
        existing = self._admin.list_topics()
        for name in (s.topic, s.dlq, *((s.output,) if s.info.transactional else ())):
            if name in existing:
                continue
            result = self._admin.create_topics(topic_spec(s, name), raise_errors=False, wait_for_metadata=True)
            for topic in result["topics"]:
                code = topic.get("error_code", 0)
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise BrokerConfigError(f"cannot create topic {name!r}: error {code} "
                                            f"{topic.get('error_message') or ''}".strip())
            log.info("created topic %s with %d partitions", name, s.partitions)
        partitions = self._partition_count()
        if partitions < s.partitions:
            log.info("topic %s has %d partition(s), fewer than MQLAB_PARTITIONS=%d: fewer consumers "
                     "can share the work", s.topic, partitions, s.partitions)

    def _partition_count(self) -> int:
        for topic in self._admin.describe_topics([self.settings.topic]):
            if topic.get("name") == self.settings.topic:
                return len(topic.get("partitions") or [])
        return 0

    def ping(self) -> float:
        started = time.perf_counter()
        self._admin.describe_cluster()
        return time.perf_counter() - started

    def publish(self, batch: Sequence[Outgoing]) -> list:
        if self._producer is None:
            self._producer = KafkaProducer(**producer_config(self.settings))
        acks: list = [None] * len(batch)
        limit = self.settings.max_message_bytes

        def acked(index, metadata):  # runs on the producer's I/O thread
            acks[index] = Acked(time.time_ns(), f"p{metadata.partition}:{metadata.offset}")

        too_big: list[int] = []

        def failed(index, exc):
            if isinstance(exc, kafka.errors.MessageSizeTooLargeError):
                too_big.append(index)

        for index, (body, key) in enumerate(batch):
            try:
                future = self._producer.send(self.settings.topic, value=body, key=key.encode() if key else None)
            except kafka.errors.MessageSizeTooLargeError:
                # Refused before sending: the record with its overhead is above max_request_size.
                acks[index] = Rejected(too_large(len(body), limit))
                continue
            future.add_callback(acked, index)
            future.add_errback(failed, index)
        # flush() raises KafkaTimeoutError when the broker does not answer in time. The caller
        # then reconnects with a new producer and sends the unconfirmed messages again: a
        # producer whose requests hung (a paused broker, say) was seen never to recover.
        self._producer.flush(timeout=CONFIRM_TIMEOUT)
        if settle_too_large(acks, batch, too_big, "MESSAGE_TOO_LARGE"):
            producer, self._producer = self._producer, None
            _close_producer(producer)
        return acks

    def consume(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler | None = None) -> None:
        if self._consumer is None:
            self._subscribe()
        outage = _Outage(self.settings.backoff_max)
        while running():
            records = self._poll(outage)
            if records is None:
                continue
            for tp, partition in records.items():
                self._next[tp] = partition[-1].offset + 1
            flat = [r for partition in records.values() for r in partition]
            batch = _received(flat)
            try:
                retry_then_dead_letter(self.settings, handler, dead or _no_dead, batch, handler(batch), running,
                                       lambda failed, attempts: self._produce_dead(flat, batch, failed, attempts))
            except Stopping:
                return
            if batch and self.settings.consumer_safe:
                self._commit(records, outage)

    def _subscribe(self) -> None:
        self._consumer = KafkaConsumer(**consumer_config(self.settings))
        self._consumer.subscribe([self.settings.topic], listener=_Rebalance(self))

    def _poll(self, outage: _Outage) -> dict | None:
        """The records of a poll by partition, or None after an error that the client rides out."""
        try:
            records = self._consumer.poll(timeout_ms=POLL_MS, max_records=self.settings.batch)
            self._settle_assignment()
        except kafka.errors.KafkaError as exc:
            # Keep this consumer: the client reconnects by itself and keeps its group
            # membership. A new consumer would instead wait for the old member's session
            # to expire before it got any partition.
            outage.failed(exc, "poll")
            return None
        outage.recovered()
        return records

    def _commit(self, records: dict, outage: _Outage) -> None:
        """Commit past the processed ``records`` of a poll (and what earlier commits left)."""
        for tp, partition in records.items():
            self._uncommitted[tp] = OffsetAndMetadata(partition[-1].offset + 1, "", -1)
        try:
            self._consumer.commit(dict(self._uncommitted))
            self._uncommitted.clear()
        except kafka.errors.CommitFailedError as exc:
            # The group rebalanced: the partitions' new owner reads these records again.
            log.info("commit failed after a rebalance (%s); records will be redelivered", exc)
            self._uncommitted.clear()
        except kafka.errors.KafkaError as exc:
            # These records were processed; the next successful commit covers them.
            outage.failed(exc, "commit")

    def _produce_dead(self, records, batch, failed: list[tuple[int, str]], attempts: int) -> None:
        """Produce ``failed`` records to the dead-letter topic; raise unless it acked them all."""
        s = self.settings
        if self._producer is None:
            self._producer = KafkaProducer(**producer_config(s.replace(mode="group")))
        futures = []
        for i, reason in failed:
            r = records[i]
            futures.append(self._producer.send(s.dlq, value=batch[i][0], key=r.key,
                                               headers=dead_headers(reason, attempts, r.topic, r.partition, r.offset)))
        self._producer.flush(timeout=CONFIRM_TIMEOUT)
        for future in futures:
            future.get(timeout=0)  # raises when the dead-letter topic did not take it: no commit

    def _settle_assignment(self) -> None:
        """After a (re)assignment: know every position, then count as subscribed.

        In ``fanout`` the latest offset is looked up here, so a record produced after the status
        file says ``subscribed`` is one this consumer will read.
        """
        if self._assigned is None:
            return
        self._assigned = None
        assigned = self._consumer.assignment()
        for tp in assigned:
            self._consumer.position(tp, timeout_ms=10_000)
        self.assignment = sorted(tp.partition for tp in assigned)
        self.subscribed = True

    def lag(self) -> dict[int, int]:
        """The last fetch's high watermark less the offset after the last record read, per assigned
        partition that this consumer has read from (``position()`` could block on a fetch)."""
        consumer = self._consumer
        if consumer is None or not self.subscribed:
            return {}
        behind = {}
        for tp in consumer.assignment():
            high, read = consumer.highwater(tp), self._next.get(tp)
            if high is not None and read is not None:
                behind[tp.partition] = max(0, high - read)
        return behind

    def close(self) -> None:
        admin, producer, consumer = self._admin, self._producer, self._consumer
        self._admin = self._producer = self._consumer = None
        self.subscribed, self._assigned = False, None
        self._uncommitted.clear()
        self._next.clear()
        # close() sends LeaveGroup: the group rebalances now, not after the session timeout.
        for closer in (lambda: consumer.close(autocommit=not self.settings.consumer_safe,
                                              timeout_ms=CLOSE_TIMEOUT_MS) if consumer else None,
                       lambda: _close_producer(producer) if producer else None,
                       lambda: admin.close() if admin else None):
            try:
                closer()
            except Exception:  # closing a broken connection; nothing left to save
                pass


def _close_producer(producer: KafkaProducer) -> None:
    """Close, abandoning records still in flight (the caller sends them again)."""
    try:
        producer.close(timeout=0)
    except kafka.errors.KafkaTimeoutError:
        # kafka-python's close() flushes first and raises while records are in flight, leaving
        # its I/O thread running and a second failing close() for the garbage collector. Stop
        # the thread and mark the producer closed ourselves.
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()  # private (kafka-python 3.0; pinned <3.1 in pyproject.toml)
        producer._closed = True


def _received(records: list) -> list[Received]:
    return [Received(r.value if r.value is not None else b"", r.key.decode("utf-8", "replace") if r.key else "",
                     f"p{r.partition}") for r in records]


class _Rebalance(AsyncConsumerRebalanceListener):
    """Commits what was processed before partitions go; notes new assignments.

    Async because kafka-python 3 calls listeners on its I/O thread, where the blocking
    commit() would fail; awaiting the coordinator's commit keeps heartbeats going.
    """

    def __init__(self, adapter: KafkaAdapter):
        self.adapter = adapter

    async def on_partitions_revoked(self, revoked):
        adapter = self.adapter
        offsets = {tp: om for tp, om in adapter._uncommitted.items() if tp in revoked}
        if offsets and adapter._consumer is not None:
            try:
                # Private (kafka-python 3.0; pinned <3.1 in pyproject.toml): the blocking commit() fails here.
                await adapter._consumer._coordinator._commit_offsets_sync_async(offsets, CLOSE_TIMEOUT_MS)
                for tp in offsets:
                    adapter._uncommitted.pop(tp, None)
            except kafka.errors.KafkaError as exc:
                log.info("commit on revoke failed (%s); records will be redelivered", exc)
        adapter.assignment = [p for p in adapter.assignment
                              if TopicPartition(adapter.settings.topic, p) not in revoked]

    async def on_partitions_assigned(self, assigned):
        self.adapter._assigned = set(assigned)

    async def on_partitions_lost(self, lost):
        # Taken away (session expired): no commit is possible; the new owners read them again.
        for tp in lost:
            self.adapter._uncommitted.pop(tp, None)


class _Outage:
    """Rides out retriable client errors with back-off, logging the start and the end once."""

    def __init__(self, backoff_max: float):
        self.backoff_max = backoff_max
        self.delay = 0.0

    def failed(self, exc: Exception, what: str) -> None:
        if not getattr(exc, "retriable", False):
            raise exc
        if not self.delay:
            log.info("%s failed: %s; the client keeps retrying", what, exc)
        # Short naps: the client does the real reconnect back-off, and a stop must be seen soon.
        self.delay = min(max(0.25, self.delay * 2), self.backoff_max, 2.0)
        time.sleep(self.delay)

    def recovered(self) -> None:
        if self.delay:
            log.info("broker reachable again")
            self.delay = 0.0
