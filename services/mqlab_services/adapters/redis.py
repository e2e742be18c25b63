"""Redis adapter (redis-py).

Modes:
- ``stream`` (safe, default): competing consumers. Messages are entries of the stream
  ``MQLAB_STREAM`` (``chatroom.stream``), field ``data``. Consumers read with XREADGROUP in
  the group ``MQLAB_GROUP`` (``mqlab``), created at id 0 so entries added before any
  consumer started are read too, and XACK only after the handler has processed a batch.
  Entries left pending by a consumer that died are taken over (XPENDING, then XCLAIM)
  once they have been idle for ``MQLAB_CLAIM_IDLE`` seconds; a restarted consumer with the
  same name takes its own pending entries up again after ``MQLAB_RETRY_IDLE``. The producer's "confirm" is the XADD
  reply: the entry is in the server's memory, and survives a Redis restart only as far
  as the server's persistence (AOF with ``appendfsync``, or RDB) allows.
- ``stream-fanout`` (safe for each subscriber from its start): the same stream, but each
  consumer has its own group ``<MQLAB_GROUP>.<name>``, created at ``$`` when it starts, so
  it gets every entry added after it subscribed, XACKed after processing. A reconnect or
  a crash keeps the group, so nothing is missed; a clean stop (SIGTERM) deletes it.
- ``stream-wait`` (replicated stacks; the default of ``redis-sentinel``): ``stream`` whose
  producer counts an entry as acked only once ``WAIT 1`` says a replica has it too (within
  ``MQLAB_WAIT_TIMEOUT``; a batch no replica took in time is unacked and sent again). The
  servers refuse writes while no replica is connected (``min-replicas-to-write 1``). Redis
  replicates asynchronously, so Sentinel can still promote a replica that missed acked
  entries: the ledger counts them as lost, and the README reports how many.
- ``pubsub`` (lossy): PUBLISH / SUBSCRIBE on the channel ``MQLAB_CHANNEL`` (``chatroom``),
  the tutorial's design. Redis keeps nothing: a message published while no consumer is
  subscribed, or while one is reconnecting, is gone. The PUBLISH reply is recorded as
  the confirm, so the ledger shows exactly what pub/sub loses.

Failed entries and dead-lettering (stream modes): an entry the handler failed is not
XACKed. Every consumer looks at its own pending entries (XPENDING) about twice per
``MQLAB_RETRY_IDLE`` (1 s) and takes the failed ones up again with XCLAIM, which counts the
delivery; the delivery count lives in the server, so it survives consumer restarts. When
the attempt that failed was number ``MQLAB_MAX_DELIVERIES`` (3), or an entry of a dead
consumer was delivered that often already, the entry is XADDed to ``MQLAB_DLQ``
(``chatroom.stream.dead``) with the fields ``id`` (its id in the stream), ``reason``,
``attempts`` and ``data``, then XACKed. New entries are read meanwhile. In ``pubsub`` a
failed message is gone already: it is only recorded as dead.

Failover: replies that mean "not here, not now" (``NOREPLICAS`` while no replica is connected,
``READONLY`` from a primary demoted meanwhile, ``LOADING``, ``MASTERDOWN``) are treated like a
lost connection: the service reconnects, asks Sentinel again, and sends the unacked again.

Failure detection: socket timeouts of 5 s and a health check on connections idle for 5 s,
so a paused or unreachable server is noticed within seconds, and the services reconnect.

Connect with ``MQLAB_URL=redis://[:password@]host:6379/0`` (``rediss://`` for TLS), or through
Sentinel with ``MQLAB_URL=redis+sentinel://[:password@]host:26379,host:26379/<primary name>``:
every (re)connect asks the sentinels for the current primary (redis-py's ``Sentinel``), so
producers and consumers follow a failover without a restart.

Options: ``MQLAB_STREAM``, ``MQLAB_GROUP`` (the shared group, and the prefix of the
per-subscriber ones), ``MQLAB_CHANNEL``, ``MQLAB_CLAIM_IDLE``, ``MQLAB_RETRY_IDLE``,
``MQLAB_MAX_DELIVERIES``, ``MQLAB_DLQ``,
``MQLAB_BATCH`` (entries per XADD pipeline and per XREADGROUP/XACK).
Streams are never trimmed here: trimming could drop entries that no one has read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from urllib.parse import unquote, urlsplit

import redis
import redis.exceptions
from redis.sentinel import Sentinel

from .base import (REDELIVERED, Acked, Adapter, BrokerConfigError, DeadHandler, Handler, Outgoing, Received, _no_dead,
                   exhausted, outcomes)

log = logging.getLogger("mqlab")

FIELD = b"data"
BLOCK_MS = 500  # XREADGROUP wait; also how quickly a stop request is seen


def client_options(settings) -> dict:
    """Keyword arguments for redis.Redis.from_url."""
    return {
        "socket_connect_timeout": 5,
        # Above BLOCK_MS, so a blocking read is not mistaken for a dead server; a paused
        # or cut-off server is noticed within this.
        "socket_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 5,
        "client_name": f"mqlab-{settings.name}",
    }


SENTINEL_SCHEME = "redis+sentinel"
#: Error replies that mean the server cannot take this now (failover, no replica, loading).
UNAVAILABLE_REPLIES = ("NOREPLICAS", "READONLY", "LOADING", "MASTERDOWN")


class Unavailable(redis.exceptions.ConnectionError):
    """The server answered, but cannot serve now (see UNAVAILABLE_REPLIES): reconnect."""


def unavailable(error) -> bool:
    return isinstance(error, redis.exceptions.ResponseError) and str(error).startswith(UNAVAILABLE_REPLIES)


def check_available(error) -> None:
    """Raise ``error`` as Unavailable when it is one of UNAVAILABLE_REPLIES."""
    if unavailable(error):
        raise Unavailable(str(error)) from error


def sentinel_address(url: str) -> tuple[list[tuple[str, int]], str, str | None] | None:
    """(sentinels, primary name, password) of a ``redis+sentinel://`` URL; None for another URL."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return None
    hosts = parts.netloc.rpartition("@")[2]
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.strip().partition(":")
        sentinels.append((name, int(port or 26379)))
    password = unquote(parts.password) if parts.password else None
    return sentinels, parts.path.strip("/") or "mymaster", password


def client_for(settings) -> redis.Redis:
    """A client of MQLAB_URL: the server itself, or the primary that Sentinel names."""
    options = client_options(settings)
    found = sentinel_address(settings.url)
    if found is None:
        return redis.Redis.from_url(settings.url, **options)
    sentinels, primary, password = found
    sentinel = Sentinel(sentinels, socket_timeout=options["socket_timeout"],
                        socket_connect_timeout=options["socket_connect_timeout"])
    return sentinel.master_for(primary, password=password, **options)


def add_messages(pipe, settings, bodies: list[bytes]) -> None:
    """Queue ``bodies`` on a pipeline: XADD to the stream, or PUBLISH on the channel in ``pubsub``."""
    if settings.mode == "pubsub":
        for body in bodies:
            pipe.publish(settings.channel, body)
    else:
        for body in bodies:
            pipe.xadd(settings.stream, {FIELD: body})


def ensure_group(client: redis.Redis, settings, start: str = "0") -> None:
    """Create the consumer's group (and the stream) unless it exists; ``start`` is where a new group begins."""
    try:
        client.xgroup_create(settings.stream, settings.subscriber_group, id=start, mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if str(exc).startswith("WRONGTYPE"):
            raise BrokerConfigError(f"key {settings.stream!r} exists and is not a stream; "
                                    "set MQLAB_STREAM to another name") from None
        if "BUSYGROUP" not in str(exc):
            raise


def dead_fields(entry_id, body: bytes, attempts: int, reason: str) -> dict:
    """The fields of a dead-letter stream entry."""
    return {b"id": entry_id, b"reason": reason.encode("utf-8", "replace"),
            b"attempts": str(attempts).encode(), FIELD: body}


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
    """Redis Streams with a consumer group, XACK after processing, and XPENDING then XCLAIM for
    entries left pending (failed ones, or those of a consumer that died)."""

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
        if s.mode in ("stream", "stream-wait"):
            waits = " acked after WAIT 1 (a replica has it; failover can still lose it)," if s.mode == "stream-wait" else ""
            return (f"stream {s.stream}, group {s.group}, competing consumers:{waits} XACK after "
                    f"processing; XPENDING then XCLAIM takes up failed entries after {s.retry_idle:g}s "
                    f"and a dead consumer's after {s.claim_idle:g}s idle")
        if s.mode == "stream-fanout":
            return (f"stream {s.stream}, a group per subscriber ({s.subscriber_group}) from its "
                    "start: every subscriber gets every entry, XACK after processing")
        return f"channel {s.channel}: LOSSY pub/sub, nothing is kept for absent subscribers"

    def connect(self) -> None:
        try:
            self._connect()
        except redis.exceptions.ResponseError as exc:
            check_available(exc)
            raise

    def _connect(self) -> None:
        self.close()
        self._client = client_for(self.settings)
        self._client.ping()
        self.node = _node_of(self._client)
        if self.settings.mode in ("stream", "stream-wait"):
            ensure_group(self._client, self.settings)

    def ping(self) -> float:
        started = time.perf_counter()
        self._client.ping()
        return time.perf_counter() - started

    def publish(self, batch: Sequence[Outgoing]) -> list[int | None]:
        s = self.settings
        pipe = self._client.pipeline(transaction=False)
        add_messages(pipe, s, [body for body, _key in batch])  # no keys in Redis modes
        waits = s.mode == "stream-wait"
        if waits:
            pipe.execute_command("WAIT", 1, int(s.wait_timeout * 1000))
        replies = pipe.execute(raise_on_error=False)
        now = time.time_ns()
        self._check_replies(replies)
        if waits and not self._replicated(replies.pop(), len(batch)):
            return [None] * len(batch)
        if not self.streams:  # PUBLISH answers a count of subscribers: no position
            return [None if isinstance(reply, Exception) else now for reply in replies]
        return [None if isinstance(reply, Exception) else Acked(now, reply.decode()) for reply in replies]

    def _check_replies(self, replies: list) -> None:
        """Raise an error reply that means the server is away or cannot serve now."""
        for reply in replies:
            if isinstance(reply, Exception):  # a reply is an entry id; only errors need a look
                if isinstance(reply, self.errors):
                    raise reply
                check_available(reply)

    def _replicated(self, replicas, count: int) -> bool:
        """Whether WAIT says a replica has the batch of ``count`` entries; logs it when not."""
        if isinstance(replicas, int) and replicas >= 1:
            return True
        log.info("no replica confirmed %d entries within %gs (WAIT: %s); they count as unacked",
                 count, self.settings.wait_timeout, replicas)
        return False

    def consume(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler | None = None) -> None:
        try:
            self._consume(handler, running, dead)
        except redis.exceptions.ResponseError as exc:
            check_available(exc)
            raise

    def _consume(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler | None) -> None:
        if self.streams:
            self._consume_stream(handler, running, dead or _no_dead)
        else:
            self._consume_pubsub(handler, running, dead or _no_dead)

    def _consume_stream(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler) -> None:
        s = self.settings
        if s.fanout:
            # Our own group, from now on; after a reconnect it exists and we go on where we were.
            ensure_group(self._client, s, start="$")
        self.assignment = [s.subscriber_group]
        # Entries pending from before a restart, failed ones and those of dead consumers.
        self._retry_pending(handler, dead)
        self.subscribed = True
        next_scan = time.monotonic() + self._scan_every()
        while running():
            if time.monotonic() >= next_scan:
                self._retry_pending(handler, dead)
                next_scan = time.monotonic() + self._scan_every()
            self._read_group(handler, dead, ">", block=BLOCK_MS)
        self.subscribed = False
        if s.fanout:
            # A clean stop ends the subscription, like an exclusive queue: no group left behind.
            self._client.xgroup_destroy(s.stream, s.subscriber_group)

    def _scan_every(self) -> float:
        return max(0.25, min(self.settings.retry_idle, self.settings.claim_idle) / 2)

    def _read_group(self, handler: Handler, dead: DeadHandler, start: str, block: int | None) -> None:
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
            ensure_group(self._client, self.settings)
            return
        entries = reply[0][1] if reply else []
        self._handle(handler, dead, entries, {})

    def _retry_pending(self, handler: Handler, dead: DeadHandler) -> None:
        """Take up our own failed entries after MQLAB_RETRY_IDLE, and anyone's after MQLAB_CLAIM_IDLE."""
        # Not XAUTOCLAIM: it has one idle time for every consumer's entries, and it returns no
        # delivery counts, which the dead-letter decision needs from XPENDING anyway.
        s = self.settings
        try:
            rows = self._client.xpending_range(s.stream, s.subscriber_group, "-", "+", s.batch,
                                               consumername=s.name, idle=int(s.retry_idle * 1000))
            stuck = self._client.xpending_range(s.stream, s.subscriber_group, "-", "+", s.batch,
                                                idle=int(s.claim_idle * 1000))
        except redis.exceptions.ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            return  # _read_group creates it again
        others = [r for r in stuck if _text(r["consumer"]) != s.name]
        if rows:
            self._claim(handler, dead, rows, s.retry_idle, theirs=False)
        if others:
            self._claim(handler, dead, others, s.claim_idle, theirs=True)

    def _claim(self, handler: Handler, dead: DeadHandler, rows: list, idle: float, theirs: bool) -> None:
        """XCLAIM the pending entries of ``rows`` (XPENDING's: ours, or other consumers') and handle them."""
        s = self.settings
        counts = {_text(r["message_id"]): int(r["times_delivered"]) for r in rows}
        claimed = self._client.xclaim(s.stream, s.subscriber_group, s.name, int(idle * 1000),
                                      [r["message_id"] for r in rows])
        claimed = [(i, f) for i, f in claimed if f is not None]  # deleted meanwhile: nothing to do
        if theirs and claimed:
            log.info("claimed %d entries left pending over %gs by other consumers", len(claimed), idle)
        # XCLAIM counted one more delivery: this is attempt number count + 1.
        self._handle(handler, dead, claimed, {_text(i): counts.get(_text(i), 0) + 1 for i, _f in claimed})

    def _handle(self, handler: Handler, dead: DeadHandler, entries, attempts: dict) -> None:
        """Process entries; XACK the processed ones, dead-letter those out of attempts."""
        if not entries:
            handler([])
            return
        spent = self._spent(entries, attempts)
        todo = [i for i in range(len(entries)) if i not in spent] if spent else range(len(entries))
        results = outcomes(handler(_received(entries, todo, attempts)), len(todo))
        if not spent and all(reason is None for reason in results):  # the usual case: all processed
            self._client.xack(self.settings.stream, self.settings.subscriber_group,
                              *[entry_id for entry_id, _f in entries])
            return
        self._settle(dead, entries, attempts, list(zip(todo, results)), spent)

    def _spent(self, entries, attempts: dict) -> set[int]:
        """The entries delivered too often already (their consumer died on them, say): not tried again."""
        if not attempts:  # fresh entries, on their first delivery: nothing to look up
            return set()
        return {i for i, (entry_id, _f) in enumerate(entries)
                if attempts.get(_text(entry_id), 1) > self.settings.max_deliveries}

    def _settle(self, dead: DeadHandler, entries, attempts: dict, results: list[tuple[int, str | None]],
                spent: set[int]) -> None:
        """XACK the processed entries and, once the dead-letter stream has them, those out of attempts."""
        s = self.settings

        def tries(i: int) -> int:
            return attempts.get(_text(entries[i][0]), 1)

        done = [entries[i][0] for i, reason in results if reason is None]
        dying = [(entries[i], tries(i), reason) for i, reason in results
                 if reason is not None and exhausted(tries(i), s.max_deliveries)]
        dying += [(entries[i], tries(i) - 1, f"delivered {tries(i) - 1} times without an ack") for i in sorted(spent)]
        if dying:
            self._dead_letter(dead, dying)
            done += [entry_id for (entry_id, _f), _n, _r in dying]
        if done:
            self._client.xack(s.stream, s.subscriber_group, *done)

    def _dead_letter(self, dead: DeadHandler, dying: list) -> None:
        pipe = self._client.pipeline(transaction=False)
        for (entry_id, fields), n, reason in dying:
            pipe.xadd(self.settings.dlq, dead_fields(entry_id, entry_body(fields), n, reason))
        pipe.execute()  # raises when the dead-letter stream did not take them: nothing acked
        dead([(entry_body(fields), "", n, reason) for (_id, fields), n, reason in dying])

    def _consume_pubsub(self, handler: Handler, running: Callable[[], bool], dead: DeadHandler) -> None:
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(self.settings.channel)
        self.assignment = [self.settings.channel]
        # Subscribed for real once the server confirmed; messages can only come after that.
        while running() and not self.subscribed:
            message = self._pubsub.get_message(timeout=1.0)
            self.subscribed = bool(message and message.get("type") == "subscribe")
        while running():
            batch = self._pubsub_batch()
            results = outcomes(handler(batch), len(batch))
            failed = [(*item, 1, f"{reason}; dropped (pubsub mode, no retries)")
                      for item, reason in zip(batch, results) if reason is not None]
            if failed:
                dead(failed)
        self.subscribed = False

    def _pubsub_batch(self) -> list[tuple[bytes, str]]:
        """What has arrived, up to MQLAB_BATCH: once one message is in, only those already waiting
        join it, so a slow trickle is not held back to fill a batch."""
        batch: list[tuple[bytes, str]] = []
        deadline = time.monotonic() + 0.2
        while len(batch) < self.settings.batch:
            message = self._pubsub.get_message(timeout=0.0 if batch else max(0.0, deadline - time.monotonic()))
            if message is None:
                break
            if message.get("type") == "message":
                batch.append((message["data"], ""))
        return batch

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


def _node_of(client: redis.Redis) -> str:
    """The host a client's connections go to (for a Sentinel client, the primary now)."""
    pool = client.connection_pool
    try:
        if hasattr(pool, "get_master_address"):
            host, port = pool.get_master_address()
            return f"{host}:{port}"
        kwargs = pool.connection_kwargs
        return f"{kwargs.get('host', '')}:{kwargs.get('port', '')}"
    except Exception:  # informational only
        return ""


def _received(entries, todo, attempts: dict) -> list:
    """What the handler gets for the entries numbered ``todo``."""
    # Entries taken up from the pending list come after later ones: no order is promised.
    lane = REDELIVERED if attempts else ""
    # Fresh entries have no lane: plain (body, key) pairs, the cheapest to make.
    return [Received(entry_body(entries[i][1]), "", lane) if lane else (entry_body(entries[i][1]), "") for i in todo]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
