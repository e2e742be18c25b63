"""The ledger: account for every message of a run by id, from the receipt files.

Producers and consumers append one line per message to their own files under
``<ledger>/<run_id>/`` (see ``mqlab_services.ledger`` for the writer):

- ``sent-<producer>.tsv``: ``id  seq  send_ns  ack_ns``, written after the broker confirmed it;
- ``recv-<consumer>.tsv``: ``id  src  seq  send_ns  recv_ns``, written after processing and before the ack.

:func:`verify` merges them into a :class:`Report`: how many were sent and
acked, received (and by which consumer), lost (acked, never received),
duplicated (received more than once), received without an ack on record,
out of order where the mode promises order (a violation), and reordered where it
promises none (information).

Two engines read the files, to the same Report: DuckDB (:mod:`mqlab.ledgersql`, the default:
millions of messages in bounded memory) and plain Python (below, the reference, and the engine
where there are no named pipes for DuckDB to read through).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

from mqlab_services.adapters.base import REDELIVERED

from . import tables
from .errors import UsageError
from .modes import MODES, mode_info, topic_matches
from .stacks import STACKS
from .wait import poll_until

LATEST = "latest-{stack}"


def run_dir(ledger: Path, run_id: str) -> Path:
    return ledger / run_id


def scratch_dir(ledger: Path) -> Path:
    """Where the DuckDB engine keeps its scratch database and spill: beside the ledger, in
    ``.mqlab/scratch/``, on the project's disk rather than in TMPDIR (often a tmpfs: memory)."""
    return ledger.parent / "scratch"


def receipt_number(text: str, signed: bool = True) -> int | None:
    """A number of a receipt line, as the DuckDB engine reads it too: ASCII digits, a '-' first
    if ``signed``, within 64 bits. Anything else (``x``, ``1.5``, `` 7``, ``+3``, ``1_000``) is None."""
    if text.isascii() and (text.isdigit() or signed and text[:1] == "-" and text[1:].isdigit()):
        value = int(text)
        if -1 << 63 <= value < 1 << 63:
            return value
    return None


def _lines(path: Path) -> Iterator[list[str]]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.endswith("\n"):  # a torn last line is still being written
                parts = line.rstrip("\n").split("\t")
                if parts and parts[0]:
                    yield parts


@dataclass
class Report:
    run_id: str
    kind: str = "competing"  # how the mode is judged: competing | fanout | routed (see mqlab.modes)
    mode: str = ""
    sent: int = 0
    received: int = 0  # deliveries, duplicates included
    unique_received: int = 0
    lost: int = 0  # acked and due, never received (for fanout: summed over subscribers)
    duplicated: int = 0  # ids delivered more than once to the same group or subscriber
    extra_deliveries: int = 0  # deliveries beyond the first
    unacked_received: int = 0  # received, but no producer ack on record
    unrouted: int = 0  # routed modes: acked, but no binding matches the key
    dead_lettered: int = 0  # failed processing too often: moved to the dead-letter destination
    dead_reasons: dict[str, int] = field(default_factory=dict)
    dropped: int = 0  # lossy modes: failed processing and thrown away (counted in lost too)
    out_of_order: int = 0  # order broken where the mode promises it (see Mode.order_scope)
    reordered: int = 0  # order broken where the mode promises none (several consumers, across partitions)
    per_producer: dict[str, int] = field(default_factory=dict)
    per_consumer: dict[str, int] = field(default_factory=dict)
    missing_per_consumer: dict[str, int] = field(default_factory=dict)  # fanout only
    lost_ids: list[str] = field(default_factory=list)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.sent > 0


@dataclass
class _Sent:
    src: str
    seq: int
    key: str


def _read_sent(directory: Path, report: Report) -> dict[str, _Sent]:
    acked: dict[str, _Sent] = {}
    for path in sorted(directory.glob("sent-*.tsv")):
        producer = path.stem[len("sent-"):]
        n = 0
        for parts in _lines(path):
            seq = receipt_number(parts[1], signed=False) if len(parts) > 1 else None
            acked[parts[0]] = _Sent(producer, -1 if seq is None else seq, parts[4] if len(parts) > 4 else "")
            n += 1
        report.per_producer[producer] = n
    return acked


@dataclass
class _Consumer:
    """What one consumer's receipts say: deliveries per id, and order breaks per kind of lane."""

    counts: Counter[str] = field(default_factory=Counter)
    disorder_in_lanes: int = 0  # seq went back within a Kafka partition (lane p<N>)
    disorder: int = 0  # seq went back elsewhere (no lane, or receipts from before lanes)


def _read_consumer(path: Path, latencies: list[int]) -> _Consumer:
    """One consumer's receipts. Order is judged on first deliveries only, per (producer, key,
    lane); a repeated delivery, or one marked ``redelivered``, has no promised place. A line too
    short, or whose seq or timestamps are not numbers, is a delivery neither timed nor judged."""
    result = _Consumer()
    last_seq: dict[tuple[str, str, str], int] = {}
    for parts in _lines(path):
        result.counts[parts[0]] += 1
        if len(parts) < 5:
            continue
        seq, sent_ns, received_ns = (receipt_number(parts[2]), receipt_number(parts[3], signed=False),
                                     receipt_number(parts[4], signed=False))
        if seq is None or sent_ns is None or received_ns is None:
            continue
        latencies.append(received_ns - sent_ns)
        lane = parts[6] if len(parts) > 6 else ""
        if result.counts[parts[0]] > 1 or lane == REDELIVERED:
            continue
        stream = (parts[1], parts[5] if len(parts) > 5 else "", lane)
        if seq < last_seq.get(stream, -1):
            if lane.startswith("p"):
                result.disorder_in_lanes += 1
            else:
                result.disorder += 1
        last_seq[stream] = max(seq, last_seq.get(stream, -1))
    return result


def _read_received(directory: Path, report: Report, latencies: list[int]) -> dict[str, _Consumer]:
    consumers = {}
    for path in sorted(directory.glob("recv-*.tsv")):
        consumer = path.stem[len("recv-"):]
        consumers[consumer] = _read_consumer(path, latencies)
        report.per_consumer[consumer] = sum(consumers[consumer].counts.values())
    return consumers


def judge_order(report: Report, in_lanes: int, elsewhere: int, consumers: int, scope: str) -> None:
    """Split order breaks (within Kafka partitions, and elsewhere) into violations of what the
    mode promises, and other reordering."""
    if scope == "partition":
        report.out_of_order, report.reordered = in_lanes, elsewhere
    elif scope == "subscriber" or (scope == "single consumer" and consumers == 1):
        report.out_of_order, report.reordered = in_lanes + elsewhere, 0
    else:  # several consumers share a queue or stream: no order is promised between them
        report.out_of_order, report.reordered = 0, in_lanes + elsewhere


def _read_dead(directory: Path, report: Report) -> dict[str, set[str]]:
    """Messages each consumer gave up on and moved to the dead-letter destination."""
    dead: dict[str, set[str]] = {}
    for path in sorted(directory.glob("dead-*.tsv")):
        ids = dead.setdefault(path.stem[len("dead-"):], set())
        for parts in _lines(path):
            ids.add(parts[0])
            reason = parts[4] if len(parts) > 4 else "unknown"
            report.dead_reasons[reason] = report.dead_reasons.get(reason, 0) + 1
    report.dead_lettered = len(set().union(*dead.values())) if dead else 0
    return dead


def _fanout_lost(report: Report, acked: dict[str, _Sent], consumers: dict[str, _Consumer],
                 dead: dict[str, set[str]]) -> list[str]:
    """Each subscriber is due every message a producer sent from its first delivery (or dead
    letter) on; what it dead-lettered is accounted for, not lost."""
    if not consumers:
        return list(acked)
    lost: list[str] = []
    for consumer, seen in consumers.items():
        counts, gave_up = seen.counts, dead.get(consumer, set())
        first: dict[str, int] = {}
        for i in (*counts, *gave_up):
            if i in acked:
                sent = acked[i]
                first[sent.src] = min(first.get(sent.src, sent.seq), sent.seq)
        missing = [i for i, sent in acked.items() if i not in counts and i not in gave_up
                   and (sent.src not in first or sent.seq >= first[sent.src])]
        report.missing_per_consumer[consumer] = len(missing)
        lost += missing
        report.duplicated += sum(1 for c in counts.values() if c > 1)
        report.extra_deliveries += sum(counts.values()) - len(counts)
    return lost


def _shared_lost(report: Report, acked: dict[str, _Sent], everyone: Counter[str], dead: set[str],
                 kind: str, binding: str | None) -> list[str]:
    """Competing and routed modes: each message due once to the group (or to its bindings)."""
    due = acked
    if kind == "routed":
        due = {i: s for i, s in acked.items() if topic_matches(binding, s.key)}
        report.unrouted = len(acked) - len(due)
    report.duplicated = sum(1 for c in everyone.values() if c > 1)
    report.extra_deliveries = report.received - report.unique_received
    return [i for i in due if i not in everyone and i not in dead]


def latency_indices(n: int) -> tuple[int, int]:
    """Where p50 and p99 are among ``n`` sorted latencies."""
    return n // 2, min(n - 1, int(n * 0.99))


ENGINES = ("duckdb", "python")
_SAID: set[str] = set()


def _say_once(message: str) -> None:
    """One line on stderr, once a process: `verify` reads a run again and again while it waits."""
    if message not in _SAID:
        _SAID.add(message)
        print(f"mqlab: {message}", file=sys.stderr, flush=True)


def read_run(ledger: Path, run_id: str, sample_lost: int = 5, kind: str | None = None,
             binding: str | None = None, engine: str = "duckdb") -> Report:
    """Merge the receipt files of ``run_id`` into a Report.

    ``kind`` (competing, fanout or routed) says how to judge the run; by default it is
    taken from the run's ``run.json``, written by `invoke produce`. ``binding`` is the
    consumers' topic binding in routed mode (default ``#``). ``engine`` reads the files:
    ``duckdb`` (:mod:`mqlab.ledgersql`, bounded memory) or ``python`` (the reference)."""
    if engine not in ENGINES:
        raise UsageError(f"unknown ledger engine {engine!r}: one of {', '.join(ENGINES)}")
    directory = run_dir(ledger, run_id)
    if not directory.is_dir():
        raise UsageError(f"no ledger for run {run_id!r} in {ledger}")
    info = read_run_info(directory)
    stack = STACKS.get(info.get("stack", ""))
    known = mode_info(stack.broker, info.get("mode", "")) if stack else None
    report = Report(run_id, kind=kind or (known.kind if known else "competing"), mode=info.get("mode", ""))
    scope = known.order_scope if known else "subscriber"
    # Modes without a dead-letter destination drop a message that failed: it is lost.
    drop_dead = known is not None and not known.dead_letter
    pattern = None
    if report.kind == "routed":
        pattern = binding or (info.get("settings") or {}).get("MQLAB_BINDING") or "#"
    if engine == "duckdb" and not hasattr(os, "mkfifo"):
        _say_once("this platform has no named pipes (os.mkfifo), which the DuckDB ledger engine reads "
                  "through: the Python engine reads the ledger instead, with every id in memory")
        engine = "python"
    if engine == "duckdb":
        from . import ledgersql

        ledgersql.read_report(directory, report, scratch=scratch_dir(ledger), order_scope=scope,
                              drop_dead=drop_dead, binding=pattern, sample_lost=sample_lost)
    else:
        _read_report(directory, report, order_scope=scope, drop_dead=drop_dead, binding=pattern,
                     sample_lost=sample_lost)
    return report


def _read_report(directory: Path, report: Report, *, order_scope: str, drop_dead: bool,
                 binding: str | None, sample_lost: int) -> None:
    """The Python engine: every id in dicts. Simple, and the reference for the DuckDB engine."""
    acked = _read_sent(directory, report)
    report.sent = len(acked)
    latencies: list[int] = []
    consumers = _read_received(directory, report, latencies)
    dead = _read_dead(directory, report)
    if drop_dead:
        report.dropped, dead = report.dead_lettered, {}
    judge_order(report, sum(c.disorder_in_lanes for c in consumers.values()),
                sum(c.disorder for c in consumers.values()), len(consumers), order_scope)
    everyone: Counter[str] = Counter()
    for seen in consumers.values():
        everyone.update(seen.counts)
    report.received = sum(everyone.values())
    report.unique_received = len(everyone)
    report.unacked_received = sum(1 for i in everyone if i not in acked)
    if report.kind == "fanout":
        lost = _fanout_lost(report, acked, consumers, dead)
    else:
        lost = _shared_lost(report, acked, everyone, set().union(*dead.values()) if dead else set(),
                            report.kind, binding)
    report.lost = len(lost)
    report.lost_ids = sorted(set(lost))[:sample_lost]
    if latencies:
        latencies.sort()
        p50, p99 = latency_indices(len(latencies))
        report.latency_p50_ms, report.latency_p99_ms = latencies[p50] / 1e6, latencies[p99] / 1e6


def wait_for_run(ledger: Path, run_id: str, *, settle: float = 10.0, timeout: float = 120.0,
                 poll: float = 0.5, on_poll: Callable[[Report], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> Report:
    """Read the run until every acked message is received, or nothing new arrived for ``settle``
    seconds, or ``timeout`` passed. Bounded in time; returns the last Report."""
    last = {"report": None, "seen": -1, "changed": clock()}

    def settled() -> bool:
        report = last["report"] = read_run(ledger, run_id)
        if on_poll:
            on_poll(report)
        if report.received != last["seen"]:
            last["seen"], last["changed"] = report.received, clock()
        return bool(report.sent and report.lost == 0) or clock() - last["changed"] >= settle

    poll_until(settled, timeout, interval=poll, clock=clock, sleep=sleep)
    return last["report"]


RUN_INFO = "run.json"


def write_run_info(directory: Path, info: dict) -> None:
    """What `invoke produce` knew about the run: stack, mode, count, size, rate, settings."""
    (directory / RUN_INFO).write_text(json.dumps(info, indent=1) + "\n")


def read_run_info(directory: Path) -> dict:
    try:
        return json.loads((directory / RUN_INFO).read_text())
    except (OSError, ValueError):
        return {}


def record_latest(ledger: Path, stack: str, run_id: str) -> None:
    ledger.mkdir(parents=True, exist_ok=True)
    (ledger / LATEST.format(stack=stack)).write_text(run_id + "\n")


def latest_run(ledger: Path, stack: str) -> str:
    marker = ledger / LATEST.format(stack=stack)
    if not marker.exists():
        raise UsageError(f"no produce run recorded for {stack}: run `invoke produce {stack} --count N` first, or pass --run-id")
    return marker.read_text().strip()


def _order_note(report: Report) -> str:
    promises = [m.order for m in MODES if m.name == report.mode]
    if report.out_of_order and promises:
        return f" (mode {report.mode} promises order {promises[0]}: a VIOLATION)"
    return ""


def render(report: Report, names: Mapping[str, str] | None = None) -> str:
    """The verify table as plain text."""
    names = names or {}
    rows: list[tuple[str, str]] = [
        ("sent and acked by the broker", f"{report.sent:,}"),
    ]
    for producer, n in sorted(report.per_producer.items()):
        rows.append((f"  by producer {names.get(producer, producer)}", f"{n:,}"))
    rows.append(("received (deliveries)", f"{report.received:,}"))
    for consumer, n in sorted(report.per_consumer.items(), key=lambda kv: names.get(kv[0], kv[0])):
        share = f" ({n / report.received:.0%})" if report.received else ""
        rows.append((f"  by consumer {names.get(consumer, consumer)}", f"{n:,}{share}"))
    for consumer, n in sorted(report.missing_per_consumer.items(), key=lambda kv: names.get(kv[0], kv[0])):
        rows.append((f"  missed by subscriber {names.get(consumer, consumer)}", f"{n:,}"))
    if report.kind == "routed":
        rows.append(("acked but matching no binding (dropped by design)", f"{report.unrouted:,}"))
    if report.dropped:
        rows.append(("failed and dropped (lossy mode: no dead-letter destination)", f"{report.dropped:,}"))
    elif report.dead_lettered:
        rows.append(("dead-lettered (see `invoke dlq`)", f"{report.dead_lettered:,}"))
        for reason, n in sorted(report.dead_reasons.items(), key=lambda kv: -kv[1])[:3]:
            rows.append((f"  {reason[:60]}", f"{n:,}"))
    rows += [
        ("lost (acked, never received)", f"{report.lost:,}"),
        ("duplicated ids", f"{report.duplicated:,} ({report.extra_deliveries:,} extra deliveries)"),
        ("received without an ack on record", f"{report.unacked_received:,}"),
        ("out of order where the mode promises order", f"{report.out_of_order:,}" + _order_note(report)),
    ]
    if report.reordered:
        rows.append(("reordered where no order is promised (information)", f"{report.reordered:,}"))
    if report.latency_p50_ms is not None:
        rows.append(("end-to-end latency p50 / p99", f"{report.latency_p50_ms:.1f} ms / {report.latency_p99_ms:.1f} ms"))
    lines = [f"run {report.run_id}" + (f" (mode {report.mode}, judged as {report.kind})" if report.mode else ""),
             tables.render(None, rows, indent=2)]
    if report.lost_ids:
        lines.append("  first lost ids: " + ", ".join(report.lost_ids))
    verdict = "OK: every acked message was received" if report.ok else (
        "FAIL: nothing was sent" if report.sent == 0 else f"FAIL: {report.lost:,} acked messages lost")
    lines.append(verdict)
    return "\n".join(lines)
