"""Kafka's exactly-once processing, mode ``txn``, with kafka-python (>= 3.0.12, which has the
transactional producer and ``send_offsets_to_transaction``).

What Kafka means by exactly-once, and what this mode does:

- The **producer** is transactional: ``transactional_id`` ``mqlab-<MQLAB_NAME>``, stable for a
  container, so that a producer restarted in it fences its old self (the broker aborts what
  the old one left open). Each batch is one transaction; a message counts as sent only when
  the commit returned. Idempotence comes with it.
- The **consumer** is a consume-transform-produce stage. It reads ``MQLAB_TOPIC`` with
  ``isolation_level=read_committed`` (records of aborted or open transactions are never read),
  hands each poll to the handler, and then, in one transaction of its own
  (``transactional_id`` ``mqlab-stage-<MQLAB_NAME>``), writes each processed record to
  ``MQLAB_OUTPUT`` (``datascience.out``, the same value and key) and commits the poll's input
  offsets with ``send_offsets_to_transaction`` and the group's metadata (KIP-447: a stage
  that lost its partitions in a rebalance cannot commit them). Records that failed too often
  go to the dead-letter topic inside the same transaction. If anything fails, the transaction
  is aborted, and the stage seeks back to the poll's first offsets and reads it again.
- Exactly-once covers what stays in Kafka: each input record's result is in the output
  topic once, and its offset is committed with it. It does **not** cover side effects outside
  Kafka. The stage's own receipt (``recv-*.tsv``) is written when the handler processes a
  record, before the commit: an aborted transaction leaves receipts for records that are
  read and processed again. So the receipts are at-least-once, and the ledger judges this
  mode on the output topic, read with ``read_committed``.

``transaction_timeout_ms`` is 10 s: a transaction left open by a producer that died without
a successor is aborted by the broker after that, so read_committed readers are held up no
longer than that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import kafka.errors
from kafka import KafkaProducer
from kafka.structs import OffsetAndMetadata

from .base import Acked, DeadHandler, Handler, Outgoing, Rejected, _no_dead, too_large
from .kafka import KafkaAdapter, _close_producer, _Outage, _received, producer_config
from .kafka_common import CONFIRM_TIMEOUT, Stopping, dead_headers, retry_then_dead_letter

log = logging.getLogger("mqlab")

TRANSACTION_TIMEOUT_MS = 10_000


def txn_producer_config(settings, role: str) -> dict:
    """The producer config of a transactional producer: ``role`` is "producer" or "stage"."""
    prefix = "mqlab-stage" if role == "stage" else "mqlab"
    config = producer_config(settings)
    config.update(transactional_id=f"{prefix}-{settings.name}", transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
                  enable_idempotence=True, acks="all")
    return config


def _new_transactional(settings, role: str) -> KafkaProducer:
    producer = KafkaProducer(**txn_producer_config(settings, role))
    producer.init_transactions()  # fences an older producer with the same transactional_id
    return producer


def _bounded(producer: KafkaProducer, call: str, *args) -> None:
    """``producer.<call>(*args)`` (``commit_transaction`` or ``send_offsets_to_transaction``),
    waiting at most CONFIRM_TIMEOUT. kafka-python's own methods wait without a limit, and after
    a broker restart the answer may never come (seen: the stage hung in
    send_offsets_to_transaction until it was killed). This is their body with a timeout on the
    wait; on timeout the caller aborts, drops this producer, and a new one fences it."""
    manager = producer._transaction_manager
    result = manager.begin_commit() if call == "commit_transaction" else manager.send_offsets_to_transaction(*args)
    producer._sender.wakeup()
    if not result.wait(timeout_ms=CONFIRM_TIMEOUT * 1000):
        raise kafka.errors.KafkaTimeoutError(f"{call} had no answer within {CONFIRM_TIMEOUT:g} s")


def _abort(producer: KafkaProducer) -> None:
    try:
        producer.abort_transaction()
    except kafka.errors.KafkaError as exc:  # fenced, or the broker away: the broker aborts it by timeout
        log.info("could not abort the transaction (%s); the broker aborts it after %d ms", exc,
                 TRANSACTION_TIMEOUT_MS)


class KafkaTxnAdapter(KafkaAdapter):
    """Kafka transactions: a transactional producer, and a consume-transform-produce stage."""

    def publish(self, batch: Sequence[Outgoing]) -> list:
        if self._producer is None:
            self._producer = _new_transactional(self.settings, "producer")
        acks: list = [None] * len(batch)
        positions: dict[int, str] = {}
        producer = self._producer
        producer.begin_transaction()
        try:
            for index, (body, key) in enumerate(batch):
                try:
                    future = producer.send(self.settings.topic, value=body, key=key.encode() if key else None)
                except kafka.errors.MessageSizeTooLargeError:
                    acks[index] = Rejected(too_large(len(body), self.settings.max_message_bytes))
                    continue
                future.add_callback(lambda metadata, i=index: positions.__setitem__(
                    i, f"p{metadata.partition}:{metadata.offset}"))
            producer.flush(timeout=CONFIRM_TIMEOUT)
            _bounded(producer, "commit_transaction")  # raises when it did not commit
        except kafka.errors.KafkaError:
            # Nothing of the batch counts as sent: the caller reconnects (a new producer fences
            # this one) and sends it again.
            self._producer = None
            _abort(producer)
            _close_producer(producer)
            raise
        now = time.time_ns()
        return [ack if isinstance(ack, Rejected) else Acked(now, positions.get(i, "")) for i, ack in enumerate(acks)]

    def consume(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler | None = None) -> None:
        if self._consumer is None:
            self._subscribe()
        if self._producer is None:
            self._producer = _new_transactional(self.settings, "stage")
        outage = _Outage(self.settings.backoff_max)
        while running():
            records = self._poll(outage)
            if records:
                try:
                    self._transform(records, handler, dead or _no_dead, running)
                except Stopping:
                    _abort(self._producer)
                    return

    def _transform(self, records: dict, handler: Handler, dead: DeadHandler, running: Callable[[], bool]) -> None:
        """One poll in one transaction: its results to the output topic, its offsets committed."""
        flat = [r for partition in records.values() for r in partition]
        batch = _received(flat)
        producer = self._producer
        producer.begin_transaction()
        try:
            dead_ones: set[int] = set()

            def produce_dead(failed, attempts):
                dead_ones.update(i for i, _reason in failed)
                self._send_dead(flat, batch, failed, attempts)

            retry_then_dead_letter(self.settings, handler, dead, batch, handler(batch), running, produce_dead)
            for i, record in enumerate(flat):
                if i not in dead_ones:
                    producer.send(self.settings.output, value=record.value, key=record.key)
            offsets = {tp: OffsetAndMetadata(part[-1].offset + 1, "", -1) for tp, part in records.items()}
            _bounded(producer, "send_offsets_to_transaction", offsets, self._consumer.group_metadata())
            producer.flush(timeout=CONFIRM_TIMEOUT)
            _bounded(producer, "commit_transaction")
        except kafka.errors.KafkaError as exc:
            log.info("transaction aborted (%s): the poll's %d record(s) will be read again", exc, len(flat))
            self._rewind(records)
            self._producer = None
            _abort(producer)
            _close_producer(producer)
            self._producer = _new_transactional(self.settings, "stage")

    def _send_dead(self, records, batch, failed: list[tuple[int, str]], attempts: int) -> None:
        """Dead letters inside the stage's transaction: they commit with the poll, or not at all."""
        for i, reason in failed:
            r = records[i]
            self._producer.send(self.settings.dlq, value=batch[i][0], key=r.key,
                                headers=dead_headers(reason, attempts, r.topic, r.partition, r.offset))
        self._producer.flush(timeout=CONFIRM_TIMEOUT)

    def _rewind(self, records: dict) -> None:
        """Seek back to the first record of each partition of an aborted poll, to read it again."""
        for tp, part in records.items():
            try:
                self._consumer.seek(tp, part[0].offset)
            except (kafka.errors.KafkaError, AssertionError, KeyError, ValueError):  # no longer ours: its new owner reads it
                pass
