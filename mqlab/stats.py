"""`invoke stats`: per consumer, how many messages, at what rate, and the backlog now.

Counts and rates come from the status files the services write about once a second
(``<ledger>/_status/<name>.json``); the backlog comes from the broker itself, asked
from the host: RabbitMQ queue depth, Redis consumer-group lag and pending entries,
Kafka consumer-group lag per partition.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import clients
from .config import LabConfig
from .stacks import Stack

STALE_S = 10.0  # a status file older than this belongs to a service that is gone or stuck


@dataclass
class ServiceStats:
    name: str  # compose container name
    role: str  # consumer | producer
    mode: str = ""
    state: str = ""  # subscribed, starting, stale, no status
    count: int = 0  # received (consumers) or acked (producers)
    rate: float = 0.0
    assignment: str = ""
    backlog: str = "-"


@dataclass
class StackStats:
    stack: str
    mode: str
    services: list[ServiceStats] = field(default_factory=list)
    backlog: dict[str, int] = field(default_factory=dict)  # queue/group/partition -> messages waiting
    broker_error: str = ""


def read_status(ledger_dir: Path, hostname: str) -> dict:
    try:
        return json.loads((ledger_dir / "_status" / f"{hostname}.json").read_text())
    except (OSError, ValueError):
        return {}


def _assignment_text(value) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value or "")


def rabbitmq_backlog(config: LabConfig, queues: set[str]) -> dict[str, int]:
    import pika

    connection = clients.rabbitmq(config)
    depths = {}
    try:
        for queue in sorted(queues):
            channel = connection.channel()
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).method.message_count
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                pass  # gone: an exclusive queue of a subscriber that left
    finally:
        connection.close()
    return depths


def redis_backlog(config: LabConfig, stream: str) -> dict[str, int]:
    import redis

    client = clients.redis(config, decode_responses=True)
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return {}
    finally:
        client.close()
    backlog = {}
    for g in groups:
        lag = g.get("lag")  # Redis 7+: entries not yet delivered to the group
        backlog[g["name"]] = int(g.get("pending", 0)) + (int(lag) if lag is not None else 0)
    return backlog


def kafka_backlog(config: LabConfig, groups: set[str], topic: str) -> dict[str, int]:
    """Lag per group and partition: the log end offset minus the committed offset."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    bootstrap = clients.kafka_bootstrap(config)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=11_000)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps) if tps else {}
        committed = admin.list_group_offsets({g: tps for g in sorted(groups)}) if groups and tps else {}
    finally:
        consumer.close()
        admin.close()
    backlog = {}
    for group in sorted(groups):
        offsets = committed.get(group, {})
        for tp in tps:
            done = offsets.get(tp)
            start = done.offset if done is not None and done.offset >= 0 else 0
            backlog[f"{group}/{tp.partition}"] = max(0, ends.get(tp, 0) - start)
    return backlog


def collect(config: LabConfig, stack: Stack, client, mode: str, now_ns: int | None = None) -> StackStats:
    names = clients.names(stack.broker)
    now_ns = now_ns or time.time_ns()
    result = StackStats(stack.name, mode)
    containers = client.containers.list(filters={"label": f"com.docker.compose.project={stack.project}"})
    for c in sorted(containers, key=lambda c: c.name):
        role = c.labels.get("com.docker.compose.service", "")
        if role not in ("consumer", "producer"):
            continue
        status = read_status(config.ledger_dir, c.attrs.get("Config", {}).get("Hostname", ""))
        row = ServiceStats(c.name, role)
        if not status:
            row.state = "no status yet"
        else:
            age = (now_ns - int(status.get("updated_ns", 0))) / 1e9
            row.mode = status.get("mode", "")
            row.count = int(status.get("received" if role == "consumer" else "acked", 0))
            row.rate = float(status.get("rate", 0.0))
            row.assignment = _assignment_text(status.get("assignment"))
            if age > STALE_S:
                row.state = "stale"
            elif role == "producer":
                row.state = "running"
            else:
                row.state = "subscribed" if status.get("subscribed") else "starting"
        result.services.append(row)

    consumers = [r for r in result.services if r.role == "consumer"]
    try:
        if stack.broker == "rabbitmq":
            queues = {r.assignment for r in consumers if r.assignment} or {names.queue}
            result.backlog = rabbitmq_backlog(config, queues)
            for r in consumers:
                if r.assignment in result.backlog:
                    r.backlog = f"{result.backlog[r.assignment]:,} ready in {r.assignment}"
        elif stack.broker == "redis":
            result.backlog = redis_backlog(config, names.stream)
            for r in consumers:
                if r.assignment in result.backlog:
                    r.backlog = f"{result.backlog[r.assignment]:,} in group {r.assignment}"
        else:
            groups = {f"{names.group}.{_hostname(client, r.name)}" for r in consumers} if mode == "fanout" else {names.group}
            result.backlog = kafka_backlog(config, groups, names.topic)
            for r in consumers:
                parts = [p for p in r.assignment.split(",") if p.strip().isdigit()]
                group = f"{names.group}.{_hostname(client, r.name)}" if mode == "fanout" else names.group
                lag = sum(result.backlog.get(f"{group}/{p.strip()}", 0) for p in parts)
                r.backlog = f"lag {lag:,}" if parts else "-"
    except Exception as exc:  # the broker may be restarting: show what we have
        result.broker_error = f"{type(exc).__name__}: {str(exc)[:120]}"
    return result


def _hostname(client, container_name: str) -> str:
    try:
        return client.containers.get(container_name).attrs["Config"]["Hostname"]
    except Exception:
        return container_name


def render(stats: StackStats) -> str:
    headers = ("SERVICE", "ROLE", "STATE", "MESSAGES", "RATE/S", "ASSIGNED", "BACKLOG")
    rows = [headers] + [(s.name, s.role, s.state, f"{s.count:,}", f"{s.rate:,.1f}", s.assignment or "-", s.backlog)
                        for s in stats.services]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = [f"{stats.stack} (mode {stats.mode})"]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    if stats.backlog:
        total = sum(stats.backlog.values())
        lines.append(f"  backlog at the broker: {total:,} message(s) waiting")
    if stats.broker_error:
        lines.append(f"  broker backlog unavailable: {stats.broker_error}")
    return "\n".join(lines)
