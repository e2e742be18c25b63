"""`invoke replay`: read a log again, and check what was read against the ledger.

Logs can be read again; queues cannot. A Kafka topic is read from the beginning, an offset or a
time by a consumer of no group (``assign``); a Redis stream by ``XRANGE`` from the beginning,
an entry id or a time. Nothing a consumer group committed or holds pending moves, so the running
consumers are not disturbed. A RabbitMQ classic or quorum queue forgets what it delivered: it
cannot be read again, and `replay` says so in one line.

What was read is checked against the receipts: every message of a run this ledger holds must be
one its producer recorded as acked, at the place the broker gave it (``pos``), and every acked
message whose place lies inside the range read must have been read, for each producer of which
something was read (a run's receipts can outlive the log they were written for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from mqlab_services.envelope import decode

from .. import brokers, ledger, tables
from ..config import LabConfig
from ..errors import LabError, UsageError
from ..stacks import get_stack
from . import preflight
from .containers import running_stack
from .lifecycle import current_mode

MAX_COUNT = 1_000_000
SHOWN = 20  # a range this short is printed whole; a longer one as a summary and its first rows


def parse_from(text: str) -> tuple[str, object]:
    """``beginning``, an offset (digits), a Redis entry id (``<ms>-<seq>``) or an ISO 8601 time
    (UTC unless it names its zone) -> (kind, value); anything else is one line that says what fits."""
    text = (text or "").strip()
    if text.lower() == "beginning":
        return "beginning", None
    if text.isdigit():
        return "offset", int(text)
    if re.fullmatch(r"\d+-\d+", text):
        return "entry", text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--from must be beginning, an offset, a Redis entry id (<ms>-<seq>) or a time such as "
                         f"2026-12-04T21:30:00, got {text!r}") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return "time", int(moment.timestamp() * 1e9)


def _order(pos: str) -> tuple[str, tuple[int, ...]]:
    """A position's partition ("" for a Redis stream) and its place in it, comparable."""
    lane, _, place = pos.partition(":") if pos.startswith("p") else ("", "", pos.lstrip("o"))
    return lane, tuple(int(x) for x in place.split("-") if x.isdigit())


@dataclass
class Check:
    """What was read, against the ledger."""

    read: int = 0
    matched: int = 0  # an acked message of a known run, at the place its producer recorded
    misplaced: list[str] = field(default_factory=list)  # of a known run, but not acked there
    unknown_runs: set[str] = field(default_factory=set)  # envelopes of runs this ledger does not have
    foreign: int = 0  # not envelopes (tutorial scripts, redis-cli, kcat)
    missing: list[str] = field(default_factory=list)  # acked, placed inside the range read, not read
    rows: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.misplaced and not self.missing


def _any_producer(by_producer: dict[str, dict[str, str]]) -> dict[str, str]:
    """Id -> position over every producer (the first producer's position of an id wins)."""
    found: dict[str, str] = {}
    for of_one in by_producer.values():
        for msg_id, pos in of_one.items():
            found.setdefault(msg_id, pos)
    return found


def check(config: LabConfig, read: list[tuple[str, bytes]]) -> Check:
    result, spans, seen, sources = Check(read=len(read)), {}, set(), {}
    recorded: dict[str, dict[str, dict[str, str]] | None] = {}  # run -> producer -> id -> position
    merged: dict[str, dict[str, str] | None] = {}  # run -> id -> position, any producer
    for pos, body in read:
        lane, place = _order(pos)
        low, high = spans.get(lane, (place, place))
        spans[lane] = (min(low, place), max(high, place))
        env = decode(body) if body else None
        if env is None:
            result.foreign += 1
            result.rows.append((pos, "-", "-", "(not an envelope)", "-"))
            continue
        seen.add((pos, env.id))
        sources.setdefault(env.run, set()).add(env.src)
        directory = ledger.run_dir(config.ledger_dir, env.run)
        if env.run not in recorded:
            recorded[env.run] = (ledger.final_read.positions_by_producer(directory, unplaced=True)
                                 if directory.is_dir() else None)
            merged[env.run] = _any_producer(recorded[env.run]) if recorded[env.run] is not None else None
        sent = merged[env.run]
        if sent is None:
            result.unknown_runs.add(env.run)
            verdict = "run not in this ledger"
        elif sent.get(env.id) == pos:
            result.matched += 1
            verdict = "acked here"
        elif sent.get(env.id) == "":  # the broker gave the producer no position (a RabbitMQ stream)
            result.matched += 1
            verdict = "acked (no position on record)"
        else:
            result.misplaced.append(env.id)
            verdict = "NOT acked here" if env.id not in sent else f"acked at {sent[env.id]}"
        result.rows.append((pos, env.run, str(env.seq), env.id, verdict))
    # Only the producers of which something was read are held to the range: a run's receipts
    # outlive the log they were written for (`invoke down --volumes` empties the log, not the
    # ledger; the steady run goes on across stacks), and a producer of an earlier log placed its
    # messages at positions the new log has reused.
    for run, by_producer in recorded.items():
        for msg_id, pos in ((i, p) for src in sources[run] for i, p in (by_producer or {}).get(src, {}).items()):
            if not pos:
                continue
            lane, place = _order(pos)
            if lane in spans and spans[lane][0] <= place <= spans[lane][1] and (pos, msg_id) not in seen:
                result.missing.append(msg_id)
    return result


HEADERS = ("position", "run", "seq", "id", "in the ledger")


def render(stack: str, mode: str, start: str, found: Check) -> str:
    rows = found.rows if found.read <= SHOWN else found.rows[:10]
    lines = [f"{stack} (mode {mode}): read {found.read:,} message(s) again from {start}",
             tables.render(HEADERS, rows, indent=2) if rows else "  (nothing there)"]
    if found.read > SHOWN:
        lines.append(f"  ... and {found.read - len(rows):,} more")
    lines.append(f"  acked at the place their producer recorded: {found.matched:,}; of runs this ledger does not "
                 f"have: {found.read - found.matched - len(found.misplaced) - found.foreign:,}; not envelopes: "
                 f"{found.foreign:,}")
    if found.misplaced:
        lines.append(f"  read but not acked there: {len(found.misplaced):,} (first: {', '.join(found.misplaced[:3])})")
    if found.missing:
        lines.append(f"  acked inside the range read, but not read: {len(found.missing):,} "
                     f"(first: {', '.join(found.missing[:3])})")
    lines.append("OK: the log holds what the ledger says was acked there" if found.ok else
                 "FAIL: the log and the ledger disagree")
    return "\n".join(lines)


def replay(config: LabConfig, stack_name: str, start_text: str, count: int) -> tuple[str, bool]:
    """Read the running stack's log again from ``start_text``; the table and whether it matched the ledger."""
    stack = get_stack(stack_name)
    start = parse_from(start_text)
    if not 1 <= count <= MAX_COUNT:
        raise UsageError(f"--count must be from 1 to {MAX_COUNT:,}, got {count!r}")
    client = preflight.docker_client()
    running_stack(stack.name, client)
    mode = current_mode(client, stack)
    broker = brokers.of(stack)
    try:
        read = broker.replay(config, mode, start, count)
    except UsageError:
        raise
    except Exception as exc:  # each client raises its own kind when the broker does not answer
        raise LabError(f"could not read {stack.name} again: {type(exc).__name__}: {str(exc)[:160]}") from None
    found = check(config, read)
    return render(stack.name, mode, start_text, found), found.ok
