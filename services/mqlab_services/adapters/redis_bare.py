"""The bare client on Redis (redis-py): the plain loops a user writes from redis-py's docs (see bare.py).

``stream`` (safe): XADD pipelined MQLAB_BATCH at a time; XREADGROUP COUNT MQLAB_BATCH in the
consumer's group, then XACK. ``pubsub`` (lossy): PUBLISH pipelined; SUBSCRIBE. The client, the
message's field or channel and the group come from the adapter (``client_for``, ``add_messages``,
``ensure_group``).
"""

from __future__ import annotations

from ..bare import Count, More, Ready
from ..settings import Settings
from .redis import add_messages, client_for, ensure_group

WAIT_MS = 250  # how long a read waits: also how quickly the end of the trial is seen


def produce(s: Settings, body: bytes, more: More, acked: Count) -> None:
    client = client_for(s)
    bodies = [body] * s.batch
    while more():
        pipe = client.pipeline(transaction=False)
        add_messages(pipe, s, bodies)
        pipe.execute()
        acked(s.batch)
    client.close()


def consume(s: Settings, more: More, received: Count, ready: Ready) -> None:
    client = client_for(s)
    if s.safe:
        _consume_stream(client, s, more, received, ready)
    else:
        _consume_pubsub(client, s, more, received, ready)
    client.close()


def _consume_stream(client, s: Settings, more: More, received: Count, ready: Ready) -> None:
    ensure_group(client, s)
    ready()
    while more():
        reply = client.xreadgroup(s.subscriber_group, s.name, {s.stream: ">"}, count=s.batch, block=WAIT_MS)
        if reply:
            ids = [entry_id for entry_id, _fields in reply[0][1]]
            client.xack(s.stream, s.subscriber_group, *ids)
            received(len(ids))


def _consume_pubsub(client, s: Settings, more: More, received: Count, ready: Ready) -> None:
    pubsub = client.pubsub()
    pubsub.subscribe(s.channel)
    while more():
        message = pubsub.get_message(timeout=WAIT_MS / 1000)
        if message is not None and message["type"] == "subscribe":
            ready()
            break
    while more():
        count = 0
        message = pubsub.get_message(timeout=WAIT_MS / 1000)
        while message is not None:
            count += message["type"] == "message"
            message = pubsub.get_message(timeout=0.0) if count < s.batch else None
        received(count)
    pubsub.close()
