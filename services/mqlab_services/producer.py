"""The producer service: send envelopes, record each one the broker confirmed.

One-shot: ``producer --count N --size BYTES --run-id ID`` sends N messages, waits for every
confirm and exits 0 (1 with a one-line error when it cannot). Without ``--count`` it sends a
steady trickle at MQLAB_RATE messages/s under the run id ``steady`` until SIGTERM.
With both ``--count`` and ``--rate`` it sends N messages at that rate, then exits.
A message is written to ``<ledger>/<run>/sent-<name>.tsv`` only after its confirm arrived;
unconfirmed messages are sent again (same id and key) after a reconnect, so a broker failure
can cause duplicates but never an unrecorded loss. The mode decides each message's key
(routing key or record key, see the adapters), which goes into the receipt.
``<ledger>/_status/<name>.json`` shows the counts about once a second (see status.py).

``--poison-every K`` marks every K-th message (seq K-1, 2K-1, ...) ``"fail": true``: the
consumers fail to process it and, after MQLAB_MAX_DELIVERIES attempts, dead-letter it.
A message larger than MQLAB_MAX_MESSAGE_BYTES (or one the client or broker refuses as too
large) is not sent: one line ``rejected: message of N bytes is above the client limit
(M bytes)``, no receipt, and the run goes on with the next message; a one-shot run with any
rejected message ends with a summary line and exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime, timezone

from . import adapters, envelope, metrics
from .ledger import ReceiptWriter
from .runtime import Every, GaveUp, Stopper, connect, one_line, redact, serve
from .settings import Settings
from .status import StatusFile

log = logging.getLogger("mqlab")


def _whole(text: str, low: int, high: int | None, unit: str, bounds: str) -> int:
    """An argparse value: a whole number from ``low`` to ``high`` (None: no upper bound)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number{unit}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _whole(text, 1, None, "", "at least 1")


def _size(text: str) -> int:
    return _whole(text, 0, 64 * 1024 * 1024, " of bytes", "between 0 and 64 MiB")


def _every(text: str) -> int:
    return _whole(text, 0, None, "", "0 (none) or more")


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _run_id(text: str) -> str:
    if not envelope.valid_run_id(text):
        raise argparse.ArgumentTypeError(
            "must be letters, digits, '.', '_' or '-' (at most 128, not starting with '.' or '-'), "
            f"got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="producer",
        description="Send mqlab envelopes to the broker named by MQLAB_BROKER and record each "
                    "confirmed one in the ledger. Settings come from MQLAB_* variables.",
    )
    parser.add_argument("--count", type=_positive_int, metavar="N",
                        help="send N messages, wait for all confirms, then exit "
                             "(default: a steady trickle at MQLAB_RATE until SIGTERM)")
    parser.add_argument("--size", type=_size, default=0, metavar="BYTES",
                        help="pad each encoded envelope to this many bytes (default: no padding, "
                             "about 150 bytes; smaller sizes send the envelope unpadded)")
    parser.add_argument("--run-id", type=_run_id, metavar="ID",
                        help="ledger run id (default: run-<UTC time> with --count, 'steady' without)")
    parser.add_argument("--rate", type=_rate, metavar="MSGS_PER_S",
                        help="messages per second, also with --count (default: as fast as confirms "
                             "come with --count, MQLAB_RATE without)")
    parser.add_argument("--poison-every", type=_every, default=0, metavar="K",
                        help="mark every K-th message as poison (\"fail\": true): consumers fail it, "
                             "retry it and dead-letter it (default 0: none)")
    return parser


#: Rejections logged one by one per run; the rest are only counted.
REJECTED_SHOWN = 20


class Producer:
    def __init__(self, settings: Settings, adapter: adapters.Adapter, ledger: ReceiptWriter,
                 stopper: Stopper, run_id: str, count: int | None, size: int, rate: float | None,
                 status: StatusFile | None = None, poison_every: int = 0, metrics: metrics.Metrics | None = None):
        self.settings = settings
        self.metrics = metrics
        self.poison_every = poison_every
        self.adapter = adapter
        self.ledger = ledger
        self.stopper = stopper
        self.run_id = run_id
        self.count = count
        self.size = size
        self.stamper = envelope.Stamper(run_id, settings.name, size)
        self.rate = rate
        self.status = status
        self.next_seq = ledger.next_seq(run_id)  # a restarted producer continues its sequence
        self.created = 0
        self.acked = 0
        self.rejected = 0
        self.retries = 0

    def run(self) -> int:
        """Send until done (one-shot) or stopped; the exit code."""
        one_shot = self.count is not None
        connect(self.adapter, self.settings, self.stopper, bounded=True)
        pending: list[tuple[envelope.Envelope, bytes, str]] = []
        started = self._started = time.monotonic()
        every = Every(self.settings.log_every)
        logged = (-1, -1)
        while self.stopper.running() and not (one_shot and self.acked + self.rejected >= self.count):
            pending += self._new_messages(room=self.settings.batch - len(pending))
            pending = self._check_sizes(pending)
            if not pending:
                self.stopper.sleep(min(0.05, 1 / self.rate) if self.rate else 0.05)
            else:
                pending = self._publish(pending, one_shot)
            self.report()
            if every.due() and (self.created, self.acked) != logged:
                logged = (self.created, self.acked)
                elapsed = time.monotonic() - started
                log.info("sent %d (acked %d) %.1f msg/s, run %s", self.created, self.acked,
                         self.acked / elapsed if elapsed else 0.0, self.run_id)
        self.report(force=True)
        return self._finish(one_shot, time.monotonic() - started)

    def _publish(self, pending: list, one_shot: bool) -> list:
        """Publish ``pending``, record what the broker confirmed; what it did not, to send again."""
        try:
            acks = self.adapter.publish([(data, key) for _env, data, key in pending])
        except self.adapter.errors as exc:
            log.info("lost the broker while publishing: %s; %d message(s) unconfirmed, "
                     "reconnecting", one_line(exc), len(pending))
            self.retries += len(pending)
            self.adapter.close()
            connect(self.adapter, self.settings, self.stopper, bounded=one_shot, what="reconnect")
            return pending
        unconfirmed = []
        for (env, data, key), ack_ns in zip(pending, acks):
            if ack_ns is None:
                unconfirmed.append((env, data, key))
            elif isinstance(ack_ns, adapters.Rejected):
                self._reject(ack_ns.reason)
            else:
                self.ledger.sent(env, ack_ns, key, adapters.pos_of(ack_ns))
        confirmed = self.ledger.flush()
        self.acked += confirmed
        if self.metrics is not None:
            self.metrics.acked(self.run_id, confirmed)
        if unconfirmed:
            self.retries += len(unconfirmed)
            log.info("%d message(s) not confirmed by the broker; sending them again", len(unconfirmed))
            self.stopper.sleep(0.5)
        return unconfirmed

    def _finish(self, one_shot: bool, elapsed: float) -> int:
        """The closing log line, and the exit code: 1 when stopped early or a message was rejected."""
        if one_shot and self.acked + self.rejected < self.count:
            log.info("stopped (%s) before the end: %d of %d confirmed, run %s",
                     self.stopper.signal_name or "stop", self.acked, self.count, self.run_id)
            return 1
        if not one_shot:
            log.info("stopped on %s: sent %d (acked %d), %d resent, run %s", self.stopper.signal_name,
                     self.created, self.acked, self.retries, self.run_id)
            return 0
        log.info("done: %d %s in %.2fs (%.0f msg/s), %d resent, run %s, receipts in %s",
                 self.acked, "confirmed" if self.settings.safe else "acked (lossy mode)", elapsed,
                 self.acked / elapsed if elapsed else 0.0, self.retries, self.run_id,
                 self.ledger.path(self.run_id))
        if self.rejected:
            log.info("%d of %d message(s) rejected as too large (limit %d bytes) and not sent, run %s",
                     self.rejected, self.count, self.settings.max_message_bytes, self.run_id)
            return 1
        return 0

    def report(self, force: bool = False) -> None:
        """Refresh the status file (at most once a second unless forced)."""
        if self.status is not None:
            error = self.status.error
            self.status.update(force=force, sent=self.created, acked=self.acked, rejected=self.rejected,
                               node=self.adapter.node)
            if self.status.error is not None and error is None:
                log.info("cannot write the status file: %s", one_line(self.status.error))

    def _check_sizes(self, pending):
        """Drop (and report) messages above MQLAB_MAX_MESSAGE_BYTES before they reach the broker."""
        limit = self.settings.max_message_bytes
        if all(len(data) <= limit for _env, data, _key in pending):
            return pending
        kept = []
        for item in pending:
            if len(item[1]) > limit:
                self._reject(adapters.base.too_large(len(item[1]), limit))
            else:
                kept.append(item)
        return kept

    def _reject(self, reason: str) -> None:
        self.rejected += 1
        if self.rejected <= REJECTED_SHOWN:
            log.info("rejected: %s", reason)
        elif self.rejected == REJECTED_SHOWN + 1:
            log.info("rejected: more messages too large; counting them without a line each")

    def _new_messages(self, room: int) -> list[tuple[envelope.Envelope, bytes, str]]:
        n = room
        if self.count is not None:
            n = min(n, self.count - self.created)
        if self.rate:
            due = int((time.monotonic() - self._started) * self.rate) - self.created
            if due > max(1.0, self.rate):
                # Back from an outage: carry on at the rate instead of bursting to catch up.
                self._started += (due - max(1.0, self.rate)) / self.rate
                due = int(max(1.0, self.rate))
            n = min(n, due)
        out = []
        for _ in range(max(0, n)):
            seq, ts_ns, fail = self.next_seq, time.time_ns(), envelope.poison(self.next_seq, self.poison_every)
            msg_id, data = self.stamper.stamp(seq, ts_ns, fail)
            self.next_seq += 1
            out.append((envelope.Envelope(msg_id, self.run_id, self.settings.name, seq, ts_ns, "", fail), data,
                        self.adapter.key_for(seq)))
        self.created += len(out)
        if self.metrics is not None:
            self.metrics.sent(self.run_id, len(out))
        return out


def main(argv: list[str] | None = None, environ=None) -> int:
    return serve("producer", build_parser(), _produce, argv, environ)


def _produce(args: argparse.Namespace, stopper: Stopper, settings: Settings, adapter: adapters.Adapter) -> int:
    one_shot = args.count is not None
    run_id = args.run_id or (
        "run-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") if one_shot else envelope.STEADY_RUN)
    rate = args.rate if args.rate else (None if one_shot else settings.rate)
    ledger = ReceiptWriter(settings.ledger_dir, "sent", settings.name)
    try:
        os.makedirs(os.path.dirname(ledger.path(run_id)), exist_ok=True)
    except OSError as exc:
        log.error("cannot write receipts under %s: %s", settings.ledger_dir, one_line(exc))
        return 1
    _log_start(args, settings, adapter, run_id, rate)
    status = StatusFile(settings.ledger_dir, settings.name, {
        "role": "producer", "broker": settings.broker, "mode": settings.mode, "sent": 0, "acked": 0,
        "rejected": 0}, counter="acked")
    served = metrics.create(settings)
    producer = Producer(settings, adapter, ledger, stopper, run_id, args.count, args.size, rate, status,
                        poison_every=args.poison_every, metrics=served)
    code = _run(producer, ledger, adapter)
    if served is not None and one_shot:
        # The container goes with the process: stay until Prometheus has the last counts.
        served.linger(stopper.sleep, stopper.running)
    return code


def _log_start(args: argparse.Namespace, settings: Settings, adapter: adapters.Adapter, run_id: str,
               rate: float | None) -> None:
    log.info("starting: %s at %s, mode %s: %s", settings.broker, redact(settings.url), settings.mode,
             adapter.describe())
    log.info("run %s: %s, %s, %s%s", run_id,
             f"{args.count} messages" if args.count is not None else "steady trickle until SIGTERM",
             f"{args.size} bytes each" if args.size else "unpadded",
             f"{rate:g} msg/s" if rate else "as fast as confirms come",
             f", every {args.poison_every}th poison" if args.poison_every else "")


def _run(producer: Producer, ledger: ReceiptWriter, adapter: adapters.Adapter) -> int:
    """Run the producer; its exit code, with one line on why it is 1. Closes the ledger and the adapter."""
    try:
        return producer.run()
    except (GaveUp, adapters.BrokerConfigError) as exc:
        log.error("giving up: %s (%d of %s confirmed)", exc, producer.acked, producer.count or "-")
        return 1
    except OSError as exc:  # the ledger, not the broker: the broker's errors are handled in run()
        log.error("cannot write receipts: %s", one_line(exc))
        return 1
    except Exception as exc:  # a bug: say so in one line first, then the traceback
        log.error("unexpected error, exiting: %s", one_line(exc), exc_info=True)
        return 1
    finally:
        try:
            ledger.close()
        finally:
            adapter.close()


if __name__ == "__main__":
    sys.exit(main())
