"""Kafka's exactly-once processing, mode ``txn``, on confluent-kafka (librdkafka's transactions).

The same design as ``kafka_txn.py`` (its docstring says what exactly-once covers here and
what it does not): a transactional producer (``transactional.id`` ``mqlab-<MQLAB_NAME>``), each
batch one transaction, acked when the commit returned; and a consume-transform-produce stage
(``mqlab-stage-<MQLAB_NAME>``) that reads ``read_committed``, writes each processed record to
``MQLAB_OUTPUT`` and commits the poll's input offsets in the same transaction
(``send_offsets_to_transaction`` with the consumer's group metadata). On a failure the
transaction is aborted and the poll read again; an error librdkafka marks fatal (this
producer was fenced by a newer one) raises, and the caller reconnects with a new producer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from .base import Acked, DeadHandler, Handler, Outgoing, Rejected, _no_dead, too_large
from .kafka_common import CONFIRM_TIMEOUT, Stopping, dead_headers, retry_then_dead_letter
from .kafka_confluent import ConfluentKafkaAdapter, _drop_producer, _error, _received, producer_config

log = logging.getLogger("mqlab")

TRANSACTION_TIMEOUT_MS = 10_000


def txn_producer_config(settings, role: str) -> dict:
    """The config of a transactional producer: ``role`` is "producer" or "stage"."""
    prefix = "mqlab-stage" if role == "stage" else "mqlab"
    # librdkafka refuses a message timeout above the transaction's: a record may not outlive it.
    return {**producer_config(settings), "transactional.id": f"{prefix}-{settings.name}",
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS, "message.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "enable.idempotence": True, "acks": "all"}


class ConfluentKafkaTxnAdapter(ConfluentKafkaAdapter):
    """Kafka transactions on confluent-kafka: a transactional producer and a consume-transform-produce stage."""

    def _transactional(self, role: str) -> Producer:
        producer = self._client(Producer, {**txn_producer_config(self.settings, role), "error_cb": self._on_error})
        producer.init_transactions(CONFIRM_TIMEOUT)  # fences an older producer with the same transactional.id
        return producer

    def _abandon(self, producer: Producer) -> None:
        """Abort the open transaction (the broker aborts it by timeout when it cannot) and drop the producer."""
        try:
            producer.abort_transaction(CONFIRM_TIMEOUT)
        except KafkaException as exc:
            log.info("could not abort the transaction (%s); the broker aborts it after %d ms", _error(exc).str(),
                     TRANSACTION_TIMEOUT_MS)
        _drop_producer(producer)

    def publish(self, batch: Sequence[Outgoing]) -> list:
        if self._producer is None:
            self._producer = self._transactional("producer")
        acks: list = [None] * len(batch)
        positions: dict[int, str] = {}
        producer = self._producer
        producer.begin_transaction()
        try:
            for index, (body, key) in enumerate(batch):
                try:
                    self._produce(self.settings.topic, body, key.encode() if key else None,
                                  lambda err, msg, i=index: err is None and positions.__setitem__(
                                      i, f"p{msg.partition()}:{msg.offset()}"))
                except KafkaException as exc:
                    if _error(exc).code() != KafkaError.MSG_SIZE_TOO_LARGE:
                        raise
                    acks[index] = Rejected(too_large(len(body), self.settings.max_message_bytes))
            producer.commit_transaction(CONFIRM_TIMEOUT)  # flushes, then commits; raises when it did not
        except KafkaException:
            # Nothing of the batch counts as sent: the caller reconnects and sends it again.
            self._producer = None
            self._abandon(producer)
            raise
        now = time.time_ns()
        return [ack if isinstance(ack, Rejected) else Acked(now, positions.get(i, "")) for i, ack in enumerate(acks)]

    def consume(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler | None = None) -> None:
        if self._consumer is None:
            self._subscribe()
        if self._producer is None:
            self._producer = self._transactional("stage")
        while running():
            records = self._poll()
            if records:
                try:
                    self._transform(records, handler, dead or _no_dead, running)
                except Stopping:
                    self._abandon(self._producer)
                    self._producer = None
                    return

    def _transform(self, records: list, handler: Handler, dead: DeadHandler, running: Callable[[], bool]) -> None:
        """One poll in one transaction: its results to the output topic, its offsets committed."""
        batch = _received(records)
        producer = self._producer
        producer.begin_transaction()
        try:
            dead_ones: set[int] = set()

            def produce_dead(failed, attempts):
                dead_ones.update(i for i, _reason in failed)
                for i, reason in failed:
                    m = records[i]
                    self._produce(self.settings.dlq, batch[i][0], m.key(), None,
                                  headers=dead_headers(reason, attempts, m.topic(), m.partition(), m.offset()))

            retry_then_dead_letter(self.settings, handler, dead, batch, handler(batch), running, produce_dead)
            for i, m in enumerate(records):
                if i not in dead_ones:
                    self._produce(self.settings.output, m.value(), m.key(), None)
            producer.send_offsets_to_transaction(_next_offsets(records), self._consumer.consumer_group_metadata(),
                                                 CONFIRM_TIMEOUT)
            producer.commit_transaction(CONFIRM_TIMEOUT)
        except KafkaException as exc:
            log.info("transaction aborted (%s): the poll's %d record(s) will be read again", _error(exc).str(),
                     len(records))
            self._rewind(records)
            self._producer = None
            self._abandon(producer)
            self._producer = self._transactional("stage")

    def _rewind(self, records: list) -> None:
        """Seek back to the first record of each partition of an aborted poll, to read it again."""
        first: dict[tuple[str, int], int] = {}
        for m in records:
            first.setdefault((m.topic(), m.partition()), m.offset())
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException:  # no longer ours: its new owner reads it
                pass


def _next_offsets(records: list) -> list[TopicPartition]:
    """The offsets to commit past a poll: one after the last record of each partition."""
    last: dict[tuple[str, int], int] = {}
    for m in records:
        last[(m.topic(), m.partition())] = m.offset() + 1
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in last.items()]
