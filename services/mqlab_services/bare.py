"""The bare client: the plain loop a user writes after reading the client library's docs.

`invoke bench` runs it beside the lab's own bench producer and consumer: the same library, the
same safety settings, message size, batch, prefetch and CPU pinning, one producer process and
one consumer process, but no envelope, no ledger, no latency histogram and no status updates
per message. O = the lab's rate / the bare client's rate is what the lab itself costs.

=========  ===========================================  =========================================
broker     safe (the broker's safe mode)                lossy (its lossy mode)
=========  ===========================================  =========================================
RabbitMQ   durable queue, persistent messages, confirms  transient messages, no confirms, auto-ack
           awaited per MQLAB_BATCH, prefetch, one
           multiple ack per batch
Redis      XADD pipelined MQLAB_BATCH at a time;         PUBLISH pipelined; SUBSCRIBE
           XREADGROUP COUNT MQLAB_BATCH, then XACK
Kafka      acks=all, idempotent producer, linger 5 ms,   acks=1, linger 5 ms; offsets
           flush per MQLAB_BATCH; commit after each       auto-committed every second
           poll (kafka-python or confluent-kafka)
=========  ===========================================  =========================================

Each function gets the settings (URL, names, batch, prefetch, mode), the payload or nothing, and:

- ``more()``: False once the trial is over (the producer's first call waits for the start);
- ``acked(n)`` (producer): n more messages acknowledged by the broker;
- ``received(n)`` (consumer): n more messages received (and acked, in a safe mode);
- ``ready()`` (consumer): called once, when subscribed, so that the producer can start.

Broker errors propagate: the caller records them.
"""

from __future__ import annotations

from collections.abc import Callable

from .modes import default_mode, mode_info
from .settings import CLIENTS, Settings

More = Callable[[], bool]
Count = Callable[[int], None]


# --------------------------------------------------------------------------- RabbitMQ (pika)


def rabbitmq_produce(s: Settings, body: bytes, more: More, acked: Count) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(s.url))
    channel = connection.channel()
    channel.queue_declare(s.queue, durable=True)
    properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent if s.safe else
                                      pika.DeliveryMode.Transient)
    if not s.safe:
        while more():
            for _ in range(s.batch):
                channel.basic_publish("", s.queue, body, properties)
            acked(s.batch)  # no confirms: handed to the socket
        connection.close()
        return
    # BlockingChannel.confirm_delivery() waits for each message's confirm on its own; a window
    # of MQLAB_BATCH messages in flight needs the confirm callback of the underlying channel.
    pending: set[int] = set()
    nacked = [0]

    def on_confirm(frame) -> None:
        tag, ok = frame.method.delivery_tag, isinstance(frame.method, pika.spec.Basic.Ack)
        done = {t for t in pending if t <= tag} if frame.method.multiple else {tag} & pending
        pending.difference_update(done)
        nacked[0] += 0 if ok else len(done)
        if not pending:
            connection.add_callback_threadsafe(lambda: None)  # wakes process_data_events below

    selected: list[bool] = []
    channel._impl.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _frame: selected.append(True))
    while not selected:
        connection.process_data_events(time_limit=0.1)
    tag = 0
    while more():
        for _ in range(s.batch):
            tag += 1
            pending.add(tag)
            channel.basic_publish("", s.queue, body, properties)
        while pending:
            connection.process_data_events(time_limit=1.0)
        acked(s.batch - nacked[0])
        nacked[0] = 0
    connection.close()


def rabbitmq_consume(s: Settings, more: More, received: Count, ready: Callable[[], None]) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(s.url))
    channel = connection.channel()
    channel.queue_declare(s.queue, durable=True)
    channel.basic_qos(prefetch_count=s.prefetch)
    ready()
    count, last_tag = 0, 0
    for method, _properties, _body in channel.consume(s.queue, auto_ack=not s.safe, inactivity_timeout=0.25):
        if method is not None:
            count += 1
            last_tag = method.delivery_tag
        if count and (count >= s.batch or method is None or not channel.get_waiting_message_count()):
            if s.safe:
                channel.basic_ack(last_tag, multiple=True)
            received(count)
            count = 0
        if not more():
            break
    channel.cancel()
    connection.close()


# --------------------------------------------------------------------------- Redis (redis-py)


def redis_produce(s: Settings, body: bytes, more: More, acked: Count) -> None:
    import redis

    client = redis.Redis.from_url(s.url)
    while more():
        pipe = client.pipeline(transaction=False)
        for _ in range(s.batch):
            if s.safe:
                pipe.xadd(s.stream, {"data": body})
            else:
                pipe.publish(s.channel, body)
        pipe.execute()
        acked(s.batch)
    client.close()


def redis_consume(s: Settings, more: More, received: Count, ready: Callable[[], None]) -> None:
    import redis

    client = redis.Redis.from_url(s.url)
    if not s.safe:
        pubsub = client.pubsub()
        pubsub.subscribe(s.channel)
        while more():
            message = pubsub.get_message(timeout=0.25)
            if message is not None and message["type"] == "subscribe":
                ready()
                break
        while more():
            count = 0
            message = pubsub.get_message(timeout=0.25)
            while message is not None:
                count += message["type"] == "message"
                message = pubsub.get_message(timeout=0.0) if count < s.batch else None
            received(count)
        pubsub.close()
        client.close()
        return
    try:
        client.xgroup_create(s.stream, s.group, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    ready()
    while more():
        reply = client.xreadgroup(s.group, s.name, {s.stream: ">"}, count=s.batch, block=250)
        if reply:
            ids = [entry_id for entry_id, _fields in reply[0][1]]
            client.xack(s.stream, s.group, *ids)
            received(len(ids))
    client.close()


# --------------------------------------------------------------------------- Kafka (kafka-python)


def kafka_produce(s: Settings, body: bytes, more: More, acked: Count) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=s.url.split(","), acks="all" if s.safe else 1,
                             enable_idempotence=s.safe, linger_ms=5)
    while more():
        futures = [producer.send(s.topic, body) for _ in range(s.batch)]
        producer.flush()
        acked(sum(1 for f in futures if f.succeeded()))
    producer.close()


def kafka_consume(s: Settings, more: More, received: Count, ready: Callable[[], None]) -> None:
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=s.url.split(","))
    try:
        admin.create_topics([NewTopic(s.topic, s.partitions, s.replication)])
    except TopicAlreadyExistsError:
        pass
    admin.close()
    consumer = KafkaConsumer(s.topic, bootstrap_servers=s.url.split(","), group_id=s.group,
                             enable_auto_commit=not s.safe, auto_offset_reset="earliest",
                             max_poll_records=s.batch)
    while more():
        records = consumer.poll(timeout_ms=250, max_records=s.batch)
        if consumer.assignment():
            ready()
        count = sum(len(batch) for batch in records.values())
        if count and s.safe:
            consumer.commit()
        received(count)
    consumer.close()


# --------------------------------------------------------------------------- Kafka (confluent-kafka)


def confluent_produce(s: Settings, body: bytes, more: More, acked: Count) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": s.url, "acks": "all" if s.safe else 1,
                         "enable.idempotence": s.safe, "linger.ms": 5})
    delivered = [0]

    def report(err, _msg) -> None:
        delivered[0] += err is None

    while more():
        for _ in range(s.batch):
            producer.produce(s.topic, body, on_delivery=report)
        producer.flush()
        acked(delivered[0])
        delivered[0] = 0


def confluent_consume(s: Settings, more: More, received: Count, ready: Callable[[], None]) -> None:
    from confluent_kafka import Consumer, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": s.url})
    for future in admin.create_topics([NewTopic(s.topic, s.partitions, s.replication)]).values():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    consumer = Consumer({"bootstrap.servers": s.url, "group.id": s.group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": not s.safe})
    consumer.subscribe([s.topic], on_assign=lambda _consumer, _partitions: ready())
    while more():
        messages = consumer.consume(num_messages=s.batch, timeout=0.25)
        for message in messages:
            if message.error():
                raise KafkaException(message.error())
        if messages and s.safe:
            consumer.commit(asynchronous=False)
        received(len(messages))
    consumer.close()


#: (broker, client) -> (producer loop, consumer loop)
LOOPS = {
    ("rabbitmq", "pika"): (rabbitmq_produce, rabbitmq_consume),
    ("redis", "redis-py"): (redis_produce, redis_consume),
    ("kafka", "kafka-python"): (kafka_produce, kafka_consume),
    ("kafka", "confluent-kafka"): (confluent_produce, confluent_consume),
}

#: The modes the bare client imitates: each broker's safe default mode and its lossy twin.
MODES = {broker: (default_mode(broker).name, mode_info(broker, default_mode(broker).name).lossy)
         for broker in CLIENTS}


def loops(s: Settings) -> tuple[Callable, Callable]:
    """The producer and consumer loops for the settings' broker and client."""
    client = s.kafka_client if s.broker == "kafka" else CLIENTS[s.broker][0][0]
    return LOOPS[(s.broker, client)]
