"""`invoke top <stack>`: a live view of a running stack, until ``q``, Ctrl-C or ``--duration``.

What it shows, and what it asks for to show it:

- **Per producer and consumer** (every second, from the status files the services rewrite
  about once a second, and Docker's container list): its rate now, with a sparkline of the
  last :data:`HISTORY` seconds, acked or received so far (COUNT), the broker node it is connected to,
  and its backlog at the broker.
- **The broker** (every :data:`BROKER_EVERY` seconds, in a thread of its own, so a broker that
  hangs never freezes the screen): who leads, in-sync replicas or quorum members, Sentinel's
  view, and what waits at the broker: the same questions `invoke stats` asks
  (:func:`.stats.add_broker_view`).
- **The current run** (every second, reading only the bytes appended to its receipt files
  since the last look): acked, received, duplicated, and the time since the last ack. The
  current run is the stack's latest `invoke produce` run or the steady producer's, whichever
  wrote last; the steady run is counted from the moment the stack was created (its receipt
  files outlive a stack).
- **Events as they happen**: the lab's own faults and proof rounds from the event file
  (:mod:`mqlab.events`), containers of the stack dying, starting, pausing or turning
  unhealthy (Docker's event stream, as it happens), and every change in the broker's view
  of who leads (a leader moving, a replica leaving the in-sync set).

Nothing is written and nothing is sent to the broker but those questions.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import docker
from mqlab_services.envelope import STEADY_RUN
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .. import events, ledger
from ..config import LabConfig
from ..errors import UsageError
from ..ledger import receipts
from ..modes import mode_info
from ..stacks import PROJECT_PREFIX, Stack
from . import preflight, stats

from .containers import running_stack
from .lifecycle import current_mode

SERVICE_EVERY = 1.0  # seconds between looks at the status files, receipts and event file
BROKER_EVERY = 2.0  # seconds between questions to the broker (backlog, topology)
HISTORY = 30  # samples in a sparkline
EVENTS_SHOWN = 12
EVENTS_BEFORE_S = 60  # the event file's events from this long before top started are shown too
MAX_SECONDS = 3600.0  # top stops by itself after an hour unless --duration says otherwise
SPARKS = "▁▂▃▄▅▆▇█"
#: Docker's container events worth a line, and how they read.
DOCKER_ACTIONS = {"die": "died", "start": "started", "restart": "restarted", "pause": "paused",
                  "unpause": "unpaused", "oom": "ran out of memory", "health_status: unhealthy": "is unhealthy",
                  "health_status: healthy": "is healthy", "kill": "was sent a signal", "stop": "was stopped"}


def sparkline(values: list[float]) -> str:
    """One block per value, scaled to the largest; all zero is a flat line."""
    top = max(values, default=0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in values)


def docker_event_text(event: dict) -> str | None:
    """A line for one of Docker's container events, or None for those not worth one (exec …)."""
    action = event.get("Action") or event.get("status") or ""
    what = DOCKER_ACTIONS.get(action)
    if what is None:
        return None
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    name = attributes.get("name", "?")
    if action == "die":
        what += f" (exit {attributes.get('exitCode', '?')})"
    elif action == "kill":
        what = f"was sent signal {attributes.get('signal', '?')}"
    return f"{name} {what}"


def current_run(ledger_dir: Path, stack: Stack) -> str | None:
    """The stack's latest `invoke produce` run or its steady producer's run, whichever wrote last."""
    candidates = [STEADY_RUN]
    try:
        candidates.append(ledger.latest_run(ledger_dir, stack.name))
    except UsageError:
        pass

    def written(run_id: str) -> float:
        paths = list(ledger.run_dir(ledger_dir, run_id).glob("*.tsv"))
        return max((p.stat().st_mtime for p in paths), default=-1.0)

    best = max(candidates, key=written)
    return best if written(best) >= 0 else None


class RunTail:
    """A run's counters from its receipt files, reading only what was appended since the last look."""

    def __init__(self, directory: Path, per_subscriber: bool, since_ns: int = 0):
        self.directory, self.per_subscriber, self.since_ns = directory, per_subscriber, since_ns
        self.offsets: dict[Path, int] = {}
        self.acked = self.received = self.duplicated = 0
        self.last_ack_ns = 0
        self._seen: Counter = Counter()

    def _new_lines(self, pattern: str):
        for path in sorted(self.directory.glob(pattern)):
            offset = self.offsets.get(path, 0)
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
            end = data.rfind(b"\n") + 1  # a line still being written waits for the next look
            self.offsets[path] = offset + end
            for line in data[:end].decode(errors="replace").splitlines():
                yield path.stem, line.split("\t")

    def poll(self) -> "RunTail":
        for _name, parts in self._new_lines(f"{receipts.SENT}-*.tsv"):
            ack_ns = receipts.number(parts, receipts.SENT_ACK_NS, signed=False) or 0
            if ack_ns >= self.since_ns:
                self.acked += 1
                self.last_ack_ns = max(self.last_ack_ns, ack_ns)
        for name, parts in self._new_lines(f"{receipts.RECV}-*.tsv"):
            if (receipts.number(parts, receipts.RECV_RECV_NS, signed=False) or 0) < self.since_ns:
                continue
            self.received += 1
            key = (name if self.per_subscriber else "", parts[receipts.ID])
            self._seen[key] += 1
            self.duplicated += self._seen[key] == 2  # count each id once, however often it came back
        return self


@dataclass
class State:
    """What the screen shows; :func:`render` draws it."""

    stack: str
    mode: str
    services: list[stats.ServiceStats] = field(default_factory=list)
    broker: stats.StackStats | None = None  # the broker's latest answer (topology, backlog)
    broker_at_ns: int = 0
    history: dict[str, deque] = field(default_factory=dict)  # service -> its recent rates
    run_id: str | None = None
    run: RunTail | None = None
    sent: int = 0  # made by the producers running now
    events: deque = field(default_factory=lambda: deque(maxlen=EVENTS_SHOWN))  # (ns, source, text)
    started_ns: int = field(default_factory=time.time_ns)


def _created_ns(text: str) -> int:
    """Docker's ``Created`` (``2026-12-05T10:29:52.170468085Z``), to the second."""
    try:
        return int(datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()) * 10**9
    except ValueError:
        return 0


def _clock(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).strftime("%H:%M:%S")


def render(state: State, now_ns: int | None = None) -> Group:
    now_ns = now_ns or time.time_ns()
    broker = state.broker
    nodes = {s.name: s for s in (broker.services if broker else [])}
    prefix = f"{PROJECT_PREFIX}{state.stack}-"  # each container's name, shortened to its service and number
    services = Table(title=f"{state.stack} (mode {state.mode or '?'}; containers {prefix}…)  {_clock(now_ns)}",
                     title_justify="left",
                     expand=False, box=None, padding=(0, 1))
    # The numbers keep their width; a long node list or backlog text gives way first.
    for column, justify, least, most in (("SERVICE", "left", 10, None), ("ROLE", "left", 8, None),
                                         ("STATE", "left", 10, None), ("RATE/S", "right", 7, None),
                                         (f"LAST {HISTORY} S", "left", HISTORY, HISTORY), ("COUNT", "right", 7, None),
                                         ("NODE", "left", 8, 34), ("BACKLOG", "left", 8, 26)):
        services.add_column(column, justify=justify, no_wrap=True, overflow="ellipsis", min_width=least,
                            max_width=most)
    for s in state.services:
        known = nodes.get(s.name)
        services.add_row(s.name.removeprefix(prefix), s.role, s.state, f"{s.rate:,.1f}", sparkline(list(state.history.get(s.name, ()))),
                         f"{s.count:,}", (known.node if known and known.node else s.node) or "-",
                         (known.backlog if known else "-") if s.role == "consumer" else "")
    if not state.services:
        services.add_row("(no producer or consumer running)", "", "", "", "", "", "", "")
    parts: list = [services]

    cluster = Table(title="broker" + (f" (asked {(now_ns - state.broker_at_ns) / 1e9:.0f} s ago)"
                                      if state.broker_at_ns else " (asking…)"),
                    title_justify="left", box=None, padding=(0, 1), show_header=False)
    cluster.add_column("what")
    cluster.add_column("state")
    for what, how in (broker.topology if broker else []):
        cluster.add_row(what, how)
    if broker and broker.backlog:
        cluster.add_row("backlog", f"{sum(broker.backlog.values()):,} message(s) waiting")
    for error in ((broker.topology_error, broker.broker_error) if broker else ()):
        if error:
            cluster.add_row("unavailable", error)
    parts.append(cluster)

    if state.run is not None:
        run = state.run
        since = f"{(now_ns - run.last_ack_ns) / 1e9:,.1f} s ago" if run.last_ack_ns else "none yet"
        parts.append(Text(f"run {state.run_id}: sent {state.sent:,} (producers running now), acked {run.acked:,}, "
                          f"received {run.received:,}, duplicated {run.duplicated:,}; last ack {since}"))
    else:
        parts.append(Text("no run yet: `invoke produce` starts one"))

    shown = Table(title="events", title_justify="left", box=None, padding=(0, 1), show_header=False)
    shown.add_column("time")
    shown.add_column("from")
    shown.add_column("what")
    for ns, source, text in sorted(state.events, key=lambda e: e[0]):
        shown.add_row(_clock(ns), source, text)
    if not state.events:
        shown.add_row("", "", "none since top started")
    parts.append(shown)
    parts.append(Text(f"status files, receipts and Docker every {SERVICE_EVERY:g} s, the broker every "
                      f"{BROKER_EVERY:g} s · q or Ctrl-C quits", style="dim"))
    return Group(*parts)


def changes(before: list[tuple[str, str]], after: list[tuple[str, str]]) -> list[str]:
    """What moved in the broker's view: a leader, a replica set, a node's state."""
    old, new = dict(before), dict(after)
    return [f"{what}: {old[what]} → {how}" for what, how in new.items() if what in old and old[what] != how]


class _BrokerPoller(threading.Thread):
    """Asks the broker every :data:`BROKER_EVERY` seconds; :meth:`latest` has its last answer."""

    def __init__(self, config: LabConfig, stack: Stack, mode: str, client):
        super().__init__(daemon=True)
        self.config, self.stack, self.mode, self.client = config, stack, mode, client
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: tuple[stats.StackStats, int] | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                result, views = stats.collect_services(self.config, self.stack, self.client, self.mode)
                stats.add_broker_view(self.config, self.stack, self.mode, result, views)
            except Exception as exc:  # Docker itself did not answer: show it and try again
                result = stats.StackStats(self.stack.name, self.mode, broker_error=f"{type(exc).__name__}: {exc}"[:140])
            with self._lock:
                self._latest = (result, time.time_ns())
            self.stop.wait(BROKER_EVERY)

    def latest(self) -> tuple[stats.StackStats, int] | None:
        with self._lock:
            return self._latest


class _DockerEvents(threading.Thread):
    """Follows Docker's event stream for the stack's containers."""

    def __init__(self, client, stack: Stack):
        super().__init__(daemon=True)
        self.queue: deque = deque()
        self.stream = client.events(decode=True, since=int(time.time()), filters={
            "type": "container", "label": f"com.docker.compose.project={stack.project}"})

    def run(self) -> None:
        try:
            for event in self.stream:
                text = docker_event_text(event)
                if text:
                    self.queue.append((int(event.get("timeNano") or time.time_ns()), "docker", text))
        except Exception:  # the stream was closed (top is stopping) or the engine went away
            return


class _Keys:
    """``q`` from the terminal, read a key at a time (no Enter needed), or nothing without one."""

    def __init__(self):
        self.fd = sys.stdin.fileno() if sys.stdin and sys.stdin.isatty() else None
        self.saved = None

    def __enter__(self) -> "_Keys":
        if self.fd is not None:
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *_exc) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def quit_within(self, seconds: float) -> bool:
        """Wait up to ``seconds``; true if ``q`` was pressed."""
        if self.fd is None:
            time.sleep(max(0.0, seconds))
            return False
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready and os.read(self.fd, 1) in (b"q", b"Q"):
                return True
        return False


def _shown(found: list[events.Event]) -> list[tuple[int, str, str]]:
    """The lab's events as lines; a fault's start is left to its first step, which says the same."""
    return [(e.ns, "lab", e.text) for e in found if e.kind != "fault"]


def watch(config: LabConfig, stack_name: str, duration: float | None = None) -> None:
    """Run the live view until ``q``, Ctrl-C, or ``duration`` seconds (at most :data:`MAX_SECONDS`)."""
    if duration is not None and not 0 < duration <= MAX_SECONDS:
        raise UsageError(f"--duration must be more than 0 and at most {MAX_SECONDS:g} seconds, got {duration!r}")
    client = preflight.docker_client()
    stack = running_stack(stack_name, client)
    mode = current_mode(client, stack)
    state = State(stack.name, mode)
    created_ns = min((_created_ns(c.attrs.get("Created", "")) for c in client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={stack.project}"})), default=0)
    per_subscriber = mode_info(stack.broker, mode).kind != "competing" if mode else False
    lab_events, offset = events.read(config.events_file, stack.name, since_ns=state.started_ns - EVENTS_BEFORE_S * 10**9)
    state.events.extend(_shown(lab_events))
    broker = _BrokerPoller(config, stack, mode, client)
    docker_events = _DockerEvents(client, stack)
    broker.start()
    docker_events.start()
    deadline = time.monotonic() + (duration or MAX_SECONDS)
    topology: list[tuple[str, str]] | None = None
    try:
        with _Keys() as keys, Live(render(state), auto_refresh=False, screen=sys.stdout.isatty(),
                                   redirect_stdout=False) as live:
            while time.monotonic() < deadline:
                tick = time.monotonic()
                try:
                    result, _views = stats.collect_services(config, stack, client, mode)
                except docker.errors.DockerException as exc:  # the engine is busy or restarting: try again
                    state.events.append((time.time_ns(), "top", f"Docker did not answer: {str(exc)[:100]}"))
                    result = stats.StackStats(stack.name, mode, services=state.services)
                state.services = result.services
                state.sent = sum(s.sent for s in result.services if s.role == "producer")
                for s in state.services:
                    state.history.setdefault(s.name, deque(maxlen=HISTORY)).append(s.rate)
                run_id = current_run(config.ledger_dir, stack)
                if run_id != state.run_id:
                    state.run_id = run_id
                    state.run = RunTail(ledger.run_dir(config.ledger_dir, run_id), per_subscriber,
                                        created_ns if run_id == STEADY_RUN else 0) if run_id else None
                if state.run is not None:
                    state.run.poll()
                new, offset = events.read(config.events_file, stack.name, offset=offset)
                state.events.extend(_shown(new))
                while docker_events.queue:
                    state.events.append(docker_events.queue.popleft())
                latest = broker.latest()
                if latest is not None:
                    state.broker, state.broker_at_ns = latest
                    if topology is not None:
                        state.events.extend((state.broker_at_ns, "broker", text)
                                            for text in changes(topology, state.broker.topology))
                    if state.broker.topology:
                        topology = state.broker.topology
                live.update(render(state), refresh=True)
                if keys.quit_within(SERVICE_EVERY - (time.monotonic() - tick)):
                    break
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop.set()
        docker_events.stream.close()
