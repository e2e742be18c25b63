"""Consumers survive foreign messages. (Default clients from the host: test_tutorial.py.)"""

from __future__ import annotations

import time
import uuid

import docker


def broker_of(stack: str) -> str:
    return "kafka" if stack.startswith("kafka") else stack


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
