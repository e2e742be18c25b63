"""Ask a running broker, from the host, how many consumers are attached and working.

Uses the native clients against the published loopback ports, and the names the
services use by default (:class:`mqlab_services.settings.Settings`).
"""

from __future__ import annotations

import time
from typing import Callable

from mqlab_services.settings import Settings

from .config import LabConfig
from .stacks import Stack

ACTIVE_IDLE_MS = 10_000  # a Redis stream consumer idle longer than this has left
last_error = ""  # the last probe failure, for the message when waiting gives up


def _names() -> Settings:
    return Settings.from_env({"MQLAB_BROKER": "redis"}, hostname="host")


def rabbitmq_consumers(config: LabConfig) -> int:
    import pika

    params = pika.ConnectionParameters(
        host="127.0.0.1", port=config.integer("RABBITMQ_PORT", 5672, 1, 65535),
        credentials=pika.PlainCredentials(config.get("RABBITMQ_USER", "guest"), config.get("RABBITMQ_PASSWORD", "guest")),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5)
    connection = pika.BlockingConnection(params)
    try:
        try:
            ok = connection.channel().queue_declare(queue=_names().queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return 0  # the queue does not exist yet
        return ok.method.consumer_count
    finally:
        connection.close()


def redis_consumers(config: LabConfig) -> int:
    import redis

    names = _names()
    client = redis.Redis(host="127.0.0.1", port=config.integer("REDIS_PORT", 6379, 1, 65535), socket_timeout=5)
    try:
        consumers = client.xinfo_consumers(names.stream, names.group)
    except redis.ResponseError:
        return 0  # no stream or group yet
    finally:
        client.close()
    return sum(1 for c in consumers if int(c.get("idle", ACTIVE_IDLE_MS)) < ACTIVE_IDLE_MS)


def kafka_consumers(config: LabConfig) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{config.integer('KAFKA_PORT', 9092, 1, 65535)}",
                             request_timeout_ms=10_000)
    group = _names().group
    try:
        described = admin.describe_groups([group]).get(group) or {}
    finally:
        admin.close()
    if described.get("group_state") != "Stable":
        return 0  # empty, or rebalancing: nobody is consuming for sure
    return sum(1 for m in described.get("members", [])
               if any(a.get("partitions") for a in (m.get("member_assignment") or {}).get("assigned_partitions", [])))


PROBES: dict[str, Callable[[LabConfig], int]] = {
    "rabbitmq": rabbitmq_consumers,
    "redis": redis_consumers,
    "kafka": kafka_consumers,
}


def attached_consumers(config: LabConfig, stack: Stack) -> int:
    return PROBES[stack.broker](config)


def wait_for_consumers(config: LabConfig, stack: Stack, wanted: int, timeout: float = 90.0,
                       on_poll: Callable[[int], None] | None = None) -> int:
    """Poll until exactly ``wanted`` consumers are attached, or ``timeout`` passes. Returns the last count."""
    global last_error
    deadline = time.monotonic() + timeout
    seen = -1
    while True:
        try:
            seen = attached_consumers(config, stack)
        except Exception as exc:  # the broker may be busy rebalancing or restarting
            seen = -1
            last_error = f"{type(exc).__name__}: {str(exc)[:120]}"
        if on_poll:
            on_poll(seen)
        if seen == wanted or time.monotonic() >= deadline:
            return seen
        time.sleep(1.0)
