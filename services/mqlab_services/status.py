"""Status files: what each service is doing now, for the host to read while a run goes on.

Every service rewrites ``<ledger_dir>/_status/<name>.json`` about once a second, atomically
(a temporary file in the same directory, then ``os.replace``), so a reader sees the old or
the new content, never a torn one. A consumer's file::

    {"name": "c1", "role": "consumer", "broker": "kafka", "mode": "group",
     "subscribed": true, "received": 1200, "foreign": 0, "failed": 30, "dead": 10, "rate": 198.4,
     "assignment": [0, 2], "node": "rabbitmq-2", "updated_ns": 1700000000000000000}

- ``subscribed``: true once the consumer is really consuming (RabbitMQ: after basic.consume;
  Redis: its group exists and the first read returned; Kafka: partitions assigned and their
  positions known); false while it connects or reconnects, and after it stopped.
- ``received``: envelope deliveries since start (duplicates included, as in the receipts);
  ``foreign``: deliveries that were not envelopes; ``failed``: failed processing attempts
  (each retry counts); ``dead``: messages dead-lettered.
- ``rate``: ``received`` per second over about the last 5 seconds.
- ``assignment``: Kafka partition numbers, or the one queue, group or channel it reads.
- ``node``: the broker node it is connected to (RabbitMQ: the node of its connection; Redis:
  the primary it found; "" for Kafka, whose clients talk to each partition's leader).

A producer's file::

    {"name": "p1", "role": "producer", "broker": "kafka", "mode": "keyed",
     "sent": 2000, "acked": 2000, "rejected": 0, "rate": 500.0, "node": "", "updated_ns": 1700000000000000000}

``sent`` counts messages made, ``acked`` those the broker confirmed, ``rejected`` those
refused as too large (never sent), and ``rate`` is
``acked`` per second over about the last 5 seconds. ``updated_ns`` is ``time.time_ns()``
at the write: a file that stops changing belongs to a service that is stuck or gone.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable

STATUS_DIR = "_status"
INTERVAL = 1.0  # seconds between writes
WINDOW = 5.0  # seconds the rate is measured over


def status_path(ledger_dir: str, name: str) -> str:
    return os.path.join(ledger_dir, STATUS_DIR, f"{name}.json")


class RateWindow:
    """Events per second over the last ``window`` seconds, from samples of a running total."""

    def __init__(self, window: float = WINDOW):
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def rate(self, now: float, total: int) -> float:
        self._samples.append((now, total))
        # Keep one sample at or beyond the window's start, so the span is about `window`.
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        then, before = self._samples[0]
        return round((total - before) / (now - then), 1) if now > then else 0.0


class StatusFile:
    """Writes one service's status file at most once per ``interval`` (or when forced)."""

    def __init__(self, ledger_dir: str, name: str, fields: dict, counter: str,
                 interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.path = status_path(ledger_dir, name)
        self.fields = {"name": name, **fields}
        self.counter = counter  # the field whose rate is reported
        self.interval = interval
        self.clock = clock
        self._rates = RateWindow()
        self._last = None
        self.writes = 0
        self.error: OSError | None = None  # the last failed write; status is best effort

    def update(self, force: bool = False, **values) -> bool:
        """Merge ``values``; write when forced or when the interval has passed. True if written."""
        self.fields.update(values)
        now = self.clock()
        if not force and self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        self.fields["rate"] = self._rates.rate(now, int(self.fields.get(self.counter, 0)))
        self.fields["updated_ns"] = time.time_ns()
        try:
            self.write()
        except OSError as exc:
            self.error = exc
            return False
        self.error = None
        return True

    def write(self) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        # Hidden and per process, so readers globbing *.json never see it and two writers never share it.
        tmp = os.path.join(directory, f".{os.path.basename(self.path)}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.fields, f, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, self.path)
        self.writes += 1
