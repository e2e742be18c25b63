"""The bare client on RabbitMQ (pika): the plain loops a user writes from pika's docs (see bare.py).

``work`` (safe): a durable queue, persistent messages, publisher confirms awaited per
MQLAB_BATCH, prefetch, one multiple ack per batch. ``autoack`` (lossy): transient messages,
no confirms, auto-ack. Connections are made from MQLAB_URL as the adapter makes them
(``connection_parameters``), and messages get the adapter's delivery mode. Public pika API only.
"""

from __future__ import annotations

import pika

from ..bare import Count, More, Ready
from ..settings import Settings
from .rabbitmq import connection_parameters, delivery_mode


def produce(s: Settings, body: bytes, more: More, acked: Count) -> None:
    if s.safe:
        _ConfirmedPublisher(s, body, more, acked).run()
        return
    connection = pika.BlockingConnection(connection_parameters(s))
    channel = connection.channel()
    channel.queue_declare(s.queue, durable=True)
    properties = pika.BasicProperties(delivery_mode=delivery_mode(s))
    while more():
        for _ in range(s.batch):
            channel.basic_publish("", s.queue, body, properties)
        acked(s.batch)  # no confirms: handed to the socket
    connection.close()


class _ConfirmedPublisher:
    """The safe producer as pika's docs write an asynchronous publisher with confirms
    (SelectConnection and callbacks): MQLAB_BATCH messages in flight, then their confirms.

    pika's public blocking API cannot keep a window in flight: BlockingChannel.confirm_delivery()
    makes each basic_publish wait for its own confirm.
    """

    def __init__(self, s: Settings, body: bytes, more: More, acked: Count):
        self.s, self.body, self.more, self.acked = s, body, more, acked
        self.properties = pika.BasicProperties(delivery_mode=delivery_mode(s))
        self.ack_frame = pika.spec.Basic.Ack
        self.channel = None
        self.pending: set[int] = set()
        self.tag = self.nacked = 0
        self.done = False
        self.error: BaseException | None = None
        # SelectConnection takes one node: the first of the adapter's shuffled list.
        self.connection = pika.SelectConnection(connection_parameters(s)[0], on_open_callback=self.on_open,
                                                on_open_error_callback=self.on_closed,
                                                on_close_callback=self.on_closed)

    def run(self) -> None:
        self.connection.ioloop.start()
        if self.error is not None:
            raise self.error

    def on_open(self, connection) -> None:
        connection.channel(on_open_callback=self.on_channel)

    def on_channel(self, channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(self.on_channel_closed)
        channel.queue_declare(self.s.queue, durable=True, callback=lambda _frame: channel.confirm_delivery(
            self.on_confirm, callback=lambda _frame: self.publish()))

    def publish(self) -> None:
        if not self.more():
            self.done = True
            self.connection.close()
            return
        for _ in range(self.s.batch):
            self.tag += 1
            self.pending.add(self.tag)
            self.channel.basic_publish("", self.s.queue, self.body, self.properties)

    def on_confirm(self, frame) -> None:
        method = frame.method
        tag = method.delivery_tag
        done = {t for t in self.pending if t <= tag} if method.multiple else {tag} & self.pending
        self.pending.difference_update(done)
        self.nacked += 0 if isinstance(method, self.ack_frame) else len(done)
        if not self.pending:
            self.acked(self.s.batch - self.nacked)
            self.nacked = 0
            self.publish()

    def on_channel_closed(self, _channel, reason: BaseException) -> None:
        if not self.done:  # closed by the broker (406 on the queue's arguments, say) or lost
            self.error, self.done = reason, True
            if not (self.connection.is_closing or self.connection.is_closed):
                self.connection.close()

    def on_closed(self, connection, reason: BaseException) -> None:
        if not self.done:  # could not connect, or the connection was lost
            self.error, self.done = reason, True
        connection.ioloop.stop()


def consume(s: Settings, more: More, received: Count, ready: Ready) -> None:
    connection = pika.BlockingConnection(connection_parameters(s))
    channel = connection.channel()
    channel.queue_declare(s.queue, durable=True)
    channel.basic_qos(prefetch_count=s.prefetch)
    ready()
    count, last_tag = 0, 0
    for method, _properties, _body in channel.consume(s.queue, auto_ack=not s.safe, inactivity_timeout=0.25):
        if method is not None:
            count += 1
            last_tag = method.delivery_tag
        if count and (count >= s.batch or method is None or not channel.get_waiting_message_count()):
            if s.safe:
                channel.basic_ack(last_tag, multiple=True)
            received(count)
            count = 0
        if not more():
            break
    channel.cancel()
    connection.close()
