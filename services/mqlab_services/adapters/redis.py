"""Redis adapter (redis-py).

Modes:
- ``stream`` (safe, default): competing consumers. Messages are entries of the stream
  ``MQLAB_STREAM`` (``chatroom.stream``), field ``data``. Consumers read with XREADGROUP in
  the group ``MQLAB_GROUP`` (``mqlab``), created at id 0 so entries added before any
  consumer started are read too, and XACK only after the handler has processed a batch.
  Entries left pending by a consumer that died are taken over with XAUTOCLAIM once
  they have been idle for ``MQLAB_CLAIM_IDLE`` seconds; a restarted consumer with the same
  name first re-reads its own pending entries. The producer's "confirm" is the XADD
  reply: the entry is in the server's memory, and survives a Redis restart only as far
  as the server's persistence (AOF with ``appendfsync``, or RDB) allows.
- ``stream-fanout`` (safe for each subscriber from its start): the same stream, but each
  consumer has its own group ``<MQLAB_GROUP>.<name>``, created at ``$`` when it starts, so
  it gets every entry added after it subscribed, XACKed after processing. A reconnect or
  a crash keeps the group, so nothing is missed; a clean stop (SIGTERM) deletes it.
- ``pubsub`` (lossy): PUBLISH / SUBSCRIBE on the channel ``MQLAB_CHANNEL`` (``chatroom``),
  the tutorial's design. Redis keeps nothing: a message published while no consumer is
  subscribed, or while one is reconnecting, is gone. The PUBLISH reply is recorded as
  the confirm, so the ledger shows exactly what pub/sub loses.

Connect with ``MQLAB_URL=redis://[:password@]host:6379/0`` (``rediss://`` for TLS).

Options: ``MQLAB_STREAM``, ``MQLAB_GROUP`` (the shared group, and the prefix of the
per-subscriber ones), ``MQLAB_CHANNEL``, ``MQLAB_CLAIM_IDLE``,
``MQLAB_BATCH`` (entries per XADD pipeline and per XREADGROUP/XACK).
Streams are never trimmed here: trimming could drop entries that no one has read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis
import redis.exceptions

from .base import Adapter, BrokerConfigError, Handler, Outgoing

log = logging.getLogger("mqlab")

FIELD = b"data"
BLOCK_MS = 500  # XREADGROUP wait; also how quickly a stop request is seen


def client_options(settings) -> dict:
    """Keyword arguments for redis.Redis.from_url."""
    return {
        "socket_connect_timeout": 5,
        # Above BLOCK_MS, so a blocking read is not mistaken for a dead server.
        "socket_timeout": 10,
        "health_check_interval": 15,
        "client_name": f"mqlab-{settings.name}",
    }


def entry_body(fields: dict | None) -> bytes:
    """The message in a stream entry: field ``data``, or the entry rendered as text.

    Entries written by other tools (``XADD chatroom.stream * msg hi``) become ``msg=hi``
    and are treated as foreign messages by the consumer.
    """
    if not fields:
        return b""
    if FIELD in fields:
        return fields[FIELD]
    return b" ".join(bytes(k) + b"=" + bytes(v) for k, v in fields.items())


class RedisAdapter(Adapter):
    """Redis Streams with a consumer group, XACK after processing and XAUTOCLAIM."""

    name = "redis"
    errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

    def __init__(self, settings):
        super().__init__(settings)
        self._client: redis.Redis | None = None
        self._pubsub = None

    @property
    def streams(self) -> bool:
        return self.settings.mode != "pubsub"

    def describe(self) -> str:
        s = self.settings
        if s.mode == "stream":
            return (f"stream {s.stream}, group {s.group}, competing consumers: XACK after "
                    f"processing, XAUTOCLAIM after {s.claim_idle:g}s idle")
        if s.mode == "stream-fanout":
            return (f"stream {s.stream}, a group per subscriber ({s.subscriber_group}) from its "
                    "start: every subscriber gets every entry, XACK after processing")
        return f"channel {s.channel}: LOSSY pub/sub, nothing is kept for absent subscribers"

    def connect(self) -> None:
        self.close()
        self._client = redis.Redis.from_url(self.settings.url, **client_options(self.settings))
        self._client.ping()
        if self.settings.mode == "stream":
            self._ensure_group()

    def _ensure_group(self, start: str = "0") -> None:
        """Create the group (and the stream) unless it exists; ``start`` is where a new group begins."""
        try:
            self._client.xgroup_create(self.settings.stream, self.settings.subscriber_group,
                                       id=start, mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith("WRONGTYPE"):
                raise BrokerConfigError(f"key {self.settings.stream!r} exists and is not a stream; "
                                        "set MQLAB_STREAM to another name") from None
            if "BUSYGROUP" not in str(exc):
                raise

    def ping(self) -> float:
        started = time.perf_counter()
        self._client.ping()
        return time.perf_counter() - started

    def publish(self, batch: Sequence[Outgoing]) -> list[int | None]:
        pipe = self._client.pipeline(transaction=False)
        for body, _key in batch:  # no keys in Redis modes
            if self.streams:
                pipe.xadd(self.settings.stream, {FIELD: body})
            else:
                pipe.publish(self.settings.channel, body)
        replies = pipe.execute(raise_on_error=False)
        now = time.time_ns()
        for reply in replies:
            if isinstance(reply, self.errors):
                raise reply
        return [None if isinstance(reply, Exception) else now for reply in replies]

    def consume(self, handler: Handler, running: Callable[[], bool]) -> None:
        if self.streams:
            self._consume_stream(handler, running)
        else:
            self._consume_pubsub(handler, running)

    def _consume_stream(self, handler: Handler, running: Callable[[], bool]) -> None:
        s = self.settings
        if s.fanout:
            # Our own group, from now on; after a reconnect it exists and we go on where we were.
            self._ensure_group(start="$")
        self.assignment = [s.subscriber_group]
        # Our own pending entries first (delivered to this name before a restart, never acked).
        self._read_group(handler, "0", block=None)
        self.subscribed = True
        next_claim = 0.0
        while running():
            if time.monotonic() >= next_claim:
                self._claim_stuck(handler)
                next_claim = time.monotonic() + max(1.0, s.claim_idle / 2)
            self._read_group(handler, ">", block=BLOCK_MS)
        self.subscribed = False
        if s.fanout:
            # A clean stop ends the subscription, like an exclusive queue: no group left behind.
            self._client.xgroup_destroy(s.stream, s.subscriber_group)

    def _read_group(self, handler: Handler, start: str, block: int | None) -> None:
        s = self.settings
        try:
            reply = self._client.xreadgroup(s.subscriber_group, s.name, {s.stream: start},
                                            count=s.batch, block=block)
        except redis.exceptions.ResponseError as exc:
            # NOGROUP: the stream or the group is gone (FLUSHALL, DEL, a chaos test);
            # UNBLOCKED: it went while we were waiting. Either way: create it again and go on.
            if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                raise
            log.info("stream %s or group %s was deleted (%s); creating it again", s.stream,
                     s.subscriber_group, exc)
            self._ensure_group()
            return
        entries = reply[0][1] if reply else []
        self._handle(handler, entries)

    def _claim_stuck(self, handler: Handler) -> None:
        s = self.settings
        cursor = "0-0"
        while True:
            reply = self._client.xautoclaim(s.stream, s.subscriber_group, s.name, int(s.claim_idle * 1000),
                                            start_id=cursor, count=s.batch)
            cursor, entries = reply[0], reply[1]
            if entries:
                log.info("claimed %d entries left pending over %gs by other consumers",
                         len(entries), s.claim_idle)
            self._handle(handler, entries)
            if cursor in (b"0-0", "0-0") or not entries:
                return

    def _handle(self, handler: Handler, entries) -> None:
        handler([(entry_body(fields), "") for _id, fields in entries])
        if entries:
            self._client.xack(self.settings.stream, self.settings.subscriber_group, *[i for i, _ in entries])

    def _consume_pubsub(self, handler: Handler, running: Callable[[], bool]) -> None:
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(self.settings.channel)
        self.assignment = [self.settings.channel]
        # Subscribed for real once the server confirmed; messages can only come after that.
        while running() and not self.subscribed:
            message = self._pubsub.get_message(timeout=1.0)
            self.subscribed = bool(message and message.get("type") == "subscribe")
        while running():
            batch: list[tuple[bytes, str]] = []
            deadline = time.monotonic() + 0.2
            while len(batch) < self.settings.batch:
                message = self._pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
                if message is None:
                    break
                if message.get("type") == "message":
                    batch.append((message["data"], ""))
            handler(batch)
        self.subscribed = False

    def close(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        self.subscribed = False
        for thing in (pubsub, client):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # closing a broken connection; nothing left to save
                    pass
