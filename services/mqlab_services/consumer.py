"""The consumer service: receive, record a receipt, then ack; until SIGTERM.

For every envelope a line goes to ``<ledger>/<run>/recv-<name>.tsv``; the batch's lines are
flushed before the adapter acks or commits the batch, so every acked message has a receipt
(a redelivery adds a second line, which is how duplicates show). Anything that is not an
envelope is printed as a foreign message and acked.

A message whose processing fails (a poison envelope with ``"fail": true``, or any envelope
whose processing raises) gets no ``recv`` line: the adapter tries it again, up to
MQLAB_MAX_DELIVERIES attempts in all (the first included), then puts it on the broker's
dead-letter queue (RabbitMQ ``mailbox.dead`` via exchange ``mailbox.dlx``, Redis stream
``chatroom.stream.dead``, Kafka topic ``datascience.dlq``) with the reason, and the consumer
writes ``<ledger>/<run>/dead-<name>.tsv`` (see ledger.py), flushed before the original is
acked. Later messages keep flowing meanwhile. SIGTERM finishes the current batch,
flushes, closes and exits 0. ``<ledger>/_status/<name>.json`` says about once a second
whether the consumer is subscribed, what it reads and how fast (see status.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from . import adapters, envelope, metrics
from .ledger import ReceiptWriter
from .runtime import Every, GaveUp, Stopper, connect, one_line, redact, serve
from .settings import Settings
from .status import StatusFile

log = logging.getLogger("mqlab")

FOREIGN_SHOWN = 200  # bytes of a foreign message printed
FOREIGN_PER_INTERVAL = 20  # foreign messages printed per log interval; the rest are counted


class LedgerError(Exception):
    """Receipts cannot be written: stop without acking, so the broker keeps the messages."""


def show_foreign(body: bytes) -> str:
    text = repr(bytes(body[:FOREIGN_SHOWN]))
    if len(body) > FOREIGN_SHOWN:
        text += f"... ({len(body)} bytes)"
    return f"foreign message: {text}"


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="consumer",
        description="Consume from the broker named by MQLAB_BROKER until SIGTERM: record a receipt "
                    "for each mqlab envelope before acking it, print anything else as a foreign "
                    "message. Settings come from MQLAB_* variables.",
    )


POISON_REASON = "poison message (envelope fail=true)"


class PoisonMessage(Exception):
    """Processing refused an envelope marked ``"fail": true``."""


def process(env: envelope.Envelope) -> None:
    """What the lab's consumer does with an envelope: nothing, unless it is poison."""
    if env.fail:
        raise PoisonMessage(POISON_REASON)


class Consumer:
    def __init__(self, settings: Settings, ledger: ReceiptWriter, clock=time.monotonic,
                 adapter: adapters.Adapter | None = None, status: StatusFile | None = None,
                 dead_ledger: ReceiptWriter | None = None, metrics: metrics.Metrics | None = None):
        self.settings = settings
        self.metrics = metrics
        self.ledger = ledger
        self.dead_ledger = dead_ledger
        self.failed = 0  # failed attempts (each retry counts)
        self.dead_lettered = 0
        self.adapter = adapter
        self.status = status
        self.received = 0
        self.foreign = 0
        self.runs: set[str] = set()
        self._every = Every(settings.log_every, clock)
        self._clock = clock
        self._last = (0, 0, clock())
        self._shown = 0

    def handle(self, batch: list[adapters.Received]) -> list[str | None]:
        """Process a batch and record receipts; returns only when they are flushed to the ledger.

        Returns, per message, None when it was processed (and recorded), or why it failed
        (no receipt: the adapter tries it again or dead-letters it).
        """
        now = time.time_ns()
        results: list[str | None] = []
        recorded: list[tuple[str, int, bool]] = []  # for the metrics: (run, send time, delivered again)
        for item in batch:
            body, key = item
            env = envelope.decode(body)
            if env is None:
                self.foreign += 1
                if self._shown < FOREIGN_PER_INTERVAL:
                    self._shown += 1
                    log.info("%s", show_foreign(body))
                results.append(None)
                continue
            try:
                process(env)
            except Exception as exc:  # any failure of processing is the message's, not ours
                self.failed += 1
                results.append(str(exc) if isinstance(exc, PoisonMessage) else one_line(exc))
                continue
            lane = adapters.lane_of(item)
            self.ledger.received(env, now, key, lane)
            recorded.append((env.run, env.ts_ns, lane == adapters.REDELIVERED))
            self.runs.add(env.run)
            self.received += 1
            results.append(None)
        self._flush(self.ledger)
        if self.metrics is not None and recorded:
            self.metrics.received(now, recorded)
        if self.settings.process_ms and batch:
            # The rest of the processing, after the receipts and before the ack or commit: a
            # consumer killed now has recorded messages the broker will deliver again.
            time.sleep(self.settings.process_ms / 1000)
        self.report()
        if self._every.due():
            self.progress()
        return results

    def dead(self, items: list[adapters.Dead]) -> None:
        """Record messages the adapter dead-lettered; returns once the receipts are flushed."""
        now = time.time_ns()
        runs = []
        for body, _key, attempts, reason in items:
            env = envelope.decode(body)
            self.dead_lettered += 1
            if env is None:
                log.info("dead-lettered a foreign message after %d attempt(s): %s", attempts, reason)
                continue
            log.info("dead-lettered %s (src %s seq %d) after %d attempt(s): %s", env.id, env.src,
                     env.seq, attempts, reason)
            runs.append(env.run)
            if self.dead_ledger is not None:
                self.dead_ledger.dead(env, attempts, reason, now)
        if self.dead_ledger is not None:
            self._flush(self.dead_ledger)
        if self.metrics is not None:
            self.metrics.dead_lettered(runs)

    def _flush(self, ledger: ReceiptWriter) -> None:
        try:
            ledger.flush()
        except OSError as exc:
            raise LedgerError(
                f"cannot write receipts under {self.settings.ledger_dir}: {one_line(exc)}") from exc

    def report(self, force: bool = False, stopped: bool = False) -> None:
        """Refresh the status file (at most once a second unless forced); ``stopped`` at the end."""
        if self.status is None:
            return
        error = self.status.error
        adapter = self.adapter
        written = self.status.update(force=force, received=self.received, foreign=self.foreign,
                           failed=self.failed, dead=self.dead_lettered,
                           subscribed=bool(adapter and adapter.subscribed and not stopped),
                           assignment=list(adapter.assignment) if adapter else [],
                           node=adapter.node if adapter else "")
        if written and self.metrics is not None and adapter is not None:
            self.metrics.lag(adapter.lag())  # as often as the status file: about once a second
        if self.status.error is not None and error is None:
            log.info("cannot write the status file: %s", one_line(self.status.error))

    def progress(self) -> None:
        received, foreign, since = self._last
        if (self.received, self.foreign) == (received, foreign):
            return
        now = self._clock()
        rate = (self.received - received) / (now - since) if now > since else 0.0
        extra = ""
        if self.foreign - foreign > self._shown:
            extra = f" ({self.foreign - foreign - self._shown} not printed)"
        log.info("received %d (+%d, %.1f msg/s), foreign %d%s, runs %s", self.received,
                 self.received - received, rate, self.foreign, extra, ",".join(sorted(self.runs)[-3:]) or "-")
        self._last = (self.received, self.foreign, now)
        self._shown = 0


def main(argv: list[str] | None = None, environ=None) -> int:
    return serve("consumer", build_parser(), _consume, argv, environ)


def _consume(_args: argparse.Namespace, stopper: Stopper, settings: Settings, adapter: adapters.Adapter) -> int:
    log.info("starting: %s at %s, mode %s: %s", settings.broker, redact(settings.url), settings.mode,
             adapter.describe())
    ledger = ReceiptWriter(settings.ledger_dir, "recv", settings.name)
    dead_ledger = ReceiptWriter(settings.ledger_dir, "dead", settings.name)
    status = StatusFile(settings.ledger_dir, settings.name, {
        "role": "consumer", "broker": settings.broker, "mode": settings.mode, "subscribed": False,
        "received": 0, "foreign": 0, "failed": 0, "dead": 0, "assignment": [], "node": ""}, counter="received")
    consumer = Consumer(settings, ledger, adapter=adapter, status=status, dead_ledger=dead_ledger,
                        metrics=metrics.create(settings))
    consumer.report(force=True)
    code = 0
    try:
        connect(adapter, settings, stopper, bounded=True)
        while stopper.running():
            try:
                adapter.consume(consumer.handle, stopper.running, consumer.dead)
            except adapter.errors as exc:
                log.info("lost the broker: %s; reconnecting", one_line(exc))
                adapter.close()
                consumer.report(force=True)
                connect(adapter, settings, stopper, bounded=False, what="reconnect")
    except (GaveUp, adapters.BrokerConfigError, LedgerError) as exc:
        log.error("giving up: %s", exc)
        code = 1
    except Exception as exc:  # a bug: say so in one line first, then the traceback
        log.error("unexpected error, exiting: %s", one_line(exc), exc_info=True)
        code = 1
    finally:
        try:
            ledger.close()
            dead_ledger.close()
        except OSError as exc:
            log.error("cannot write receipts: %s", one_line(exc))
            code = 1
        adapter.close()
    consumer.report(force=True, stopped=True)
    consumer.progress()
    if stopper.stopping:
        log.info("stopped on %s: received %d, foreign %d, dead-lettered %d", stopper.signal_name,
                 consumer.received, consumer.foreign, consumer.dead_lettered)
    return code


if __name__ == "__main__":
    sys.exit(main())
