"""RabbitMQ adapter (pika, blocking connection).

Modes (all but ``autoack`` use publisher confirms and a manual ack after processing):
- ``work`` (safe, default): competing consumers on one durable queue, ``MQLAB_QUEUE``
  (``mailbox.durable``), persistent messages (delivery mode 2), publisher confirms awaited
  for every batch, and a manual ack only after the handler has processed (and the consumer
  has recorded) the batch. Each message goes to one consumer. A confirmed message survives
  a broker restart; a message whose consumer dies before the ack is delivered again.
- ``quorum`` (safe, the default of the ``rabbitmq-cluster`` stack): ``work`` on the quorum
  queue ``mailbox.quorum`` (``x-queue-type: quorum``): a Raft log replicated to the cluster's
  nodes, so a publisher confirm means a majority has the message, and the queue goes on
  with a new leader when a node is lost. On one node it is a quorum queue of one member.
- ``fanout`` (safe for each subscriber while it is subscribed): the producer publishes
  persistent messages with confirms to the durable fanout exchange ``mailbox.fanout``; each
  consumer declares its own queue ``mailbox.fanout.<name>`` (exclusive, auto-delete: it lives
  while the subscriber is connected) bound to it. Every subscriber gets every message
  published while it was subscribed; nothing is kept for one that is not (or is
  reconnecting), and a message published while no one is subscribed goes nowhere.
- ``topic`` (safe for each binding): durable topic exchange ``mailbox.topic``. The producer
  gives message ``seq`` the routing key ``MQLAB_ROUTING_KEYS[seq % len]``; a consumer binds
  ``MQLAB_BINDING`` on the durable queue ``mailbox.topic.<binding>`` (``*`` spelled ``star``,
  ``#`` ``hash``), so consumers with the same binding compete and each binding gets the
  messages it matches, kept while no consumer runs once its queue exists. A message that
  matches no binding is dropped by the broker (the producer logs how many). Receipts carry
  the routing key.
- ``transient`` (lossy): like ``work`` on the classic queue ``mailbox.transient`` with
  transient messages (delivery mode 1), still confirmed and acked by hand: nothing is lost
  while the broker runs, every queued message is lost when it restarts. The queue itself is
  durable: a non-durable, non-exclusive queue is a deprecated feature that RabbitMQ 4.3
  refuses by default (``transient_nonexcl_queues``), and the messages' delivery mode alone
  is what loses them (measured on 4.0: 100 transient of 150 queued were gone after a
  restart, the 50 persistent ones were kept).
- ``autoack`` (lossy): transient messages without publisher confirms on ``MQLAB_QUEUE``,
  consumed with auto-ack. The broker forgets a delivery as soon as it is sent, so whatever
  a consumer holds when it dies is lost, and so is everything in the queue if the broker
  restarts.

Failed messages and dead-lettering (every mode with manual acks): a message the handler
failed is republished, under confirms, to the queue it came from (default exchange) with
the header ``x-mqlab-attempts`` (attempts made so far) and ``x-mqlab-reason``, and only then
is the original acked; the copy goes to the back of the queue, so later messages keep
flowing, and the count travels with the message across consumer restarts. After
``MQLAB_MAX_DELIVERIES`` attempts the message is published, under confirms, to the durable
fanout exchange ``MQLAB_DLX`` (``mailbox.dlx``), bound to the durable queue ``MQLAB_DLQ``
(``mailbox.dead``), with the headers ``x-mqlab-attempts``, ``x-mqlab-reason`` and
``x-mqlab-queue`` (where it came from); then the original is acked. A copy the broker does
not confirm leaves the original unacked (requeued), so nothing is lost; a crash between
a confirm and the ack can give a duplicate. The ``work`` queue is also declared with
``x-dead-letter-exchange`` = ``mailbox.dlx``, so messages rejected by other clients land
there too (with RabbitMQ's ``x-death`` header). In ``autoack`` a failed message is gone
already: it is only recorded as dead.

Oversized messages: the lab's rabbitmq.conf sets ``max_message_size`` (4 MiB); the
producer refuses larger messages before publishing (``MQLAB_MAX_MESSAGE_BYTES``). If the
broker still closes the channel for one (406 "larger than configured max size"), the
adapter reports it as rejected, opens a new channel and the others are sent again.

A feature the broker refuses (RabbitMQ 4.3 closes the whole connection with 541 for a
deprecated feature it does not permit) is a configuration error: one line naming the
feature and the ``rabbitmq.conf`` key that permits it, and no retries.

Connect with ``MQLAB_URL=amqp://user:pass@host:5672/%2F``; query options that pika's
URLParameters knows (``?heartbeat=30&blocked_connection_timeout=60``) are honoured. For a
cluster, give one URL per node, comma-separated: each (re)connect tries them in a random
order, so the clients spread over the nodes and move to another one when theirs is lost.

Options:
- ``MQLAB_HEARTBEAT``: AMQP heartbeat (10 s) unless the URL sets one, so a paused or
  unreachable broker is noticed within about two heartbeats.
- ``MQLAB_DLX``, ``MQLAB_DLQ``, ``MQLAB_MAX_DELIVERIES``: dead-lettering, see above.
- ``MQLAB_QUEUE``: the queue of ``work``/``autoack`` (``mailbox.durable``), ``quorum``
  (``mailbox.quorum``) or ``transient`` (``mailbox.transient``). Deliberately not the tutorial's ``mailbox``, which tutorials
  declare transient: redeclaring it durable would fail with 406.
- ``MQLAB_QUEUE_TYPE``: ``classic`` (default) or ``quorum`` for the durable shared queues.
- ``MQLAB_EXCHANGE``: the exchange of ``fanout``/``topic`` (``mailbox.<mode>``).
- ``MQLAB_ROUTING_KEYS``, ``MQLAB_BINDING``: the ``topic`` mode's keys and binding.
- ``MQLAB_PREFETCH``: unacked deliveries a consumer may hold (basic.qos).
- ``MQLAB_BATCH``: messages published per confirm wait, and acked per multiple-ack.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, urlsplit

import pika
import pika.exceptions

from .base import (REDELIVERED, Adapter, BrokerConfigError, DeadHandler, Handler, Outgoing, Received, Rejected,
                   _no_dead, exhausted, outcomes, too_large)

log = logging.getLogger("mqlab")

CONFIRM_TIMEOUT = 30.0  # seconds to wait for a batch's confirms before counting them unconfirmed
IDLE_POLL = 0.25  # seconds between idle handler calls, so stop requests are seen quickly


def _nothing() -> None:
    pass


#: The modes that share one durable queue, MQLAB_QUEUE, declared with the dead-letter exchange.
SHARED_QUEUE_MODES = ("work", "quorum", "autoack")


def connection_parameters(settings, shuffle: Callable[[list], None] = random.shuffle) -> list[pika.URLParameters]:
    """pika parameters for each URL in MQLAB_URL (comma-separated for a cluster), in the
    order to try them: shuffled, so that clients spread over the nodes."""
    params = [url_parameters(url.strip(), settings) for url in settings.url.split(",") if url.strip()]
    shuffle(params)
    return params


def url_parameters(url: str, settings) -> pika.URLParameters:
    """pika parameters for one URL, with lab defaults where the URL says nothing."""
    params = pika.URLParameters(url)
    query = parse_qs(urlsplit(url).query)
    if "heartbeat" not in query:
        params.heartbeat = settings.heartbeat
    if "blocked_connection_timeout" not in query:
        params.blocked_connection_timeout = 60
    if "socket_timeout" not in query:
        params.socket_timeout = 5
    params.connection_attempts = 1  # the services do their own back-off
    params.client_properties = {"connection_name": f"mqlab {settings.name}"}
    return params


def queue_arguments(settings) -> dict | None:
    """Arguments of the shared durable queues (work/autoack queue, topic binding queues)."""
    # A classic queue is declared without x-queue-type so that it matches queues made by
    # definitions files or older clients that never set the argument.
    arguments = {"x-queue-type": "quorum"} if settings.queue_type == "quorum" else {}
    if settings.mode in SHARED_QUEUE_MODES:  # one queue, MQLAB_QUEUE
        arguments["x-dead-letter-exchange"] = settings.dlx
    return arguments or None


ATTEMPTS = "x-mqlab-attempts"
REASON = "x-mqlab-reason"
ORIGIN = "x-mqlab-queue"

_SIZE_LIMIT = re.compile(r"larger than configured max size (\d+)")


def attempts_made(properties) -> int:
    """How many failed attempts a delivery's headers record (0 for a first delivery)."""
    headers = getattr(properties, "headers", None) or {}
    value = headers.get(ATTEMPTS, 0)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def copy_properties(properties, attempts: int, reason: str, origin: str | None = None) -> pika.BasicProperties:
    """A delivery's properties for its retry copy (or, with ``origin``, its dead-letter copy)."""
    headers = dict(getattr(properties, "headers", None) or {})
    headers[ATTEMPTS] = attempts
    headers[REASON] = reason[:1000]
    if origin is not None:
        headers[ORIGIN] = origin
    return pika.BasicProperties(
        content_type=getattr(properties, "content_type", None),
        delivery_mode=getattr(properties, "delivery_mode", None) or pika.DeliveryMode.Persistent,
        app_id=getattr(properties, "app_id", None),
        message_id=getattr(properties, "message_id", None),
        headers=headers,
    )


def broker_size_limit(reply_text: str) -> int | None:
    """The broker's max_message_size from a 406 that closed a channel, or None for another 406."""
    match = _SIZE_LIMIT.search(reply_text or "")
    return int(match.group(1)) if match else None


_DENIED_FEATURE = re.compile(r"Feature `(\w+)` is deprecated")


def denied_feature(reply_code: int, reply_text: str) -> str | None:
    """The deprecated feature a broker's connection close names (541 in RabbitMQ 4.x), or None."""
    match = _DENIED_FEATURE.search(reply_text or "")
    return match.group(1) if reply_code == 541 and match else None


def delivery_mode(settings) -> pika.DeliveryMode:
    """Persistent messages in the safe modes; transient ones, lost on a broker restart, in the lossy ones."""
    return pika.DeliveryMode.Persistent if settings.safe else pika.DeliveryMode.Transient


def _received(method, properties, body: bytes) -> Received:
    # On the default exchange the routing key is only the queue's name. A redelivery
    # or a retry copy comes after later messages: its order is not promised.
    again = method.redelivered or attempts_made(properties) > 0
    return Received(body, method.routing_key if method.exchange else "", REDELIVERED if again else "")


def message_properties(settings) -> pika.BasicProperties:
    return pika.BasicProperties(content_type="application/json", delivery_mode=delivery_mode(settings), app_id="mqlab")


_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def binding_queue(exchange: str, binding: str) -> str:
    """The ``topic`` mode's queue for a binding: ``mailbox.topic.orders.star`` for ``orders.*``."""
    name = binding.replace("*", "star").replace("#", "hash")
    return f"{exchange}.{_NOT_NAME.sub('_', name)}"


def consumer_queue(settings) -> str:
    """The queue this consumer reads in its mode."""
    if settings.mode == "fanout":
        return f"{settings.exchange}.{settings.name}"
    if settings.mode == "topic":
        return binding_queue(settings.exchange, settings.binding)
    return settings.queue


def routing_key(settings, seq: int) -> str:
    """The ``topic`` mode's routing key for message ``seq``: the keys in turn; "" otherwise."""
    if settings.mode != "topic":
        return ""
    return settings.routing_keys[seq % len(settings.routing_keys)]


class RabbitMQAdapter(Adapter):
    """RabbitMQ with persistent messages, publisher confirms and manual acks."""

    name = "rabbitmq"
    errors = (pika.exceptions.AMQPError, OSError)

    def __init__(self, settings):
        super().__init__(settings)
        self._connection = None
        self._channel = None
        self._properties = message_properties(settings)
        self._confirms = settings.mode != "autoack"
        self._next_tag = 1
        self._outstanding: dict[int, int] = {}  # delivery tag -> index in the current batch
        self._acks: list[int | None] = []
        self.unroutable = 0  # messages the broker returned: no queue matched

    def describe(self) -> str:
        s = self.settings
        if s.mode in ("work", "quorum"):
            return (f"queue {s.queue} ({s.queue_type}, durable), competing consumers: persistent "
                    "messages, publisher confirms, manual ack after processing")
        if s.mode == "fanout":
            return (f"fanout exchange {s.exchange}, a queue per subscriber: every subscriber gets "
                    "every message published while it is subscribed; confirms, manual ack")
        if s.mode == "topic":
            return (f"topic exchange {s.exchange}, keys {','.join(s.routing_keys)}, binding "
                    f"{s.binding!r} on queue {consumer_queue(s)}: confirms, manual ack")
        if s.mode == "transient":
            return (f"queue {s.queue}: LOSSY on a broker restart, transient messages; "
                    "confirms, manual ack")
        return f"queue {s.queue}: LOSSY auto-ack, transient messages, no publisher confirms"

    def key_for(self, seq: int) -> str:
        return routing_key(self.settings, seq)

    def connect(self) -> None:
        """Connect and declare what producers and consumers share (a queue or an exchange)."""
        self.close()
        self._connection = pika.BlockingConnection(connection_parameters(self.settings))
        params = getattr(getattr(self._connection, "_impl", None), "params", None)
        self.node = getattr(params, "host", "")  # which node of a cluster we reached
        self._channel = self._connection.channel()
        s = self.settings
        if s.exchange:
            self._declare(lambda: self._channel.exchange_declare(
                s.exchange, exchange_type=s.mode, durable=True), f"exchange {s.exchange!r}", "EXCHANGE")
            self._channel._impl.add_on_return_callback(self._on_return)
        else:
            self._declare(lambda: self._channel.queue_declare(
                s.queue, durable=True, arguments=self._arguments()),
                f"queue {s.queue!r}", "QUEUE/MQLAB_QUEUE_TYPE", fresh=s.mode in SHARED_QUEUE_MODES)
        self._declare(lambda: self._channel.exchange_declare(s.dlx, exchange_type="fanout", durable=True),
                      f"exchange {s.dlx!r}", "DLX")
        self._declare(lambda: self._channel.queue_declare(s.dlq, durable=True), f"queue {s.dlq!r}", "DLQ")
        self._channel.queue_bind(s.dlq, s.dlx)
        self._setup_channel()

    def _setup_channel(self) -> None:
        self._channel.basic_qos(prefetch_count=self.settings.prefetch)
        if self._confirms:
            self._enable_confirms()

    def _reopen_channel(self) -> None:
        """A new channel on the same connection, after the broker closed ours."""
        self._channel = self._connection.channel()
        if self.settings.exchange:
            self._channel._impl.add_on_return_callback(self._on_return)
        self._setup_channel()

    def _arguments(self) -> dict | None:
        if self.settings.mode == "stream":  # a log: no dead-letter exchange, no queue type to choose
            return {"x-queue-type": "stream"}
        return queue_arguments(self.settings) if self.settings.mode in (*SHARED_QUEUE_MODES, "topic") else None

    def _declare(self, declare: Callable[[], object], what: str, variable: str, fresh: bool = False) -> None:
        try:
            declare()
        except pika.exceptions.ConnectionClosedByBroker as exc:
            feature = denied_feature(exc.reply_code, exc.reply_text)
            if feature:
                raise BrokerConfigError(
                    f"RabbitMQ refused {what}: deprecated feature `{feature}` is not permitted "
                    f"({exc.reply_code}); permit it with `deprecated_features.permit.{feature} = true` "
                    "in rabbitmq.conf") from None
            raise
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 406 and fresh:
                raise BrokerConfigError(
                    f"{what} exists with other arguments ({exc.reply_text}); it predates the "
                    "dead-letter settings: run `invoke down rabbitmq --volumes` for a fresh broker") from None
            if exc.reply_code in (403, 406):
                raise BrokerConfigError(
                    f"{what} exists with other settings or is not allowed "
                    f"({exc.reply_code} {exc.reply_text}); set MQLAB_{variable} to match") from None
            raise

    def _subscribe(self) -> str:
        """Declare and bind this consumer's own queue (fanout, topic); the queue to read."""
        s = self.settings
        queue = consumer_queue(s)
        if s.mode == "fanout":
            self._declare(lambda: self._channel.queue_declare(queue, exclusive=True, auto_delete=True),
                          f"queue {queue!r}", "NAME")
            self._channel.queue_bind(queue, s.exchange)
        elif s.mode == "topic":
            self._declare(lambda: self._channel.queue_declare(queue, durable=True, arguments=self._arguments()),
                          f"queue {queue!r}", "QUEUE_TYPE")
            self._channel.queue_bind(queue, s.exchange, routing_key=s.binding)
        return queue

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

    def _on_return(self, _channel, _method, _properties, _body) -> None:
        # A mandatory message no queue took: the broker still confirms it, then drops it.
        self.unroutable += 1

    def ping(self) -> float:
        started = time.perf_counter()
        if self.settings.exchange:
            self._channel.exchange_declare(self.settings.exchange, passive=True)
        else:
            self._channel.queue_declare(self.settings.queue, passive=True)
        return time.perf_counter() - started

    def publish(self, batch: Sequence[Outgoing]) -> list:
        s = self.settings
        returned = self.unroutable
        if s.exchange:
            items = [(s.exchange, key, body, self._properties, True) for body, key in batch]
        else:
            items = [("", s.queue, body, self._properties, False) for body, _key in batch]
        try:
            acks = self._send(items)
        except pika.exceptions.ChannelClosedByBroker as exc:
            acks = self._refused_as_too_large(exc, batch)
        if self.unroutable > returned:
            log.info("%d message(s) matched no queue on %s and were dropped (%d so far)",
                     self.unroutable - returned, s.exchange, self.unroutable)
        return acks

    def _refused_as_too_large(self, exc: pika.exceptions.ChannelClosedByBroker, batch: Sequence[Outgoing]) -> list:
        """The acks of a batch during which the broker closed the channel for a message above its
        max_message_size: the confirms got before it stand, the rest are sent again on a new
        channel. Any other closing is raised again."""
        limit = broker_size_limit(exc.reply_text) if exc.reply_code == 406 else None
        if limit is None or self._connection is None or not self._connection.is_open:
            raise exc
        acks = [Rejected(too_large(len(body), limit, "broker")) if ack is None and len(body) > limit
                else ack for ack, (body, _key) in zip(self._acks, batch)]
        log.info("the broker closed the channel for a message above its limit (%d bytes); "
                 "opening a new one", limit)
        self._reopen_channel()
        return acks

    def _send(self, items) -> list[int | None]:
        """Publish (exchange, routing key, body, properties, mandatory) items; wait for confirms.

        When the broker closed the channel meanwhile, raises its ChannelClosedByBroker (pika
        itself raises ChannelWrongStateError on the next use of a closed channel).
        """
        try:
            return self._send_on_channel(items)
        except pika.exceptions.ChannelWrongStateError:
            reason = getattr(self._channel, "_closing_reason", None)
            if isinstance(reason, pika.exceptions.ChannelClosedByBroker):
                raise reason from None
            raise

    def _send_on_channel(self, items) -> list[int | None]:
        self._acks = [None] * len(items)
        for index, (exchange, key, body, properties, mandatory) in enumerate(items):
            if self._confirms:
                # Registered before the publish: basic_publish() also reads incoming frames,
                # so this message's confirm can arrive before it returns.
                self._outstanding[self._next_tag] = index
                self._next_tag += 1
            if mandatory:
                self._channel.basic_publish(exchange, key, body, properties, mandatory=True)
            else:
                self._channel.basic_publish(exchange, key, body, properties)
        if not self._confirms:
            # No confirms in this mode: "acked" only means handed to the socket.
            now = time.time_ns()
            return [now] * len(items)
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        try:
            while self._outstanding and time.monotonic() < deadline:
                self._connection.process_data_events(time_limit=max(0.0, deadline - time.monotonic()))
                if self._channel.is_closed:
                    raise pika.exceptions.ChannelWrongStateError("Channel is closed.")
        finally:
            self._outstanding.clear()  # late confirms for these tags are ignored
        return self._acks

    def consume(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler | None = None) -> None:
        auto_ack = self.settings.mode == "autoack"
        queue = self._subscribe()
        self.assignment = [queue]

        def settle(batch: list[Received], deliveries: list[tuple[int, object]]) -> None:
            self._settle(queue, batch, deliveries, handler(batch), dead or _no_dead, auto_ack)

        batch: list[Received] = []
        deliveries: list[tuple[int, object]] = []  # (delivery tag, properties) per message
        for method, props, body in self._channel.consume(
                queue, auto_ack=auto_ack, inactivity_timeout=IDLE_POLL):
            self.subscribed = True  # the first item comes after basic.consume-ok
            if method is not None:
                batch.append(_received(method, props, body))
                deliveries.append((method.delivery_tag, props))
            if method is None or self._batch_ready(batch) or not running():
                settle(batch, deliveries)
                batch, deliveries = [], []
            if not running():
                break
        else:
            # The generator ends when the broker cancels us (queue deleted, node going down):
            # finish what we hold, then reconnect, which declares the queue again.
            if batch:
                settle(batch, deliveries)
            self.subscribed = False
            raise pika.exceptions.ConsumerCancelled(f"the broker cancelled the consumer of {queue}")
        # Deliveries prefetched but not handed to the handler go back to the queue.
        self.subscribed = False
        self._channel.cancel()

    def _batch_ready(self, batch: list[Received]) -> bool:
        # A batch is what has arrived, up to MQLAB_BATCH: it is processed as soon as no
        # more deliveries are waiting, so a slow trickle is not held back to fill a batch.
        return len(batch) >= self.settings.batch or not self._channel.get_waiting_message_count()

    def _settle(self, queue: str, batch, deliveries, results, dead: DeadHandler, auto_ack: bool) -> None:
        """Ack a handled batch; retry or dead-letter the messages the handler failed."""
        results = outcomes(results, len(batch))
        if not batch:
            return
        failed = [(i, reason) for i, reason in enumerate(results) if reason is not None]
        if auto_ack:  # already gone from the broker: nothing to retry
            if failed:
                dead([(*batch[i], 1, f"{reason}; dropped (autoack mode, no retries)") for i, reason in failed])
            return
        if not failed:
            self._channel.basic_ack(delivery_tag=deliveries[-1][0], multiple=True)
            return
        self._retry(queue, batch, deliveries, failed, dead)

    def _retry(self, queue: str, batch, deliveries, failed: list[tuple[int, str]], dead: DeadHandler) -> None:
        """Publish, under confirms, a retry copy of each failed message (a dead-letter copy once it is
        out of attempts), then ack the batch; an original whose copy was not confirmed goes back."""
        copies, dying = self._copies(queue, batch, deliveries, failed)
        confirmed = self._send(copies)
        settled = {i for (i, _reason), ack in zip(failed, confirmed) if ack is not None}
        recorded = [item for i, item in dying if i in settled]
        if recorded:
            dead(recorded)
        if len(settled) == len(failed):
            self._channel.basic_ack(delivery_tag=deliveries[-1][0], multiple=True)
            return
        log.info("%d retry or dead-letter copies not confirmed; their originals go back to the queue",
                 len(failed) - len(settled))
        unsettled = {i for i, _reason in failed} - settled
        for i, (tag, _props) in enumerate(deliveries):
            if i in unsettled:
                self._channel.basic_nack(delivery_tag=tag, multiple=False, requeue=True)
            else:
                self._channel.basic_ack(delivery_tag=tag, multiple=False)

    def _copies(self, queue: str, batch, deliveries, failed: list[tuple[int, str]]) -> tuple[list, list]:
        """The retry and dead-letter copies of the failed messages to publish, and the (index,
        dead-letter record) of those that are out of attempts."""
        s = self.settings
        copies, dying = [], []
        for i, reason in failed:
            body, key = batch[i]
            properties = deliveries[i][1]
            attempts = attempts_made(properties) + 1
            if exhausted(attempts, s.max_deliveries):
                copies.append((s.dlx, queue, body, copy_properties(properties, attempts, reason, queue), False))
                dying.append((i, (body, key, attempts, reason)))
            else:
                copies.append(("", queue, body, copy_properties(properties, attempts, reason), False))
        return copies, dying

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._outstanding.clear()
        self.subscribed = False
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # closing a broken connection; nothing left to save
                pass
