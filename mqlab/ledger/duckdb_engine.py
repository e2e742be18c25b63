"""The ledger's columnar engine: DuckDB reads the receipt files and SQL does the accounting.

:func:`mqlab.ledger.read_run` uses it by default; the pure-Python engine (:mod:`.python_engine`)
is the reference, and both give the same Report, field by field (tests/unit/test_ledger_engines.py).
Ten million messages are close to two GB of receipts: the Python engine holds every id in
dicts (several GB of memory), while this one loads each file once into a compressed table of a
scratch database and lets DuckDB aggregate, join and sort within a memory limit, spilling to
disk beyond it, up to a bound. The scratch database, its spill files and the pipes below live in
a temporary directory under ``.mqlab/scratch/``, beside the ledger, removed when the Report is
done: on the project's disk, not in ``TMPDIR``, which is often a tmpfs (memory). A scratch
directory that is full, too small or not writable ends in one line (:class:`ScratchError`).

A file is read up to its last complete line as found when its reading starts: a writer may
still be appending (``wait_for_run`` reads runs in progress), and a torn last line is still
being written. DuckDB reads the file through a named pipe fed exactly those bytes, so it never
sees a torn line or anything written later, and no file is copied to disk.

Each file becomes its own table, filled in file order (DuckDB keeps the order of a scan when it
inserts it, ``preserve_insertion_order``), so that ``rowid`` numbers its lines: the order checks
rely on that number, not on the order rows happen to come back in.

A number in a line is ASCII digits within 64 bits (a received seq may start with '-'), read the
same way by the Python engine (:func:`.receipts.receipt_number`): a received line whose numbers
are not is read as an old short line, counted but neither timed nor judged for order, and a sent
seq that is not is -1.

An id is a uuid4 in hex (32 lowercase hex digits) in practice: such an id is kept as the
number it spells (column ``h``, 16 bytes) and any other id as text (column ``t``, '' for hex
ids), so that the key ``(h, t)`` stands for every id exactly and the usual one is compact.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import duckdb

from mqlab_services.adapters.base import REDELIVERED

from ..errors import LabError
from ..modes import topic_matches
from . import receipts
from .receipts import (DEAD, DEAD_REASON, ID, RECV, RECV_KEY, RECV_LANE, RECV_RECV_NS, RECV_SEND_NS, RECV_SEQ,
                       RECV_SRC, SENT, SENT_KEY, SENT_SEQ)
from .report import Report, judge_order, latency_indices

MEMORY_LIMIT = "500MB"
# DuckDB's own bound is 90% of the free disk. Ten million messages (1.7 GB of receipts) spill
# about 0.75 GB beside a scratch database of about 0.4 GB: this is room for 25 times that.
SPILL_LIMIT = "20GB"
THREADS = 2
CHUNK = 1 << 20
QUIET = "SET enable_progress_bar = false"  # a session's setting: the caller prints what it wants

# Every field is read as text, as the Python engine splits lines: no quoting, a tab between
# fields, extra fields ignored, a line ending in \n, \r\n or \r. A missing field is NULL and an
# empty one '' (a field can never be a line break), so `c4 IS NOT NULL` says `len(parts) > 4`.
READ_OPTIONS = ("delim='\t', quote='', escape='', comment='', new_line='\\n', header=false, auto_detect=false, "
                "null_padding=true, strict_mode=false, nullstr=E'\\n'")

# A seq (SIGNED) or a timestamp, as the Python engine reads it: not a number is NULL.
SIGNED = "CASE WHEN regexp_full_match({0}, '-?[0-9]+') THEN TRY_CAST({0} AS BIGINT) END"
UNSIGNED = "CASE WHEN regexp_full_match({0}, '[0-9]+') THEN TRY_CAST({0} AS BIGINT) END"


def col(index: int) -> str:
    """The column DuckDB reads field ``index`` of a line into (see :mod:`.receipts` for which is which)."""
    return f"c{index}"


ID_FIELD = col(ID)

# The number 32 hex digits spell, in two halves (DuckDB before 2.0 reads at most 64 bits of hex).
HEX_NUMBER = (f"(('0x' || substr({ID_FIELD}, 1, 16))::UBIGINT::UHUGEINT << 64) "
              f"+ ('0x' || substr({ID_FIELD}, 17, 16))::UBIGINT")

# What each kind of file keeps of a line, after `f` (the file's number), `n` (the line's place
# in it) and the id's `h` and `t`; and how many fields of a line that takes.
TABLES = {
    SENT: ("seq BIGINT, key VARCHAR", SENT_KEY + 1,
           f"coalesce({UNSIGNED.format(col(SENT_SEQ))}, -1), coalesce({col(SENT_KEY)}, '')"),
    # `lat` is NULL on a line too short to be timed (and judged for order), or whose seq or
    # timestamps are not numbers.
    RECV: ("src VARCHAR, seq BIGINT, lat BIGINT, key VARCHAR, lane VARCHAR", RECV_LANE + 1,
           f"coalesce({col(RECV_SRC)}, ''), {SIGNED.format(col(RECV_SEQ))}, "
           f"CASE WHEN {SIGNED.format(col(RECV_SEQ))} IS NOT NULL "
           f"THEN {UNSIGNED.format(col(RECV_RECV_NS))} - {UNSIGNED.format(col(RECV_SEND_NS))} END, "
           f"coalesce({col(RECV_KEY)}, ''), coalesce({col(RECV_LANE)}, '')"),
    DEAD: ("reason VARCHAR", DEAD_REASON + 1, f"coalesce({col(DEAD_REASON)}, 'unknown')"),
}


def complete_length(fd: int) -> int:
    """Bytes up to the last line break; what follows it is a line still being written.

    A lone carriage return ends a line too, as it does for Python's text files."""
    end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


class ScratchError(LabError):
    """The scratch directory is full, too small for the run, or not writable."""


def scratch_error(where: str | Path, exc: BaseException) -> ScratchError:
    """One line: what failed (DuckDB's or the system's own first line), where, and what to do."""
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300].rstrip(".")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return ScratchError(f"the ledger's engine ran out of room ({MEMORY_LIMIT} of memory, {SPILL_LIMIT} of "
                            f"scratch space in {where}): {detail}. Ten million messages take about 1.2 GB of "
                            "it: check that the run's receipt files are what you expect")
    return ScratchError(f"the ledger's engine could not write its scratch files in {where}: {detail}. Free some "
                        "disk space there (ten million messages take about 1.2 GB) or make it writable, "
                        "then try again")


class BoundedPipe:
    """A named pipe that gives its reader the first ``complete_length`` bytes of a file, then
    end of file, as valid UTF-8: bytes that are not are replaced by U+FFFD, as the Python engine
    decodes them (a torn write followed by more lines can leave such bytes inside a line)."""

    def __init__(self, source: Path, directory: str, name: str):
        self.path = os.path.join(directory, name)
        self.error: BaseException | None = None
        self._src = os.open(source, os.O_RDONLY)
        try:
            self._length = complete_length(self._src)
            try:
                os.mkfifo(self.path)
            except OSError as exc:  # the directory is full or read-only, or holds no named pipes
                raise scratch_error(directory, exc) from None
        except BaseException:
            os.close(self._src)  # else each pipe that could not be made leaks a descriptor
            raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        out = os.open(self.path, os.O_WRONLY)  # waits until the reader opens the pipe
        try:
            for data in self._chunks():
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view):]
        except BrokenPipeError:  # the reader stopped early (an error): nothing more to give
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by close(), in the caller's thread
            self.error = exc
        finally:
            os.close(out)

    def _chunks(self):
        """The bytes, in chunks cut after a line break (so that no character is cut in two),
        decoded and encoded again only when one is not valid UTF-8."""
        offset, size = 0, CHUNK
        while offset < self._length and not self._stop.is_set():
            data = os.pread(self._src, min(size, self._length - offset), offset)
            if not data:
                raise OSError(f"{self._length - offset} bytes missing at the end of a receipt file")
            end = len(data)
            if offset + end < self._length:
                end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
                if not end:  # a line longer than the chunk
                    size *= 2
                    continue
            offset += end
            chunk = memoryview(data)[:end]
            try:
                str(chunk, "utf-8")
            except UnicodeDecodeError:
                chunk = str(chunk, "utf-8", "replace").encode("utf-8")
            yield chunk

    def close(self) -> None:
        """Stop the writer (opening the other end if the reader never did), then clean up."""
        self._stop.set()
        if self._thread.is_alive():
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                while self._thread.is_alive():
                    try:
                        os.read(fd, CHUNK)
                    except BlockingIOError:
                        pass
                    self._thread.join(0.01)
            finally:
                os.close(fd)
        os.close(self._src)
        os.unlink(self.path)
        if self.error is not None:
            raise self.error


def _load_file(con: duckdb.DuckDBPyConnection, tmp: str, kind: str, number: int, path: Path) -> None:
    """One file into its own table, ``<kind>_<number>``, a row a line, in file order."""
    columns, width, select = TABLES[kind]
    fields = ", ".join(f"'{col(i)}': 'VARCHAR'" for i in range(width))
    table = f"{kind}_{number}"
    con.execute(f"CREATE TABLE {table} (h UHUGEINT, t VARCHAR, {columns})")
    pipe = BoundedPipe(path, tmp, table)
    source = pipe.path.replace("'", "''")
    try:
        con.execute(f"""
            INSERT INTO {table}
            SELECT CASE WHEN hex THEN {HEX_NUMBER} ELSE 0 END, CASE WHEN hex THEN '' ELSE {ID_FIELD} END, {select}
            FROM (SELECT *, regexp_full_match({ID_FIELD}, '[0-9a-f]{{32}}') AS hex
                  FROM read_csv('{source}', columns={{{fields}}}, {READ_OPTIONS})
                  WHERE {ID_FIELD} <> '')""")
    finally:
        pipe.close()


def _load(con: duckdb.DuckDBPyConnection, tmp: str, files: list[tuple[str, int, Path]]) -> None:
    """Every file once, the largest first, THREADS at a time (DuckDB reads a pipe on one thread);
    then a view of each kind over its tables, with ``f`` the file's number and ``n`` the line's
    place in it."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for file in sorted(files, key=lambda file: -file[2].stat().st_size):
        todo.put(file)

    def work(cursor: duckdb.DuckDBPyConnection) -> None:
        while True:
            try:
                file = todo.get_nowait()
            except queue.Empty:
                return
            _load_file(cursor, tmp, *file)

    cursors = [con.cursor() for _ in range(THREADS)]
    try:
        for cursor in cursors:
            cursor.execute(QUIET)
        with ThreadPoolExecutor(THREADS) as pool:
            try:
                for done in [pool.submit(work, cursor) for cursor in cursors]:
                    done.result()
            except BaseException:  # an error, or Ctrl-C: the other loads stop too
                while not todo.empty():
                    todo.get_nowait()
                for cursor in cursors:
                    cursor.interrupt()
                raise
    finally:
        for cursor in cursors:
            cursor.close()
    for kind, (columns, _width, _select) in TABLES.items():
        con.execute(f"CREATE TABLE {kind}_none (f INTEGER, n BIGINT, h UHUGEINT, t VARCHAR, {columns})")
        parts = [f"SELECT * FROM {kind}_none"]
        parts += [f"SELECT {number} AS f, rowid AS n, * FROM {kind}_{number}"
                  for k, number, _path in files if k == kind]
        con.execute(f"CREATE VIEW {kind} AS " + " UNION ALL ".join(parts))


def read_report(directory: Path, report: Report, *, scratch: Path, order_scope: str, drop_dead: bool,
                binding: str | None, sample_lost: int) -> None:
    """Fill ``report`` (whose kind is decided) from the receipt files in ``directory``, with a
    scratch database in a temporary directory under ``scratch``.

    ``order_scope`` is the mode's, ``drop_dead`` says failed messages were dropped (a lossy
    mode) rather than dead-lettered, ``binding`` is the topic binding of a routed run."""
    producers, consumers = receipts.files(directory, SENT), receipts.files(directory, RECV)
    numbers = {name: number for number, (name, _path) in enumerate(consumers)}
    files = [(SENT, i, path) for i, (_name, path) in enumerate(producers)]
    files += [(RECV, i, path) for i, (_name, path) in enumerate(consumers)]
    # A dead-letter file has its consumer's number, or one of its own past them.
    files += [(DEAD, numbers.get(name, len(consumers) + i), path)
              for i, (name, path) in enumerate(receipts.files(directory, DEAD))]
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.TemporaryDirectory(prefix="ledger-", dir=scratch)
    except OSError as exc:
        raise scratch_error(scratch, exc) from None
    config = {"memory_limit": MEMORY_LIMIT, "threads": THREADS, "preserve_insertion_order": True,
              "temp_directory": os.path.join(tmp.name, "spill"), "max_temp_directory_size": SPILL_LIMIT}
    # A full disk fails a write (IOException) or a commit (TransactionException: nothing else
    # writes to this database); OutOfMemoryException is the memory limit and the spill bound reached.
    try:
        with tmp, closing(duckdb.connect(os.path.join(tmp.name, "ledger.duckdb"), config=config)) as con:
            con.execute(QUIET)
            _load(con, tmp.name, files)
            _account(con, report, producers, consumers, order_scope=order_scope, drop_dead=drop_dead,
                     binding=binding, sample_lost=sample_lost)
    except (duckdb.IOException, duckdb.TransactionException, duckdb.OutOfMemoryException) as exc:
        raise scratch_error(scratch, exc) from None


def _account(con: duckdb.DuckDBPyConnection, report: Report, producers: list[tuple[str, Path]],
             consumers: list[tuple[str, Path]], *, order_scope: str, drop_dead: bool, binding: str | None,
             sample_lost: int) -> None:
    """The Report from the loaded files."""
    lines = dict(con.execute("SELECT f, count(*) FROM sent GROUP BY f").fetchall())
    report.per_producer = {name: lines.get(i, 0) for i, (name, _path) in enumerate(producers)}
    lines = dict(con.execute("SELECT f, count(*) FROM recv GROUP BY f").fetchall())
    report.per_consumer = {name: lines.get(i, 0) for i, (name, _path) in enumerate(consumers)}
    report.dead_reasons = dict(con.execute("SELECT reason, count(*) FROM dead GROUP BY reason").fetchall())
    report.dead_lettered = con.execute("SELECT count(*) FROM (SELECT DISTINCT h, t FROM dead)").fetchone()[0]
    if drop_dead:
        report.dropped = report.dead_lettered
    # What a consumer gave up on is accounted for, unless the mode dropped it: lost.
    con.execute("CREATE VIEW gave_up AS SELECT f, h, t FROM dead" + (" WHERE false" if drop_dead else ""))
    if report.kind == "fanout":
        _fanout(con, report, consumers, sample_lost)
    else:
        _shared(con, report, binding, sample_lost)
    _latencies(con, report)
    _order(con, report, len(consumers), order_scope)


def _shared(con: duckdb.DuckDBPyConnection, report: Report, binding: str | None, sample_lost: int) -> None:
    """Competing and routed kinds: each acked message is due once to the group (routed: if the
    key of its last sent line matches the binding). One aggregate over every line, by id."""
    sent, due, none = "", "true", ""
    if report.kind == "routed":
        # The same function as the Python engine's decides, once a key.
        keys = [key for (key,) in con.execute("SELECT DISTINCT key FROM sent").fetchall()
                if topic_matches(binding, key)]
        con.execute("CREATE TEMP TABLE routed AS SELECT unnest(?::VARCHAR[]) AS key", [keys])
        sent = ", (f::BIGINT << 40) + n AS pos, key IN (SELECT key FROM routed) AS due"
        due, none = "arg_max(due, pos)", ", NULL, NULL"
    lost = "sent AND due AND received = 0 AND NOT dead"
    (report.sent, report.unique_received, received, report.duplicated, report.unacked_received,
     unrouted, report.lost, hexes, texts) = con.execute(f"""
        SELECT count(*) FILTER (sent), count(*) FILTER (received > 0), coalesce(sum(received), 0),
               count(*) FILTER (received > 1), count(*) FILTER (received > 0 AND NOT sent),
               count(*) FILTER (sent AND NOT due), count(*) FILTER ({lost}),
               min(h, ?) FILTER ({lost} AND t = ''), min(t, ?) FILTER ({lost} AND t <> '')
        FROM (SELECT h, t, bool_or(k = 0) AS sent, {due} AS due, count(*) FILTER (k = 1) AS received,
                     bool_or(k = 2) AS dead
              FROM (SELECT h, t, 0::UTINYINT AS k{sent} FROM sent
                    UNION ALL SELECT h, t, 1{none} FROM recv
                    UNION ALL SELECT h, t, 2{none} FROM gave_up)
              GROUP BY h, t)
        """, [max(sample_lost, 1)] * 2).fetchone()
    report.received = int(received)
    report.extra_deliveries = report.received - report.unique_received
    report.lost_ids = _first_ids(hexes, texts, sample_lost)
    if report.kind == "routed":
        report.unrouted = unrouted


def _fanout(con: duckdb.DuckDBPyConnection, report: Report, consumers: list[tuple[str, Path]],
            sample_lost: int) -> None:
    """Each subscriber is due every message a producer sent from its first delivery (or dead
    letter) on; what it dead-lettered is accounted for, not lost."""
    # The last line of an id wins, as in a dict filled in file order.
    con.execute("CREATE TEMP TABLE acked AS SELECT h, t, arg_max(f, pos) AS f, arg_max(seq, pos) AS seq "
                "FROM (SELECT *, (f::BIGINT << 40) + n AS pos FROM sent) GROUP BY h, t")
    report.sent = con.execute("SELECT count(*) FROM acked").fetchone()[0]
    con.execute("CREATE TEMP TABLE counts AS SELECT f, h, t, count(*) AS c FROM recv GROUP BY ALL")
    report.unique_received, received, report.unacked_received = con.execute(
        "SELECT count(*), coalesce(sum(c), 0), count(*) FILTER (a.h IS NULL) "
        "FROM (SELECT h, t, sum(c) AS c FROM counts GROUP BY h, t) LEFT JOIN acked a USING (h, t)").fetchone()
    report.received = int(received)
    if not consumers:
        report.lost = report.sent
        report.lost_ids = _first_ids(*con.execute(
            "SELECT min(h, ?) FILTER (t = ''), min(t, ?) FILTER (t <> '') FROM acked", [max(sample_lost, 1)] * 2
        ).fetchone(), sample_lost)
        return
    con.execute("CREATE TEMP TABLE consumer AS SELECT unnest(range(?)) AS f", [len(consumers)])
    con.execute("CREATE TEMP TABLE seen AS SELECT f, h, t FROM counts UNION SELECT f, h, t FROM gave_up WHERE f < ?",
                [len(consumers)])
    con.execute("""
        CREATE TEMP TABLE missing AS
        WITH first AS (SELECT s.f, a.f AS producer, min(a.seq) AS seq
                       FROM seen s JOIN acked a USING (h, t) GROUP BY ALL),
             due AS (SELECT c.f, a.h, a.t FROM consumer c CROSS JOIN acked a
                     LEFT JOIN first ON first.f = c.f AND first.producer = a.f
                     WHERE first.seq IS NULL OR a.seq >= first.seq)
        SELECT * FROM due ANTI JOIN seen USING (f, h, t)
        """)
    missing = dict(con.execute("SELECT f, count(*) FROM missing GROUP BY f").fetchall())
    report.missing_per_consumer = {name: missing.get(i, 0) for i, (name, _path) in enumerate(consumers)}
    report.lost = sum(missing.values())
    # An id is missing once a consumer at most: that many smallest hold sample_lost different ones.
    report.lost_ids = _first_ids(*con.execute(
        "SELECT min(h, ?) FILTER (t = ''), min(t, ?) FILTER (t <> '') FROM missing",
        [max(sample_lost, 1) * len(consumers)] * 2).fetchone(), sample_lost)
    report.duplicated, extra = con.execute(
        "SELECT count(*) FILTER (c > 1), coalesce(sum(c) - count(*), 0) FROM counts").fetchone()
    report.extra_deliveries = int(extra)


def _first_ids(hexes: list[int] | None, texts: list[str] | None, sample: int) -> list[str]:
    """The first ids in text order, from the smallest hex ids (in the order of their text too)
    and the smallest other ids."""
    return sorted({f"{h:032x}" for h in hexes or ()} | set(texts or ()))[:sample]


def _latencies(con: duckdb.DuckDBPyConnection, report: Report) -> None:
    n = con.execute("SELECT count(lat) FROM recv").fetchone()[0]
    if n:
        p50, p99 = latency_indices(n)
        at = dict(con.execute("SELECT i, lat FROM (SELECT lat, row_number() OVER (ORDER BY lat) - 1 AS i "
                              "FROM recv WHERE lat IS NOT NULL) WHERE i IN (?, ?)", [p50, p99]).fetchall())
        report.latency_p50_ms, report.latency_p99_ms = at[p50] / 1e6, at[p99] / 1e6


def _order(con: duckdb.DuckDBPyConnection, report: Report, consumers: int, scope: str) -> None:
    """Order breaks: a first delivery in its consumer's file, not marked redelivered, whose seq
    is below one before it in that file for the same (producer, key, lane): its stream."""
    con.execute("CREATE TEMP TABLE repeated AS SELECT f, h, t, min(n) AS first FROM recv GROUP BY ALL "
                "HAVING count(*) > 1")
    # Streams numbered, so that the window sorts numbers only; lines marked redelivered have none.
    con.execute("CREATE TEMP TABLE streams AS "
                "SELECT row_number() OVER () AS stream, *, starts_with(lane, 'p') AS in_lane "
                "FROM (SELECT DISTINCT f, src, key, lane FROM recv WHERE lat IS NOT NULL AND lane <> ?)",
                [REDELIVERED])
    in_lanes, elsewhere = con.execute("""
        SELECT count(*) FILTER (in_lane), count(*) FILTER (NOT in_lane)
        FROM (SELECT in_lane,
                     seq < greatest(-1, max(seq) OVER (PARTITION BY stream ORDER BY n ROWS UNBOUNDED PRECEDING)) AS back
              FROM (SELECT s.stream, s.in_lane, r.n, r.seq
                    FROM recv r JOIN streams s USING (f, src, key, lane)
                    LEFT JOIN repeated d ON d.f = r.f AND d.h = r.h AND d.t = r.t
                    WHERE r.lat IS NOT NULL AND (d.first IS NULL OR r.n = d.first)))
        WHERE back
        """).fetchone()
    judge_order(report, in_lanes, elsewhere, consumers, scope)
