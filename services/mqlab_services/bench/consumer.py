"""The consumer trials: the lab's consumer (envelopes of the trial, end-to-end latency, a status
file kept up to date) and the bare client's consumer loop (see bare.py), counted per batch."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

from .. import adapters, bare, envelope
from ..runtime import Stopper, one_line
from ..settings import Settings
from ..status import StatusFile
from .trial import ConsumerTrial, status_file, timing

log = logging.getLogger("mqlab")


class BenchConsumer(ConsumerTrial):
    def __init__(self, settings: Settings, adapter: adapters.Adapter, stopper: Stopper, trial: str,
                 start: float, warmup: float, duration: float, drain: float,
                 clock: Callable[[], int] = time.time_ns, status: StatusFile | None = None):
        super().__init__(settings, stopper, trial, start, warmup, duration, drain, clock)
        self.adapter = adapter
        self.status = status
        self.other = 0
        self._subscribed = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, settings: Settings, adapter: adapters.Adapter,
                  stopper: Stopper) -> BenchConsumer:
        return cls(settings, adapter, stopper, *timing(args), drain=args.drain,
                   status=status_file(settings, args.trial))

    def describe(self) -> str:
        return f"drain {self.drain:g}s"

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

    def running(self) -> bool:
        """Asked once per poll: the status file also learns of a subscription before any message
        (the txn stage calls the handler only with records, and its producer waits for that)."""
        self.report()
        return super().running()

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
                f"{self.window_rate():.1f} msg/s), {self.other} other, {self.latency.line()}")


class BareConsumer(ConsumerTrial):
    """The bare client's consumer loop (see bare.py), counted per batch by receipt time. Its
    status file is written when it has subscribed and when it stops, never per message."""

    connects_itself = True

    def __init__(self, settings: Settings, stopper: Stopper, trial: str, start: float, warmup: float,
                 duration: float, drain: float, clock: Callable[[], int] = time.time_ns,
                 status: StatusFile | None = None):
        super().__init__(settings, stopper, trial, start, warmup, duration, drain, clock)
        self.status = status
        self._ready = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, settings: Settings, _adapter: adapters.Adapter,
                  stopper: Stopper) -> BareConsumer:
        return cls(settings, stopper, *timing(args), drain=args.drain, status=status_file(settings, args.trial))

    def describe(self) -> str:
        return f"drain {self.drain:g}s, bare client"

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
