"""The producer trials: the lab's producer (envelopes, a schedule, per-message ack latency)
and the bare client's producer loop (see bare.py), counted per acknowledged batch."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from .. import adapters, bare, envelope
from ..runtime import Stopper
from ..settings import Settings
from .counting import NS
from .trial import ProducerTrial, timing


class BenchProducer(ProducerTrial):
    def __init__(self, settings: Settings, adapter: adapters.Adapter, stopper: Stopper, trial: str,
                 start: float, warmup: float, duration: float, size: int, rate: float | None,
                 clock: Callable[[], int] = time.time_ns, sleep: Callable[[float], None] | None = None):
        super().__init__(settings, stopper, trial, start, warmup, duration, size, clock, sleep)
        self.adapter = adapter
        self.rate = rate
        self.failed = 0
        self.seq = 0
        self.stamper = envelope.Stamper(trial, settings.name, size)

    @classmethod
    def from_args(cls, args: argparse.Namespace, settings: Settings, adapter: adapters.Adapter,
                  stopper: Stopper) -> BenchProducer:
        return cls(settings, adapter, stopper, *timing(args), size=args.size, rate=args.rate)

    def describe(self) -> str:
        return f"{self.size} bytes, {f'{self.rate:g} msg/s' if self.rate else 'max rate'}"

    def scheduled(self, seq: int) -> int:
        return self.start_ns + int(seq * NS / self.rate)

    def run(self) -> None:
        """Send from start to end; broker errors propagate (the caller records them)."""
        self.adapter.publish([])  # a client that connects lazily (Kafka) does it now, not at start
        self.wait_for_start()
        while self.stopper.running():
            batch = self._due() if self.rate else self._next_batch()
            if batch is None:
                return
            if batch:
                self._publish(batch)
        self.stopped()

    def _make(self, ts_ns: int) -> tuple[int, bytes, str]:
        _id, data = self.stamper.stamp(self.seq, ts_ns)
        key = self.adapter.key_for(self.seq)
        self.seq += 1
        return ts_ns, data, key

    def _due(self) -> list | None:
        """Every message due now (up to MQLAB_BATCH); [] after a nap until the next; None at the end."""
        now = self.clock()
        batch = []
        while len(batch) < self.settings.batch:
            ts_ns = self.scheduled(self.seq)
            if ts_ns >= self.end_ns or ts_ns > now:
                break
            batch.append(self._make(ts_ns))
        if not batch:
            ts_ns = self.scheduled(self.seq)
            if ts_ns >= self.end_ns:
                return None
            self.sleep((ts_ns - now) / NS)
        return batch

    def _next_batch(self) -> list | None:
        if self.clock() >= self.end_ns:
            return None
        make, clock = self._make, self.clock  # bound once: this is the producer's loop at max rate
        return [make(clock()) for _ in range(self.settings.batch)]

    def _publish(self, batch: list[tuple[int, bytes, str]]) -> None:
        acks = self.adapter.publish([(data, key) for _ts, data, key in batch])
        stamps, sizes, latencies = [], [], []
        rejected = adapters.Rejected
        for (ts_ns, data, _key), ack_ns in zip(batch, acks):
            if ack_ns is None or isinstance(ack_ns, rejected):
                self.failed += 1
            else:
                stamps.append(ts_ns)
                sizes.append(len(data))
                latencies.append(ack_ns - ts_ns)
        self.count_batch(stamps, stamps, sizes, latencies)

    def result(self) -> dict:
        return {**super().result(), "rate": self.rate, "size": self.size, "failed": self.failed}

    def done_line(self) -> str:
        return (f"done: {self.total} acked, {self.window_rate():.1f} msg/s in window, "
                f"{self.latency.line()}, {self.failed} failed")


class BareProducer(ProducerTrial):
    """The bare client's producer loop (see bare.py), counted per acknowledged batch: at max
    rate, or at ``rate`` with one batch due every MQLAB_BATCH / rate seconds, each message's ack
    latency measured from its batch's due time (as the lab's producer measures from its schedule)."""

    connects_itself = True

    def __init__(self, settings: Settings, stopper: Stopper, trial: str, start: float, warmup: float,
                 duration: float, size: int, rate: float | None = None, clock: Callable[[], int] = time.time_ns,
                 sleep: Callable[[float], None] | None = None):
        super().__init__(settings, stopper, trial, start, warmup, duration, size, clock, sleep)
        self.rate = rate
        self.batch_ns = 0  # when the batch being sent was started (at a rate: when it was due)
        self.batches = 0
        self._started = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, settings: Settings, _adapter: adapters.Adapter,
                  stopper: Stopper) -> BareProducer:
        return cls(settings, stopper, *timing(args), size=args.size, rate=args.rate)

    def describe(self) -> str:
        return f"{self.size} bytes, {f'{self.rate:g} msg/s' if self.rate else 'max rate'}, bare client"

    def more(self) -> bool:
        if not self._started:  # the first call comes once the client is connected
            self._started = True
            self.wait_for_start()
        if self.rate:
            self.batch_ns = self.start_ns + int(self.batches * self.settings.batch * NS / self.rate)
            self.batches += 1
            now = self.clock()
            if self.batch_ns > now and self.batch_ns < self.end_ns:
                self.sleep((self.batch_ns - now) / NS)
        else:
            self.batch_ns = self.clock()
        return self.stopper.running() and self.batch_ns < self.end_ns

    def acked(self, n: int) -> None:
        stamps = [self.batch_ns] * n
        latencies = [self.clock() - self.batch_ns] * n if self.rate else None
        self.count_batch(stamps, stamps, [self.size] * n, latencies)

    def run(self) -> None:
        produce, _consume = bare.loops(self.settings)
        produce(self.settings, b"x" * self.size, self.more, self.acked)
        if self.stopper.stopping:
            self.stopped()

    def result(self) -> dict:
        return {**super().result(), "rate": self.rate, "size": self.size, "failed": 0, "bare": True}

    def done_line(self) -> str:
        latency = f", {self.latency.line()}" if self.rate else ""
        return f"done: {self.total} acked, {self.window_rate():.1f} msg/s in window{latency} (bare client)"
