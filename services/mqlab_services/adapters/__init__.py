"""Broker adapters behind one small interface, looked up by name.

The registry maps a broker name to ``"module:Class"``; the module is imported only when
that broker is used, so the producer for Redis never imports pika or kafka-python.
Kafka has two clients, chosen with MQLAB_KAFKA_CLIENT (``KAFKA_ADAPTERS``).
"""

from __future__ import annotations

import importlib

from ..settings import Settings
from .base import (REDELIVERED, Acked, Adapter, BrokerConfigError, Dead, DeadHandler, Handler, Outgoing, Received,
                   Rejected, lane_of, pos_of)

__all__ = ["ADAPTERS", "KAFKA_ADAPTERS", "KAFKA_TXN_ADAPTERS", "MODE_ADAPTERS", "Acked", "Adapter", "BrokerConfigError", "Dead", "DeadHandler", "Handler", "Outgoing",
           "REDELIVERED", "Received", "Rejected", "UnknownBrokerError", "adapter_class", "create", "lane_of", "pos_of"]

ADAPTERS: dict[str, str] = {
    "rabbitmq": "mqlab_services.adapters.rabbitmq:RabbitMQAdapter",
    "redis": "mqlab_services.adapters.redis:RedisAdapter",
    "kafka": "mqlab_services.adapters.kafka:KafkaAdapter",
}

#: The Kafka adapter per MQLAB_KAFKA_CLIENT (``ADAPTERS["kafka"]`` is the default's).
KAFKA_ADAPTERS: dict[str, str] = {
    "kafka-python": ADAPTERS["kafka"],
    "confluent-kafka": "mqlab_services.adapters.kafka_confluent:ConfluentKafkaAdapter",
}


#: The Kafka adapter of the ``txn`` mode (transactions), per MQLAB_KAFKA_CLIENT.
KAFKA_TXN_ADAPTERS: dict[str, str] = {
    "kafka-python": "mqlab_services.adapters.kafka_txn:KafkaTxnAdapter",
    "confluent-kafka": "mqlab_services.adapters.kafka_confluent_txn:ConfluentKafkaTxnAdapter",
}


class UnknownBrokerError(KeyError):
    def __str__(self) -> str:
        return self.args[0]


def adapter_class(broker: str, kafka_client: str | None = None, transactional: bool = False) -> type[Adapter]:
    """The adapter class registered for ``broker`` (Kafka: for ``kafka_client``, and for the
    transactional mode), imported on first use."""
    try:
        target = ADAPTERS[broker]
    except KeyError:
        raise UnknownBrokerError(
            f"unknown broker {broker!r}; valid brokers: {', '.join(sorted(ADAPTERS))}") from None
    if broker == "kafka" and (kafka_client or transactional):
        table = KAFKA_TXN_ADAPTERS if transactional else KAFKA_ADAPTERS
        try:
            target = table[kafka_client or "kafka-python"]
        except KeyError:
            raise UnknownBrokerError(f"unknown Kafka client {kafka_client!r}; valid clients: "
                                     f"{', '.join(table)}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


#: Modes whose adapter is not the broker's usual one.
MODE_ADAPTERS: dict[tuple[str, str], str] = {
    ("rabbitmq", "stream"): "mqlab_services.adapters.rabbitmq_stream:RabbitMQStreamAdapter",
}


def create(settings: Settings) -> Adapter:
    """A new, unconnected adapter for ``settings.broker`` (and MQLAB_KAFKA_CLIENT for Kafka), or
    the adapter of its mode (the RabbitMQ stream, Kafka transactions)."""
    target = MODE_ADAPTERS.get((settings.broker, settings.mode))
    if target:
        module_name, _, class_name = target.partition(":")
        return getattr(importlib.import_module(module_name), class_name)(settings)
    return adapter_class(settings.broker, settings.kafka_client, settings.info.transactional)(settings)
