"""The event file: what the lab did to a stack, and when, for `invoke top` and the run timelines.

``.mqlab/events.jsonl`` holds one JSON object per line, appended by every fault (`invoke chaos`
and each round of `invoke proof`, both through :func:`mqlab.faults.inject_fault`'s one path)
and by the proof's rounds::

    {"ns": 1700000000000000000, "stack": "rabbitmq", "kind": "fault", "fault": "kill-consumer",
     "id": "1700000000000000000-4242", "text": "kill-consumer on rabbitmq: ..."}

Kinds: ``fault`` (a fault began), ``step`` (one of its steps, as `chaos` prints it), ``healed``
(the fault was undone: ``fault``, ``id`` and ``started_ns`` say which), ``round`` (a proof
round began). Each line is written by one ``write`` on a file opened for appending, so
writers never interleave inside a line; a reader skips a line it cannot parse (torn by a
crash part-way) and a last line that has no newline yet (still being written).

:func:`windows` turns the ``fault`` and ``healed`` events into the fault windows a picture
shades; a fault with no ``healed`` event (interrupted) is open until the end of the time
asked about.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

FILE = "events.jsonl"
KINDS = ("fault", "step", "healed", "round")


@dataclass(frozen=True)
class Event:
    ns: int
    stack: str
    kind: str
    text: str
    fault: str = ""
    id: str = ""
    started_ns: int = 0  # healed: when the fault began


@dataclass(frozen=True)
class Window:
    start_ns: int
    end_ns: int
    label: str  # the fault's name


def path_of(state_dir: Path) -> Path:
    """The event file under the lab's state directory (``.mqlab``)."""
    return Path(state_dir) / FILE


def new_id() -> str:
    """An id that ties a fault's ``healed`` event to its ``fault`` event."""
    return f"{time.time_ns()}-{os.getpid()}"


def append(path: Path, stack: str, kind: str, text: str, *, fault: str = "", id: str = "",
           started_ns: int = 0, ns: int | None = None) -> Event:
    """Append one event as one line (one ``write`` to a file opened with ``O_APPEND``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    event = Event(time.time_ns() if ns is None else ns, stack, kind, text, fault, id, started_ns)
    line = json.dumps({k: v for k, v in event.__dict__.items() if v or k in ("ns", "stack", "kind", "text")},
                      separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return event


def _parse(line: bytes) -> Event | None:
    try:
        raw = json.loads(line)
        return Event(int(raw["ns"]), str(raw["stack"]), str(raw["kind"]), str(raw.get("text", "")),
                     str(raw.get("fault", "")), str(raw.get("id", "")), int(raw.get("started_ns", 0)))
    except (ValueError, KeyError, TypeError):
        return None


def read(path: Path, stack: str | None = None, since_ns: int = 0, offset: int = 0) -> tuple[list[Event], int]:
    """The events from byte ``offset`` on (of ``stack``, at or after ``since_ns``), and the
    offset to read from next time. A torn line is skipped; an unfinished last line is left
    for the next read."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1  # what follows the last newline is still being written
    events = [e for line in data[:end].splitlines() if (e := _parse(line)) is not None
              and (stack is None or e.stack == stack) and e.ns >= since_ns]
    return events, offset + end


def windows(events: list[Event], start_ns: int, end_ns: int) -> list[Window]:
    """The fault windows that overlap ``[start_ns, end_ns]``: from each ``fault`` event to the
    ``healed`` event with its id (or to ``end_ns`` when it has none)."""
    healed = {e.id: e.ns for e in events if e.kind == "healed" and e.id}
    found = []
    for e in events:
        if e.kind != "fault":
            continue
        until = healed.get(e.id, end_ns)
        if until >= start_ns and e.ns <= end_ns:
            found.append(Window(e.ns, until, e.fault or e.text))
    return found
