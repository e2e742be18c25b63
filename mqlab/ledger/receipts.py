"""Receipt files: the one reader of the lines the services append to a run's ledger directory.

Producers and consumers append one line per message to their own files under
``<ledger>/<run_id>/`` (see ``mqlab_services.ledger`` for the writer), fields split by tabs:

- ``sent-<producer>.tsv``: ``id  seq  send_ns  ack_ns  key  pos``, written after the broker confirmed it
  (``pos``: where the broker put it, for the final read; empty where it gives none);
- ``recv-<consumer>.tsv``: ``id  src  seq  send_ns  recv_ns  key  lane``, written after processing
  and before the ack;
- ``dead-<consumer>.tsv``: ``id  src  seq  attempts  reason  dead_ns``, written when the consumer
  gave up on a message and moved it to the dead-letter destination.

The column positions below are the one place that knows this layout: the Python engine, the
timeline and the tests read lines through :func:`lines`, and the DuckDB engine, which parses in
SQL, names its columns from the same constants. Receipts from before a field existed have
shorter lines: a missing field is read as absent, never as an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

SENT, RECV, DEAD = "sent", "recv", "dead"

#: Every kind of line starts with the message's id.
ID = 0
# sent-<producer>.tsv
SENT_SEQ, SENT_SEND_NS, SENT_ACK_NS, SENT_KEY, SENT_POS = 1, 2, 3, 4, 5
# recv-<consumer>.tsv
RECV_SRC, RECV_SEQ, RECV_SEND_NS, RECV_RECV_NS, RECV_KEY, RECV_LANE = 1, 2, 3, 4, 5, 6
# dead-<consumer>.tsv
DEAD_SRC, DEAD_SEQ, DEAD_ATTEMPTS, DEAD_REASON, DEAD_NS = 1, 2, 3, 4, 5


def files(directory: Path, kind: str) -> list[tuple[str, Path]]:
    """(name, path) of a run's files of ``kind`` (``sent``, ``recv`` or ``dead``), in path order:
    the order both engines number them in."""
    prefix = f"{kind}-"
    return [(path.stem[len(prefix):], path) for path in sorted(directory.glob(f"{prefix}*.tsv"))]


def lines(path: Path) -> Iterator[list[str]]:
    """The fields of each line of a receipt file that has an id. A line ends in ``\\n``, ``\\r\\n``
    or ``\\r``; bytes that are not UTF-8 are read as U+FFFD."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.endswith("\n"):  # a torn last line is still being written
                parts = line.rstrip("\n").split("\t")
                if parts[ID]:
                    yield parts


def receipt_number(text: str, signed: bool = True) -> int | None:
    """A number of a receipt line, as the DuckDB engine reads it too: ASCII digits, a '-' first
    if ``signed``, within 64 bits. Anything else (``x``, ``1.5``, `` 7``, ``+3``, ``1_000``) is None."""
    if text.isascii() and (text.isdigit() or signed and text[:1] == "-" and text[1:].isdigit()):
        value = int(text)
        if -1 << 63 <= value < 1 << 63:
            return value
    return None


def field(parts: list[str], index: int, default: str = "") -> str:
    """Field ``index`` of a line, or ``default`` where the line is too short to have it."""
    return parts[index] if len(parts) > index else default


def number(parts: list[str], index: int, signed: bool = True) -> int | None:
    """Field ``index`` of a line as a :func:`receipt_number`; None where it is missing or not one."""
    return receipt_number(parts[index], signed) if len(parts) > index else None


def delivery_times(parts: list[str]) -> tuple[int, int, int] | None:
    """(seq, send_ns, recv_ns) of a ``recv`` line; None for a line too short, or one whose seq or
    timestamps are not numbers: such a delivery counts, but is neither timed nor judged for order."""
    seq, sent_ns, received_ns = (number(parts, RECV_SEQ), number(parts, RECV_SEND_NS, signed=False),
                                 number(parts, RECV_RECV_NS, signed=False))
    if seq is None or sent_ns is None or received_ns is None:
        return None
    return seq, sent_ns, received_ns


def column(directory: Path, kind: str, index: int) -> dict[str, list[int]]:
    """One timestamp field of every line of a run's files of ``kind``, sorted, per file (by its
    name); a line whose field is missing or not a number is left out."""
    found = {}
    for name, path in files(directory, kind):
        values = (number(parts, index, signed=False) for parts in lines(path))
        found[name] = sorted(v for v in values if v is not None)
    return found
