"""When things happened in a run, from the receipts' timestamps: the longest time without a
producer ack (the cluster was unavailable to writers) and without a delivery (consumers
were stalled). The timestamps are the ``sent`` lines' ack_ns and the ``recv`` lines'
recv_ns, read through :mod:`.receipts`.
"""

from __future__ import annotations

from pathlib import Path

from . import receipts
from .receipts import RECV, RECV_RECV_NS, SENT, SENT_ACK_NS

#: (kind of file, field): when a producer got each ack, and when a consumer received each message.
ACK_NS = (SENT, SENT_ACK_NS)
RECV_NS = (RECV, RECV_RECV_NS)


def longest_gap(times: list[int]) -> float:
    """The longest time between two consecutive timestamps (ns), in seconds."""
    return max((b - a for a, b in zip(times, times[1:])), default=0) / 1e9


def _merged(directory: Path, kind: str, index: int, until_ns: int | None) -> list[int]:
    times = sorted(t for values in receipts.column(directory, kind, index).values() for t in values)
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
    per_consumer = receipts.column(directory, *RECV_NS)
    last = max((v[-1] for v in per_consumer.values() if v), default=0)
    last = max(last, until_ns or 0)
    return max((max(longest_gap(v), (last - v[-1]) / 1e9) for v in per_consumer.values() if v), default=0.0)


def first_ack_ns(directory: Path) -> int | None:
    """When the run's first ack arrived (ns since the epoch): where its timeline starts."""
    return min((v[0] for v in receipts.column(directory, *ACK_NS).values() if v), default=None)


def silence_within_s(directory: Path, start_ns: int, end_ns: int) -> float:
    """The longest time one consumer received nothing inside the window from ``start_ns`` to
    ``end_ns`` (a fault's), in seconds: silence before or after the window does not count."""
    longest = 0.0
    for values in receipts.column(directory, *RECV_NS).values():
        inside = [start_ns, *(t for t in values if start_ns < t < end_ns), end_ns]
        longest = max(longest, longest_gap(inside))
    return longest


def acks_within(directory: Path, start_ns: int, end_ns: int) -> int:
    """How many acks the producers got inside the window: the stream went on during it."""
    return sum(start_ns <= t <= end_ns for values in receipts.column(directory, *ACK_NS).values() for t in values)
