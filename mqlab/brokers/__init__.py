"""One module per broker on the host side, behind one small interface (``base.Broker``).

Each module owns, for its broker: the host-side client, backlog and consumer probes,
reading the dead-letter destination, cleanup after a bench trial, the native benchmark
tool (command, parser, trial) and the exposure policy; ``native`` holds what those tools'
results have in common (``NativeResult``, ``NativeError``, the parsing helpers). Adding a
broker means one module here, one adapter in ``mqlab_services.adapters`` and one compose file.

    from mqlab import brokers

    broker = brokers.of(stack)   # the broker of a stack, reached through that stack's ports
    broker.consumers_seen(config, "group")
"""

from __future__ import annotations

import importlib

from ..errors import UsageError
from .base import Backlog, Broker, ConsumerView, Dead, NativeRun, Peer, names

#: broker name -> "module:class", imported on first use (so a host without one broker's
#: client library can still use the others).
REGISTRY = {
    "rabbitmq": "mqlab.brokers.rabbitmq:RabbitMQ",
    "redis": "mqlab.brokers.redis:Redis",
    "kafka": "mqlab.brokers.kafka:Kafka",
}

_loaded: dict[str, Broker] = {}
_of_stack: dict[str, Broker] = {}

__all__ = ["REGISTRY", "Backlog", "Broker", "ConsumerView", "Dead", "NativeRun", "Peer", "get", "image_keys", "names",
           "of"]


def get(name: str) -> Broker:
    """The host side of broker ``name``; an unknown name is a UsageError listing the valid ones."""
    if name not in _loaded:
        try:
            module, cls = REGISTRY[name].split(":")
        except KeyError:
            raise UsageError(f"unknown broker {name!r}: choose one of {', '.join(REGISTRY)}") from None
        _loaded[name] = getattr(importlib.import_module(module), cls)()
    return _loaded[name]


def of(stack) -> Broker:
    """The host side of ``stack``'s broker, reaching it through that stack's nodes."""
    if stack.name not in _of_stack:
        broker = type(get(stack.broker))()
        broker.stack = stack
        _of_stack[stack.name] = broker
    return _of_stack[stack.name]


def image_keys(stack) -> tuple[str, ...]:
    """The .env keys of every image ``stack`` runs: its broker's, the services', and on a
    single-node stack (the only kind `invoke bench` measures) the broker's benchmark tool's
    where that has an image of its own."""
    tool = get(stack.broker).tool_image_key if not stack.cluster else ""
    return (*stack.images, "MQLAB_SERVICES_IMAGE", *((tool,) if tool else ()))
