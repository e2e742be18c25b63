"""One module per broker on the host side, behind one small interface (``base.Broker``).

Each module owns, for its broker: the host-side client, backlog and consumer probes,
reading the dead-letter destination, cleanup after a bench trial, the native benchmark
tool (command, parser, trial) and the exposure policy. Adding a broker means one module
here, one adapter in ``mqlab_services.adapters`` and one compose file.

    from mqlab import brokers

    broker = brokers.get("kafka")
    broker.consumers_seen(config, "group")
"""

from __future__ import annotations

import importlib

from ..errors import UsageError
from .base import Backlog, Broker, ConsumerView, Dead, NativeRun, names

#: broker name -> "module:class", imported on first use (so a host without one broker's
#: client library can still use the others).
REGISTRY = {
    "rabbitmq": "mqlab.brokers.rabbitmq:RabbitMQ",
    "redis": "mqlab.brokers.redis:Redis",
    "kafka": "mqlab.brokers.kafka:Kafka",
}

_loaded: dict[str, Broker] = {}

__all__ = ["REGISTRY", "Backlog", "Broker", "ConsumerView", "Dead", "NativeRun", "get", "names"]


def get(name: str) -> Broker:
    """The host side of broker ``name``; an unknown name is a UsageError listing the valid ones."""
    if name not in _loaded:
        try:
            module, cls = REGISTRY[name].split(":")
        except KeyError:
            raise UsageError(f"unknown broker {name!r}: choose one of {', '.join(REGISTRY)}") from None
        _loaded[name] = getattr(importlib.import_module(module), cls)()
    return _loaded[name]
