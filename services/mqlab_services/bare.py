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

Each client's loops live next to its adapter, in ``adapters/<adapter>_bare.py``, and configure
the client with that adapter's own settings (URL parsing, delivery mode, group and field names,
producer and consumer configs), so the two cannot drift apart. Each module has two functions:

- ``produce(settings, body, more, acked)``;
- ``consume(settings, more, received, ready)``;

called with the settings (URL, names, batch, prefetch, mode), the payload or nothing, and:

- ``more()``: False once the trial is over (the producer's first call waits for the start);
- ``acked(n)`` (producer): n more messages acknowledged by the broker;
- ``received(n)`` (consumer): n more messages received (and acked, in a safe mode);
- ``ready()`` (consumer): called once, when subscribed, so that the producer can start.

Broker errors propagate: the caller records them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping

from .modes import default_mode, mode_info
from .settings import CLIENTS, Settings

More = Callable[[], bool]
Count = Callable[[int], None]
Ready = Callable[[], None]
Loops = tuple[Callable[[Settings, bytes, More, Count], None], Callable[[Settings, More, Count, Ready], None]]


class _Lazy(Mapping):
    """(broker, client) -> (producer loop, consumer loop), each module imported on first use, so
    that a bench of one client never loads the others (nor the host, which reads only MODES)."""

    def __init__(self, modules: dict[tuple[str, str], str]):
        self._modules = modules

    def __getitem__(self, key: tuple[str, str]) -> Loops:
        module = importlib.import_module(self._modules[key])
        return module.produce, module.consume

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


#: (broker, client) -> (producer loop, consumer loop)
LOOPS: Mapping[tuple[str, str], Loops] = _Lazy({
    ("rabbitmq", "pika"): "mqlab_services.adapters.rabbitmq_bare",
    ("redis", "redis-py"): "mqlab_services.adapters.redis_bare",
    ("kafka", "kafka-python"): "mqlab_services.adapters.kafka_bare",
    ("kafka", "confluent-kafka"): "mqlab_services.adapters.kafka_confluent_bare",
})

#: The modes the bare client imitates: each broker's safe default mode and its lossy twin.
MODES = {broker: (default_mode(broker).name, mode_info(broker, default_mode(broker).name).lossy)
         for broker in CLIENTS}


def loops(s: Settings) -> Loops:
    """The producer and consumer loops for the settings' broker and client."""
    client = s.kafka_client if s.broker == "kafka" else CLIENTS[s.broker][0][0]
    return LOOPS[(s.broker, client)]
