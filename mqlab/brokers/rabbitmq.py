"""RabbitMQ on the host side: a pika connection to the published port, queue depths and
consumer counts, the dead-letter queue, bench cleanup, and PerfTest (RabbitMQ's own
benchmark tool): its command line, the parser of its output, one trial.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import NamedTuple

import pika
import pika.exceptions
from mqlab_services import envelope

from ..errors import UsageError
from .native import NativeError, NativeResult, check_rate, gist, mb_per_s, option_number, positive, to_ns
from .base import (HOST, TIMEOUT_S, Backlog, Broker, ConsumerView, Dead, NativeRun, Topology, envelope_id, names,
                   text)

#: The management UI's host port of each node, in node order (.env key, default).
UI_PORTS = (("RABBITMQ_UI_PORT", 15672), ("RABBITMQ_2_UI_PORT", 15673), ("RABBITMQ_3_UI_PORT", 15674))


def connect(config, ports: list[int] | None = None) -> pika.BlockingConnection:
    """A connection to the first node that answers on its published AMQP port, with the
    lab's credentials (``ports``: every node's, in order; default: RABBITMQ_PORT)."""
    credentials = pika.PlainCredentials(config.get("RABBITMQ_USER", "guest"), config.get("RABBITMQ_PASSWORD", "guest"))
    ports = ports or [config.integer("RABBITMQ_PORT", 5672, 1, 65535)]
    return pika.BlockingConnection([pika.ConnectionParameters(
        host=HOST, port=port, credentials=credentials, connection_attempts=1, socket_timeout=TIMEOUT_S)
        for port in ports])


def node_name(erlang_node: str) -> str:
    """The compose service of an Erlang node name: ``rabbit@rabbitmq-2`` -> ``rabbitmq-2``."""
    return erlang_node.partition("@")[2] or erlang_node


def sent_after(body: bytes, ns: int) -> bool:
    """An envelope stamped after ``ns`` (a message that is not one cannot say)."""
    found = envelope.decode(body)
    return found is not None and found.ts_ns > ns


class ClusterState(NamedTuple):
    """What the management API says of the cluster, for one mode."""

    nodes: dict[str, bool]  # each node: running or not
    queue: str  # the mode's queue
    members: tuple[str, list[str], list[str]] | None  # its (leader, members, online); None: not declared
    partitions: dict[str, list[str]]  # the nodes each running node recorded a network partition with


def partition_note(partitions: dict[str, list[str]]) -> str:
    """What the running nodes' recorded partitions mean (Mnesia, RabbitMQ before 4.3)."""
    seen = "; ".join(f"{node} cannot reach {', '.join(peers)}" for node, peers in sorted(partitions.items()))
    return (f"RabbitMQ (Mnesia) recorded a network partition ({seen}); it stays until a node on one side "
            "restarts (`invoke chaos <stack> kill-node --node N`)")


def management_get(config, path: str, ports: list[int]):
    """GET ``/api/<path>`` from the first node's management API that answers; its JSON."""
    token = base64.b64encode(f"{config.get('RABBITMQ_USER', 'guest')}:{config.get('RABBITMQ_PASSWORD', 'guest')}"
                             .encode()).decode()
    error: Exception | None = None
    for port in ports:
        request = urllib.request.Request(f"http://{HOST}:{port}/api/{path}",
                                         headers={"Authorization": f"Basic {token}"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return json.load(response)
        except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
            error = exc
    raise ConnectionError(f"no RabbitMQ management API answered on ports {ports}: {error}")


def queue_topology(queue: dict) -> tuple[str, list[str], list[str]]:
    """(leader, members, online members) of a queue from the management API, as services.
    A classic queue has one member, the node it lives on."""
    leader = queue.get("leader") or queue.get("node") or ""
    members = queue.get("members") or ([leader] if leader else [])
    online = queue.get("online") or ([leader] if leader and queue.get("state") == "running" else [])
    return node_name(leader), [node_name(m) for m in members], [node_name(m) for m in online]


def queue_counts(config, queues: set[str], ports: list[int] | None = None) -> dict[str, tuple[int, int]]:
    """(messages ready, consumers) of each queue that exists."""
    connection = connect(config, ports)
    counts = {}
    try:
        for queue in sorted(queues):
            channel = connection.channel()
            try:
                method = channel.queue_declare(queue=queue, passive=True).method
                counts[queue] = (method.message_count, method.consumer_count)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                pass  # gone: an exclusive queue of a subscriber that left
    finally:
        connection.close()
    return counts


REPLAY_IDLE_S = 2.0  # a stream read again ends after this long without a message
REPLAY_MAX_S = 120.0  # ... and after this long in all

#: How long a peer waits for a node to answer before it counts as unreachable (``saw_down``).
PEER_PROBE_MS = 2000


#: What the broker's own tool measures as latency: end to end.
TOOL_LATENCY = "e2e"


class RabbitMQ(Broker):
    name = "rabbitmq"
    tool_label = "PerfTest"
    tool_latency = TOOL_LATENCY
    tool_service = "perftest"
    tool_image_key = "PERFTEST_IMAGE"

    def ports(self, config) -> list[int]:
        return [port for _service, port in self.node_ports(config)]

    def ui_ports(self, config) -> list[int]:
        return [config.integer(key, default, 1, 65535) for key, default in UI_PORTS[:len(self.bound.nodes)]]

    def _state(self, config, mode: str) -> ClusterState:
        ports = self.ui_ports(config)
        rows = management_get(config, "nodes?columns=name,running,partitions", ports)
        queue = names(self.name, mode).queue
        try:
            found = management_get(config, f"queues/%2F/{urllib.parse.quote(queue, safe='')}", ports)
        except ConnectionError:
            found = None
        return ClusterState(nodes={node_name(n["name"]): bool(n.get("running")) for n in rows}, queue=queue,
                            members=queue_topology(found) if found else None,
                            partitions={node_name(n["name"]): sorted(node_name(p) for p in n["partitions"])
                                        for n in rows if n.get("running") and n.get("partitions")})

    def topology(self, config, mode: str, clients: list[ConsumerView] = ()) -> Topology:
        """The cluster's nodes, the mode's queue (leader, members, online), and the node of each
        client's connection, from the management API."""
        nodes, queue, members, _ = self._state(config, mode)
        result = Topology(rows=[("nodes", ", ".join(f"{n} ({'running' if up else 'DOWN'})"
                                                    for n, up in sorted(nodes.items())))])
        if members:
            leader, all_members, online = members
            result.leader = leader
            result.rows.append((f"queue {queue}", f"leader {leader or '?'}; members {', '.join(all_members)}; "
                                f"online {', '.join(online) or 'none'}"))
        else:
            result.rows.append((f"queue {queue}", "not declared yet"))
        for connection in management_get(config, "connections?columns=node,client_properties", self.ui_ports(config)):
            label = (connection.get("client_properties") or {}).get("connection_name", "")
            if label.startswith("mqlab "):
                result.clients[label[len("mqlab "):]] = node_name(connection.get("node", ""))
        return result

    def in_sync(self, config, mode: str) -> tuple[bool, str]:
        """Every node running and every member of the mode's queue online."""
        nodes, queue, members, partitions = self._state(config, mode)
        down = sorted(n for n, up in nodes.items() if not up)
        missing = sorted(set(members[1]) - set(members[2])) if members else []
        ok = not down and not missing and len(nodes) == len(self.bound.nodes)
        return ok, (f"{len(nodes) - len(down)} of {len(self.bound.nodes)} nodes running"
                    + (f"; {queue} members offline: {', '.join(missing)}" if missing else "")
                    + (f"; {partition_note(partitions)}" if partitions else ""))

    def no_read_back(self, mode: str) -> str:
        if mode != "stream":
            return super().no_read_back(mode)
        return ("a stream keeps its log, but a publisher confirm carries no offset, so there is no position "
                "to read back by: `invoke replay rabbitmq --from <time>` reads the stream again")

    def replay(self, config, mode: str, start, count: int):
        """A stream read again over AMQP 0-9-1, as a consumer with ``x-stream-offset`` (``first``, an
        offset or a time) and no stored offset of its own: the group's stored offset does not move."""
        if mode != "stream":
            raise UsageError(f"a RabbitMQ {'quorum' if mode == 'quorum' else 'classic'} queue forgets what it "
                             "delivered, so it cannot be read again: a RabbitMQ stream can (mode stream)")
        kind, value = start
        if kind == "entry":
            raise UsageError("a RabbitMQ stream is read again by offset, time or from the beginning, "
                             "not by a Redis entry id")
        offset = ("first" if kind == "beginning" else value if kind == "offset"
                  else datetime.fromtimestamp(int(value) / 1e9, tz=timezone.utc))
        connection = connect(config, [port for _service, port in self.node_ports(config)])
        read: list[tuple[str, bytes]] = []
        # The stream as it is now: the steady producer keeps appending, so the read ends at the
        # first message sent after it began (a stream's AMQP consumer is never told the end),
        # after REPLAY_IDLE_S without a message, or after REPLAY_MAX_S.
        began_ns = time.time_ns()
        deadline = time.monotonic() + REPLAY_MAX_S
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=min(count, 1000))
            queue = names(self.name, mode).queue
            for method, properties, body in channel.consume(queue, arguments={"x-stream-offset": offset},
                                                            inactivity_timeout=REPLAY_IDLE_S):
                if method is None or time.monotonic() > deadline or sent_after(body, began_ns):
                    break
                read.append((f"o{(properties.headers or {}).get('x-stream-offset', '?')}", body))
                channel.basic_ack(method.delivery_tag)
                if len(read) >= count:
                    break
            channel.cancel()
        finally:
            connection.close()
        return read

    def saw_down(self, config, node: str, peers) -> str:
        """A peer's Erlang runtime could not reach the node: a call to it (``erpc``, 2 s) timed
        out or found no connection. That is what the quorum queue's Raft members see of a cut-off
        member; RabbitMQ itself marks the node down only after net_ticktime (60 s)."""
        probe = (f"case catch erpc:call('rabbit@{node}', erlang, node, [], {PEER_PROBE_MS}) of "
                 "{'EXIT', {{erpc, Why}, _}} -> Why; {'EXIT', Why} -> Why; Answer -> Answer end.")
        for peer in peers:
            if peer.service.startswith("rabbitmq"):
                said = peer.run(["rabbitmqctl", "eval", probe], "rabbitmq").strip()
                if said in ("timeout", "noconnection"):
                    return (f"{peer.service} could not reach rabbit@{node}: erpc {said} "
                            f"(within {PEER_PROBE_MS / 1000:g} s)")
        return ""

    def check_expose(self, config) -> None:
        if "guest" in (config.get("RABBITMQ_USER", "guest"), config.get("RABBITMQ_PASSWORD", "guest")):
            raise UsageError("--expose is refused while RabbitMQ uses the default guest credentials: "
                             "set RABBITMQ_USER and RABBITMQ_PASSWORD (and `invoke down rabbitmq --volumes` "
                             "if it ran before)")

    def consumers_seen(self, config, mode: str) -> int | None:
        """Consumers on the shared queue of a competing mode (fan-out and topic queues are per consumer;
        the stream mode's readers subscribe over the stream protocol, which the queue's AMQP
        consumer count does not show: they say themselves that they subscribed)."""
        settings = names(self.name, mode)
        if settings.info.kind != "competing" or mode == "stream":
            return None
        return queue_counts(config, {settings.queue}, self.ports(config)).get(settings.queue, (0, 0))[1]

    def backlog(self, config, mode: str, consumers: list[ConsumerView]) -> Backlog:
        queues = {c.assignment for c in consumers if c.assignment} or {names(self.name, mode).queue}
        waiting = {queue: ready for queue, (ready, _) in queue_counts(config, queues, self.ports(config)).items()}
        return Backlog(waiting).by_assignment(consumers, "{count:,} ready in {name}")

    def read_dlq(self, config, name: str, limit: int) -> tuple[int, list[Dead]]:
        connection = connect(config, self.ports(config))
        try:
            channel = connection.channel()
            try:
                total = channel.queue_declare(queue=name, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker:
                return 0, []
            found = []
            for _ in range(min(limit, total)):
                method, props, body = channel.basic_get(name, auto_ack=False)
                if method is None:
                    break
                headers = props.headers or {}
                found.append(Dead(envelope_id(body), text(headers.get("x-mqlab-attempts", "?")),
                                  text(headers.get("x-mqlab-reason", "?"))))
            channel.close()  # unacked: every message goes back to the queue
            return total, found
        finally:
            connection.close()

    def delete(self, config, made: dict[str, str]) -> None:
        connection = connect(config, self.ports(config))
        try:
            channel = connection.channel()
            for key in ("MQLAB_QUEUE", "MQLAB_DLQ"):
                if made.get(key):
                    channel.queue_delete(made[key])
            for key in ("MQLAB_EXCHANGE", "MQLAB_DLX"):
                if made.get(key):
                    channel.exchange_delete(made[key])
        finally:
            connection.close()

    def native_trial(self, run: NativeRun) -> NativeResult:
        user, password = run.config.get("RABBITMQ_USER", "guest"), run.config.get("RABBITMQ_PASSWORD", "guest")
        out = run.tool(*perftest_argv(
            uri=f"amqp://{user}:{password}@rabbitmq:5672/%2F", size=run.size, seconds=math.ceil(run.seconds),
            rate=run.rate, producers=run.producers, consumers=run.consumers, queue=run.names["MQLAB_QUEUE"],
            confirm=run.batch, prefetch=run.prefetch, test_id=run.trial_id), seconds=run.seconds)
        return parse_perftest(out, warmup_s=run.warmup, size=run.size)


# --------------------------------------------------------------------------- PerfTest


def perftest_argv(*, uri: str, size: int, seconds: int, rate: float | None = None, producers: int = 1,
                  consumers: int = 1, queue: str = "mqlab.bench", confirm: int | None = 100,
                  prefetch: int = 200, persistent: bool = True, multi_ack: int | None = None,
                  test_id: str | None = None) -> list[str]:
    """PerfTest's arguments for the ``perftest`` service.

    ``seconds`` is the whole run (``-z``, warm-up included: PerfTest has no warm-up; pass the
    warm-up to :func:`parse_perftest`). ``rate`` is the total over the producers (PerfTest's
    ``-r`` is per producer); None is as fast as confirms allow. The lab's safe mode is the
    default: ``persistent`` (``-f persistent``: a durable queue and persistent messages),
    publisher confirms with at most ``confirm`` unconfirmed (``-c``; None: no confirms),
    ``prefetch`` unacked deliveries per consumer (``-q``), acks one by one unless
    ``multi_ack`` (``-A``). The queue is named, bound to PerfTest's ``direct`` exchange and
    deleted by the broker when its last consumer leaves (PerfTest's auto-delete default).
    PerfTest puts a timestamp in each body and sends at least 12 bytes whatever ``size``.
    """
    if not uri.startswith(("amqp://", "amqps://")):
        raise NativeError(f"PerfTest needs an amqp:// URI, got {uri!r}")
    argv = ["--uri", uri, "--producers", str(positive("producers", producers)),
            "--consumers", str(positive("consumers", consumers, zero=True)),
            "--size", str(positive("size", size)), "--time", str(positive("seconds", seconds)),
            "--queue", queue, "--qos", str(positive("prefetch", prefetch))]
    if rate is not None:
        argv += ["--rate", option_number(check_rate(rate) / producers)]
    if persistent:
        argv += ["--flag", "persistent"]
    if confirm is not None:
        argv += ["--confirm", str(positive("confirm", confirm))]
    if multi_ack:
        argv += ["--multi-ack-every", str(positive("multi_ack", multi_ack))]
    if test_id:
        argv += ["--id", test_id]
    return argv


_PT_LINE = re.compile(r"^id: (?P<id>.+?), time (?P<time>\d+(?:\.\d+)?) s, (?P<rest>.*)$")
_PT_RATE = re.compile(r"(?P<name>sent|confirmed|nacked|returned|received): (?P<value>\d+(?:\.\d+)?) msg/s")
_PT_LATENCY = re.compile(r"consumer latency:? (?P<stats>\d+/\d+/\d+/\d+/\d+) (?P<unit>\S+)")
_PT_SUMMARY_RATE = re.compile(r"(?P<name>sending|receiving) rate avg: (?P<value>\d+(?:\.\d+)?) msg/s")


def _latency_unit_ns(unit: str) -> float:
    # "ms" with --use-millis, else "µs" (possibly mangled by a non-UTF-8 console).
    return 1e6 if unit == "ms" else 1e3


def parse_perftest(stdout: str, *, warmup_s: float = 0.0, size: int | None = None) -> NativeResult:
    """PerfTest's console output (default ``--metrics-format``) to a :class:`NativeResult`.

    PerfTest prints one line a second (``id: ..., time 4.000 s, sent: N msg/s, confirmed:
    ..., received: N msg/s, min/median/75th/95th/99th consumer latency: a/b/c/d/e µs, confirm
    latency: ...``) and, at the end, ``sending rate avg``, ``receiving rate avg`` and
    ``consumer latency min/median/75th/95th/99th`` over the whole run. Used here: the
    intervals that start at or after ``warmup_s``; rates are their time-weighted means
    (messages over time), p50 and p99 the means of their per-second median and 99th
    percentile weighted by the messages received in each (PerfTest prints percentiles per
    interval, not for a chosen window). The latency is end to end: the producer's timestamp
    in the body to its arrival at the consumer. PerfTest prints neither p99.9 nor the max.
    Without an interval after the warm-up, the end-of-run summary is used, warm-up included.
    """
    intervals, summary, summary_latency, summary_lines = _perftest_lines(stdout)
    steady = [iv for iv in intervals if iv[0] >= warmup_s - 0.05 and iv[1] > iv[0] and "sent" in iv[2]]
    if steady:
        send_rate, recv_rate, p50, p99 = _perftest_steady(steady)
        raw = tuple(iv[5] for iv in steady) + tuple(summary_lines)
    elif "sending" in summary:
        send_rate = summary["sending"]
        recv_rate = summary.get("receiving")
        p50 = p99 = None
        if summary_latency and recv_rate:
            stats, unit = summary_latency
            p50, p99 = to_ns(stats[1], _latency_unit_ns(unit)), to_ns(stats[4], _latency_unit_ns(unit))
        raw = tuple(summary_lines)
    else:
        raise NativeError(f"PerfTest printed no rates: {gist(stdout)}")
    return NativeResult("PerfTest", send_rate, recv_rate, mb_per_s(send_rate, size), TOOL_LATENCY,
                        p50, p99, None, None, raw)


def _perftest_lines(stdout: str):
    """PerfTest's per-second intervals (start, end, rates, latency stats, unit, line) and its
    end-of-run summary (rates, latency stats and unit, lines)."""
    intervals = []
    summary: dict[str, float] = {}
    summary_latency = None
    summary_lines = []
    previous = 0.0
    for line in stdout.splitlines():
        line = line.strip()
        match = _PT_LINE.match(line)
        if match:
            end = float(match["time"])
            rates = {m["name"]: float(m["value"]) for m in _PT_RATE.finditer(match["rest"])}
            lat = _PT_LATENCY.search(match["rest"])
            stats = tuple(int(v) for v in lat["stats"].split("/")) if lat else None
            intervals.append((previous, end, rates, stats, lat["unit"] if lat else "", line))
            previous = end
            continue
        rate = _PT_SUMMARY_RATE.search(line)
        if rate:
            summary[rate["name"]] = float(rate["value"])
            summary_lines.append(line)
        elif "consumer latency min/median/75th/95th/99th" in line:
            lat = re.search(r"min/median/75th/95th/99th (?P<stats>\d+/\d+/\d+/\d+/\d+) (?P<unit>\S+)", line)
            if lat:
                summary_latency = (tuple(int(v) for v in lat["stats"].split("/")), lat["unit"])
                summary_lines.append(line)
    return intervals, summary, summary_latency, summary_lines


def _perftest_steady(steady: list) -> tuple[float, float | None, int | None, int | None]:
    """Send and receive rates (time-weighted) and p50/p99 (weighted by messages received)."""
    span = sum(end - start for start, end, *_ in steady)
    send_rate = sum(r["sent"] * (end - start) for start, end, r, *_ in steady) / span
    recv_rate = (sum(r["received"] * (end - start) for start, end, r, *_ in steady) / span
                 if all("received" in r for _, _, r, *_ in steady) else None)
    weighted = [(r.get("received", 0.0) * (end - start), stats, unit)
                for start, end, r, stats, unit, _ in steady if stats and r.get("received", 0.0) > 0]
    total = sum(w for w, *_ in weighted)
    p50 = p99 = None
    if total > 0:
        p50 = int(round(sum(w * st[1] * _latency_unit_ns(u) for w, st, u in weighted) / total))
        p99 = int(round(sum(w * st[4] * _latency_unit_ns(u) for w, st, u in weighted) / total))
    return send_rate, recv_rate, p50, p99
