"""The final read: is every acked message still in the broker's log, where the broker put it?

Consumers prove delivery; they cannot prove that the broker kept what it acknowledged. A
consumer may read a write from an old Redis primary, or an old Kafka leader, that its successor
never had: delivered, then gone from the log, so a replay or a new consumer group never sees it.
So, as Jepsen's final read does, the producers record where the broker put each acked message
(``pos`` in ``sent-*.tsv``: Kafka partition and offset, a Redis entry id), and afterwards the
log is read at those places, independently of the consumers. An acked message whose id is not
at its place is *gone from the log*, whatever the consumers got.

A queue (RabbitMQ classic or quorum) forgets what it delivered: there is nothing to read
back, and the final read says so instead of passing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import receipts

#: Runs with more acked messages than this are not read back (it would read the whole log again).
LIMIT = 2_000_000
SAMPLE = 5


@dataclass
class FinalRead:
    """What the final read of one run found; ``read`` is False when nothing was read (``note`` says why)."""

    read: bool
    by: str = ""  # what a position is: "partition and offset", "stream entry id"
    checked: int = 0  # acked messages with a recorded position
    gone: int = 0  # ... whose id is not at that position in the log now
    gone_received: int = 0  # ... of which a consumer had received (delivered, then gone)
    gone_ids: list[str] = field(default_factory=list)  # every one, sorted
    note: str = ""


def _placed(path: Path, unplaced: bool, into: dict[str, str]) -> dict[str, str]:
    """Add each acked id of one sent file and its recorded position to ``into`` (an id already
    there keeps its first position); with ``unplaced``, ids without a position too (as "")."""
    for parts in receipts.lines(path):
        pos = receipts.field(parts, receipts.SENT_POS)
        if (pos or unplaced) and parts[receipts.ID] not in into:
            into[parts[receipts.ID]] = pos
    return into


def positions(directory: Path, unplaced: bool = False) -> dict[str, str]:
    """Acked id -> the position its producer recorded (the first line of an id wins); with
    ``unplaced``, acked ids without a position too (as "")."""
    found: dict[str, str] = {}
    for _name, path in receipts.files(directory, receipts.SENT):
        _placed(path, unplaced, found)
    return found


def positions_by_producer(directory: Path, unplaced: bool = False) -> dict[str, dict[str, str]]:
    """The same, one map per producer (by the name of its sent file)."""
    return {name: _placed(path, unplaced, {}) for name, path in receipts.files(directory, receipts.SENT)}


def received_ids(directory: Path, among: set[str]) -> set[str]:
    """Which of ``among`` a consumer received."""
    seen: set[str] = set()
    for _name, path in receipts.files(directory, receipts.RECV):
        seen.update(parts[receipts.ID] for parts in receipts.lines(path) if parts[receipts.ID] in among)
    return seen


def not_read(note: str) -> FinalRead:
    return FinalRead(read=False, note=note)


def read_back(directory: Path, by: str, read_log: Callable[[list[str]], dict[str, str]]) -> FinalRead:
    """Read the log at every recorded position of the run in ``directory``; ``read_log`` maps
    positions to the ids found there (the broker's ``read_log``)."""
    recorded = positions(directory)
    if not recorded:
        return not_read("no positions on record: the mode keeps no log (pub/sub), or the receipts predate positions")
    if len(recorded) > LIMIT:
        return not_read(f"{len(recorded):,} acked messages is more than the final read reads ({LIMIT:,})")
    logged = read_log(sorted(set(recorded.values())))
    gone = sorted(i for i, pos in recorded.items() if logged.get(pos) != i)
    return FinalRead(read=True, by=by, checked=len(recorded), gone=len(gone),
                     gone_received=len(received_ids(directory, set(gone))), gone_ids=gone)
