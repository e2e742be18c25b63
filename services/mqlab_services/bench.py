"""The benchmark service: a timed producer or consumer that writes its measurements as JSON.

::

    bench producer --out DIR --trial ID --start EPOCH_S --warmup S --duration S --size BYTES [--rate R]
    bench consumer --out DIR --trial ID --start EPOCH_S --warmup S --duration S [--drain S]

Settings (broker, URL, mode, queue/stream/topic, MQLAB_BATCH, ...) come from the ``MQLAB_*``
variables, as for the producer and the consumer. ``--start`` is a wall-clock time
(``time.time()``) shared by every producer and consumer of a trial; the measurement window
is ``[start + warmup, end)`` with ``end = start + warmup + duration``.

Producer: connects, waits for ``start`` and sends mqlab envelopes (run id = the trial id,
padded to ``--size`` like the lab's producer) until ``end``. With ``--rate R`` message ``i``
is due at ``start + i/R`` and its ``ts_ns`` is that scheduled time, not the actual send time:
a producer that falls behind sends every due message (up to MQLAB_BATCH per publish) as fast
as it can, so the time it fell behind shows in the latencies (no coordinated omission).
Without ``--rate`` each publish sends MQLAB_BATCH messages stamped when they were made. The
"ack" latency of a confirmed message is its confirm time minus ``ts_ns``; a message the broker
did not confirm (or refused) counts as ``failed`` and is not sent again.

Consumer: consumes until ``end`` has passed and no message of the trial came for a second,
or until ``end + drain``, or SIGTERM. Its "e2e" latency is the receipt time minus ``ts_ns``.
Anything that is not an envelope of this trial counts as ``other``. It keeps a status file
like the consumer's (role ``bench-consumer``, see status.py), so the host can start the
producers once it is subscribed.

Both write ``<out>/<role>-<name>.json`` at the end (atomically)::

    {"schema": 1, "role", "name", "broker", "mode", "client", "trial", "start", "warmup",
     "duration", "rate", "size", "bytes_per_message", "series", "window_count", "window_bytes",
     "total", "failed" (producer) | "other" (consumer), "latency", "error"}

``series[k]`` counts messages in second ``k`` from ``start``: acked ones by scheduled (or
creation) second on the producer, received ones by receipt second on the consumer (which
may go past ``warmup + duration``, into the drain). ``window_count``/``window_bytes`` and the
latencies count only messages whose ``ts_ns`` is inside the window. ``latency`` holds
count, min, p50, p90, p99, p999, max (ns, integers), mean and ``hdr``, the HdrHistogram
(1 us to 1 h, 3 significant digits) as its base64 ``encode()`` string. The consumer knows
neither the rate (``null``) nor the requested size: its ``size`` is the size it received.
Exit code 0, or 1 with ``"error"`` set (broker lost, could not connect, stopped by a signal
before the end; a consumer stopped during the drain is fine).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable

from hdrh.histogram import HdrHistogram

from . import adapters, bare, envelope
from .producer import _rate, _run_id, _size
from .runtime import GaveUp, Stopper, connect, one_line, redact, start
from .settings import CLIENTS, Settings
from .status import StatusFile

log = logging.getLogger("mqlab")

SCHEMA = 1
NS = 1_000_000_000
LOWEST_NS = 1_000  # 1 us
HIGHEST_NS = 3_600 * NS  # 1 h
DIGITS = 3
IDLE_END_NS = NS  # the consumer stops once `end` passed and nothing came for this long

def client_name(broker: str, kafka_client: str = "kafka-python") -> str:
    """``<client> <version>`` of the library the services use for ``broker``."""
    known = CLIENTS.get(broker, ((broker, broker),))
    name, dist = next((c for c in known if c[0] == kafka_client), known[0])
    try:
        return f"{name} {importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        return name


# --------------------------------------------------------------------------- arguments


def _seconds(minimum: float, strict: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            word = "above" if strict else "at least"
            raise argparse.ArgumentTypeError(f"must be {word} {minimum:g}, got {text!r}")
        return value
    return parse


def _directory(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a directory, got ''")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="A timed benchmark producer or consumer for the broker named by MQLAB_BROKER; "
                    "writes <out>/<role>-<name>.json. Settings come from MQLAB_* variables.")
    roles = parser.add_subparsers(dest="role", required=True, metavar="{producer,consumer}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=_directory, required=True, metavar="DIR",
                        help="directory for the result file <role>-<MQLAB_NAME>.json (created if missing)")
    common.add_argument("--trial", type=_run_id, required=True, metavar="ID",
                        help="trial id: the run id of the messages sent; the consumer counts only these")
    common.add_argument("--start", type=_seconds(0.0, True), required=True, metavar="EPOCH_S",
                        help="wall-clock start of the trial, seconds since the epoch (time.time()), "
                             "the same for every producer and consumer")
    common.add_argument("--warmup", type=_seconds(0.0, False), required=True, metavar="S",
                        help="seconds after --start that are not measured")
    common.add_argument("--duration", type=_seconds(0.0, True), required=True, metavar="S",
                        help="seconds measured after the warm-up")
    common.add_argument("--bare", action="store_true",
                        help="run the bare client instead of the lab's (see bare.py): the same library "
                             "and safety settings without envelope, ledger or per-message bookkeeping; "
                             "max rate only")
    producer = roles.add_parser("producer", parents=[common], help="send from --start until the end",
                                description="Send envelopes from --start until start+warmup+duration.")
    producer.add_argument("--size", type=_size, required=True, metavar="BYTES",
                          help="pad each encoded envelope to this many bytes (as the lab's producer)")
    producer.add_argument("--rate", type=_rate, metavar="MSGS_PER_S",
                          help="this producer's rate; message i is due at start + i/rate and stamped "
                               "with that time (default: as fast as confirms come, MQLAB_BATCH per publish)")
    consumer = roles.add_parser("consumer", parents=[common], help="receive until the end and a drain",
                                description="Receive until the end has passed and the trial's messages "
                                            "stopped coming for 1 s, or until end + drain.")
    consumer.add_argument("--drain", type=_seconds(0.0, False), default=10.0, metavar="S",
                          help="seconds after the end to keep receiving at most (default 10)")
    return parser


# --------------------------------------------------------------------------- measurements


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


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.1f} ms" if ns >= 100_000 else f"{ns / 1e3:.0f} us"


class Trial:
    """What both roles share: the window, the per-second series, counts and the result file."""

    role = ""
    kind = ""

    def __init__(self, settings: Settings, trial: str, start: float, warmup: float, duration: float,
                 clock: Callable[[], int] = time.time_ns):
        self.settings = settings
        self.trial = trial
        self.start, self.warmup, self.duration = start, warmup, duration
        self.start_ns = round(start * NS)
        self.window_ns = self.start_ns + round(warmup * NS)
        self.end_ns = self.window_ns + round(duration * NS)
        self.clock = clock
        self.series = [0] * math.ceil(warmup + duration)
        self.window_count = self.window_bytes = self.total = 0
        self.bytes_per_message = 0
        self.latency = Latency(self.kind)
        self.error: str | None = None

    def _second(self, at_ns: int) -> int:
        k = max(0, (at_ns - self.start_ns) // NS)
        if k >= len(self.series):
            self.series.extend([0] * (k + 1 - len(self.series)))
        return k

    def count_batch(self, ats: list[int], tss: list[int], sizes: list[int], latencies: list[int] | None) -> None:
        """Messages i = 0..n-1: each in second ``ats[i]`` of the series, and in the window with its
        size and latency (none for the bare client) if ``tss[i]`` is. Whole batches at once: the
        per-message cost of this bookkeeping is what the bare client does not pay."""
        if not tss:
            return
        first, last = min(ats), max(ats)
        if self._second(first) == self._second(last):
            self.series[self._second(first)] += len(tss)
        else:
            for at_ns in ats:
                self.series[self._second(at_ns)] += 1
        self.total += len(tss)
        self.bytes_per_message = self.bytes_per_message or sizes[0]
        low, high = min(tss), max(tss)
        if low >= self.window_ns and high < self.end_ns:
            self.window_count += len(tss)
            self.window_bytes += sum(sizes)
            if latencies is not None:
                self.latency.record_many(latencies)
        elif high >= self.window_ns and low < self.end_ns:
            inside = [i for i, ts_ns in enumerate(tss) if self.window_ns <= ts_ns < self.end_ns]
            self.window_count += len(inside)
            self.window_bytes += sum(sizes[i] for i in inside)
            if latencies is not None:
                self.latency.record_many([latencies[i] for i in inside])

    def result(self) -> dict:
        return {"schema": SCHEMA, "role": self.role, "name": self.settings.name,
                "broker": self.settings.broker, "mode": self.settings.mode,
                "client": client_name(self.settings.broker, self.settings.kafka_client),
                "trial": self.trial, "start": self.start,
                "warmup": self.warmup, "duration": self.duration, "rate": None, "size": 0,
                "bytes_per_message": self.bytes_per_message, "series": self.series,
                "window_count": self.window_count, "window_bytes": self.window_bytes, "total": self.total,
                "latency": self.latency.summary(), "error": self.error}

    def window_rate(self) -> float:
        return self.window_count / self.duration


def result_path(out: str, role: str, name: str) -> str:
    return os.path.join(out, f"{role}-{name}.json")


def write_result(out: str, result: dict) -> str:
    """Write ``<out>/<role>-<name>.json`` atomically; its path."""
    os.makedirs(out, exist_ok=True)
    path = result_path(out, result["role"], result["name"])
    tmp = os.path.join(out, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- producer


class ProducerTrial(Trial):
    """What both producers share: the message size, and waiting for the trial's start."""

    role = "producer"
    kind = "ack"

    def __init__(self, settings: Settings, stopper: Stopper, trial: str, start: float, warmup: float,
                 duration: float, size: int, clock: Callable[[], int] = time.time_ns,
                 sleep: Callable[[float], None] | None = None):
        super().__init__(settings, trial, start, warmup, duration, clock)
        self.stopper = stopper
        self.size = size
        self.sleep = sleep or stopper.sleep

    def wait_for_start(self) -> None:
        wait = self.start_ns - self.clock()
        if wait > 0:
            self.sleep(wait / NS)

    def stopped(self) -> None:
        self.error = f"stopped by {self.stopper.signal_name} before the end"


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
        return [self._make(self.clock()) for _ in range(self.settings.batch)]

    def _publish(self, batch: list[tuple[int, bytes, str]]) -> None:
        acks = self.adapter.publish([(data, key) for _ts, data, key in batch])
        stamps, sizes, latencies = [], [], []
        for (ts_ns, data, _key), ack_ns in zip(batch, acks):
            if ack_ns is None or isinstance(ack_ns, adapters.Rejected):
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
                f"ack p50 {_ms(self.latency.percentile(50))} p99 {_ms(self.latency.percentile(99))}, "
                f"{self.failed} failed")


# --------------------------------------------------------------------------- consumer


class ConsumerTrial(Trial):
    """A consumer's end: the trial's end has passed and nothing came for a second, or the drain is over."""

    role = "consumer"
    kind = "e2e"

    def __init__(self, settings: Settings, stopper: Stopper, trial: str, start: float, warmup: float,
                 duration: float, drain: float, clock: Callable[[], int] = time.time_ns):
        super().__init__(settings, trial, start, warmup, duration, clock)
        self.stopper = stopper
        self.drain_ns = round(drain * NS)
        self.last_ns = 0  # receipt time of the trial's latest message (or when consuming began)

    def running(self) -> bool:
        if self.stopper.stopping:
            return False
        now = self.clock()
        if now >= self.end_ns + self.drain_ns:
            return False
        return not (now >= self.end_ns and now - self.last_ns >= IDLE_END_NS)

    def stopped_early(self) -> None:
        if self.stopper.stopping and self.clock() < self.end_ns:
            self.error = f"stopped by {self.stopper.signal_name} before the end"


class BenchConsumer(ConsumerTrial):
    def __init__(self, settings: Settings, adapter: adapters.Adapter, stopper: Stopper, trial: str,
                 start: float, warmup: float, duration: float, drain: float,
                 clock: Callable[[], int] = time.time_ns, status: StatusFile | None = None):
        super().__init__(settings, stopper, trial, start, warmup, duration, drain, clock)
        self.adapter = adapter
        self.status = status
        self.other = 0
        self._subscribed = False

    def handle(self, batch: list[adapters.Received]) -> None:
        now = self.clock()
        stamps, sizes = [], []
        for body, _key in batch:
            env = envelope.decode(body)
            if env is None or env.run != self.trial:
                self.other += 1
                continue
            stamps.append(env.ts_ns)
            sizes.append(len(body))
        if stamps:
            self.count_batch([now] * len(stamps), stamps, sizes, [now - ts_ns for ts_ns in stamps])
            self.last_ns = now
        self.report()
        return None  # all processed: the adapter acks them

    def run(self) -> None:
        """Consume until running() says stop; broker errors propagate (the caller records them)."""
        self.report(force=True)
        self.last_ns = self.clock()
        try:
            self.adapter.consume(self.handle, self.running)
        finally:
            self.report(force=True, stopped=True)
        self.stopped_early()

    def report(self, force: bool = False, stopped: bool = False) -> None:
        """Refresh the status file: at once when ``subscribed`` changes, else about once a second."""
        if self.status is None:
            return
        subscribed = bool(self.adapter.subscribed and not stopped)
        changed, self._subscribed = subscribed != self._subscribed, subscribed
        error = self.status.error
        self.status.update(force=force or changed, subscribed=subscribed, received=self.total,
                           other=self.other, assignment=list(self.adapter.assignment))
        if self.status.error is not None and error is None:
            log.info("cannot write the status file: %s", one_line(self.status.error))

    def result(self) -> dict:
        return {**super().result(), "size": self.bytes_per_message, "other": self.other}

    def done_line(self) -> str:
        return (f"done: {self.total} received ({self.window_count} sent in window, "
                f"{self.window_rate():.1f} msg/s), {self.other} other, "
                f"e2e p50 {_ms(self.latency.percentile(50))} p99 {_ms(self.latency.percentile(99))}")


# --------------------------------------------------------------------------- the bare client


class BareProducer(ProducerTrial):
    """The bare client's producer loop (see bare.py), counted per acknowledged batch."""

    def __init__(self, settings: Settings, stopper: Stopper, trial: str, start: float, warmup: float,
                 duration: float, size: int, clock: Callable[[], int] = time.time_ns,
                 sleep: Callable[[float], None] | None = None):
        super().__init__(settings, stopper, trial, start, warmup, duration, size, clock, sleep)
        self.batch_ns = 0  # when the batch being sent was started
        self._started = False

    def more(self) -> bool:
        if not self._started:  # the first call comes once the client is connected
            self._started = True
            self.wait_for_start()
        self.batch_ns = self.clock()
        return self.stopper.running() and self.batch_ns < self.end_ns

    def acked(self, n: int) -> None:
        stamps = [self.batch_ns] * n
        self.count_batch(stamps, stamps, [self.size] * n, None)

    def run(self) -> None:
        produce, _consume = bare.loops(self.settings)
        produce(self.settings, b"x" * self.size, self.more, self.acked)
        if self.stopper.stopping:
            self.stopped()

    def result(self) -> dict:
        return {**super().result(), "rate": None, "size": self.size, "failed": 0, "bare": True}

    def done_line(self) -> str:
        return f"done: {self.total} acked, {self.window_rate():.1f} msg/s in window (bare client)"


class BareConsumer(ConsumerTrial):
    """The bare client's consumer loop (see bare.py), counted per batch by receipt time. Its
    status file is written when it has subscribed and when it stops, never per message."""

    def __init__(self, settings: Settings, stopper: Stopper, trial: str, start: float, warmup: float,
                 duration: float, drain: float, clock: Callable[[], int] = time.time_ns,
                 status: StatusFile | None = None):
        super().__init__(settings, stopper, trial, start, warmup, duration, drain, clock)
        self.status = status
        self._ready = False

    def ready(self) -> None:
        if not self._ready:
            self._ready = True
            if self.status is not None:
                self.status.update(force=True, subscribed=True)

    def received(self, n: int) -> None:
        if n:
            now = self.last_ns = self.clock()
            self.count_batch([now] * n, [now] * n, [0] * n, None)  # the sizes are not read

    def run(self) -> None:
        _produce, consume = bare.loops(self.settings)
        self.last_ns = self.clock()
        try:
            consume(self.settings, self.running, self.received, self.ready)
        finally:
            if self.status is not None:
                self.status.update(force=True, subscribed=False, received=self.total)
        self.stopped_early()

    def result(self) -> dict:
        return {**super().result(), "other": 0, "bare": True}

    def done_line(self) -> str:
        return f"done: {self.total} received, {self.window_rate():.1f} msg/s in window (bare client)"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None, environ=None) -> int:
    args = build_parser().parse_args(argv)
    started = start("bench", environ)
    if isinstance(started, int):
        return started
    stopper, settings, adapter = started
    timing = (args.trial, args.start, args.warmup, args.duration)
    if args.bare and settings.mode not in bare.MODES.get(settings.broker, ()):
        print(f"bench: the bare client runs only in {' or '.join(bare.MODES.get(settings.broker, ()))} "
              f"mode on {settings.broker}, not {settings.mode}", file=sys.stderr)
        return 2
    if args.bare and getattr(args, "rate", None):
        print("bench: the bare client runs at max rate only: drop --rate", file=sys.stderr)
        return 2
    status = None if args.role == "producer" else StatusFile(settings.ledger_dir, settings.name, {
        "role": "bench-consumer", "broker": settings.broker, "mode": settings.mode,
        "trial": args.trial, "subscribed": False, "received": 0, "other": 0, "assignment": []},
        counter="received")
    if args.bare and args.role == "producer":
        bench: Trial = BareProducer(settings, stopper, *timing, size=args.size)
        what = f"{args.size} bytes, max rate, bare client"
    elif args.bare:
        bench = BareConsumer(settings, stopper, *timing, drain=args.drain, status=status)
        what = f"drain {args.drain:g}s, bare client"
    elif args.role == "producer":
        bench = BenchProducer(
            settings, adapter, stopper, *timing, size=args.size, rate=args.rate)
        what = f"{args.size} bytes, {f'{args.rate:g} msg/s' if args.rate else 'max rate'}"
    else:
        bench = BenchConsumer(settings, adapter, stopper, *timing, drain=args.drain, status=status)
        what = f"drain {args.drain:g}s"
    log.info("starting: %s, trial %s, %s at %s, mode %s, batch %d, %s; warm-up %gs, window %gs, "
             "starts in %.1fs", args.role, args.trial, settings.broker, redact(settings.url),
             settings.mode, settings.batch, what, args.warmup, args.duration, args.start - time.time())
    try:
        if args.bare:  # the bare client connects by itself
            bench.run()
        elif connect(adapter, settings, stopper, bounded=True):
            bench.run()
        else:
            bench.error = f"stopped by {stopper.signal_name} before connecting"
    except (GaveUp, adapters.BrokerConfigError) as exc:
        bench.error = str(exc)
    except adapter.errors as exc:
        bench.error = f"lost the broker: {one_line(exc)}"
    except Exception as exc:  # a bug: say so in one line first, then the traceback
        log.error("unexpected error: %s", one_line(exc), exc_info=True)
        bench.error = f"unexpected error: {one_line(exc)}"
    code = 0 if bench.error is None else 1
    try:
        path = write_result(args.out, bench.result())
    except OSError as exc:
        log.error("cannot write the result under %s: %s", args.out, one_line(exc))
        code = 1
    else:
        if bench.error is not None:
            log.error("%s; partial result in %s", bench.error, path)
        log.info("%s; %s", bench.done_line(), path)
    finally:
        adapter.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
