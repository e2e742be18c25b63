"""Each broker's own benchmark tool: the command lines, and parsers of what the tools print.

Pure functions, no Docker: the host runs the argv after the compose service's name
(``docker compose ... run --rm -T <service> <argv...>``) and hands the tool's stdout to
the parser, which returns a :class:`NativeResult` or raises :class:`NativeError` (one line).

==========  =================  ====================================  ==============================
broker      compose service    tool, bounded by                      latency it reports
==========  =================  ====================================  ==============================
rabbitmq    perftest           PerfTest, ``-z`` seconds              e2e: timestamp in the body,
                                                                     producer to consumer
redis       redis-benchmark    ``-n`` requests of ``XADD``           request: command (pipeline)
                                                                     to its reply
kafka       kafka-perf         producer ``--num-records``, then the  ack: ``send()`` to the broker's
                               consumer reads what was produced      ack, client buffering included
==========  =================  ====================================  ==============================

The services have the profile ``bench``, so ``invoke up`` never starts them.

Only PerfTest runs for a time and at a rate of its own. For the other tools the host turns
a time into a count with :func:`records_for`: at a fixed rate, rate x seconds; at full speed,
the rate of a short probe run first (kafka-producer-perf-test ``--throughput -1``, or
redis-benchmark) x seconds. redis-benchmark has no rate limit at all: for latency at a low
rate, run it closed-loop with one client and no pipeline (``pipeline=1, clients=1``).

Usage::

    from mqlab import native

    argv = native.perftest_argv(uri="amqp://guest:guest@rabbitmq:5672/%2F", size=1024,
                                seconds=13, rate=1000)
    result = native.parse_perftest(stdout, warmup_s=3, size=1024)

    major = native.KAFKA_TOOLS_MAJOR["kafka-zookeeper"]          # 3: Kafka 3.9's options
    n = native.records_for(1000, 13)
    produced = native.parse_kafka_producer(run(native.kafka_producer_argv(
        topic="bench.t1", size=1024, num_records=n, rate=1000, warmup_records=3000, major=major)))
    consumed = native.parse_kafka_consumer(run(native.kafka_consumer_argv(
        topic="bench.t1", num_records=n, major=major)), expected=n)
    result = native.kafka_result(produced, consumed)

    argv = native.redis_benchmark_argv(size=1024, requests=900_000, pipeline=100, password=None)
    result = native.parse_redis_benchmark(stdout, size=1024)

Rates are messages per second; ``mb_per_s`` counts 1 MB = 2**20 bytes of payload, as
Kafka's tools do (PerfTest and redis-benchmark print none: rate x size). Latencies are
integer nanoseconds; a quantile the tool does not print is None.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass

from .errors import LabError

__all__ = [
    "IMAGE_KEY",
    "KAFKA_BOOTSTRAP",
    "KAFKA_TOOLS_MAJOR",
    "SERVICE",
    "TOOL_LABEL",
    "KafkaConsumerStats",
    "NativeError",
    "NativeResult",
    "kafka_consumer_argv",
    "kafka_producer_argv",
    "kafka_result",
    "parse_kafka_consumer",
    "parse_kafka_producer",
    "parse_perftest",
    "parse_redis_benchmark",
    "perftest_argv",
    "records_for",
    "redis_benchmark_argv",
]

#: The tool's name in reports, by broker.
TOOL_LABEL = {"rabbitmq": "PerfTest", "redis": "redis-benchmark", "kafka": "kafka-perf-test"}
#: The compose service that runs the tool (profile ``bench``), by broker.
SERVICE = {"rabbitmq": "perftest", "redis": "redis-benchmark", "kafka": "kafka-perf"}
#: The image the tool runs in, where it is not the broker's own (key in ``.env``/offline.env).
IMAGE_KEY = {"rabbitmq": "PERFTEST_IMAGE"}
#: Which generation of Kafka's perf-test options each Kafka stack's image has.
KAFKA_TOOLS_MAJOR = {"kafka": 4, "kafka-zookeeper": 3}
#: The brokers' listener for containers on the stack's network.
KAFKA_BOOTSTRAP = "kafka:19092"
REDIS_HOST = "redis"
REDIS_PORT = 6379

MIB = 1024 * 1024
#: Linux refuses a single command-line argument of 128 KiB or more (MAX_ARG_STRLEN, with its NUL).
MAX_ARG_BYTES = 32 * 4096 - 1


class NativeError(LabError):
    """A native tool's command could not be made, or its output not understood (one line)."""


@dataclass(frozen=True)
class NativeResult:
    tool: str
    send_rate: float  # messages/s
    recv_rate: float | None  # messages/s; None when the tool does not consume
    mb_per_s: float | None  # payload MB/s (2**20 bytes), sent
    latency_kind: str  # "e2e" | "ack" | "request"
    p50_ns: int | None
    p99_ns: int | None
    p999_ns: int | None
    max_ns: int | None
    raw_summary: tuple[str, ...]  # the lines parsed


@dataclass(frozen=True)
class KafkaConsumerStats:
    """kafka-consumer-perf-test's summary line."""

    records: int
    recv_rate: float  # records/s while fetching (the group join excluded)
    mb_per_s: float  # MB/s while fetching
    overall_rate: float  # records/s from start to end, the group join included
    rebalance_ms: int
    raw_summary: tuple[str, ...]


# --------------------------------------------------------------------------- helpers


def records_for(rate: float, seconds: float) -> int:
    """How many records (requests) keep a count-bounded tool busy for ``seconds`` at ``rate``/s."""
    if not rate or rate <= 0 or seconds <= 0:
        raise NativeError(f"cannot size a run from rate {rate!r}/s and {seconds!r} s")
    return max(1, math.ceil(rate * seconds))


def _positive(name: str, value, *, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise NativeError(f"{name} must be an integer {'>= 0' if zero else '>= 1'}, got {value!r}")
    return value


def _rate(rate) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise NativeError(f"rate must be a positive number of messages/s or None, got {rate!r}")
    return float(rate)


def _num(value: float) -> str:
    """A number as a tool option: no trailing .0, no exponent."""
    return str(int(value)) if float(value).is_integer() else f"{value:.6f}".rstrip("0").rstrip(".")


def gist(stdout: str) -> str:
    """The last telling line of a tool's output, for an error message."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("at ", "..."))]
    if not lines:
        return "no output"
    errors = [line for line in lines if re.search(r"Exception\b|\bERROR\b|\berror\b", line)]
    last = (errors or lines)[-1]
    return last if len(last) <= 160 else last[:157] + "..."


def _ns(value: float, unit_ns: float) -> int:
    return int(round(value * unit_ns))


def _mb(rate: float | None, size: int | None) -> float | None:
    return rate * size / MIB if rate is not None and size else None


# --------------------------------------------------------------------------- RabbitMQ PerfTest


def perftest_argv(*, uri: str, size: int, seconds: int, rate: float | None = None, producers: int = 1,
                  consumers: int = 1, queue: str = "mqlab.bench", confirm: int | None = 100,
                  prefetch: int = 200, persistent: bool = True, multi_ack: int | None = None,
                  test_id: str | None = None) -> list[str]:
    """PerfTest's arguments for the ``perftest`` service.

    ``seconds`` is the whole run (``-z``, warm-up included: PerfTest has no warm-up; pass the
    warm-up to :func:`parse_perftest`). ``rate`` is the total over the producers (PerfTest's
    ``-r`` is per producer); None is as fast as confirms allow. The lab's safe mode is the
    default: ``persistent`` (``-f persistent``: a durable queue and persistent messages),
    publisher confirms with at most ``confirm`` unconfirmed (``-c``; None: no confirms),
    ``prefetch`` unacked deliveries per consumer (``-q``), acks one by one unless
    ``multi_ack`` (``-A``). The queue is named, bound to PerfTest's ``direct`` exchange and
    deleted by the broker when its last consumer leaves (PerfTest's auto-delete default).
    PerfTest puts a timestamp in each body and sends at least 12 bytes whatever ``size``.
    """
    if not uri.startswith(("amqp://", "amqps://")):
        raise NativeError(f"PerfTest needs an amqp:// URI, got {uri!r}")
    argv = ["--uri", uri, "--producers", str(_positive("producers", producers)),
            "--consumers", str(_positive("consumers", consumers, zero=True)),
            "--size", str(_positive("size", size)), "--time", str(_positive("seconds", seconds)),
            "--queue", queue, "--qos", str(_positive("prefetch", prefetch))]
    if rate is not None:
        argv += ["--rate", _num(_rate(rate) / producers)]
    if persistent:
        argv += ["--flag", "persistent"]
    if confirm is not None:
        argv += ["--confirm", str(_positive("confirm", confirm))]
    if multi_ack:
        argv += ["--multi-ack-every", str(_positive("multi_ack", multi_ack))]
    if test_id:
        argv += ["--id", test_id]
    return argv


_PT_LINE = re.compile(r"^id: (?P<id>.+?), time (?P<time>\d+(?:\.\d+)?) s, (?P<rest>.*)$")
_PT_RATE = re.compile(r"(?P<name>sent|confirmed|nacked|returned|received): (?P<value>\d+(?:\.\d+)?) msg/s")
_PT_LATENCY = re.compile(r"consumer latency:? (?P<stats>\d+/\d+/\d+/\d+/\d+) (?P<unit>\S+)")
_PT_SUMMARY_RATE = re.compile(r"(?P<name>sending|receiving) rate avg: (?P<value>\d+(?:\.\d+)?) msg/s")


def _latency_unit_ns(unit: str) -> float:
    # "ms" with --use-millis, else "µs" (possibly mangled by a non-UTF-8 console).
    return 1e6 if unit == "ms" else 1e3


def parse_perftest(stdout: str, *, warmup_s: float = 0.0, size: int | None = None) -> NativeResult:
    """PerfTest's console output (default ``--metrics-format``) to a :class:`NativeResult`.

    PerfTest prints one line a second (``id: ..., time 4.000 s, sent: N msg/s, confirmed:
    ..., received: N msg/s, min/median/75th/95th/99th consumer latency: a/b/c/d/e µs, confirm
    latency: ...``) and, at the end, ``sending rate avg``, ``receiving rate avg`` and
    ``consumer latency min/median/75th/95th/99th`` over the whole run. Used here: the
    intervals that start at or after ``warmup_s``; rates are their time-weighted means
    (messages over time), p50 and p99 the means of their per-second median and 99th
    percentile weighted by the messages received in each (PerfTest prints percentiles per
    interval, not for a chosen window). The latency is end to end: the producer's timestamp
    in the body to its arrival at the consumer. PerfTest prints neither p99.9 nor the max.
    Without an interval after the warm-up, the end-of-run summary is used, warm-up included.
    """
    intervals = []  # (start, end, rates, latency stats or None, unit, line)
    summary: dict[str, float] = {}
    summary_latency = None
    summary_lines = []
    previous = 0.0
    for line in stdout.splitlines():
        line = line.strip()
        match = _PT_LINE.match(line)
        if match:
            end = float(match["time"])
            rates = {m["name"]: float(m["value"]) for m in _PT_RATE.finditer(match["rest"])}
            lat = _PT_LATENCY.search(match["rest"])
            stats = tuple(int(v) for v in lat["stats"].split("/")) if lat else None
            intervals.append((previous, end, rates, stats, lat["unit"] if lat else "", line))
            previous = end
            continue
        rate = _PT_SUMMARY_RATE.search(line)
        if rate:
            summary[rate["name"]] = float(rate["value"])
            summary_lines.append(line)
            continue
        if "consumer latency min/median/75th/95th/99th" in line:
            lat = re.search(r"min/median/75th/95th/99th (?P<stats>\d+/\d+/\d+/\d+/\d+) (?P<unit>\S+)", line)
            if lat:
                summary_latency = (tuple(int(v) for v in lat["stats"].split("/")), lat["unit"])
                summary_lines.append(line)

    steady = [iv for iv in intervals if iv[0] >= warmup_s - 0.05 and iv[1] > iv[0] and "sent" in iv[2]]
    if steady:
        span = sum(end - start for start, end, *_ in steady)
        send_rate = sum(r["sent"] * (end - start) for start, end, r, *_ in steady) / span
        recv_rate = (sum(r["received"] * (end - start) for start, end, r, *_ in steady) / span
                     if all("received" in r for _, _, r, *_ in steady) else None)
        weighted = [(r.get("received", 0.0) * (end - start), stats, unit)
                    for start, end, r, stats, unit, _ in steady if stats and r.get("received", 0.0) > 0]
        total = sum(w for w, *_ in weighted)
        p50 = p99 = None
        if total > 0:
            p50 = int(round(sum(w * s[1] * _latency_unit_ns(u) for w, s, u in weighted) / total))
            p99 = int(round(sum(w * s[4] * _latency_unit_ns(u) for w, s, u in weighted) / total))
        raw = tuple(iv[5] for iv in steady) + tuple(summary_lines)
    elif "sending" in summary:
        send_rate = summary["sending"]
        recv_rate = summary.get("receiving")
        p50 = p99 = None
        if summary_latency and recv_rate:
            stats, unit = summary_latency
            p50, p99 = _ns(stats[1], _latency_unit_ns(unit)), _ns(stats[4], _latency_unit_ns(unit))
        raw = tuple(summary_lines)
    else:
        raise NativeError(f"PerfTest printed no rates: {gist(stdout)}")
    return NativeResult("PerfTest", send_rate, recv_rate, _mb(send_rate, size), "e2e",
                        p50, p99, None, None, raw)


# --------------------------------------------------------------------------- Kafka perf tests


def _major(major: int) -> int:
    if major not in (3, 4):
        raise NativeError(f"Kafka tools of major version 3 or 4 are known, got {major!r}")
    return major


def kafka_producer_argv(*, topic: str, size: int, num_records: int, rate: float | None = None,
                        warmup_records: int = 0, acks: str = "all", linger_ms: int = 5, major: int = 4,
                        bootstrap: str = KAFKA_BOOTSTRAP) -> list[str]:
    """``kafka-producer-perf-test.sh`` and its arguments for the ``kafka-perf`` service.

    It stops after ``num_records`` (at ``rate``, that takes num_records / rate seconds;
    None is ``--throughput -1``, no throttle). The lab's safe mode: ``acks=all`` (the
    producer is then idempotent by default) and ``linger.ms=5``. ``major`` picks the
    options of the stack's Kafka (:data:`KAFKA_TOOLS_MAJOR`): 4.x takes
    ``--bootstrap-server``, ``--command-property`` and ``--warmup-records`` (records left
    out of the extra steady-state summary line); 3.9 has only ``--producer-props`` and no
    warm-up, so there ``warmup_records`` is ignored and the summary covers the whole run.
    """
    _positive("size", size)
    _positive("num_records", num_records)
    _positive("warmup_records", warmup_records, zero=True)
    rate = _rate(rate)
    props = [f"acks={acks}", f"linger.ms={_positive('linger_ms', linger_ms, zero=True)}"]
    argv = ["kafka-producer-perf-test.sh", "--topic", topic, "--num-records", str(num_records),
            "--record-size", str(size), "--throughput", _num(rate) if rate is not None else "-1"]
    if _major(major) >= 4:
        argv[1:1] = ["--bootstrap-server", bootstrap]
        if warmup_records:
            if warmup_records >= num_records:
                raise NativeError(f"warmup_records ({warmup_records}) must be below num_records ({num_records})")
            argv += ["--warmup-records", str(warmup_records)]
        argv += ["--command-property", *props]
    else:
        argv += ["--producer-props", f"bootstrap.servers={bootstrap}", *props]
    return argv


def kafka_consumer_argv(*, topic: str, num_records: int, timeout_ms: int = 10_000, major: int = 4,
                        group: str | None = None, bootstrap: str = KAFKA_BOOTSTRAP) -> list[str]:
    """``kafka-consumer-perf-test.sh`` and its arguments: read ``num_records`` from the start
    of ``topic`` (a new group), giving up after ``timeout_ms`` without a record.

    4.x counts with ``--num-records`` (``--messages`` still works but prints a deprecation
    warning on stdout); 3.9 only knows ``--messages``.
    """
    _positive("num_records", num_records)
    argv = ["kafka-consumer-perf-test.sh", "--bootstrap-server", bootstrap, "--topic", topic,
            "--num-records" if _major(major) >= 4 else "--messages", str(num_records),
            "--timeout", str(_positive("timeout_ms", timeout_ms))]
    if group:
        argv += ["--group", group]
    return argv


_KP_SUMMARY = re.compile(
    r"^(?P<records>\d+) (?P<steady>steady state )?records sent, (?P<rate>\d+(?:\.\d+)?) records/sec "
    r"\((?P<mb>\d+(?:\.\d+)?) MB/sec\), (?P<avg>\d+(?:\.\d+)?) ms avg latency, "
    r"(?P<max>\d+(?:\.\d+)?) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, "
    r"(?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th\.?$")


def parse_kafka_producer(stdout: str) -> NativeResult:
    """kafka-producer-perf-test's final line to a :class:`NativeResult` (no ``recv_rate``).

    The final line is ``N records sent, R records/sec (M MB/sec), A ms avg latency, X ms
    max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th.``; with ``--warmup-records``
    (Kafka 4.x) a second one, ``N steady state records sent, ...``, leaves the warm-up out
    and is preferred. Progress lines (every 5 s) have no percentiles and are not used. The
    latency is the producer's: ``send()`` to the broker's ack, buffering in the client
    included; its percentiles are whole milliseconds.
    """
    found = [(line.strip(), m) for line in stdout.splitlines() if (m := _KP_SUMMARY.match(line.strip()))]
    if not found:
        raise NativeError(f"kafka-producer-perf-test printed no summary line: {gist(stdout)}")
    line, m = next(((line, m) for line, m in found if m["steady"]), found[-1])
    ms = 1e6
    rate = float(m["rate"])
    return NativeResult("kafka-producer-perf-test", rate, None, float(m["mb"]), "ack",
                        _ns(float(m["p50"]), ms), _ns(float(m["p99"]), ms), _ns(float(m["p999"]), ms),
                        _ns(float(m["max"]), ms), tuple(line for line, _ in found))


_KC_FIELDS = ("data.consumed.in.MB", "data.consumed.in.nMsg", "nMsg.sec", "rebalance.time.ms",
              "fetch.time.ms", "fetch.MB.sec", "fetch.nMsg.sec")


def parse_kafka_consumer(stdout: str, *, expected: int | None = None) -> KafkaConsumerStats:
    """kafka-consumer-perf-test's CSV summary (the same header in Kafka 3.9 and 4.3)::

        start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
        rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec

    The receive rate is ``fetch.nMsg.sec``: records over the time spent fetching, the
    consumer group's join left out (``nMsg.sec`` includes it). A run that read fewer than
    ``expected`` records (the tool warns "Exiting before consuming the expected number"
    and its rates then include the wait for the timeout) is an error.
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    header_at = next((i for i, line in enumerate(lines) if "data.consumed.in.nMsg" in line), None)
    if header_at is None:
        raise NativeError(f"kafka-consumer-perf-test printed no CSV header: {gist(stdout)}")
    header = [field.strip() for field in lines[header_at].split(",")]
    if "fetch.nMsg.sec" not in header or "start.time" not in header:
        raise NativeError(f"kafka-consumer-perf-test printed an unknown header: {lines[header_at][:160]}")
    row = None
    for line in lines[header_at + 1:]:
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == len(header) and not line.startswith("WARNING"):
            row = dict(zip(header, fields))
            data_line = line
            break
    if row is None:
        raise NativeError(f"kafka-consumer-perf-test printed no summary row: {gist(stdout)}")
    try:
        values = {key: float(row[key]) for key in _KC_FIELDS}
    except (KeyError, ValueError):
        raise NativeError(f"kafka-consumer-perf-test's summary row is not numbers: {data_line[:160]}") from None
    records = int(values["data.consumed.in.nMsg"])
    if records == 0:
        raise NativeError("kafka-consumer-perf-test read no records before its timeout")
    if expected is not None and records < expected:
        raise NativeError(f"kafka-consumer-perf-test read {records:,} of {expected:,} records before its timeout")
    fetching = values["fetch.time.ms"] > 0
    return KafkaConsumerStats(
        records=records,
        recv_rate=values["fetch.nMsg.sec"] if fetching else values["nMsg.sec"],
        mb_per_s=values["fetch.MB.sec"] if fetching else float(row.get("MB.sec", 0) or 0),
        overall_rate=values["nMsg.sec"],
        rebalance_ms=int(values["rebalance.time.ms"]),
        raw_summary=(lines[header_at], data_line),
    )


def kafka_result(producer: NativeResult, consumer: KafkaConsumerStats | None = None) -> NativeResult:
    """One result from the producer's run and the consumer's read of what it produced."""
    if consumer is None:
        return producer
    return NativeResult("kafka-producer-perf-test + kafka-consumer-perf-test", producer.send_rate,
                        consumer.recv_rate, producer.mb_per_s, producer.latency_kind, producer.p50_ns,
                        producer.p99_ns, producer.p999_ns, producer.max_ns,
                        producer.raw_summary + consumer.raw_summary)


# --------------------------------------------------------------------------- redis-benchmark


def redis_benchmark_argv(*, size: int, requests: int, stream: str = "mqlab.bench", pipeline: int = 100,
                         clients: int = 1, password: str | None = None, host: str = REDIS_HOST,
                         port: int = REDIS_PORT, maxlen: int | None = None) -> list[str]:
    """redis-benchmark's arguments for the ``redis-benchmark`` service: ``requests`` times
    ``XADD <stream> * d <size bytes>`` from ``clients`` connections, ``pipeline`` commands
    per round trip (``-P``, the lab's batch), with ``--csv`` output.

    ``password`` (REDIS_PASSWORD, when set) is passed with ``-a``. ``maxlen`` adds
    ``MAXLEN ~ n`` to bound the stream's memory (the lab's producers do not trim). The
    payload is an argument of the command, so ``size`` is below 128 KiB.
    """
    _positive("size", size)
    if size > MAX_ARG_BYTES - 1:
        raise NativeError(f"redis-benchmark takes the payload as an argument: at most {MAX_ARG_BYTES - 1:,} "
                          f"bytes, got {size:,}")
    argv = ["-h", host, "-p", str(port)]
    if password:
        argv += ["-a", password]
    argv += ["-n", str(_positive("requests", requests)), "-c", str(_positive("clients", clients)),
             "-P", str(_positive("pipeline", pipeline)), "--csv", "XADD", stream]
    if maxlen is not None:
        argv += ["MAXLEN", "~", str(_positive("maxlen", maxlen))]
    return argv + ["*", "d", "x" * size]


def _elide(field: str, limit: int = 60) -> str:
    return field if len(field) <= limit else f"{field[:limit]}...({len(field)} chars)"


def parse_redis_benchmark(stdout: str, *, size: int | None = None) -> NativeResult:
    """``redis-benchmark --csv`` with one custom command to a :class:`NativeResult`.

    It prints a header and one row (the test is named after the command line, payload
    included; the raw summary keeps it shortened)::

        "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        "XADD mqlab.bench * d xxx...","112345.53","0.286","0.048","0.087","0.751","4.407","100.671"

    ``rps`` is the send rate (each request is one XADD: one message); nothing consumes.
    The latency is per request, from writing it to reading its reply (with ``-P``, every
    command of a pipeline gets the round trip of its pipeline): not end to end. No p99.9.
    """
    rows = list(csv.reader(line for line in stdout.splitlines() if line.strip()))
    header_at = next((i for i, row in enumerate(rows) if "rps" in row and "test" in row), None)
    if header_at is None:
        raise NativeError(f"redis-benchmark printed no CSV result: {gist(stdout)}")
    header = rows[header_at]
    data = [row for row in rows[header_at + 1:] if len(row) == len(header)]
    if len(data) != 1:
        raise NativeError(f"redis-benchmark printed {len(data)} result rows, expected one for one command")
    row = dict(zip(header, data[0]))
    try:
        rps = float(row["rps"])
        ms = {key: float(row[key]) for key in ("p50_latency_ms", "p99_latency_ms", "max_latency_ms")}
    except (KeyError, ValueError):
        raise NativeError(f"redis-benchmark's CSV row is not understood: {_elide(','.join(data[0]), 160)}") from None
    if rps <= 0:
        raise NativeError("redis-benchmark reported 0 requests per second")
    raw = (",".join(f'"{h}"' for h in header), ",".join(f'"{_elide(v)}"' for v in data[0]))
    return NativeResult("redis-benchmark", rps, None, _mb(rps, size), "request",
                        _ns(ms["p50_latency_ms"], 1e6), _ns(ms["p99_latency_ms"], 1e6), None,
                        _ns(ms["max_latency_ms"], 1e6), raw)
