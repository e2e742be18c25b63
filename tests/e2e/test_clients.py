"""Clients with default parameters work from the host, and consumers survive foreign messages."""

from __future__ import annotations

import time
import uuid

import docker




def default_client_round_trip(broker: str) -> str:
    """Send one text message with the client's defaults, the way the original tutorial does, and read it back."""
    text = f"tutorial-{uuid.uuid4().hex[:8]}"
    if broker == "rabbitmq":
        import pika

        connection = pika.BlockingConnection()
        channel = connection.channel()
        channel.queue_declare(queue="mailbox")
        channel.basic_publish(exchange="", routing_key="mailbox", body=text.encode())
        for method, _props, body in channel.consume("mailbox", auto_ack=True, inactivity_timeout=10):
            if body is None or body.decode() == text:
                break
        channel.cancel()
        connection.close()
        return body.decode() if body else ""
    if broker == "redis":
        import redis

        client = redis.Redis()
        assert client.ping()
        pubsub = client.pubsub()
        pubsub.subscribe("chatroom")
        pubsub.get_message(timeout=5)  # the subscribe confirmation
        client.publish("chatroom", text)
        message = pubsub.get_message(timeout=10)
        pubsub.close()
        return message["data"].decode() if message else ""
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"tutorial-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer()
    producer.send(topic, text.encode()).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=20_000)
    received = next((m.value.decode() for m in consumer), "")
    consumer.close()
    assert "datascience" in KafkaConsumer().topics()
    return received


def broker_of(stack: str) -> str:
    return "kafka" if stack.startswith("kafka") else stack


def test_default_clients_work_from_the_host(stacks, stack_name):
    stacks.up(stack_name)
    text = default_client_round_trip(broker_of(stack_name))
    assert text.startswith("tutorial-")


def send_foreign(broker: str, text: str) -> None:
    """Put a plain-text message on the lab's own destination."""
    if broker == "rabbitmq":
        import pika

        connection = pika.BlockingConnection()
        connection.channel().basic_publish(exchange="", routing_key="mailbox.durable", body=text.encode())
        connection.close()
    elif broker == "redis":
        import redis

        redis.Redis().xadd("chatroom.stream", {"data": text})
    else:
        from kafka import KafkaProducer

        producer = KafkaProducer()
        producer.send("datascience", text.encode()).get(timeout=30)
        producer.close()


def test_consumer_prints_a_foreign_message_and_keeps_running(stacks, stack_name):
    stacks.up(stack_name)
    text = f"plain text {uuid.uuid4().hex[:8]}"
    send_foreign(broker_of(stack_name), text)
    client = docker.from_env()
    project = f"mqlab-{stack_name}"
    deadline = time.monotonic() + 60
    seen = False
    while time.monotonic() < deadline and not seen:
        consumers = client.containers.list(filters={"label": [f"com.docker.compose.project={project}",
                                                              "com.docker.compose.service=consumer"]})
        seen = any(text in c.logs(tail=500).decode(errors="replace") for c in consumers)
        time.sleep(1)
    assert seen, f"no consumer printed {text!r}"
    consumers = client.containers.list(filters={"label": [f"com.docker.compose.project={project}",
                                                          "com.docker.compose.service=consumer"]})
    assert consumers and all(c.status == "running" for c in consumers)
    assert all(c.attrs["RestartCount"] == 0 for c in consumers)
