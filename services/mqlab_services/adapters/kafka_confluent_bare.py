"""The bare client on Kafka (confluent-kafka): the plain loops a user writes from confluent-kafka's
docs (see bare.py).

The same settings as kafka_bare.py, from this adapter's own ``producer_config``,
``consumer_config`` and ``admin_config``: a flush per MQLAB_BATCH, counting delivery reports;
a synchronous commit after each batch in the safe mode.
"""

from __future__ import annotations

import confluent_kafka
import confluent_kafka.admin

from ..bare import Count, More, Ready
from ..settings import Settings
from .kafka_confluent import admin_config, consumer_config, producer_config

POLL_S = 0.25  # how long a poll waits: also how quickly the end of the trial is seen


def produce(s: Settings, body: bytes, more: More, acked: Count) -> None:
    producer = confluent_kafka.Producer(producer_config(s))
    delivered = [0]

    def report(err, _msg) -> None:
        delivered[0] += err is None

    while more():
        for _ in range(s.batch):
            producer.produce(s.topic, body, on_delivery=report)
        producer.flush()
        acked(delivered[0])
        delivered[0] = 0


def consume(s: Settings, more: More, received: Count, ready: Ready) -> None:
    admin = confluent_kafka.admin.AdminClient(admin_config(s))
    topics = [confluent_kafka.admin.NewTopic(s.topic, s.partitions, s.replication)]
    for future in admin.create_topics(topics).values():
        try:
            future.result()
        except confluent_kafka.KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    consumer = confluent_kafka.Consumer(consumer_config(s))
    consumer.subscribe([s.topic], on_assign=lambda _consumer, _partitions: ready())
    while more():
        messages = consumer.consume(num_messages=s.batch, timeout=POLL_S)
        for message in messages:
            if message.error():
                raise confluent_kafka.KafkaException(message.error())
        if messages and s.safe:
            consumer.commit(asynchronous=False)
        received(len(messages))
    consumer.close()
