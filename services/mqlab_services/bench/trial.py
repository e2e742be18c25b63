"""The trial harness: the window and the result file every trial has, when a producer starts
and stops and when a consumer does, the bench consumer's status file, and running a trial
with its errors recorded rather than raised."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import time
from collections.abc import Callable

from .. import adapters
from ..runtime import GaveUp, Stopper, connect, one_line, redact
from ..settings import CLIENTS, Settings
from ..status import StatusFile
from .counting import NS, Tally

log = logging.getLogger("mqlab")

SCHEMA = 1
IDLE_END_NS = NS  # the consumer stops once `end` passed and nothing came for this long


def client_name(broker: str, kafka_client: str = "kafka-python") -> str:
    """``<client> <version>`` of the library the services use for ``broker``."""
    known = CLIENTS.get(broker, ((broker, broker),))
    name, dist = next((c for c in known if c[0] == kafka_client), known[0])
    try:
        return f"{name} {importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def timing(args: argparse.Namespace) -> tuple[str, float, float, float]:
    """The trial id, start, warm-up and duration from the command line, as trials take them."""
    return args.trial, args.start, args.warmup, args.duration


def status_file(settings: Settings, trial: str) -> StatusFile:
    """A bench consumer's status file, so the host starts the producers once it is subscribed."""
    return StatusFile(settings.ledger_dir, settings.name, {
        "role": "bench-consumer", "broker": settings.broker, "mode": settings.mode,
        "trial": trial, "subscribed": False, "received": 0, "other": 0, "assignment": []},
        counter="received")


class Trial(Tally):
    """What every trial has: its settings, the window and its counts, an error and a result."""

    role = ""
    kind = ""
    connects_itself = False  # the bare client makes its own connection

    def __init__(self, settings: Settings, trial: str, start: float, warmup: float, duration: float,
                 clock: Callable[[], int] = time.time_ns):
        super().__init__(self.kind, start, warmup, duration)
        self.settings = settings
        self.trial = trial
        self.clock = clock
        self.error: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, settings: Settings, adapter: adapters.Adapter,
                  stopper: Stopper) -> Trial:
        """The trial that ``bench ARGS`` asks for."""
        raise NotImplementedError

    def describe(self) -> str:
        """What the start-up line says about this trial besides the timing."""
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def done_line(self) -> str:
        raise NotImplementedError

    def result(self) -> dict:
        s = self.settings
        return {"schema": SCHEMA, "role": self.role, "name": s.name, "broker": s.broker, "mode": s.mode,
                "client": client_name(s.broker, s.kafka_client), "trial": self.trial, "start": self.start,
                "warmup": self.warmup, "duration": self.duration, "rate": None, "size": 0,
                **self.counts(), "error": self.error}


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


class ConsumerTrial(Trial):
    """A consumer's end: the trial's end has passed and nothing came for a second, or the drain is over."""

    role = "consumer"
    kind = "e2e"

    def __init__(self, settings: Settings, stopper: Stopper, trial: str, start: float, warmup: float,
                 duration: float, drain: float, clock: Callable[[], int] = time.time_ns):
        super().__init__(settings, trial, start, warmup, duration, clock)
        self.stopper = stopper
        self.drain = drain
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


def run_trial(trial: Trial, adapter: adapters.Adapter, stopper: Stopper, out: str) -> int:
    """Run ``trial``, write its result (partial after an error) and close ``adapter``; the exit code."""
    s = trial.settings
    log.info("starting: %s, trial %s, %s at %s, mode %s, batch %d, %s; warm-up %gs, window %gs, "
             "starts in %.1fs", trial.role, trial.trial, s.broker, redact(s.url), s.mode, s.batch,
             trial.describe(), trial.warmup, trial.duration, trial.start - time.time())
    _execute(trial, adapter, stopper)
    return _save(trial, adapter, out)


def _execute(trial: Trial, adapter: adapters.Adapter, stopper: Stopper) -> None:
    """Connect and run; what went wrong goes to ``trial.error``, so the result is still written."""
    try:
        if trial.connects_itself or connect(adapter, trial.settings, stopper, bounded=True):
            trial.run()
        else:
            trial.error = f"stopped by {stopper.signal_name} before connecting"
    except (GaveUp, adapters.BrokerConfigError) as exc:
        trial.error = str(exc)
    except adapter.errors as exc:
        trial.error = f"lost the broker: {one_line(exc)}"
    except Exception as exc:  # a bug: say so in one line first, then the traceback
        log.error("unexpected error: %s", one_line(exc), exc_info=True)
        trial.error = f"unexpected error: {one_line(exc)}"


def _save(trial: Trial, adapter: adapters.Adapter, out: str) -> int:
    code = 0 if trial.error is None else 1
    try:
        path = write_result(out, trial.result())
    except OSError as exc:
        log.error("cannot write the result under %s: %s", out, one_line(exc))
        code = 1
    else:
        if trial.error is not None:
            log.error("%s; partial result in %s", trial.error, path)
        log.info("%s; %s", trial.done_line(), path)
    finally:
        adapter.close()
    return code
