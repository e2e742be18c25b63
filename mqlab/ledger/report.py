"""What the ledger says about a run: the :class:`Report`, the rules both engines share, and the
verify table.

A Report counts how many messages were sent and acked, received (and by which consumer), lost
(acked, never received), duplicated (received more than once), received without an ack on
record, out of order where the mode promises order (a violation), and reordered where it
promises none (information). Both engines fill it field by field to the same values; the rules
that must not differ between them (how order breaks are judged, where p50 and p99 are) live here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .. import tables
from ..modes import MODES
from .final_read import SAMPLE, FinalRead
from .output import OutputRead


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
    final: FinalRead | None = None  # the final read of the broker's log (None: not asked for)
    output: OutputRead | None = None  # txn: the output topic, read read_committed (None: another mode)

    @property
    def gone(self) -> int:
        """Acked messages the final read did not find where the broker put them."""
        return self.final.gone if self.final and self.final.read else 0

    @property
    def ok(self) -> bool:
        exactly_once = self.output is None or self.output.exactly_once
        return self.lost == 0 and self.gone == 0 and self.sent > 0 and exactly_once


def judge_order(report: Report, in_lanes: int, elsewhere: int, consumers: int, scope: str) -> None:
    """Split order breaks (within Kafka partitions, and elsewhere) into violations of what the
    mode promises, and other reordering."""
    if scope == "partition":
        report.out_of_order, report.reordered = in_lanes, elsewhere
    elif scope == "subscriber" or (scope == "single consumer" and consumers == 1):
        report.out_of_order, report.reordered = in_lanes + elsewhere, 0
    else:  # several consumers share a queue or stream: no order is promised between them
        report.out_of_order, report.reordered = 0, in_lanes + elsewhere


def latency_indices(n: int) -> tuple[int, int]:
    """Where p50 and p99 are among ``n`` sorted latencies."""
    return n // 2, min(n - 1, int(n * 0.99))


def _order_note(report: Report) -> str:
    promises = [m.order for m in MODES if m.name == report.mode]
    if report.out_of_order and promises:
        return f" (mode {report.mode} promises order {promises[0]}: a VIOLATION)"
    return ""


def _named(counts: Mapping[str, int], names: Mapping[str, str]) -> list[tuple[str, int]]:
    """(name, count) of each consumer, by the name it goes by."""
    return sorted(((names.get(k, k), n) for k, n in counts.items()), key=lambda kv: kv[0])


def _delivery_rows(report: Report, names: Mapping[str, str]) -> list[tuple[str, str]]:
    """Sent, per producer, received, per consumer, and what each fanout subscriber missed."""
    rows = [("sent and acked by the broker", f"{report.sent:,}")]
    for producer, n in sorted(report.per_producer.items()):
        rows.append((f"  by producer {names.get(producer, producer)}", f"{n:,}"))
    rows.append(("received (deliveries)", f"{report.received:,}"))
    for consumer, n in _named(report.per_consumer, names):
        share = f" ({n / report.received:.0%})" if report.received else ""
        rows.append((f"  by consumer {consumer}", f"{n:,}{share}"))
    for consumer, n in _named(report.missing_per_consumer, names):
        rows.append((f"  missed by subscriber {consumer}", f"{n:,}"))
    return rows


def _accounting_rows(report: Report) -> list[tuple[str, str]]:
    """What was dropped or dead-lettered on purpose, then lost, duplicated, unacked and out of order."""
    rows = []
    if report.kind == "routed":
        rows.append(("acked but matching no binding (dropped by design)", f"{report.unrouted:,}"))
    if report.dropped:
        rows.append(("failed and dropped (lossy mode: no dead-letter destination)", f"{report.dropped:,}"))
    elif report.dead_lettered:
        rows.append(("dead-lettered (see `invoke dlq`)", f"{report.dead_lettered:,}"))
        for reason, n in sorted(report.dead_reasons.items(), key=lambda kv: -kv[1])[:3]:
            rows.append((f"  {reason[:60]}", f"{n:,}"))
    rows += [("lost (acked, never received)", f"{report.lost:,}"), *_final_rows(report.final),
             *_output_rows(report.output)]
    rows += [
        ("duplicated ids", f"{report.duplicated:,} ({report.extra_deliveries:,} extra deliveries)"),
        ("received without an ack on record", f"{report.unacked_received:,}"),
        ("out of order where the mode promises order", f"{report.out_of_order:,}" + _order_note(report)),
    ]
    if report.reordered:
        rows.append(("reordered where no order is promised (information)", f"{report.reordered:,}"))
    if report.latency_p50_ms is not None:
        rows.append(("end-to-end latency p50 / p99", f"{report.latency_p50_ms:.1f} ms / {report.latency_p99_ms:.1f} ms"))
    return rows


def _final_rows(final: FinalRead | None) -> list[tuple[str, str]]:
    """The final read: acked messages gone from the broker's log, whatever the consumers got."""
    if final is None:
        return []
    if not final.read:
        return [("final read of the broker's log", f"not read: {final.note}")]
    delivered = f"; {final.gone_received:,} of them delivered before they were gone" if final.gone_received else ""
    return [(f"acked but gone from the broker's log (final read by {final.by})",
             f"{final.gone:,} of {final.checked:,}{delivered}")]


def _output_rows(output: OutputRead | None) -> list[tuple[str, str]]:
    """txn: the output topic is where exactly-once is judged; the receipts are a side effect."""
    if output is None:
        return []
    if not output.read:
        return [("exactly-once: the output topic", f"not read: {output.note}")]
    return [(f"exactly-once: acked ids in {output.topic} (read_committed)",
             f"{output.once:,} once, {output.missing:,} missing, {output.more_than_once:,} more than once"),
            ("  (the stage's receipts are outside the transaction: their duplicates below are not the output's)", "")]


def _verdict(report: Report) -> str:
    if report.sent == 0:
        return "FAIL: nothing was sent"
    if report.ok:
        read = report.final is not None and report.final.read
        once = f", exactly once in {report.output.topic}" if report.output is not None else ""
        return ("OK: every acked message was received" + (" and is still in the broker's log" if read else "")
                + once)
    parts = [f"{report.lost:,} acked messages lost"] if report.lost else []
    parts += [f"{report.gone:,} acked messages gone from the broker's log"] if report.gone else []
    out = report.output
    if out is not None and not out.exactly_once:
        parts += [f"{out.missing:,} acked ids missing from {out.topic}"] if out.missing else []
        parts += [f"{out.more_than_once:,} ids more than once in {out.topic}"] if out.more_than_once else []
        parts += [] if out.read else [f"exactly-once not judged ({out.note})"]
    return "FAIL: " + "; ".join(parts)


def render(report: Report, names: Mapping[str, str] | None = None) -> str:
    """The verify table as plain text; ``names`` maps the services' own names to container names."""
    names = names or {}
    lines = [f"run {report.run_id}" + (f" (mode {report.mode}, judged as {report.kind})" if report.mode else ""),
             tables.render(None, _delivery_rows(report, names) + _accounting_rows(report), indent=2)]
    if report.lost_ids:
        lines.append("  first lost ids: " + ", ".join(report.lost_ids))
    if report.gone:
        lines.append("  first ids gone from the log: " + ", ".join(report.final.gone_ids[:SAMPLE]))
    lines.append(_verdict(report))
    return "\n".join(lines)
