"""Native clients for the host side, pointed at a stack's published loopback ports.

One place for how `stats`, `dlq` and the Kafka probe reach a broker, and for the
names the services use (queues, streams, topics, groups: ``mqlab_services.settings``).
"""

from __future__ import annotations

from mqlab_services.settings import Settings

from .config import LabConfig

HOST = "127.0.0.1"
TIMEOUT_S = 5


def names(broker: str) -> Settings:
    """The services' default settings for ``broker``: the names they use on it."""
    return Settings.from_env({"MQLAB_BROKER": broker}, hostname="host")


def rabbitmq(config: LabConfig):
    import pika

    return pika.BlockingConnection(pika.ConnectionParameters(
        host=HOST, port=config.integer("RABBITMQ_PORT", 5672, 1, 65535),
        credentials=pika.PlainCredentials(config.get("RABBITMQ_USER", "guest"), config.get("RABBITMQ_PASSWORD", "guest")),
        connection_attempts=1, socket_timeout=TIMEOUT_S))


def redis(config: LabConfig, **options):
    import redis as redis_py

    return redis_py.Redis(host=HOST, port=config.integer("REDIS_PORT", 6379, 1, 65535), socket_timeout=TIMEOUT_S,
                          password=config.get("REDIS_PASSWORD") or None, **options)


def kafka_bootstrap(config: LabConfig) -> str:
    return f"{HOST}:{config.integer('KAFKA_PORT', 9092, 1, 65535)}"
