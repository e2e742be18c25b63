"""RabbitMQ ``stream`` mode: a stream queue, read as a log with the stream protocol (rstream).

A stream (``x-queue-type: stream``) is an append-only log: delivering a message does not remove
it, so it can be read again from any offset or time (`invoke replay`), unlike a classic or
quorum queue. On ``rabbitmq-cluster`` it is replicated to every node (a leader and replicas,
Raft-like), and a publisher confirm means a majority has the message.

- The **producer** is the RabbitMQ adapter's: persistent messages published with confirms, over
  AMQP 0-9-1 (port 5672), to the stream ``MQLAB_QUEUE`` (``mailbox.stream``).
- The **consumer** speaks the stream protocol (port ``MQLAB_STREAM_PORT``, 5552, the
  ``rabbitmq_stream`` plugin, which the lab's compose files enable on both images) with rstream.
  It reads from the offset the broker stored for it, and after the handler processed a batch
  it stores the batch's last offset in the stream itself (**server-side offset tracking**,
  ``store_offset`` under the name ``MQLAB_GROUP``): a consumer restarted, or another one taking
  over, resumes after the last processed batch; what was processed but not yet stored is read
  again (at-least-once).
- **Scaling**: consumers of a stream do not compete for messages, as a queue's do: each reads
  the whole log. The broker's answer is *single active consumer*: every consumer subscribes
  under the same name, the broker lets one of them read, and hands the stream (and its stored
  offset) to another when that one goes away. So `invoke scale` here adds stand-bys, not
  throughput; throughput comes from a super stream (a stream partitioned into several, one
  active consumer each), which the lab does not build.
- Failed messages cannot go back into a log: they are tried again at once, up to
  ``MQLAB_MAX_DELIVERIES`` attempts, then published under confirms to the dead-letter exchange
  ``MQLAB_DLX``, and only then is the offset stored past them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import pika
from rstream import AMQPMessage, Consumer, ConsumerOffsetSpecification, OffsetSpecification, OffsetType, amqp_decoder
from rstream.exceptions import OffsetNotFound, ServerError

from .base import DeadHandler, Handler, Received, _no_dead
from .kafka_common import Stopping, retry_then_dead_letter
from .rabbitmq import RabbitMQAdapter, copy_properties

log = logging.getLogger("mqlab")

IDLE_S = 0.25  # how long the consumer waits for more before handing over what it has
CLOSE_TIMEOUT_S = 5.0


def stream_endpoint(settings) -> tuple[str, str, str, str]:
    """(host, user, password, vhost) of the first URL in MQLAB_URL: the stream protocol's locator.
    On a cluster any node locates the stream's leader and replicas for the client."""
    url = urlsplit(settings.url.split(",")[0].strip())
    vhost = unquote(url.path[1:]) if len(url.path) > 1 else "/"
    return url.hostname or "localhost", unquote(url.username or "guest"), unquote(url.password or "guest"), vhost


def message_body(message: AMQPMessage) -> bytes:
    """The payload of a message published over AMQP 0-9-1 and kept in AMQP 1.0 form."""
    body = message.body
    if isinstance(body, (list, tuple)):
        return b"".join(bytes(part) for part in body)
    return bytes(body) if body is not None else b""


class RabbitMQStreamAdapter(RabbitMQAdapter):
    """RabbitMQ stream: a replicated log, read with server-side offset tracking and a single active consumer."""

    errors = (*RabbitMQAdapter.errors, ServerError, ConnectionError, asyncio.TimeoutError)

    def describe(self) -> str:
        s = self.settings
        return (f"stream {s.queue}: persistent messages, confirms; read with the stream protocol on port "
                f"{s.stream_port}, offsets stored on the broker as {s.group!r} after processing, a single "
                "active consumer")

    def consume(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler | None = None) -> None:
        asyncio.run(self._consume(handler, running, dead or _no_dead))

    async def _consume(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler) -> None:
        s = self.settings
        host, user, password, vhost = stream_endpoint(s)
        closed: list[str] = []
        # The client's own recovery is off: a closed connection, or a stream whose leader moved
        # (a metadata update), ends this subscription, and the service reconnects and subscribes
        # again after the stored offset, as after any other outage.
        consumer = Consumer(host, s.stream_port, username=user, password=password, vhost=vhost,
                            heartbeat=max(s.heartbeat, 1), connection_name=f"mqlab {s.name}",
                            on_close_handler=lambda info: closed.append(info.reason))
        arrived: list[tuple[int, bytes]] = []
        await consumer.start()
        try:
            await consumer.subscribe(
                s.queue, lambda message, context: arrived.append((context.offset, message_body(message))),
                decoder=amqp_decoder, subscriber_name=s.group,
                offset_specification=await self._resume_at(consumer),
                properties={"single-active-consumer": "true", "name": s.group},
                consumer_update_listener=lambda active, _context: self._on_update(consumer, active))
            self.assignment, self.subscribed = [s.queue], True
            while running():
                await asyncio.sleep(IDLE_S)
                if closed:
                    raise ConnectionError(f"the stream connection ended ({closed[0]})")
                if arrived:
                    taken, arrived[:] = arrived[:s.batch], arrived[s.batch:]
                    if not await self._settle(consumer, taken, handler, dead, running):
                        return
        finally:
            self.subscribed = False
            try:  # a connection that is gone closes with an error, or not at all
                await asyncio.wait_for(consumer.close(), CLOSE_TIMEOUT_S)
            except (asyncio.TimeoutError, ConnectionError, OSError, ServerError) as exc:
                log.info("the stream connection did not close cleanly: %s", exc)

    async def _resume_at(self, consumer: Consumer) -> ConsumerOffsetSpecification:
        """After the offset stored for the group, or from the first message for a new group."""
        try:
            stored = await consumer.query_offset(self.settings.queue, self.settings.group)
        except OffsetNotFound:
            return ConsumerOffsetSpecification(OffsetType.FIRST, None)
        return ConsumerOffsetSpecification(OffsetType.OFFSET, stored + 1)

    async def _on_update(self, consumer: Consumer, active: bool):
        """The broker made this consumer the active one (or a stand-by): read after the stored offset."""
        log.info("this consumer is now %s of %s", "the active one" if active else "a stand-by", self.settings.queue)
        spec = await self._resume_at(consumer)
        return OffsetSpecification(spec.offset_type, spec.offset or 0)

    async def _settle(self, consumer: Consumer, taken: list[tuple[int, bytes]], handler: Handler,
                      dead: DeadHandler, running: Callable[[], bool]) -> bool:
        """Process a batch, dead-letter what kept failing, then store the offset past it. False: stopping."""
        batch = [Received(body, "") for _offset, body in taken]
        try:
            retry_then_dead_letter(self.settings, handler, dead, batch, handler(batch), running,
                                   lambda failed, attempts: self._publish_dead(batch, failed, attempts))
        except Stopping:
            return False
        await consumer.store_offset(self.settings.queue, self.settings.group, taken[-1][0])
        return True

    def _publish_dead(self, batch: list[Received], failed: list[tuple[int, str]], attempts: int) -> None:
        """Publish, under confirms, the messages that kept failing to the dead-letter exchange;
        raise unless every one was confirmed (then the offset is not stored: they come again)."""
        s = self.settings
        if self._channel is None:
            self.connect()
        props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        copies = [(s.dlx, s.queue, batch[i][0], copy_properties(props, attempts, reason, s.queue), False)
                  for i, reason in failed]
        if any(ack is None for ack in self._send(copies)):
            raise pika.exceptions.AMQPError("the dead-letter exchange did not confirm every copy")
