"""The bare client on Kafka (kafka-python): the plain loops a user writes from kafka-python's
docs (see bare.py).

``group`` (safe): acks=all, the idempotent producer, linger 5 ms, a flush per MQLAB_BATCH; a
commit after each poll. ``autocommit`` (lossy): acks=1, linger 5 ms; offsets auto-committed every
second. The clients are configured by the adapter's own ``producer_config`` and
``consumer_config``, so the safety settings are written once and cannot drift apart.
"""

from __future__ import annotations

import kafka
import kafka.admin
import kafka.errors

from ..bare import Count, More, Ready
from ..settings import Settings
from .kafka import consumer_config, producer_config
from .kafka_common import bootstrap_servers

POLL_MS = 250  # how long a poll waits: also how quickly the end of the trial is seen


def produce(s: Settings, body: bytes, more: More, acked: Count) -> None:
    producer = kafka.KafkaProducer(**producer_config(s))
    while more():
        futures = [producer.send(s.topic, body) for _ in range(s.batch)]
        producer.flush()
        acked(sum(1 for f in futures if f.succeeded()))
    producer.close()


def consume(s: Settings, more: More, received: Count, ready: Ready) -> None:
    admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap_servers(s))
    try:
        admin.create_topics([kafka.admin.NewTopic(s.topic, s.partitions, s.replication)])
    except kafka.errors.TopicAlreadyExistsError:
        pass
    admin.close()
    consumer = kafka.KafkaConsumer(s.topic, **consumer_config(s))
    while more():
        records = consumer.poll(timeout_ms=POLL_MS, max_records=s.batch)
        if consumer.assignment():
            ready()
        count = sum(len(batch) for batch in records.values())
        if count and s.safe:
            consumer.commit()
        received(count)
    consumer.close()
