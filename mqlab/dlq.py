"""`invoke dlq`: what is in a stack's dead-letter destination, and why.

Read from the host without consuming anything: RabbitMQ messages are fetched and
requeued, the Redis dead stream is read with XRANGE, the Kafka DLQ topic is read
without a consumer group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import clients
from .config import LabConfig
from .stacks import Stack


@dataclass
class Dead:
    message_id: str
    attempts: str
    reason: str


def _envelope_id(body: bytes | str) -> str:
    try:
        data = json.loads(body)
        return str(data.get("id", "?")) if isinstance(data, dict) else "(not an envelope)"
    except (ValueError, TypeError, UnicodeDecodeError):
        return "(not an envelope)"


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


def rabbitmq_dlq(config: LabConfig, name: str, limit: int) -> tuple[int, list[Dead]]:
    import pika

    connection = clients.rabbitmq(config)
    try:
        channel = connection.channel()
        try:
            total = channel.queue_declare(queue=name, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0, []
        found = []
        for _ in range(min(limit, total)):
            method, props, body = channel.basic_get(name, auto_ack=False)
            if method is None:
                break
            headers = props.headers or {}
            found.append(Dead(_envelope_id(body), _text(headers.get("x-mqlab-attempts", "?")),
                              _text(headers.get("x-mqlab-reason", "?"))))
        channel.close()  # unacked: every message goes back to the queue
        return total, found
    finally:
        connection.close()


def redis_dlq(config: LabConfig, name: str, limit: int) -> tuple[int, list[Dead]]:
    client = clients.redis(config)
    try:
        total = client.xlen(name)
        entries = client.xrevrange(name, count=limit)
    finally:
        client.close()
    found = [Dead(_envelope_id(fields.get(b"data", b"")), _text(fields.get(b"attempts", b"?")),
                  _text(fields.get(b"reason", b"?"))) for _, fields in entries]
    return total, found


def kafka_dlq(config: LabConfig, name: str, limit: int) -> tuple[int, list[Dead]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=clients.kafka_bootstrap(config),
                             enable_auto_commit=False, consumer_timeout_ms=5000, request_timeout_ms=11_000)
    try:
        partitions = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        if not tps:
            return 0, []
        consumer.assign(tps)
        begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        total = sum(end[tp] - begin[tp] for tp in tps)
        consumer.seek_to_beginning(*tps)
        found = []
        for record in consumer:
            headers = {k: _text(v) for k, v in (record.headers or [])}
            found.append(Dead(_envelope_id(record.value), headers.get("mqlab-attempts", "?"),
                              headers.get("mqlab-reason", "?")))
            if len(found) >= min(limit, total) or all(consumer.position(tp) >= end[tp] for tp in tps):
                break
        return total, found
    finally:
        consumer.close()


READERS = {"rabbitmq": rabbitmq_dlq, "redis": redis_dlq, "kafka": kafka_dlq}


def show(config: LabConfig, stack: Stack, limit: int = 20) -> str:
    name = clients.names(stack.broker).dlq
    total, found = READERS[stack.broker](config, name, limit)
    lines = [f"{stack.name} dead-letter destination {name}: {total:,} message(s)"]
    if found:
        width = max(len(d.message_id) for d in found)
        lines.append(f"  {'MESSAGE ID'.ljust(width)}  ATTEMPTS  REASON")
        lines += [f"  {d.message_id.ljust(width)}  {d.attempts:<8}  {d.reason}" for d in found]
        if total > len(found):
            lines.append(f"  ... and {total - len(found):,} more")
    return "\n".join(lines)
