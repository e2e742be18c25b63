"""Broker adapters behind one small interface, looked up by name.

The registry maps a broker name to ``"module:Class"``; the module is imported only when
that broker is used, so the producer for Redis never imports pika or kafka-python.
"""

from __future__ import annotations

import importlib

from ..settings import Settings
from .base import Adapter, BrokerConfigError, Dead, DeadHandler, Handler, Outgoing, Received, Rejected

__all__ = ["ADAPTERS", "Adapter", "BrokerConfigError", "Dead", "DeadHandler", "Handler", "Outgoing",
           "Received", "Rejected", "UnknownBrokerError", "adapter_class", "create"]

ADAPTERS: dict[str, str] = {
    "rabbitmq": "mqlab_services.adapters.rabbitmq:RabbitMQAdapter",
    "redis": "mqlab_services.adapters.redis:RedisAdapter",
    "kafka": "mqlab_services.adapters.kafka:KafkaAdapter",
}


class UnknownBrokerError(KeyError):
    def __str__(self) -> str:
        return self.args[0]


def adapter_class(broker: str) -> type[Adapter]:
    """The adapter class registered for ``broker``, imported on first use."""
    try:
        target = ADAPTERS[broker]
    except KeyError:
        raise UnknownBrokerError(
            f"unknown broker {broker!r}; valid brokers: {', '.join(sorted(ADAPTERS))}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def create(settings: Settings) -> Adapter:
    """A new, unconnected adapter for ``settings.broker``."""
    return adapter_class(settings.broker)(settings)
