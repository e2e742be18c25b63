"""`invoke stats`: per consumer, how many messages, at what rate, and the backlog now.

Counts and rates come from the status files the services write about once a second
(``<ledger>/_status/<name>.json``); the backlog comes from the broker itself, asked
from the host by the broker's module in ``mqlab.brokers``: RabbitMQ queue depth, Redis
consumer-group lag and pending entries, Kafka consumer-group lag per partition. On every
stack the broker also says who leads (partition leaders and in-sync replicas, the quorum
queue's leader and members, the Redis primary, its replicas and Sentinel's view) and which
node each client is connected to.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import brokers, tables
from ..brokers import ConsumerView
from ..config import LabConfig
from ..stacks import Stack

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
    node: str = ""  # the broker node it is connected to
    hostname: str = ""  # its MQLAB_NAME
    sent: int = 0  # producers: messages made so far (acked or not)


@dataclass
class StackStats:
    stack: str
    mode: str
    services: list[ServiceStats] = field(default_factory=list)
    backlog: dict[str, int] = field(default_factory=dict)  # queue/group/partition -> messages waiting
    broker_error: str = ""
    topology: list[tuple[str, str]] = field(default_factory=list)  # (what, its state)
    topology_error: str = ""


def read_status(ledger_dir: Path, hostname: str) -> dict:
    try:
        return json.loads((ledger_dir / "_status" / f"{hostname}.json").read_text())
    except (OSError, ValueError):
        return {}


def _assignment_text(value) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value or "")


def service_row(name: str, role: str, status: dict, now_ns: int) -> ServiceStats:
    """One service's row from its status file (empty when it wrote none yet)."""
    row = ServiceStats(name, role)
    if not status:
        row.state = "no status yet"
        return row
    age = (now_ns - int(status.get("updated_ns", 0))) / 1e9
    row.mode = status.get("mode", "")
    row.count = int(status.get("received" if role == "consumer" else "acked", 0))
    row.rate = float(status.get("rate", 0.0))
    row.assignment = _assignment_text(status.get("assignment"))
    row.node = str(status.get("node") or "")
    row.sent = int(status.get("sent", 0))
    if age > STALE_S:
        row.state = "stale"
    elif role == "producer":
        row.state = "running"
    else:
        row.state = "subscribed" if status.get("subscribed") else "starting"
    return row


def collect(config: LabConfig, stack: Stack, client, mode: str, now_ns: int | None = None) -> StackStats:
    result, views = collect_services(config, stack, client, mode, now_ns)
    add_broker_view(config, stack, mode, result, views)
    return result


def collect_services(config: LabConfig, stack: Stack, client, mode: str,
                     now_ns: int | None = None) -> tuple[StackStats, list[ConsumerView]]:
    """The services' rows from their status files (cheap: Docker's container list and a file
    read each), and what the broker needs to know of each to say its backlog."""
    now_ns = now_ns or time.time_ns()
    result = StackStats(stack.name, mode)
    views = []
    containers = client.containers.list(filters={"label": f"com.docker.compose.project={stack.project}"},
                                        ignore_removed=True)  # a one-shot producer may be gone by now
    for c in sorted(containers, key=lambda c: c.name):
        role = c.labels.get("com.docker.compose.service", "")
        if role not in ("consumer", "producer"):
            continue
        hostname = c.attrs.get("Config", {}).get("Hostname", "")
        row = service_row(c.name, role, read_status(config.ledger_dir, hostname), now_ns)
        row.hostname = hostname or c.name
        result.services.append(row)
        views.append(ConsumerView(c.name, row.hostname, row.assignment if role == "consumer" else ""))
    return result, views


def add_broker_view(config: LabConfig, stack: Stack, mode: str, result: StackStats, views: list[ConsumerView]) -> None:
    """Ask the broker who leads, which node each client is on, and what waits for each consumer."""
    add_topology(config, stack, mode, result, views)
    try:
        backlog = brokers.of(stack).backlog(config, mode, [v for v, r in zip(views, result.services)
                                                           if r.role == "consumer"])
    except Exception as exc:  # the broker may be restarting: show what we have
        result.broker_error = f"{type(exc).__name__}: {str(exc)[:120]}"
    else:
        result.backlog = backlog.waiting
        for row in result.services:
            if row.role == "consumer":
                row.backlog = backlog.per_consumer.get(row.name, "-")


def add_topology(config: LabConfig, stack: Stack, mode: str, result: StackStats, views: list[ConsumerView]) -> None:
    """The broker's view of who leads, and of the node each client is connected to (where
    the broker cannot tell, what the client's status file says)."""
    try:
        topology = brokers.of(stack).topology(config, mode, views)
    except Exception as exc:  # a node may be down: show what we have
        result.topology_error = f"{type(exc).__name__}: {str(exc)[:120]}"
        return
    result.topology = topology.rows
    for row in result.services:
        row.node = topology.clients.get(row.hostname, row.node)


def render(stats: StackStats) -> str:
    lines = [f"{stats.stack} (mode {stats.mode})",
             tables.render(("SERVICE", "ROLE", "STATE", "MESSAGES", "RATE/S", "ASSIGNED", "NODE", "BACKLOG"),
                           [(s.name, s.role, s.state, f"{s.count:,}", f"{s.rate:,.1f}", s.assignment or "-",
                             s.node or "-", s.backlog) for s in stats.services], indent=2)]
    if stats.topology:
        lines.append(tables.render(("BROKER", "STATE"), stats.topology, indent=2))
    if stats.topology_error:
        lines.append(f"  topology unavailable: {stats.topology_error}")
    if stats.backlog:
        total = sum(stats.backlog.values())
        lines.append(f"  backlog at the broker: {total:,} message(s) waiting")
    if stats.broker_error:
        lines.append(f"  broker backlog unavailable: {stats.broker_error}")
    return "\n".join(lines)
