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

The Kafka loops configure their clients with the adapters' own ``producer_config``,
``consumer_config`` and bootstrap servers (adapters/kafka.py, kafka_confluent.py), so the
safety settings are written once and cannot drift apart.

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

    if s.safe:
        _ConfirmedPublisher(s, body, more, acked).run()
        return
    connection = pika.BlockingConnection(pika.URLParameters(s.url))
    channel = connection.channel()
    channel.queue_declare(s.queue, durable=True)
    properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Transient)
    while more():
        for _ in range(s.batch):
            channel.basic_publish("", s.queue, body, properties)
        acked(s.batch)  # no confirms: handed to the socket
    connection.close()


class _ConfirmedPublisher:
    """The safe producer as pika's docs write an asynchronous publisher with confirms
    (SelectConnection and callbacks): MQLAB_BATCH messages in flight, then their confirms.

    pika's public blocking API cannot keep a window in flight: BlockingChannel.confirm_delivery()
    makes each basic_publish wait for its own confirm.
    """

    def __init__(self, s: Settings, body: bytes, more: More, acked: Count):
        import pika

        self.s, self.body, self.more, self.acked = s, body, more, acked
        self.properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        self.ack_frame = pika.spec.Basic.Ack
        self.channel = None
        self.pending: set[int] = set()
        self.tag = self.nacked = 0
        self.done = False
        self.error: BaseException | None = None
        self.connection = pika.SelectConnection(pika.URLParameters(s.url), on_open_callback=self.on_open,
                                                on_open_error_callback=self.on_closed,
                                                on_close_callback=self.on_closed)

    def run(self) -> None:
        self.connection.ioloop.start()
        if self.error is not None:
            raise self.error

    def on_open(self, connection) -> None:
        connection.channel(on_open_callback=self.on_channel)

    def on_channel(self, channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(self.on_channel_closed)
        channel.queue_declare(self.s.queue, durable=True, callback=lambda _frame: channel.confirm_delivery(
            self.on_confirm, callback=lambda _frame: self.publish()))

    def publish(self) -> None:
        if not self.more():
            self.done = True
            self.connection.close()
            return
        for _ in range(self.s.batch):
            self.tag += 1
            self.pending.add(self.tag)
            self.channel.basic_publish("", self.s.queue, self.body, self.properties)

    def on_confirm(self, frame) -> None:
        method = frame.method
        tag = method.delivery_tag
        done = {t for t in self.pending if t <= tag} if method.multiple else {tag} & self.pending
        self.pending.difference_update(done)
        self.nacked += 0 if isinstance(method, self.ack_frame) else len(done)
        if not self.pending:
            self.acked(self.s.batch - self.nacked)
            self.nacked = 0
            self.publish()

    def on_channel_closed(self, _channel, reason: BaseException) -> None:
        if not self.done:  # closed by the broker (406 on the queue's arguments, say) or lost
            self.error, self.done = reason, True
            if not (self.connection.is_closing or self.connection.is_closed):
                self.connection.close()

    def on_closed(self, connection, reason: BaseException) -> None:
        if not self.done:  # could not connect, or the connection was lost
            self.error, self.done = reason, True
        connection.ioloop.stop()


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

    from .adapters.kafka import producer_config

    producer = KafkaProducer(**producer_config(s))
    while more():
        futures = [producer.send(s.topic, body) for _ in range(s.batch)]
        producer.flush()
        acked(sum(1 for f in futures if f.succeeded()))
    producer.close()


def kafka_consume(s: Settings, more: More, received: Count, ready: Callable[[], None]) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from .adapters.kafka import consumer_config
    from .adapters.kafka_common import bootstrap_servers

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers(s))
    try:
        admin.create_topics([NewTopic(s.topic, s.partitions, s.replication)])
    except TopicAlreadyExistsError:
        pass
    admin.close()
    consumer = KafkaConsumer(s.topic, **consumer_config(s))
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

    from .adapters.kafka_confluent import producer_config

    producer = Producer(producer_config(s))
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

    from .adapters.kafka_confluent import admin_config, consumer_config

    admin = AdminClient(admin_config(s))
    for future in admin.create_topics([NewTopic(s.topic, s.partitions, s.replication)]).values():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    consumer = Consumer(consumer_config(s))
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
