"""Counting and latency: the per-second series, the window's counts and the latency histogram.

Everything is counted a batch at a time: the per-message cost of this bookkeeping is part of
what the lab's trials measure, and what the bare client's trials do not pay.
"""

from __future__ import annotations

import math
from collections import Counter

from hdrh.histogram import HdrHistogram

NS = 1_000_000_000
LOWEST_NS = 1_000  # 1 us
HIGHEST_NS = 3_600 * NS  # 1 h
DIGITS = 3


def ms(ns: int) -> str:
    return f"{ns / 1e6:.1f} ms" if ns >= 100_000 else f"{ns / 1e3:.0f} us"


class Latency:
    """Latencies in ns, clamped to 1 us .. 1 h: the exact count, min, max and mean, and an HdrHistogram.

    Values are binned by 512 ns, the histogram's finest unit at this range and precision (so
    each lands in the bucket it would have), counted in a Counter and handed to the histogram
    when it is read: recording a value one by one costs ten times more."""

    BIN = 9  # log2(512)

    def __init__(self, kind: str):
        self.kind = kind
        self._hist = HdrHistogram(LOWEST_NS, HIGHEST_NS, DIGITS)
        self._bins: Counter[int] = Counter()
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def record(self, ns: int) -> None:
        self.record_many([ns])

    def record_many(self, values: list[int]) -> None:
        if not values:
            return
        low, high = min(values), max(values)
        if low < LOWEST_NS or high > HIGHEST_NS:
            values = [min(max(v, LOWEST_NS), HIGHEST_NS) for v in values]
            low, high = min(values), max(values)
        self._bins.update([v >> self.BIN for v in values])
        self.min = low if not self.count else min(self.min, low)
        self.max = max(self.max, high)
        self.count += len(values)
        self.total += sum(values)

    @property
    def hist(self) -> HdrHistogram:
        for binned, n in self._bins.items():
            self._hist.record_value(binned << self.BIN, n)
        self._bins.clear()
        return self._hist

    def percentile(self, p: float) -> int:
        # The histogram answers with its bucket's upper end: never above the exact maximum.
        return min(self.hist.get_value_at_percentile(p), self.max) if self.count else 0

    def summary(self) -> dict:
        return {"kind": self.kind, "unit": "ns", "count": self.count, "min": self.min,
                "p50": self.percentile(50), "p90": self.percentile(90), "p99": self.percentile(99),
                "p999": self.percentile(99.9), "max": self.max,
                "mean": round(self.total / self.count, 1) if self.count else 0.0,
                "hdr": self.hist.encode().decode("ascii")}

    def line(self) -> str:
        """The median and p99 for a log line, e.g. ``ack p50 1.2 ms p99 3.4 ms``."""
        return f"{self.kind} p50 {ms(self.percentile(50))} p99 {ms(self.percentile(99))}"


class Tally:
    """A trial's counts: messages per second from ``start``, and the count, bytes and latency
    of those whose timestamp is inside the window ``[start + warmup, end)``."""

    def __init__(self, kind: str, start: float, warmup: float, duration: float):
        self.start, self.warmup, self.duration = start, warmup, duration
        self.start_ns = round(start * NS)
        self.window_ns = self.start_ns + round(warmup * NS)
        self.end_ns = self.window_ns + round(duration * NS)
        self.series = [0] * math.ceil(warmup + duration)
        self.window_count = self.window_bytes = self.total = 0
        self.bytes_per_message = 0
        self.latency = Latency(kind)

    def _second(self, at_ns: int) -> int:
        k = max(0, (at_ns - self.start_ns) // NS)
        if k >= len(self.series):
            self.series.extend([0] * (k + 1 - len(self.series)))
        return k

    def count_batch(self, ats: list[int], tss: list[int], sizes: list[int], latencies: list[int] | None) -> None:
        """Messages i = 0..n-1: each in second ``ats[i]`` of the series, and in the window with its
        size and latency (none for the bare client) if ``tss[i]`` is."""
        if not tss:
            return
        self._count_seconds(ats)
        self.total += len(tss)
        self.bytes_per_message = self.bytes_per_message or sizes[0]
        inside = self._inside(tss)
        if inside is None:  # the whole batch
            self.window_count += len(tss)
            self.window_bytes += sum(sizes)
        else:
            self.window_count += len(inside)
            self.window_bytes += sum(sizes[i] for i in inside)
        if latencies is not None:
            self.latency.record_many(latencies if inside is None else [latencies[i] for i in inside])

    def _count_seconds(self, ats: list[int]) -> None:
        first, last = self._second(min(ats)), self._second(max(ats))
        if first == last:  # the usual case: a batch within one second
            self.series[first] += len(ats)
            return
        for at_ns in ats:
            self.series[self._second(at_ns)] += 1

    def _inside(self, tss: list[int]) -> list[int] | None:
        """The indexes of the timestamps inside the window; None when all of them are."""
        low, high = min(tss), max(tss)
        if low >= self.window_ns and high < self.end_ns:
            return None
        if high < self.window_ns or low >= self.end_ns:
            return []
        return [i for i, ts_ns in enumerate(tss) if self.window_ns <= ts_ns < self.end_ns]

    def counts(self) -> dict:
        """The counts in a result file."""
        return {"bytes_per_message": self.bytes_per_message, "series": self.series,
                "window_count": self.window_count, "window_bytes": self.window_bytes, "total": self.total,
                "latency": self.latency.summary()}

    def window_rate(self) -> float:
        return self.window_count / self.duration
