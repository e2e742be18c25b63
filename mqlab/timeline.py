"""When things happened in a run, from the receipts' timestamps: the longest time without a
producer ack (the cluster was unavailable to writers) and without a delivery (consumers
were stalled). Receipt columns: ``sent-*.tsv`` ack_ns is column 3, ``recv-*.tsv`` recv_ns
column 4 (see :mod:`mqlab.ledger`).
"""

from __future__ import annotations

from pathlib import Path

ACK_NS = ("sent-*.tsv", 3)
RECV_NS = ("recv-*.tsv", 4)


def column(directory: Path, pattern: str, index: int) -> dict[str, list[int]]:
    """One timestamp column of every receipt file matching ``pattern``, sorted, per file."""
    found = {}
    for path in sorted(directory.glob(pattern)):
        values = []
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.rstrip("\n").split("\t")
                if line.endswith("\n") and len(parts) > index and parts[index].isdigit():
                    values.append(int(parts[index]))
        found[path.stem] = sorted(values)
    return found


def longest_gap(times: list[int]) -> float:
    """The longest time between two consecutive timestamps (ns), in seconds."""
    return max((b - a for a, b in zip(times, times[1:])), default=0) / 1e9


def _merged(directory: Path, pattern: str, index: int, until_ns: int | None) -> list[int]:
    times = sorted(t for values in column(directory, pattern, index).values() for t in values)
    return times + [until_ns] if until_ns and times and until_ns > times[-1] else times


def ack_gap_s(directory: Path, until_ns: int | None = None) -> float:
    """The longest time no producer got an ack, in seconds; with ``until_ns`` (when the
    producer was stopped), the time from the last ack to then counts too."""
    return longest_gap(_merged(directory, *ACK_NS, until_ns))


def delivery_gap_s(directory: Path, until_ns: int | None = None) -> float:
    """The longest time no consumer received anything, in seconds (``until_ns``: as above)."""
    return longest_gap(_merged(directory, *RECV_NS, until_ns))


def consumer_silence_s(directory: Path, until_ns: int | None = None) -> float:
    """The longest time one consumer received nothing while the run went on, in seconds:
    a gap between two of its receipts, or from its last receipt to the run's last one (or
    to ``until_ns``, when that is later: the end of a fault that outlasted the run)."""
    per_consumer = column(directory, *RECV_NS)
    last = max((v[-1] for v in per_consumer.values() if v), default=0)
    last = max(last, until_ns or 0)
    return max((max(longest_gap(v), (last - v[-1]) / 1e9) for v in per_consumer.values() if v), default=0.0)
