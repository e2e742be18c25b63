"""The brokers' own benchmark tools: what their results have in common.

Each broker's module in ``mqlab.brokers`` owns its tool: the command line, the parser of
what the tool prints, and how one trial runs it. The host runs the argv after the compose
service's name (``docker compose ... run --rm -T <service> <argv...>``); the parser returns
a :class:`NativeResult` or raises :class:`NativeError` (one line).

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
the rate of a short probe run first (:data:`PROBE_RECORDS`) x seconds.

Rates are messages per second; ``mb_per_s`` counts 1 MB = 2**20 bytes of payload, as
Kafka's tools do (PerfTest and redis-benchmark print none: rate x size). Latencies are
integer nanoseconds; a quantile the tool does not print is None.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import LabError

MIB = 1024 * 1024
PROBE_RECORDS = 50_000  # a native tool's short run that sizes a max-rate run to --duration
MAX_RECORDS = 20_000_000


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


def records_for(rate: float, seconds: float) -> int:
    """How many records (requests) keep a count-bounded tool busy for ``seconds`` at ``rate``/s."""
    if not rate or rate <= 0 or seconds <= 0:
        raise NativeError(f"cannot size a run from rate {rate!r}/s and {seconds!r} s")
    return max(1, math.ceil(rate * seconds))


def positive(name: str, value, *, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise NativeError(f"{name} must be an integer {'>= 0' if zero else '>= 1'}, got {value!r}")
    return value


def check_rate(rate) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise NativeError(f"rate must be a positive number of messages/s or None, got {rate!r}")
    return float(rate)


def option_number(value: float) -> str:
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


def to_ns(value: float, unit_ns: float) -> int:
    return int(round(value * unit_ns))


def mb_per_s(rate: float | None, size: int | None) -> float | None:
    return rate * size / MIB if rate is not None and size else None


