"""Kafka on the host side (both Kafka stacks): the bootstrap address of the published port,
the consumer group's members and lag, the dead-letter topic, bench cleanup, and Kafka's
perf tools: kafka-producer-perf-test (sized by a probe at full speed), then
kafka-consumer-perf-test reading what it produced.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from mqlab_services.envelope import decode

from ..errors import UsageError
from .native import (MAX_RECORDS, PROBE_RECORDS, NativeError, NativeResult, check_rate, gist, option_number,
                      positive, records_for, to_ns)
from .base import (HOST, Backlog, Broker, ConsumerView, Dead, NativeRun, Topology, envelope_id, logged_id, names,
                   text)

#: The brokers' listener for containers on the stack's network.
BOOTSTRAP = "kafka:19092"
#: Which generation of Kafka's perf-test options each Kafka stack's image has.
TOOLS_MAJOR = {"kafka": 4, "kafka-zookeeper": 3}
# A transactional read waits this long for the transactions open when it began to end (the
# stage's transaction.timeout.ms is 10 s: a dead stage's open transaction is aborted by then).
OUTPUT_SETTLE_S = 15.0


def bootstrap(config, ports: list[int] | None = None) -> list[str]:
    """The published listeners, as host clients reach them (``ports``: every node's;
    default: KAFKA_PORT)."""
    return [f"{HOST}:{port}" for port in (ports or [config.integer('KAFKA_PORT', 9092, 1, 65535)])]


#: What the broker's own tool measures as latency: the producer's ack.
TOOL_LATENCY = "ack"


@dataclass(frozen=True)
class PartitionState:
    partition: int
    leader: int  # node id, -1 when there is none
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def partition_states(described: list[dict], topic: str) -> list[PartitionState]:
    """The partitions of ``topic`` from KafkaAdminClient.describe_topics, in order."""
    for entry in described:
        if entry.get("name") == topic:
            return sorted((PartitionState(p["partition_index"], p.get("leader_id", -1),
                                          tuple(p.get("replica_nodes") or ()), tuple(p.get("isr_nodes") or ()))
                           for p in entry.get("partitions") or []), key=lambda p: p.partition)
    return []


def _lag(config, groups: set[str], topic: str, servers: list[str]) -> dict[str, int]:
    """Lag per group and partition: the log end offset minus the committed offset."""
    admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10_000)
    consumer = KafkaConsumer(bootstrap_servers=servers, request_timeout_ms=11_000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
        ends = consumer.end_offsets(tps) if tps else {}
        committed = admin.list_group_offsets({g: tps for g in sorted(groups)}) if groups and tps else {}
    finally:
        consumer.close()
        admin.close()
    lag = {}
    for group in sorted(groups):
        for tp in tps:
            done = committed.get(group, {}).get(tp)
            start = done.offset if done is not None and done.offset >= 0 else 0
            lag[f"{group}/{tp.partition}"] = max(0, ends.get(tp, 0) - start)
    return lag


def _read_partition(consumer, tp, low: int, high: int, timeout_s: float = 120.0) -> dict[str, str]:
    """``p<partition>:<offset>`` -> id of the records of one partition from ``low`` to ``high``."""
    consumer.assign([tp])
    start, end = consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]
    stop = min(high + 1, end)
    found: dict[str, str] = {}
    consumer.seek(tp, max(low, start))
    deadline = time.monotonic() + timeout_s
    while consumer.position(tp) < stop and time.monotonic() < deadline:
        for record in consumer.poll(timeout_ms=1000, max_records=10_000).get(tp, []):
            if low <= record.offset <= high:
                found[f"p{tp.partition}:{record.offset}"] = logged_id(record.value)
    return found


def _read_partition_in_order(consumer, tp, end: int, limit: int, timeout_s: float = 120.0) -> list[tuple[str, bytes]]:
    """``p<partition>:<offset>`` and value of the records of one partition from where it stands
    to ``end``, at most ``limit``."""
    read: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while len(read) < limit and consumer.position(tp) < end and time.monotonic() < deadline:
        for record in consumer.poll(timeout_ms=1000, max_records=min(10_000, limit - len(read))).get(tp, []):
            read.append((f"p{tp.partition}:{record.offset}", record.value or b""))
    return read[:limit]


def _ids_of_run(consumer, tp, end: int, run_id: str, timeout_s: float = 120.0) -> Counter:
    """The ids of ``run_id``'s envelopes in one partition, up to ``end``."""
    found: Counter = Counter()
    deadline = time.monotonic() + timeout_s
    while consumer.position(tp) < end and time.monotonic() < deadline:
        for record in consumer.poll(timeout_ms=1000, max_records=10_000).get(tp, []):
            env = decode(record.value) if record.value else None
            if env is not None and env.run == run_id:
                found[env.id] += 1
    return found


class Kafka(Broker):
    name = "kafka"
    tool_label = "kafka-perf-test"
    tool_latency = TOOL_LATENCY
    tool_service = "kafka-perf"

    def servers(self, config) -> list[str]:
        return bootstrap(config, [port for _service, port in self.node_ports(config)])

    def service_of(self, node_id: int) -> str:
        """The compose service of a node id: kafka-<id> in a cluster, the one broker otherwise."""
        nodes = self.bound.nodes
        if not self.bound.cluster:
            return nodes[0].service
        return nodes[node_id - 1].service if 1 <= node_id <= len(nodes) else f"node {node_id}"

    def partitions(self, config, topic: str) -> list[PartitionState]:
        admin = KafkaAdminClient(bootstrap_servers=self.servers(config), request_timeout_ms=10_000)
        try:
            return partition_states(admin.describe_topics([topic]), topic)
        finally:
            admin.close()

    def topology(self, config, mode: str, clients: list[ConsumerView] = ()) -> Topology:
        """Each partition's leader, replicas and in-sync replicas; the leader of partition 0
        leads (``--node leader``); a consumer reads from the leaders of its partitions, a
        producer writes to every partition's leader."""
        topic = names(self.name, mode).topic
        states = self.partitions(config, topic)
        result = Topology(leader=self.service_of(states[0].leader) if states and states[0].leader >= 0 else "")

        def ids(nodes) -> str:
            return ",".join(str(n) for n in nodes) or "-"

        for p in states:
            leader = self.service_of(p.leader) if p.leader >= 0 else "NONE"
            result.rows.append((f"{topic} p{p.partition}", f"leader {leader}; replicas {ids(p.replicas)}; "
                                f"in sync {ids(sorted(p.isr))}"))  # a set: the order the broker lists it in means nothing
        leaders = {p.partition: (self.service_of(p.leader) if p.leader >= 0 else "none") for p in states}
        for c in clients:
            parts = [int(p) for p in c.assignment.split(",") if p.strip().isdigit()] if c.assignment else list(leaders)
            result.clients[c.name] = ", ".join(f"{leaders.get(p, '?')} (p{p})" for p in parts)
        return result

    def in_sync(self, config, mode: str) -> tuple[bool, str]:
        """Every partition of the mode's topic has a leader and all its replicas in sync."""
        states = self.partitions(config, names(self.name, mode).topic)
        behind = [p.partition for p in states if p.leader < 0 or set(p.isr) != set(p.replicas)]
        return bool(states) and not behind, (f"{len(states) - len(behind)} of {len(states)} partitions fully in sync"
                                             if states else "no partitions yet")

    log_position = "partition and offset"

    def read_log(self, config, mode: str, positions: list[str]) -> dict[str, str]:
        """Each partition's records from the lowest recorded offset to the highest, fetched from
        its leader now (``p<partition>:<offset>`` -> id). An old leader's records that its successor
        never had are gone, or another record took their offset."""
        topic = names(self.name, mode).topic
        wanted: dict[int, list[int]] = {}
        for pos in positions:
            partition, _, offset = pos.removeprefix("p").partition(":")
            wanted.setdefault(int(partition), []).append(int(offset))
        consumer = KafkaConsumer(bootstrap_servers=self.servers(config), group_id=None, enable_auto_commit=False,
                                 request_timeout_ms=11_000, max_partition_fetch_bytes=8 * 2**20)
        found: dict[str, str] = {}
        try:
            for partition, offsets in sorted(wanted.items()):
                found.update(_read_partition(consumer, TopicPartition(topic, partition), min(offsets), max(offsets)))
        finally:
            consumer.close()
        return found

    def replay(self, config, mode: str, start: tuple[str, object], count: int) -> list[tuple[str, bytes]]:
        """The mode's topic again, partition by partition, with a consumer of no group (``assign``):
        from the beginning, from an offset in every partition, or from a time
        (``offsets_for_times``). No group's committed offsets move."""
        kind, value = start
        if kind == "entry":
            raise UsageError("Kafka is read again by offset, time or from the beginning, not by a Redis entry id")
        topic = names(self.name, mode).topic
        consumer = KafkaConsumer(bootstrap_servers=self.servers(config), group_id=None, enable_auto_commit=False,
                                 request_timeout_ms=11_000)
        read: list[tuple[str, bytes]] = []
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(tps)
            firsts, ends = (consumer.beginning_offsets(tps), consumer.end_offsets(tps)) if tps else ({}, {})
            times = consumer.offsets_for_times({tp: value // 1_000_000 for tp in tps}) if kind == "time" else {}
            for tp in tps:
                at = {"beginning": firsts[tp], "offset": max(firsts[tp], min(int(value or 0), ends[tp]))}.get(kind)
                if kind == "time":
                    at = times[tp].offset if times.get(tp) is not None else ends[tp]
                consumer.seek(tp, at)
                for pos, body in _read_partition_in_order(consumer, tp, ends[tp], count - len(read)):
                    read.append((pos, body))
        finally:
            consumer.close()
        return read

    def read_output(self, config, mode: str, run_id: str, since_ns: int) -> Counter:
        """How often each id of run ``run_id`` is in the mode's output topic (``txn``), as a
        ``read_committed`` reader sees it: records of aborted transactions are not read. The
        topic is read from ``since_ns`` (the run's start) to its end."""
        topic = names(self.name, mode).output
        consumer = KafkaConsumer(bootstrap_servers=self.servers(config), group_id=None, enable_auto_commit=False,
                                 isolation_level="read_committed", request_timeout_ms=11_000)
        counts: Counter = Counter()
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(tps)
            starts = consumer.offsets_for_times({tp: since_ns // 1_000_000 for tp in tps}) if tps else {}
            ends = self._stable_ends(config, consumer, tps)
            for tp in tps:
                found = starts.get(tp)
                consumer.seek(tp, found.offset if found is not None else ends[tp])
                counts.update(_ids_of_run(consumer, tp, ends[tp], run_id))
        finally:
            consumer.close()
        return counts

    def _stable_ends(self, config, committed: KafkaConsumer, tps: list) -> dict:
        """The last stable offsets once every transaction open when the read began has ended:
        a read_committed reader sees nothing past an open transaction, and the stage always has
        one open while it works (the steady trickle). Waits at most OUTPUT_SETTLE_S."""
        if not tps:
            return {}
        everything = KafkaConsumer(bootstrap_servers=self.servers(config), group_id=None, enable_auto_commit=False,
                                   request_timeout_ms=11_000)
        try:
            written = everything.end_offsets(tps)  # the high watermarks: every record written so far
        finally:
            everything.close()
        deadline = time.monotonic() + OUTPUT_SETTLE_S
        while True:
            stable = committed.end_offsets(tps)
            if all(stable[tp] >= written[tp] for tp in tps) or time.monotonic() > deadline:
                return stable
            time.sleep(0.5)

    def saw_down(self, config, node: str, peers) -> str:
        """The controller quorum fenced the node: a broker that misses its heartbeats for
        broker.session.timeout.ms (9 s) is fenced by the active controller, which logs it and
        takes the node out of every ISR and leadership. The active controller is one of the
        peers whenever the node is cut off from them."""
        node_id = next((i for i, n in enumerate(self.bound.nodes, 1) if n.service == node), 0)
        # Kafka 3.x says "Fencing broker 2 because ...", 4.x "Fencing broker 2 at epoch 15 because ...".
        fenced = re.compile(rf"Fencing broker {node_id}(?: at epoch \d+)? because its session has timed out")
        for peer in peers:
            found = fenced.search(peer.logs())
            if found:
                return f"{peer.service} (the active controller) logged: {found.group(0)}"
        return ""

    def check_expose(self, config) -> None:
        raise UsageError("Kafka has no authentication in this lab (PLAINTEXT listeners): --expose is refused")

    def consumers_seen(self, config, mode: str) -> int | None:
        """Members of the shared group once the broker calls it Stable (0 while it rebalances).
        With more consumers than partitions, the members without one still count."""
        settings = names(self.name, mode)
        if settings.info.kind != "competing":
            return None
        admin = KafkaAdminClient(bootstrap_servers=self.servers(config), request_timeout_ms=10_000)
        try:
            described = admin.describe_groups([settings.group]).get(settings.group) or {}
        finally:
            admin.close()
        return len(described.get("members", [])) if described.get("group_state") == "Stable" else 0

    def backlog(self, config, mode: str, consumers: list[ConsumerView]) -> Backlog:
        settings = names(self.name, mode)
        group_of = {c.container: (f"{settings.group}.{c.name}" if settings.fanout else settings.group)
                    for c in consumers}
        result = Backlog(_lag(config, set(group_of.values()) or {settings.group}, settings.topic, self.servers(config)))
        for c in consumers:
            parts = [p.strip() for p in c.assignment.split(",") if p.strip().isdigit()]
            lag = sum(result.waiting.get(f"{group_of[c.container]}/{p}", 0) for p in parts)
            result.per_consumer[c.container] = f"lag {lag:,}" if parts else "-"
        return result

    def read_dlq(self, config, name: str, limit: int) -> tuple[int, list[Dead]]:
        consumer = KafkaConsumer(bootstrap_servers=self.servers(config), enable_auto_commit=False,
                                 consumer_timeout_ms=5000, request_timeout_ms=11_000)
        try:
            tps = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or set())]
            if not tps:
                return 0, []
            consumer.assign(tps)
            begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
            total = sum(end[tp] - begin[tp] for tp in tps)
            consumer.seek_to_beginning(*tps)
            found = []
            for record in consumer:
                headers = {k: text(v) for k, v in (record.headers or [])}
                found.append(Dead(envelope_id(record.value), headers.get("mqlab-attempts", "?"),
                                  headers.get("mqlab-reason", "?")))
                if len(found) >= min(limit, total) or all(consumer.position(tp) >= end[tp] for tp in tps):
                    break
            return total, found
        finally:
            consumer.close()

    def delete(self, config, made: dict[str, str]) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.servers(config), request_timeout_ms=15_000)
        try:
            existing = set(admin.list_topics())
            topics = [made[k] for k in ("MQLAB_TOPIC", "MQLAB_DLQ", "MQLAB_OUTPUT") if made.get(k) in existing]
            if topics:
                admin.delete_topics(topics)
        finally:
            admin.close()

    def native_trial(self, run: NativeRun) -> NativeResult:
        major = TOOLS_MAJOR[run.stack.name]
        topic = run.names["MQLAB_TOPIC"]

        def produce(records: int, warmup: int, rate: float | None, to: str) -> NativeResult:
            argv = kafka_producer_argv(topic=to, size=run.size, num_records=records, rate=rate,
                                       warmup_records=warmup, major=major)
            return parse_kafka_producer(run.tool(*argv, seconds=3 * run.seconds))

        rate = run.rate
        if rate is None:
            probe_topic = f"{topic}.probe"
            try:
                rate = produce(PROBE_RECORDS, PROBE_RECORDS // 5, None, probe_topic).send_rate
            finally:
                run.delete({"MQLAB_TOPIC": probe_topic})
        records = min(MAX_RECORDS, records_for(rate, run.seconds))
        producer = produce(records, min(records - 1, int(rate * run.warmup)), run.rate, topic)
        consumer = parse_kafka_consumer(run.tool(*kafka_consumer_argv(
            topic=topic, num_records=records, timeout_ms=30_000, major=major), seconds=60 + run.duration),
            expected=records)
        return kafka_result(producer, consumer)


# --------------------------------------------------------------------------- Kafka's perf tools


@dataclass(frozen=True)
class KafkaConsumerStats:
    """kafka-consumer-perf-test's summary line."""

    records: int
    recv_rate: float  # records/s while fetching (the group join excluded)
    mb_per_s: float  # MB/s while fetching
    overall_rate: float  # records/s from start to end, the group join included
    rebalance_ms: int
    raw_summary: tuple[str, ...]


def _major(major: int) -> int:
    if major not in (3, 4):
        raise NativeError(f"Kafka tools of major version 3 or 4 are known, got {major!r}")
    return major


def kafka_producer_argv(*, topic: str, size: int, num_records: int, rate: float | None = None,
                        warmup_records: int = 0, acks: str = "all", linger_ms: int = 5, major: int = 4,
                        bootstrap: str = BOOTSTRAP) -> list[str]:
    """``kafka-producer-perf-test.sh`` and its arguments for the ``kafka-perf`` service.

    It stops after ``num_records`` (at ``rate``, that takes num_records / rate seconds;
    None is ``--throughput -1``, no throttle). The lab's safe mode: ``acks=all`` (the
    producer is then idempotent by default) and ``linger.ms=5``. ``major`` picks the
    options of the stack's Kafka (:data:`TOOLS_MAJOR`): 4.x takes
    ``--bootstrap-server``, ``--command-property`` and ``--warmup-records`` (records left
    out of the extra steady-state summary line); 3.9 has only ``--producer-props`` and no
    warm-up, so there ``warmup_records`` is ignored and the summary covers the whole run.
    """
    positive("size", size)
    positive("num_records", num_records)
    positive("warmup_records", warmup_records, zero=True)
    rate = check_rate(rate)
    props = [f"acks={acks}", f"linger.ms={positive('linger_ms', linger_ms, zero=True)}"]
    argv = ["kafka-producer-perf-test.sh", "--topic", topic, "--num-records", str(num_records),
            "--record-size", str(size), "--throughput", option_number(rate) if rate is not None else "-1"]
    if _major(major) >= 4:
        argv[1:1] = ["--bootstrap-server", bootstrap]
        if warmup_records:
            if warmup_records >= num_records:
                raise NativeError(f"warmup_records ({warmup_records}) must be below num_records ({num_records})")
            argv += ["--warmup-records", str(warmup_records)]
        argv += ["--command-property", *props]
    else:
        argv += ["--producer-props", f"bootstrap.servers={bootstrap}", *props]
    return argv


def kafka_consumer_argv(*, topic: str, num_records: int, timeout_ms: int = 10_000, major: int = 4,
                        group: str | None = None, bootstrap: str = BOOTSTRAP) -> list[str]:
    """``kafka-consumer-perf-test.sh`` and its arguments: read ``num_records`` from the start
    of ``topic`` (a new group), giving up after ``timeout_ms`` without a record.

    4.x counts with ``--num-records`` (``--messages`` still works but prints a deprecation
    warning on stdout); 3.9 only knows ``--messages``.
    """
    positive("num_records", num_records)
    argv = ["kafka-consumer-perf-test.sh", "--bootstrap-server", bootstrap, "--topic", topic,
            "--num-records" if _major(major) >= 4 else "--messages", str(num_records),
            "--timeout", str(positive("timeout_ms", timeout_ms))]
    if group:
        argv += ["--group", group]
    return argv


_KP_SUMMARY = re.compile(
    r"^(?P<records>\d+) (?P<steady>steady state )?records sent, (?P<rate>\d+(?:\.\d+)?) records/sec "
    r"\((?P<mb>\d+(?:\.\d+)?) MB/sec\), (?P<avg>\d+(?:\.\d+)?) ms avg latency, "
    r"(?P<max>\d+(?:\.\d+)?) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, "
    r"(?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th\.?$")


def parse_kafka_producer(stdout: str) -> NativeResult:
    """kafka-producer-perf-test's final line to a :class:`NativeResult` (no ``recv_rate``).

    The final line is ``N records sent, R records/sec (M MB/sec), A ms avg latency, X ms
    max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th.``; with ``--warmup-records``
    (Kafka 4.x) a second one, ``N steady state records sent, ...``, leaves the warm-up out
    and is preferred. Progress lines (every 5 s) have no percentiles and are not used. The
    latency is the producer's: ``send()`` to the broker's ack, buffering in the client
    included; its percentiles are whole milliseconds.
    """
    found = [(line.strip(), m) for line in stdout.splitlines() if (m := _KP_SUMMARY.match(line.strip()))]
    if not found:
        raise NativeError(f"kafka-producer-perf-test printed no summary line: {gist(stdout)}")
    line, m = next(((line, m) for line, m in found if m["steady"]), found[-1])
    ms = 1e6
    rate = float(m["rate"])
    return NativeResult("kafka-producer-perf-test", rate, None, float(m["mb"]), TOOL_LATENCY,
                        to_ns(float(m["p50"]), ms), to_ns(float(m["p99"]), ms), to_ns(float(m["p999"]), ms),
                        to_ns(float(m["max"]), ms), tuple(line for line, _ in found))


_KC_FIELDS = ("data.consumed.in.MB", "data.consumed.in.nMsg", "nMsg.sec", "rebalance.time.ms",
              "fetch.time.ms", "fetch.MB.sec", "fetch.nMsg.sec")


def parse_kafka_consumer(stdout: str, *, expected: int | None = None) -> KafkaConsumerStats:
    """kafka-consumer-perf-test's CSV summary (the same header in Kafka 3.9 and 4.3)::

        start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
        rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec

    The receive rate is ``fetch.nMsg.sec``: records over the time spent fetching, the
    consumer group's join left out (``nMsg.sec`` includes it). A run that read fewer than
    ``expected`` records (the tool warns "Exiting before consuming the expected number"
    and its rates then include the wait for the timeout) is an error.
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    header_at = next((i for i, line in enumerate(lines) if "data.consumed.in.nMsg" in line), None)
    if header_at is None:
        raise NativeError(f"kafka-consumer-perf-test printed no CSV header: {gist(stdout)}")
    header = [field.strip() for field in lines[header_at].split(",")]
    if "fetch.nMsg.sec" not in header or "start.time" not in header:
        raise NativeError(f"kafka-consumer-perf-test printed an unknown header: {lines[header_at][:160]}")
    row = None
    for line in lines[header_at + 1:]:
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == len(header) and not line.startswith("WARNING"):
            row = dict(zip(header, fields))
            data_line = line
            break
    if row is None:
        raise NativeError(f"kafka-consumer-perf-test printed no summary row: {gist(stdout)}")
    try:
        values = {key: float(row[key]) for key in _KC_FIELDS}
    except (KeyError, ValueError):
        raise NativeError(f"kafka-consumer-perf-test's summary row is not numbers: {data_line[:160]}") from None
    records = int(values["data.consumed.in.nMsg"])
    if records == 0:
        raise NativeError("kafka-consumer-perf-test read no records before its timeout")
    if expected is not None and records < expected:
        raise NativeError(f"kafka-consumer-perf-test read {records:,} of {expected:,} records before its timeout")
    fetching = values["fetch.time.ms"] > 0
    return KafkaConsumerStats(
        records=records,
        recv_rate=values["fetch.nMsg.sec"] if fetching else values["nMsg.sec"],
        mb_per_s=values["fetch.MB.sec"] if fetching else float(row.get("MB.sec", 0) or 0),
        overall_rate=values["nMsg.sec"],
        rebalance_ms=int(values["rebalance.time.ms"]),
        raw_summary=(lines[header_at], data_line),
    )


def kafka_result(producer: NativeResult, consumer: KafkaConsumerStats | None = None) -> NativeResult:
    """One result from the producer's run and the consumer's read of what it produced."""
    if consumer is None:
        return producer
    return NativeResult("kafka-producer-perf-test + kafka-consumer-perf-test", producer.send_rate,
                        consumer.recv_rate, producer.mb_per_s, producer.latency_kind, producer.p50_ns,
                        producer.p99_ns, producer.p999_ns, producer.max_ns,
                        producer.raw_summary + consumer.raw_summary)
