"""Receipt files: the services' side of the delivery ledger.

Every service appends one line per message to its own file under the shared ledger
directory; the host merges the files to account for each message by id.

``<ledger_dir>/<run_id>/sent-<producer name>.tsv``, written only after the broker confirmed::

    msg_id <TAB> seq <TAB> send_ns <TAB> ack_ns <TAB> key <TAB> pos

``<ledger_dir>/<run_id>/recv-<consumer name>.tsv``, written and flushed after processing
and *before* the message is acked or committed::

    msg_id <TAB> src <TAB> seq <TAB> send_ns <TAB> recv_ns <TAB> key <TAB> lane

``<ledger_dir>/<run_id>/dead-<consumer name>.tsv``, written and flushed when the consumer
dead-letters a message it failed to process (after the dead-letter queue took it, before the
original is acked); such a message gets no ``recv`` line::

    msg_id <TAB> src <TAB> seq <TAB> attempts <TAB> reason <TAB> dead_ns

``attempts`` is how many times it was tried (``MQLAB_MAX_DELIVERIES`` normally), ``reason``
the last failure, one line (tabs and line breaks as spaces, at most 300 characters).

Times are nanoseconds since the Unix epoch (``send_ns`` is the envelope's ``ts_ns``).
``key`` is the message's routing key (RabbitMQ ``topic`` mode) or record key (Kafka), and
empty when there is none. ``pos`` is where the broker put the message, from its ack, for
reading it back from the log (``adapters.Acked``): ``p<N>:<offset>`` for Kafka partition N,
the entry id for a Redis stream, and empty where the broker gives none (RabbitMQ queues,
Redis pub/sub). Older files have no ``pos`` column; readers take it as empty. ``lane`` is where the broker keeps order (``adapters.Received``):
``p<N>`` for Kafka partition N, ``redelivered`` for a message that came again, else empty.
Tabs, line breaks and other control characters in a key or lane are written as ``?``.
Files have no header and are only ever appended to. A redelivered message gets a second
``recv`` line, which is how duplicates are counted. Lines are written whole, one
``write`` per flush, so a crash can at worst leave a torn last line, which readers skip.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from .envelope import Envelope

# A consumer may see many runs over its life; keep the files of the most recent ones open.
MAX_OPEN_FILES = 32


# Keys come from the wire (any Kafka client can set one); keep each receipt one line of columns.
_CONTROL = {code: "?" for code in (*range(32), 127)}


def clean_key(key: str | bytes | None) -> str:
    """A key as one TSV field: text (undecodable bytes escaped), control characters as ``?``."""
    if not key:  # the usual case: no key, no lane
        return ""
    if isinstance(key, (bytes, bytearray)):
        key = bytes(key).decode("utf-8", "backslashreplace")
    return key.translate(_CONTROL)


# Reasons are free text from exceptions: one field, one line.
_REASON_SPACES = {code: " " for code in (*range(32), 127)}
REASON_MAX = 300


def clean_reason(reason: str) -> str:
    """A failure reason as one TSV field: control characters as spaces, at most REASON_MAX characters."""
    text = str(reason).translate(_REASON_SPACES).strip()
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 3] + "..."


def dead_line(env: Envelope, attempts: int, reason: str, dead_ns: int) -> str:
    return f"{env.id}\t{env.src}\t{env.seq}\t{attempts}\t{clean_reason(reason)}\t{dead_ns}\n"


def sent_line(env: Envelope, ack_ns: int, key: str = "", pos: str = "") -> str:
    return f"{env.id}\t{env.seq}\t{env.ts_ns}\t{ack_ns}\t{clean_key(key)}\t{clean_key(pos)}\n"


def recv_line(env: Envelope, recv_ns: int, key: str = "", lane: str = "") -> str:
    return f"{env.id}\t{env.src}\t{env.seq}\t{env.ts_ns}\t{recv_ns}\t{clean_key(key)}\t{clean_key(lane)}\n"


class ReceiptWriter:
    """Buffers receipt lines per run id and appends them to ``<dir>/<run>/<kind>-<name>.tsv``.

    Call :meth:`flush` at the points that must be durable (before an ack, after a confirm).
    """

    def __init__(self, ledger_dir: str, kind: str, name: str, fsync: bool = False):
        if kind not in ("sent", "recv", "dead"):
            raise ValueError(f"kind must be 'sent', 'recv' or 'dead', got {kind!r}")
        self.ledger_dir = ledger_dir
        self.kind = kind
        self.name = name
        self.fsync = fsync
        self._files: OrderedDict[str, object] = OrderedDict()
        self._pending: dict[str, list[str]] = {}
        self.lines = 0

    def path(self, run_id: str) -> str:
        return os.path.join(self.ledger_dir, run_id, f"{self.kind}-{self.name}.tsv")

    def sent(self, env: Envelope, ack_ns: int, key: str = "", pos: str = "") -> None:
        self._add(env.run, sent_line(env, ack_ns, key, pos))

    def received(self, env: Envelope, recv_ns: int, key: str | bytes | None = "", lane: str = "") -> None:
        self._add(env.run, recv_line(env, recv_ns, key, lane))

    def dead(self, env: Envelope, attempts: int, reason: str, dead_ns: int) -> None:
        self._add(env.run, dead_line(env, attempts, reason, dead_ns))

    def _add(self, run_id: str, line: str) -> None:
        self._pending.setdefault(run_id, []).append(line)

    def flush(self) -> int:
        """Append every buffered line to its file and flush; returns the number of lines written."""
        written = 0
        for run_id, lines in self._pending.items():
            f = self._file(run_id)
            f.write("".join(lines))
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
            written += len(lines)
        self._pending.clear()
        self.lines += written
        return written

    def _file(self, run_id: str):
        f = self._files.get(run_id)
        if f is not None:
            self._files.move_to_end(run_id)
            return f
        os.makedirs(os.path.join(self.ledger_dir, run_id), exist_ok=True)
        f = open(self.path(run_id), "a", encoding="utf-8", newline="\n")
        self._files[run_id] = f
        while len(self._files) > MAX_OPEN_FILES:
            _, oldest = self._files.popitem(last=False)
            oldest.close()
        return f

    def next_seq(self, run_id: str) -> int:
        """The sequence number after the highest one in this service's file for ``run_id`` (0 if none).

        Lets a restarted producer continue its sequence instead of reusing numbers.
        """
        column = 1 if self.kind == "sent" else 2
        try:
            with open(self.path(run_id), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 65536))
                tail = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return 0
        seqs = [int(parts[column]) for parts in (line.split("\t") for line in tail)
                if len(parts) > column and parts[column].isdigit()]
        return max(seqs) + 1 if seqs else 0

    def close(self) -> None:
        self.flush()
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
