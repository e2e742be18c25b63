"""What the services share: start-up, logging, signals, back-off and (re)connecting."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from . import adapters
from .adapters import Adapter, BrokerConfigError
from .settings import Settings, SettingsError

log = logging.getLogger("mqlab")


def setup_logging(service: str, name: str) -> None:
    """One line per event on stdout: UTC timestamp, service[name], message."""
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except AttributeError:  # not a real text stream (tests)
        pass
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        f"%(asctime)s.%(msecs)03dZ {service}[{name}] %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler._mqlab = True  # so a second call replaces ours and leaves other handlers alone
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_mqlab", False)] + [handler]
    root.setLevel(logging.INFO)
    # Client libraries log every failed attempt, with tracebacks; our own lines tell that story.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def start(service: str, environ=None) -> "tuple[Stopper, Settings, Adapter] | int":
    """The first steps of every service: catch stop signals, read the MQLAB_* settings, set
    up logging and load the broker's adapter. Returns them, or the exit code after one line
    on why (2: bad settings, 1: no adapter)."""
    stopper = Stopper().install()  # before anything slow: a stop may come at any time
    try:
        settings = Settings.from_env(os.environ if environ is None else environ)
    except SettingsError as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        return 2
    setup_logging(service, settings.name)
    try:
        adapter = adapters.create(settings)
    except (adapters.UnknownBrokerError, ImportError) as exc:
        log.error("cannot load the %s adapter: %s", settings.broker, exc)
        return 1
    return stopper, settings, adapter


Service = Callable[[argparse.Namespace, "Stopper", Settings, Adapter], int]


def serve(service: str, parser: argparse.ArgumentParser, run: Service, argv: list[str] | None = None,
          environ=None) -> int:
    """A service's main: parse the command line, start(), then ``run(args, stopper, settings,
    adapter)``; the exit code. Bad arguments exit 2 before anything starts."""
    args = parser.parse_args(argv)
    started = start(service, environ)
    if isinstance(started, int):
        return started
    return run(args, *started)


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Stopper:
    """Turns SIGTERM/SIGINT into a flag that loops check; the current message is finished first."""

    def __init__(self):
        self.stopping = False
        self.signal_name = ""

    def install(self) -> "Stopper":
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.stopping = True
        self.signal_name = signal.Signals(signum).name

    def running(self) -> bool:
        return not self.stopping

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up early when asked to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))


def backoff(initial: float = 0.5, maximum: float = 10.0, factor: float = 2.0) -> Iterator[float]:
    """0.5, 1, 2, 4, ... seconds, capped at ``maximum``."""
    delay = initial
    while True:
        yield min(delay, maximum)
        delay *= factor


class GaveUp(Exception):
    """Could not (re)connect within the allowed attempts and time."""


def connect(adapter: Adapter, settings: Settings, stopper: Stopper, bounded: bool,
            what: str = "connect") -> bool:
    """Connect with exponential back-off; True when connected, False if asked to stop.

    ``bounded`` limits the attempts and time to ``MQLAB_CONNECT_ATTEMPTS`` and
    ``MQLAB_CONNECT_TIMEOUT`` (then raises GaveUp); unbounded keeps trying while running.
    """
    started = time.monotonic()
    delays = backoff(maximum=settings.backoff_max)
    attempt = 0
    while not stopper.stopping:
        attempt += 1
        try:
            adapter.connect()
            rtt = adapter.ping()
            log.info("connected to %s at %s (mode %s, ping %.1f ms)", settings.broker,
                     redact(settings.url), settings.mode, rtt * 1000)
            return True
        except BrokerConfigError:
            adapter.close()
            raise
        except adapter.errors as exc:
            adapter.close()
            error = one_line(exc)
        elapsed = time.monotonic() - started
        if bounded and (attempt >= settings.connect_attempts or elapsed >= settings.connect_timeout):
            raise GaveUp(f"could not {what} to {settings.broker} at {redact(settings.url)} "
                         f"after {attempt} attempts in {elapsed:.0f}s: {error}")
        delay = next(delays)
        log.info("%s attempt %d failed: %s; retrying in %.1fs", what, attempt, error, delay)
        stopper.sleep(delay)
    return False


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line; falls back to the arguments for exceptions with an empty str()."""
    text = str(exc) or ", ".join(one_line(arg) if isinstance(arg, BaseException) else str(arg)
                                 for arg in exc.args)
    if not text and not repr(exc).startswith(type(exc).__name__ + "("):
        text = repr(exc)  # some client exceptions only say what happened in their repr
    text = " ".join(text.split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


class Every:
    """True once per ``interval`` seconds, for periodic progress lines."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.last = clock()

    def due(self) -> bool:
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False
