"""The ledger's pure-Python engine: every id in dicts. Simple, and the reference for the DuckDB
engine (:mod:`.duckdb_engine`), which must give the same Report field by field; also the engine
where there are no named pipes for DuckDB to read through.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mqlab_services.adapters.base import REDELIVERED

from ..modes import topic_matches
from . import receipts
from .receipts import DEAD, DEAD_REASON, ID, RECV, RECV_KEY, RECV_LANE, RECV_SRC, SENT, SENT_KEY, SENT_SEQ
from .report import Report, judge_order, latency_indices


@dataclass
class _Sent:
    src: str
    seq: int
    key: str


def _read_sent(directory: Path, report: Report) -> dict[str, _Sent]:
    acked: dict[str, _Sent] = {}
    for producer, path in receipts.files(directory, SENT):
        n = 0
        for parts in receipts.lines(path):
            seq = receipts.number(parts, SENT_SEQ, signed=False)
            acked[parts[ID]] = _Sent(producer, -1 if seq is None else seq, receipts.field(parts, SENT_KEY))
            n += 1
        report.per_producer[producer] = n
    return acked


@dataclass
class _Consumer:
    """What one consumer's receipts say: deliveries per id, and order breaks per kind of lane."""

    counts: Counter[str] = field(default_factory=Counter)
    disorder_in_lanes: int = 0  # seq went back within a Kafka partition (lane p<N>)
    disorder: int = 0  # seq went back elsewhere (no lane, or receipts from before lanes)
    last_seq: dict[tuple[str, str, str], int] = field(default_factory=dict)  # per (producer, key, lane)

    def judge(self, parts: list[str], seq: int) -> None:
        """Order is judged on first deliveries only, per (producer, key, lane); a repeated
        delivery, or one marked ``redelivered``, has no promised place."""
        lane = receipts.field(parts, RECV_LANE)
        if self.counts[parts[ID]] > 1 or lane == REDELIVERED:
            return
        stream = (parts[RECV_SRC], receipts.field(parts, RECV_KEY), lane)
        last = self.last_seq.get(stream, -1)
        if seq < last:
            if lane.startswith("p"):
                self.disorder_in_lanes += 1
            else:
                self.disorder += 1
        self.last_seq[stream] = max(seq, last)


def _read_consumer(path: Path, latencies: list[int]) -> _Consumer:
    """One consumer's receipts: every line is a delivery; a line too short, or whose seq or
    timestamps are not numbers, is a delivery neither timed nor judged."""
    result = _Consumer()
    for parts in receipts.lines(path):
        result.counts[parts[ID]] += 1
        times = receipts.delivery_times(parts)
        if times is not None:
            seq, sent_ns, received_ns = times
            latencies.append(received_ns - sent_ns)
            result.judge(parts, seq)
    return result


def _read_received(directory: Path, report: Report, latencies: list[int]) -> dict[str, _Consumer]:
    consumers = {}
    for consumer, path in receipts.files(directory, RECV):
        consumers[consumer] = _read_consumer(path, latencies)
        report.per_consumer[consumer] = sum(consumers[consumer].counts.values())
    return consumers


def _read_dead(directory: Path, report: Report) -> dict[str, set[str]]:
    """Messages each consumer gave up on and moved to the dead-letter destination."""
    dead: dict[str, set[str]] = {}
    for consumer, path in receipts.files(directory, DEAD):
        ids = dead.setdefault(consumer, set())
        for parts in receipts.lines(path):
            ids.add(parts[ID])
            reason = receipts.field(parts, DEAD_REASON, "unknown")
            report.dead_reasons[reason] = report.dead_reasons.get(reason, 0) + 1
    report.dead_lettered = len(set().union(*dead.values())) if dead else 0
    return dead


def _first_seq(acked: dict[str, _Sent], ids) -> dict[str, int]:
    """Per producer, the lowest seq among ``ids`` that it sent."""
    first: dict[str, int] = {}
    for i in ids:
        if i in acked:
            sent = acked[i]
            first[sent.src] = min(first.get(sent.src, sent.seq), sent.seq)
    return first


def _fanout_lost(report: Report, acked: dict[str, _Sent], consumers: dict[str, _Consumer],
                 dead: dict[str, set[str]]) -> list[str]:
    """Each subscriber is due every message a producer sent from its first delivery (or dead
    letter) on; what it dead-lettered is accounted for, not lost."""
    if not consumers:
        return list(acked)
    lost: list[str] = []
    for consumer, seen in consumers.items():
        counts, gave_up = seen.counts, dead.get(consumer, set())
        first = _first_seq(acked, (*counts, *gave_up))
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


def read_report(directory: Path, report: Report, *, order_scope: str, drop_dead: bool,
                binding: str | None, sample_lost: int) -> None:
    """Fill ``report`` (whose kind is decided) from the receipt files in ``directory``; the
    arguments are those of ``duckdb_engine.read_report``, but for its scratch directory."""
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
