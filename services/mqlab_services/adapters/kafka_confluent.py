"""Kafka adapter on confluent-kafka >= 2.6 (librdkafka), chosen with MQLAB_KAFKA_CLIENT=confluent-kafka.

The same modes, topics and guarantees as the kafka-python adapter (``kafka.py``, the default);
only the client differs, and librdkafka's C core sends and fetches much faster.

Modes (all but ``autocommit`` use acks=all, the idempotent producer and commits after processing):
- ``group`` (safe, default): competing consumers. The producer uses ``acks=all`` and
  ``enable.idempotence=true``, and a message counts as sent only when its delivery report
  succeeded. Consumers share the group ``MQLAB_GROUP`` (``mqlab``; new groups start at the
  earliest offset) with ``enable.auto.commit=false``, commit the offsets of each batch
  (synchronously) only after the handler processed it, and commit again when partitions are
  revoked in a rebalance. A consumer stopped with SIGTERM leaves the group at once.
- ``fanout`` (safe for each subscriber from its start): like ``group``, but each consumer is
  alone in its own group ``<MQLAB_GROUP>.<name>``, starting at the latest offset, which is
  looked up when the partitions are assigned, before the status says ``subscribed``.
- ``keyed`` (safe, ordered per key): like ``group``, with the record key
  ``key-<seq % MQLAB_KEYS>``, so all records of a key go to one partition, in order.
- ``autocommit`` (lossy): ``acks=1`` without idempotence, and offsets auto-committed every
  second in the background, whether or not the records were processed.

Each batch is produced, then ``flush()`` waits (up to CONFIRM_TIMEOUT) for every delivery
report. Consumers wait up to half a second for a first record, then take what else has
arrived, up to ``MQLAB_BATCH``, without waiting to fill the batch.

Failed records are handled as in ``kafka.py``: tried again up to ``MQLAB_MAX_DELIVERIES``
attempts, then produced to ``MQLAB_DLQ`` with the same headers (``mqlab-reason``,
``mqlab-attempts``, ``mqlab-topic``, ``mqlab-partition``, ``mqlab-offset``), and committed
only once the dead-letter topic acked them.

Oversized records: ``message.max.bytes`` is ``MQLAB_MAX_MESSAGE_BYTES`` (at least librdkafka's
minimum, 1000). A record the client refuses, or the broker refuses (both MSG_SIZE_TOO_LARGE),
is reported as rejected, not sent again; after a broker refusal the producer is replaced.

Errors: the adapter raises KafkaException when the broker cannot be reached (an admin
request or a delivery that timed out while all brokers were down), on a fatal client error,
or when a batch got no delivery reports in time; the caller reconnects. A consumer rides out
an outage with the same consumer, as librdkafka reconnects and keeps its group membership.

Connect with ``MQLAB_URL=host:port[,host:port...]`` (the bootstrap servers, as for kafka-python).

Options: ``MQLAB_TOPIC`` (created if missing with ``MQLAB_PARTITIONS`` and ``MQLAB_REPLICATION``),
``MQLAB_GROUP``, ``MQLAB_KEYS``, ``MQLAB_BATCH``, ``MQLAB_DLQ``, ``MQLAB_MAX_DELIVERIES`` and
``MQLAB_MAX_MESSAGE_BYTES``, as in ``kafka.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .base import Acked, Adapter, BrokerConfigError, DeadHandler, Handler, Outgoing, Received, Rejected, _no_dead, too_large
from .kafka_common import (CONFIRM_TIMEOUT, RECONNECT_BACKOFF_MAX_MS, Stopping, bootstrap_servers, dead_headers,
                           describe_mode, record_key, retry_then_dead_letter, settle_too_large)

log = logging.getLogger("mqlab")

POLL_S = 0.5  # wait for a first record; also how quickly a stop request is seen
ADMIN_TIMEOUT = 10.0  # seconds for an admin request (list, create, describe)
CONNECT_TIMEOUT = 5.0  # the first request of connect(): fail an attempt quickly; the services retry
LOG_LEVEL = 2  # librdkafka logs only critical lines (syslog levels); our own lines tell the story
MIN_MESSAGE_MAX_BYTES = 1000  # librdkafka's lower bound for message.max.bytes

#: Error codes of a broker that is away or busy for now: wait, retry or reconnect.
TRANSIENT = frozenset({
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT, KafkaError._RESOLVE,
    KafkaError._MSG_TIMED_OUT, KafkaError._WAIT_COORD, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.NOT_CONTROLLER, KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION, KafkaError._PARTITION_EOF,
})
#: Commit errors after which the partitions' new owners read the records again.
REBALANCED = frozenset({KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID,
                        KafkaError.REBALANCE_IN_PROGRESS, KafkaError._ASSIGNMENT_LOST,
                        KafkaError._STATE, KafkaError.FENCED_INSTANCE_ID})


def transient(err: KafkaError) -> bool:
    return not err.fatal() and (err.retriable() or err.code() in TRANSIENT)


def _common(settings) -> dict:
    return {"bootstrap.servers": ",".join(bootstrap_servers(settings)),
            "client.id": f"mqlab-{settings.name}",
            "reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
            "log_level": LOG_LEVEL}


def producer_config(settings) -> dict:
    safe = settings.safe
    return {
        **_common(settings),
        "acks": "all" if safe else 1,
        "enable.idempotence": safe,
        "linger.ms": 5,
        "request.timeout.ms": 15_000,
        "message.timeout.ms": 25_000,  # a delivery report within CONFIRM_TIMEOUT, failed if need be
        "message.max.bytes": max(settings.max_message_bytes, MIN_MESSAGE_MAX_BYTES),
    }


def consumer_config(settings) -> dict:
    return {
        **_common(settings),
        "group.id": settings.subscriber_group,
        # txn: records of aborted transactions, and of open ones, are never read.
        "isolation.level": "read_committed" if settings.info.transactional else "read_uncommitted",
        "enable.auto.commit": not settings.consumer_safe,
        "auto.commit.interval.ms": 1000,
        "auto.offset.reset": "latest" if settings.fanout else "earliest",
        # As in kafka.py: a dead member holds its partitions 10 s; a rebalance waits 30 s at most.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "max.poll.interval.ms": 30_000,
    }


def admin_config(settings) -> dict:
    return {**_common(settings), "client.id": f"mqlab-{settings.name}-admin"}


def _received(messages: list) -> list[Received]:
    return [Received(m.value() or b"", m.key().decode("utf-8", "replace") if m.key() else "", f"p{m.partition()}")
            for m in messages]


def _error(exc: KafkaException) -> KafkaError:
    err = exc.args[0] if exc.args else None
    return err if isinstance(err, KafkaError) else KafkaError(KafkaError._FAIL, str(exc))


class ConfluentKafkaAdapter(Adapter):
    """Kafka on confluent-kafka (librdkafka): acks=all, an idempotent producer, commits after processing."""

    name = "kafka"
    errors = (KafkaException, OSError)

    def __init__(self, settings):
        super().__init__(settings)
        self._admin: AdminClient | None = None
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._uncommitted: dict[tuple[str, int], int] = {}  # processed, not committed: next offsets
        self._fatal: KafkaError | None = None  # from error_cb: the client is unusable
        self._all_down: KafkaError | None = None  # from error_cb: no broker reachable
        self._outage = False

    def describe(self) -> str:
        return describe_mode(self.settings) + " (confluent-kafka)"

    def key_for(self, seq: int) -> str:
        return record_key(self.settings, seq)

    # ------------------------------------------------------------------ set-up

    def _on_error(self, err: KafkaError) -> None:  # served by poll/consume/flush on this thread
        if err.fatal():
            self._fatal = err
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._all_down = err

    def _client(self, cls, config: dict):
        try:
            return cls(config)
        except KafkaException as exc:  # a setting librdkafka refuses: retrying will not help
            raise BrokerConfigError(f"confluent-kafka refused the settings: {_error(exc).str()}") from None

    def connect(self) -> None:
        self.close()
        self._admin = self._client(AdminClient, admin_config(self.settings))
        self._ensure_topic()

    def _ensure_topic(self) -> None:
        s = self.settings
        existing = self._admin.list_topics(timeout=CONNECT_TIMEOUT).topics
        wanted = (s.topic, s.dlq, *((s.output,) if s.info.transactional else ()))
        missing = [name for name in dict.fromkeys(wanted) if name not in existing]
        if missing:
            self._create_topics(missing)
        topics = self._await_topics(missing)
        partitions = len(topics[s.topic].partitions) if s.topic in topics else 0
        if partitions < s.partitions:
            log.info("topic %s has %d partition(s), fewer than MQLAB_PARTITIONS=%d: fewer consumers "
                     "can share the work", s.topic, partitions, s.partitions)

    def _create_topics(self, names: list[str]) -> None:
        s = self.settings
        futures = self._admin.create_topics([NewTopic(name, s.partitions, s.replication) for name in names],
                                            request_timeout=ADMIN_TIMEOUT)
        for name, future in futures.items():
            try:
                future.result()
                log.info("created topic %s with %d partitions", name, s.partitions)
            except KafkaException as exc:
                err = _error(exc)
                if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                if transient(err):
                    raise
                raise BrokerConfigError(f"cannot create topic {name!r}: {err.name()} {err.str()}") from None

    def _await_topics(self, names: list[str]) -> dict:
        """The topics' metadata once ``names`` are in it with their partitions, or after ADMIN_TIMEOUT."""
        deadline = time.monotonic() + ADMIN_TIMEOUT
        while True:
            topics = self._admin.list_topics(timeout=ADMIN_TIMEOUT).topics
            if all(name in topics and topics[name].partitions for name in names) or time.monotonic() > deadline:
                return topics
            time.sleep(0.1)

    def ping(self) -> float:
        started = time.perf_counter()
        self._admin.describe_cluster(request_timeout=ADMIN_TIMEOUT).result()
        return time.perf_counter() - started

    # ------------------------------------------------------------------ producing

    def _new_producer(self, settings, topic: str) -> Producer:
        producer = self._client(Producer, {**producer_config(settings), "error_cb": self._on_error})
        # Connect now, not with the first batch (kafka-python bootstraps in its constructor).
        producer.list_topics(topic=topic, timeout=ADMIN_TIMEOUT)
        return producer

    def _produce(self, topic: str, value: bytes, key: bytes | None, on_delivery, headers=None) -> None:
        deadline = None  # set on the first full queue only: this runs once per message
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:  # the local queue is full (MQLAB_BATCH above 100,000): make room
                deadline = deadline or time.monotonic() + CONFIRM_TIMEOUT
                if time.monotonic() > deadline:
                    raise KafkaException(KafkaError(KafkaError._QUEUE_FULL, "local produce queue full")) from None
                self._producer.poll(0.1)

    def _flush(self, unconfirmed: Callable[[], bool]) -> None:
        """Wait for every delivery report; raise KafkaException for a broker that is gone or a dead client."""
        left = self._producer.flush(CONFIRM_TIMEOUT)
        problem = self._fatal or (self._all_down if unconfirmed() else None)
        if left and problem is None:
            problem = KafkaError(KafkaError._TIMED_OUT, f"{left} message(s) without a delivery report "
                                                        f"after {CONFIRM_TIMEOUT:g}s")
        if problem is not None:
            raise KafkaException(problem)

    def publish(self, batch: Sequence[Outgoing]) -> list:
        if self._producer is None:
            self._producer = self._new_producer(self.settings, self.settings.topic)
        acks: list = [None] * len(batch)
        too_big: list[int] = []
        limit = self.settings.max_message_bytes
        self._all_down = None

        def report(index: int, err: KafkaError | None, msg) -> None:
            if err is None:
                acks[index] = Acked(time.time_ns(), f"p{msg.partition()}:{msg.offset()}")
            elif err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                too_big.append(index)

        for index, (body, key) in enumerate(batch):
            try:
                self._produce(self.settings.topic, body, key.encode() if key else None,
                              lambda err, msg, index=index: report(index, err, msg))
            except KafkaException as exc:
                if _error(exc).code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    raise
                acks[index] = Rejected(too_large(len(body), limit))  # refused before sending
        self._flush(lambda: any(ack is None for ack in acks))
        if settle_too_large(acks, batch, too_big, "MSG_SIZE_TOO_LARGE"):
            producer, self._producer = self._producer, None
            _drop_producer(producer)
        return acks

    # ------------------------------------------------------------------ consuming

    def consume(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler | None = None) -> None:
        if self._consumer is None:
            self._subscribe()
        while running():
            records = self._poll()
            batch = _received(records)
            try:
                retry_then_dead_letter(self.settings, handler, dead or _no_dead, batch, handler(batch), running,
                                       lambda failed, attempts: self._produce_dead(records, batch, failed, attempts))
            except Stopping:
                return
            if records and self.settings.consumer_safe:
                self._commit(records)

    def _subscribe(self) -> None:
        self._consumer = self._client(Consumer, {**consumer_config(self.settings), "error_cb": self._on_error})
        self._consumer.subscribe([self.settings.topic], on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_lost)

    def _poll(self) -> list:
        """The records that arrived (see _take); an outage is logged and ridden out, a fatal error raised."""
        records = []
        for message in self._take():
            err = message.error()
            if err is None:
                records.append(message)
            elif transient(err):
                self._down("poll", err)
            else:
                raise KafkaException(err)
        if self._fatal is not None:
            raise KafkaException(self._fatal)
        if self._all_down is not None:
            self._down("poll", self._all_down)
            self._all_down = None
        elif records:
            self._up()
        return records

    def _take(self) -> list:
        """What has arrived, up to MQLAB_BATCH: waits up to POLL_S for the first record only.

        (``consume(num_messages=N, timeout=T)`` waits until N records came or T passed, which at
        a low rate would hold every record back up to T.)
        """
        first = self._consumer.consume(num_messages=1, timeout=POLL_S)
        if not first or self.settings.batch == 1:
            return first
        return first + self._consumer.consume(num_messages=self.settings.batch - 1, timeout=0)

    def _commit(self, records: list) -> None:
        """Commit past the processed ``records`` (and what earlier commits left)."""
        for m in records:
            self._uncommitted[(m.topic(), m.partition())] = m.offset() + 1
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in self._uncommitted.items()]
        try:
            result = self._consumer.commit(offsets=offsets, asynchronous=False) or []
            err = next((tp.error for tp in result if tp.error is not None), None)
            if err is not None:
                raise KafkaException(err)
            self._uncommitted.clear()
        except KafkaException as exc:
            err = _error(exc)
            if err.code() in REBALANCED:
                log.info("commit failed after a rebalance (%s); records will be redelivered", err.str())
                self._uncommitted.clear()
            elif transient(err):
                self._down("commit", err)  # these records were processed; the next commit covers them
            else:
                raise

    def _produce_dead(self, records, batch, failed: list[tuple[int, str]], attempts: int) -> None:
        """Produce ``failed`` records to the dead-letter topic; raise unless it took them all."""
        s = self.settings
        if self._producer is None:
            self._producer = self._new_producer(s.replace(mode="group"), s.dlq)
        errors: list = [None] * len(failed)
        for n, (i, reason) in enumerate(failed):
            m = records[i]
            errors[n] = KafkaError(KafkaError._TIMED_OUT, "no delivery report")
            self._produce(s.dlq, batch[i][0], m.key(),
                          lambda err, _msg, n=n: errors.__setitem__(n, err),
                          headers=dead_headers(reason, attempts, m.topic(), m.partition(), m.offset()))
        self._all_down = None
        self._flush(lambda: any(e is not None for e in errors))
        err = next((e for e in errors if e is not None), None)
        if err is not None:  # the dead-letter topic did not take them: no commit, read again
            raise KafkaException(err)

    def lag(self) -> dict[int, int]:
        """The cached high watermark less this consumer's position, per assigned partition."""
        consumer = self._consumer
        if consumer is None or not self.subscribed:
            return {}
        behind = {}
        for tp in consumer.position(consumer.assignment()):
            high = consumer.get_watermark_offsets(tp, cached=True)[1]
            if tp.offset >= 0 and high >= 0:
                behind[tp.partition] = max(0, high - tp.offset)
        return behind

    def _on_assign(self, consumer: Consumer, partitions: list) -> None:
        if self.settings.fanout and partitions:
            # Start where this subscriber's group left off, or else at the end as of now, so a
            # record produced once the status says subscribed is one this consumer reads.
            positions = consumer.committed(partitions, timeout=ADMIN_TIMEOUT)
            for tp in positions:
                if tp.offset < 0:
                    tp.offset = consumer.get_watermark_offsets(tp, timeout=ADMIN_TIMEOUT)[1]
            consumer.assign(positions)
        self.assignment = sorted(tp.partition for tp in partitions)
        self.subscribed = True

    def _on_revoke(self, consumer: Consumer, partitions: list) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._uncommitted.items() if (t, p) in revoked]
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                log.info("commit on revoke failed (%s); records will be redelivered", _error(exc).str())
        self._forget(partitions)

    def _on_lost(self, _consumer: Consumer, partitions: list) -> None:
        # Taken away (session expired): no commit is possible; the new owners read them again.
        self._forget(partitions)

    def _forget(self, partitions: list) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for key in gone:
            self._uncommitted.pop(key, None)
        self.assignment = [p for p in self.assignment if (self.settings.topic, p) not in gone]

    def _down(self, what: str, err: KafkaError) -> None:
        if not self._outage:
            log.info("%s failed: %s; the client keeps retrying", what, err.str())
            self._outage = True

    def _up(self) -> None:
        if self._outage:
            log.info("broker reachable again")
            self._outage = False

    def close(self) -> None:
        producer, consumer = self._producer, self._consumer
        self._admin = self._producer = self._consumer = None
        self.subscribed = False
        self._uncommitted.clear()
        self._fatal = self._all_down = None
        # Consumer.close() leaves the group: it rebalances now, not after the session timeout.
        for closer in (lambda: consumer.close() if consumer else None,
                       lambda: _drop_producer(producer) if producer else None):
            try:
                closer()
            except Exception:  # closing a broken connection; nothing left to save
                pass


def _drop_producer(producer: Producer) -> None:
    """Abandon the records still queued or in flight (the caller sends them again)."""
    producer.purge(in_queue=True, in_flight=True, blocking=False)
    producer.flush(0)  # serve the purged records' reports
