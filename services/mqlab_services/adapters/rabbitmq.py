"""RabbitMQ adapter (pika, blocking connection).

Modes:
- ``durable`` (safe, default): a durable queue, persistent messages (delivery mode 2),
  publisher confirms awaited for every batch, and a manual ack only after the handler has
  processed (and the consumer has recorded) the batch. A confirmed message survives a
  broker restart; a message whose consumer dies before the ack is delivered again.
- ``autoack`` (lossy): transient messages without publisher confirms, consumed with
  auto-ack. The broker forgets a delivery as soon as it is sent, so whatever a consumer
  holds when it dies is lost, and so is everything in the queue if the broker restarts.

Connect with ``MQLAB_URL=amqp://user:pass@host:5672/%2F``; query options that pika's
URLParameters knows (``?heartbeat=30&blocked_connection_timeout=60``) are honoured.

Options:
- ``MQLAB_QUEUE``: the lab's queue, ``mailbox.durable``. It is deliberately not the tutorial's
  ``mailbox``, which tutorials declare transient: redeclaring it durable would fail with 406.
- ``MQLAB_QUEUE_TYPE``: ``classic`` (default) or ``quorum`` (replicated log, RabbitMQ 3.8+).
- ``MQLAB_PREFETCH``: unacked deliveries a consumer may hold (basic.qos).
- ``MQLAB_BATCH``: messages published per confirm wait, and acked per multiple-ack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, urlsplit

import pika
import pika.exceptions

from .base import Adapter, BrokerConfigError, Handler, Outgoing

CONFIRM_TIMEOUT = 30.0  # seconds to wait for a batch's confirms before counting them unconfirmed
BATCH_WAIT = 0.2  # seconds a consumer batch may wait to fill up before it is processed
IDLE_POLL = 0.25  # seconds between idle handler calls, so stop requests are seen quickly


def _nothing() -> None:
    pass


def connection_parameters(settings) -> pika.URLParameters:
    """pika parameters for MQLAB_URL, with lab defaults where the URL says nothing."""
    params = pika.URLParameters(settings.url)
    query = parse_qs(urlsplit(settings.url).query)
    if "heartbeat" not in query:
        params.heartbeat = 30
    if "blocked_connection_timeout" not in query:
        params.blocked_connection_timeout = 60
    if "socket_timeout" not in query:
        params.socket_timeout = 5
    params.connection_attempts = 1  # the services do their own back-off
    params.client_properties = {"connection_name": f"mqlab {settings.name}"}
    return params


def queue_arguments(settings) -> dict | None:
    # A classic queue is declared without x-queue-type so that it matches queues made by
    # definitions files or older clients that never set the argument.
    return {"x-queue-type": "quorum"} if settings.queue_type == "quorum" else None


def message_properties(settings) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent if settings.safe else pika.DeliveryMode.Transient,
        app_id="mqlab",
    )


class RabbitMQAdapter(Adapter):
    """RabbitMQ durable queue with publisher confirms and manual acks."""

    name = "rabbitmq"
    errors = (pika.exceptions.AMQPError, OSError)

    def __init__(self, settings):
        super().__init__(settings)
        self._connection = None
        self._channel = None
        self._properties = message_properties(settings)
        self._next_tag = 1
        self._outstanding: dict[int, int] = {}  # delivery tag -> index in the current batch
        self._acks: list[int | None] = []

    def describe(self) -> str:
        if self.settings.safe:
            return (f"queue {self.settings.queue} ({self.settings.queue_type}, durable): persistent "
                    "messages, publisher confirms, manual ack after processing")
        return f"queue {self.settings.queue}: LOSSY auto-ack, transient messages, no publisher confirms"

    def connect(self) -> None:
        self.close()
        self._connection = pika.BlockingConnection(connection_parameters(self.settings))
        self._channel = self._connection.channel()
        try:
            self._channel.queue_declare(self.settings.queue, durable=True,
                                        arguments=queue_arguments(self.settings))
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code in (403, 406):
                raise BrokerConfigError(
                    f"queue {self.settings.queue!r} exists with other settings or is not allowed "
                    f"({exc.reply_code} {exc.reply_text}); set MQLAB_QUEUE/MQLAB_QUEUE_TYPE to match"
                ) from None
            raise
        self._channel.basic_qos(prefetch_count=self.settings.prefetch)
        if self.settings.safe:
            self._enable_confirms()

    def _enable_confirms(self) -> None:
        # BlockingChannel.confirm_delivery() makes every basic_publish wait for its own
        # confirm: one round trip per message. Registering on the underlying channel lets
        # a whole batch be in flight and confirmed (often with multiple=True) at once.
        selected = []
        self._channel._impl.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=lambda frame: selected.append(True))
        while not selected:
            self._connection.process_data_events(time_limit=0.1)
        self._next_tag = 1

    def _on_confirm(self, frame) -> None:
        method = frame.method
        ok = isinstance(method, pika.spec.Basic.Ack)
        now = time.time_ns()
        tags = ([t for t in self._outstanding if t <= method.delivery_tag] if method.multiple
                else [method.delivery_tag])
        for tag in tags:
            index = self._outstanding.pop(tag, None)
            if index is not None and ok:
                self._acks[index] = now
        if not self._outstanding and self._connection is not None:
            # Wake process_data_events() in publish(): it returns early only for events it
            # dispatches itself, and this callback sits below it, on the underlying channel.
            self._connection.add_callback_threadsafe(_nothing)

    def ping(self) -> float:
        started = time.perf_counter()
        self._channel.queue_declare(self.settings.queue, passive=True)
        return time.perf_counter() - started

    def publish(self, batch: Sequence[Outgoing]) -> list[int | None]:
        self._acks = [None] * len(batch)
        for index, (body, _key) in enumerate(batch):
            if self.settings.safe:
                # Registered before the publish: basic_publish() also reads incoming frames,
                # so this message's confirm can arrive before it returns.
                self._outstanding[self._next_tag] = index
                self._next_tag += 1
            self._channel.basic_publish("", self.settings.queue, body, self._properties)
        if not self.settings.safe:
            # No confirms in this mode: "acked" only means handed to the socket.
            now = time.time_ns()
            return [now] * len(batch)
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while self._outstanding and time.monotonic() < deadline:
            self._connection.process_data_events(time_limit=max(0.0, deadline - time.monotonic()))
        self._outstanding.clear()  # late confirms for these tags are ignored
        return self._acks

    def consume(self, handler: Handler, running: Callable[[], bool]) -> None:
        auto_ack = not self.settings.safe
        batch: list[bytes] = []
        last_tag = 0
        started = 0.0
        for method, _props, body in self._channel.consume(
                self.settings.queue, auto_ack=auto_ack, inactivity_timeout=IDLE_POLL):
            if method is not None:
                if not batch:
                    started = time.monotonic()
                batch.append(body)
                last_tag = method.delivery_tag
            full = len(batch) >= self.settings.batch or (batch and time.monotonic() - started >= BATCH_WAIT)
            if method is None or full or not running():
                handler(batch)
                if batch and not auto_ack:
                    self._channel.basic_ack(delivery_tag=last_tag, multiple=True)
                batch = []
            if not running():
                break
        else:
            # The generator ends when the broker cancels us (queue deleted, node going down):
            # finish what we hold, then reconnect, which declares the queue again.
            if batch:
                handler(batch)
                if not auto_ack:
                    self._channel.basic_ack(delivery_tag=last_tag, multiple=True)
            raise pika.exceptions.ConsumerCancelled(
                f"the broker cancelled the consumer of {self.settings.queue}")
        # Deliveries prefetched but not handed to the handler go back to the queue.
        self._channel.cancel()

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._outstanding.clear()
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # closing a broken connection; nothing left to save
                pass
