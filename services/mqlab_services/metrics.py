"""Prometheus metrics of a producer or consumer, on ``/metrics`` only when MQLAB_METRICS_PORT is set.

``invoke up <stack> --metrics`` sets MQLAB_METRICS_PORT (9100) in every producer and consumer,
and Prometheus finds them by their compose service names (``compose/config/prometheus/``).
Without it, :func:`create` returns None: nothing is served and the services' loops skip the
metrics with one test per batch.

=============================  =========  =====================================================
metric                         type       what (labels ``run`` and ``mode`` unless said)
=============================  =========  =====================================================
mqlab_sent_total               counter    messages a producer made and sent
mqlab_acked_total              counter    messages the broker confirmed (each has a receipt)
mqlab_received_total           counter    envelopes a consumer processed and recorded
mqlab_redelivered_total        counter    ... of them delivered again (RabbitMQ redelivery or
                                          retry, a Redis entry taken from the pending list)
mqlab_dead_lettered_total      counter    messages a consumer put on the dead-letter queue
mqlab_latency_seconds          histogram  end to end: the envelope's send time to its receipt
mqlab_consumer_lag             gauge      labels ``mode``, ``partition``: Kafka records behind
                                          the partition's end, from the client's last fetch
=============================  =========  =====================================================

The services count a batch at a time, so the cost is per batch: one counter increment per
run in the batch, and the latency histogram filled by bisection under one lock per batch.
A one-shot producer that is done waits, before it exits, until Prometheus has scraped it once
more (:meth:`Metrics.linger`), so that its last counts are not lost with the container.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable

#: Upper bounds of the latency buckets, in seconds: 1 ms to a minute.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: How long a finished one-shot producer waits at most for its last scrape, in seconds: Prometheus
#: scrapes every 5 s and looks the services up every 5 s (compose/config/prometheus/), so a scrape
#: comes within about 10 s; the rest is slack for a busy machine.
LINGER_S = 20.0


def create(settings) -> "Metrics | None":
    """The service's metrics, served on ``settings.metrics_port``; None when that is 0."""
    if not settings.metrics_port:
        return None
    metrics = Metrics(settings.mode)
    metrics.serve(settings.metrics_port)
    return metrics


class Metrics:
    """The counters of one service, in a registry of their own."""

    def __init__(self, mode: str, clock: Callable[[], float] = time.monotonic):
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.mode = mode
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("run", "mode")
        self._sent = Counter("mqlab_sent", "Messages a producer made and sent", labels, registry=self.registry)
        self._acked = Counter("mqlab_acked", "Messages the broker confirmed", labels, registry=self.registry)
        self._received = Counter("mqlab_received", "Envelopes a consumer processed and recorded", labels,
                                 registry=self.registry)
        self._redelivered = Counter("mqlab_redelivered", "Envelopes delivered again", labels, registry=self.registry)
        self._dead = Counter("mqlab_dead_lettered", "Messages put on the dead-letter queue", labels,
                             registry=self.registry)
        self._lag = Gauge("mqlab_consumer_lag", "Kafka records behind the end of the partition",
                          ("mode", "partition"), registry=self.registry)
        self.latency = LatencyHistogram(clock)
        self.registry.register(self.latency)
        self._clock = clock

    def serve(self, port: int) -> None:
        from prometheus_client import start_http_server

        start_http_server(port, registry=self.registry)

    def sent(self, run: str, n: int) -> None:
        if n:
            self._sent.labels(run, self.mode).inc(n)

    def acked(self, run: str, n: int) -> None:
        if n:
            self._acked.labels(run, self.mode).inc(n)

    def received(self, now_ns: int, recorded: Iterable[tuple[str, int, bool]]) -> None:
        """A batch's recorded envelopes, as (run, send time in ns, delivered again)."""
        runs: dict[str, list] = {}
        for run, sent_ns, again in recorded:
            entry = runs.get(run)
            if entry is None:
                entry = runs[run] = [0, []]
            entry[0] += again
            entry[1].append((now_ns - sent_ns) / 1e9)
        for run, (again, latencies) in runs.items():
            self._received.labels(run, self.mode).inc(len(latencies))
            if again:
                self._redelivered.labels(run, self.mode).inc(again)
            self.latency.observe(run, self.mode, latencies)

    def dead_lettered(self, runs: Iterable[str]) -> None:
        counts: dict[str, int] = {}
        for run in runs:
            counts[run] = counts.get(run, 0) + 1
        for run, n in counts.items():
            self._dead.labels(run, self.mode).inc(n)

    def lag(self, behind: dict[int, int]) -> None:
        """Records behind per partition; partitions no longer assigned are dropped."""
        self._lag.clear()
        for partition, n in behind.items():
            self._lag.labels(self.mode, str(partition)).set(n)

    def linger(self, sleep: Callable[[float], None], running: Callable[[], bool], timeout: float = LINGER_S) -> bool:
        """Wait until a scrape began after now (or ``timeout`` passed, or a stop); True if one did."""
        mark = self._clock()
        deadline = mark + timeout
        while running() and self.latency.scraped <= mark and self._clock() < deadline:
            sleep(0.1)
        return self.latency.scraped > mark


class LatencyHistogram:
    """``mqlab_latency_seconds``: a histogram per (run, mode), filled a batch at a time.

    prometheus_client's Histogram takes one value per call, each under its lock; here a batch
    takes the lock once. It is also the registry's collector, so it knows when Prometheus scraped.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], list] = {}  # (run, mode) -> [bucket counts..., +Inf count, sum]
        self._clock = clock
        self.scraped = float("-inf")  # the clock when the last scrape began

    def observe(self, run: str, mode: str, values: list[float]) -> None:
        with self._lock:
            series = self._series.get((run, mode))
            if series is None:
                series = self._series[(run, mode)] = [0] * (len(BUCKETS) + 1) + [0.0]
            for value in values:
                series[bisect.bisect_left(BUCKETS, value)] += 1
            series[-1] += sum(values)

    def describe(self):
        return []  # a collector without a fixed description: the registry calls collect() on each scrape

    def collect(self):
        from prometheus_client.core import HistogramMetricFamily

        self.scraped = self._clock()
        family = HistogramMetricFamily("mqlab_latency_seconds", "End-to-end latency, send to receipt",
                                       labels=("run", "mode"))
        with self._lock:
            snapshot = {key: list(series) for key, series in self._series.items()}
        for (run, mode), series in snapshot.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), series[:-1]):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric([run, mode], buckets, series[-1])
        yield family
