"""Redis on the host side: a redis-py client on the published port, consumer-group lag and
pub/sub subscribers, the dead-letter stream, bench cleanup, and redis-benchmark: its
command line, the parser of its output, one trial.

redis-benchmark has no duration and no rate: at full speed a short probe sizes a run to
``--duration``; at a fixed rate one unpipelined connection sends rate x duration requests
(closed loop: it is request latency at a low rate, not a paced sender).
"""

from __future__ import annotations

import csv
import re

import redis as redis_py

from ..errors import UsageError
from .native import (MAX_RECORDS, PROBE_RECORDS, NativeError, NativeResult, gist, mb_per_s, positive,
                      records_for, to_ns)
from .base import (HOST, TIMEOUT_S, Backlog, Broker, ConsumerView, Dead, NativeRun, Topology, envelope_id, logged_id,
                   names, text)

#: Linux refuses a single command-line argument of 128 KiB or more (MAX_ARG_STRLEN, with its NUL).
MAX_ARG_BYTES = 32 * 4096 - 1
#: The broker's address on the stack's network.
REDIS_HOST = "redis"
REDIS_PORT = 6379


#: The name Sentinel watches the primary under (compose/config/redis-sentinel/sentinel.conf).
PRIMARY_NAME = "mymaster"


def connect(config, port: int | None = None, **options) -> redis_py.Redis:
    """A client of a published port (default REDIS_PORT), with REDIS_PASSWORD when one is set."""
    return redis_py.Redis(host=HOST, port=port or config.integer("REDIS_PORT", 6379, 1, 65535),
                          socket_timeout=TIMEOUT_S, password=config.get("REDIS_PASSWORD") or None, **options)


def sentinel_views(config, sentinels: list[tuple[str, int]]) -> dict[str, str]:
    """Each sentinel's answer to "which is the primary?" (host name), or why it gave none."""
    views = {}
    for service, port in sentinels:
        client = redis_py.Redis(host=HOST, port=port, socket_timeout=TIMEOUT_S, decode_responses=True)
        try:
            address = client.execute_command("SENTINEL", "get-master-addr-by-name", PRIMARY_NAME)
            views[service] = address[0] if address else "no primary known"
        except redis_py.RedisError as exc:
            views[service] = f"unreachable ({type(exc).__name__})"
        finally:
            client.close()
    return views


def sentinel_replicas(config, sentinels: list[tuple[str, int]]) -> dict[str, int]:
    """How many replicas of the primary each sentinel knows and sees up (-1: it did not answer).
    A sentinel learns a replica from the primary's INFO, every 10 s: one that has not yet cannot
    make it the new primary, nor point it at one after a failover."""
    known = {}
    for service, port in sentinels:
        client = redis_py.Redis(host=HOST, port=port, socket_timeout=TIMEOUT_S, decode_responses=True)
        try:
            rows = client.execute_command("SENTINEL", "replicas", PRIMARY_NAME)
            flags = [dict(zip(row[::2], row[1::2])).get("flags", "") if isinstance(row, list) else
                     str(row.get("flags", "")) for row in rows]
            known[service] = sum(1 for f in flags if "s_down" not in f and "disconnected" not in f)
        except redis_py.RedisError:
            known[service] = -1
        finally:
            client.close()
    return known


READ_PAGE = 10_000  # stream entries per XRANGE of the final read


#: What the broker's own tool measures as latency: each request's round trip.
TOOL_LATENCY = "request"


class Redis(Broker):
    name = "redis"
    tool_label = "redis-benchmark"
    tool_latency = TOOL_LATENCY
    tool_service = "redis-benchmark"

    def sentinels(self, config) -> list[tuple[str, int]]:
        return [(n.service, config.integer(n.port_key, n.port, 1, 65535)) for n in self.bound.sentinels]

    def primary(self, config, views: dict[str, str] | None = None) -> str:
        """The node that takes writes now: what most sentinels say (``views``, when asked
        already), or the only node."""
        nodes = dict(self.node_ports(config))
        if not self.bound.sentinels:
            return next(iter(nodes))
        named = [v for v in (views if views is not None else self.views(config)).values() if v in nodes]
        if not named:
            raise ConnectionError("no sentinel names a primary")
        return max(set(named), key=named.count)

    def views(self, config) -> dict[str, str]:
        """Each sentinel's primary (none without sentinels)."""
        return sentinel_views(config, self.sentinels(config)) if self.bound.sentinels else {}

    def client(self, config, **options) -> redis_py.Redis:
        """A client of the primary's published port."""
        return connect(config, dict(self.node_ports(config))[self.primary(config)], **options)

    def topology(self, config, mode: str, clients: list[ConsumerView] = ()) -> Topology:
        """Each node's role and replication link, and each sentinel's view of the primary."""
        views = self.views(config)
        result = Topology(leader=self.primary(config, views))
        for service, port in self.node_ports(config):
            client = connect(config, port, decode_responses=True)
            try:
                info = client.info("replication")
            except redis_py.RedisError as exc:
                result.rows.append((service, f"unreachable ({type(exc).__name__})"))
                continue
            finally:
                client.close()
            if info.get("role") == "master":
                state = f"primary; {info.get('connected_slaves', 0)} replica(s) connected; offset {info.get('master_repl_offset', 0):,}"
            else:
                state = (f"replica of {info.get('master_host', '?')}; link {info.get('master_link_status', '?')}; "
                         f"offset {info.get('slave_repl_offset', 0):,}")
            result.rows.append((service, state))
        for sentinel, view in views.items():
            result.rows.append((sentinel, f"primary: {view}"))
        return result

    def in_sync(self, config, mode: str) -> tuple[bool, str]:
        """Every sentinel names the same primary, and it has every replica connected, link up."""
        if not self.bound.sentinels:
            return True, "one node"
        views = self.views(config)
        primary = self.primary(config, views)
        agree = set(views.values()) == {primary}
        client = connect(config, dict(self.node_ports(config))[primary], decode_responses=True)
        try:
            info = client.info("replication")
        finally:
            client.close()
        replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        online = sum(1 for r in replicas if r.get("state") == "online")
        wanted = len(self.bound.nodes) - 1
        known = sentinel_replicas(config, self.sentinels(config))
        everyone = all(count == wanted for count in known.values())
        return (agree and everyone and info.get("role") == "master" and online == wanted,
                f"primary {primary}, {online} of {wanted} replicas online, sentinels agree: {agree}"
                + ("" if everyone else ", replicas each sentinel sees: "
                   + ", ".join(f"{s} {n}" for s, n in sorted(known.items()))))

    log_position = "stream entry id"

    def read_log(self, config, mode: str, positions: list[str]) -> dict[str, str]:
        """The mode's stream from the lowest recorded entry id to the highest, read with XRANGE
        from the primary now (entry id -> id). Entries an old primary took and never passed on
        before it was demoted are not there."""
        if not positions:
            return {}
        ordered = sorted(positions, key=lambda e: tuple(int(x) for x in e.split("-")))
        stream, start, found = names(self.name, mode).stream, ordered[0], {}
        client = self.client(config)
        try:
            while True:
                entries = client.xrange(stream, min=start, max=ordered[-1], count=READ_PAGE)
                found.update((text(entry), logged_id(fields.get(b"data", b""))) for entry, fields in entries)
                if len(entries) < READ_PAGE:
                    return found
                start = "(" + text(entries[-1][0])
        finally:
            client.close()

    def replay(self, config, mode: str, start: tuple[str, object], count: int) -> list[tuple[str, bytes]]:
        """The mode's stream again with XRANGE, from the beginning, an entry id or a time (an entry
        id is the time in ms it was added, then a sequence): no group's pending list changes."""
        kind, value = start
        if mode in ("pubsub",):
            raise UsageError("Redis pub/sub keeps nothing to read again: the stream modes do (stream, stream-wait, "
                             "stream-fanout)")
        if kind == "offset":
            raise UsageError("a Redis stream is read again by entry id (<ms>-<seq>), time or from the beginning, "
                             "not by a Kafka offset")
        first = "-" if kind == "beginning" else value if kind == "entry" else f"{int(value) // 1_000_000}-0"
        stream, read = names(self.name, mode).stream, []
        client = self.client(config)
        try:
            while len(read) < count:
                entries = client.xrange(stream, min=first, max="+", count=min(READ_PAGE, count - len(read)))
                read += [(text(entry), fields.get(b"data", b"")) for entry, fields in entries]
                if not entries:
                    break
                first = "(" + text(entries[-1][0])
        finally:
            client.close()
        return read[:count]

    def saw_down(self, config, node: str, peers) -> str:
        """A sentinel flagged the node subjectively down (``+sdown``): it had no valid answer
        from it for down-after-milliseconds (5 s). Sentinels log it as ``+sdown master
        mymaster <node> 6379`` or ``+sdown slave <node>:6379 <node> 6379 @ ...``."""
        flagged = re.compile(rf"\+sdown (?:master \S+|slave \S+) {re.escape(node)} \d+")
        for peer in peers:
            if peer.service.startswith("sentinel"):
                found = flagged.search(peer.logs())
                if found:
                    return f"{peer.service} logged: {found.group(0)}"
        return ""

    def check_expose(self, config) -> None:
        if not config.get("REDIS_PASSWORD"):
            raise UsageError("--expose is refused while Redis has no password: set REDIS_PASSWORD")

    def consumers_seen(self, config, mode: str) -> int | None:
        """Subscribers of the pub/sub channel (a stream's group keeps members that are gone)."""
        if mode != "pubsub":
            return None
        settings = names(self.name, mode)
        client = self.client(config)
        try:
            return int(dict(client.pubsub_numsub(settings.channel)).get(settings.channel.encode(), 0))
        finally:
            client.close()

    def backlog(self, config, mode: str, consumers: list[ConsumerView]) -> Backlog:
        client = self.client(config, decode_responses=True)
        try:
            groups = client.xinfo_groups(names(self.name, mode).stream)
        except redis_py.ResponseError:
            return Backlog()
        finally:
            client.close()
        # Pending (delivered, not acked) plus lag (Redis 7+: not yet delivered to the group).
        waiting = {g["name"]: int(g.get("pending", 0)) + int(g.get("lag") or 0) for g in groups}
        return Backlog(waiting).by_assignment(consumers, "{count:,} in group {name}")

    def read_dlq(self, config, name: str, limit: int) -> tuple[int, list[Dead]]:
        client = self.client(config)
        try:
            total = client.xlen(name)
            entries = client.xrevrange(name, count=limit)
        finally:
            client.close()
        found = [Dead(envelope_id(fields.get(b"data", b"")), text(fields.get(b"attempts", b"?")),
                      text(fields.get(b"reason", b"?"))) for _, fields in entries]
        return total, found

    def delete(self, config, made: dict[str, str]) -> None:
        keys = [made[k] for k in ("MQLAB_STREAM", "MQLAB_DLQ") if made.get(k)]
        client = self.client(config)
        try:
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    def native_trial(self, run: NativeRun) -> NativeResult:
        password = run.config.get("REDIS_PASSWORD") or None

        def bench(requests: int, pipeline: int) -> NativeResult:
            argv = redis_benchmark_argv(size=run.size, requests=requests, stream=run.names["MQLAB_STREAM"],
                                        pipeline=pipeline, clients=run.producers, password=password)
            return parse_redis_benchmark(run.tool(*argv, seconds=run.duration * 3), size=run.size)

        if run.rate is not None:
            return bench(records_for(run.rate, run.duration), 1)
        probe = bench(PROBE_RECORDS, run.batch)
        return bench(min(MAX_RECORDS, records_for(probe.send_rate, run.duration)), run.batch)


# --------------------------------------------------------------------------- redis-benchmark


def redis_benchmark_argv(*, size: int, requests: int, stream: str = "mqlab.bench", pipeline: int = 100,
                         clients: int = 1, password: str | None = None, host: str = REDIS_HOST,
                         port: int = REDIS_PORT, maxlen: int | None = None) -> list[str]:
    """redis-benchmark's arguments for the ``redis-benchmark`` service: ``requests`` times
    ``XADD <stream> * d <size bytes>`` from ``clients`` connections, ``pipeline`` commands
    per round trip (``-P``, the lab's batch), with ``--csv`` output.

    ``password`` (REDIS_PASSWORD, when set) is passed with ``-a``. ``maxlen`` adds
    ``MAXLEN ~ n`` to bound the stream's memory (the lab's producers do not trim). The
    payload is an argument of the command, so ``size`` is below 128 KiB.
    """
    positive("size", size)
    if size > MAX_ARG_BYTES - 1:
        raise NativeError(f"redis-benchmark takes the payload as an argument: at most {MAX_ARG_BYTES - 1:,} "
                          f"bytes, got {size:,}")
    argv = ["-h", host, "-p", str(port)]
    if password:
        argv += ["-a", password]
    argv += ["-n", str(positive("requests", requests)), "-c", str(positive("clients", clients)),
             "-P", str(positive("pipeline", pipeline)), "--csv", "XADD", stream]
    if maxlen is not None:
        argv += ["MAXLEN", "~", str(positive("maxlen", maxlen))]
    return argv + ["*", "d", "x" * size]


def _elide(field: str, limit: int = 60) -> str:
    return field if len(field) <= limit else f"{field[:limit]}...({len(field)} chars)"


def parse_redis_benchmark(stdout: str, *, size: int | None = None) -> NativeResult:
    """``redis-benchmark --csv`` with one custom command to a :class:`NativeResult`.

    It prints a header and one row (the test is named after the command line, payload
    included; the raw summary keeps it shortened)::

        "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        "XADD mqlab.bench * d xxx...","112345.53","0.286","0.048","0.087","0.751","4.407","100.671"

    ``rps`` is the send rate (each request is one XADD: one message); nothing consumes.
    The latency is per request, from writing it to reading its reply (with ``-P``, every
    command of a pipeline gets the round trip of its pipeline): not end to end. No p99.9.
    """
    rows = list(csv.reader(line for line in stdout.splitlines() if line.strip()))
    header_at = next((i for i, row in enumerate(rows) if "rps" in row and "test" in row), None)
    if header_at is None:
        raise NativeError(f"redis-benchmark printed no CSV result: {gist(stdout)}")
    header = rows[header_at]
    data = [row for row in rows[header_at + 1:] if len(row) == len(header)]
    if len(data) != 1:
        raise NativeError(f"redis-benchmark printed {len(data)} result rows, expected one for one command")
    row = dict(zip(header, data[0]))
    try:
        rps = float(row["rps"])
        ms = {key: float(row[key]) for key in ("p50_latency_ms", "p99_latency_ms", "max_latency_ms")}
    except (KeyError, ValueError):
        raise NativeError(f"redis-benchmark's CSV row is not understood: {_elide(','.join(data[0]), 160)}") from None
    if rps <= 0:
        raise NativeError("redis-benchmark reported 0 requests per second")
    raw = (",".join(f'"{h}"' for h in header), ",".join(f'"{_elide(v)}"' for v in data[0]))
    return NativeResult("redis-benchmark", rps, None, mb_per_s(rps, size), TOOL_LATENCY,
                        to_ns(ms["p50_latency_ms"], 1e6), to_ns(ms["p99_latency_ms"], 1e6), None,
                        to_ns(ms["max_latency_ms"], 1e6), raw)
