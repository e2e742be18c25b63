"""`invoke bench ledger`: the ledger's own speed, with no broker.

It writes a run of N messages straight to receipt files (the format of
:mod:`mqlab.ledger.receipts`), with a known number of lost, duplicated and out-of-order ids
planted in it, then

- times `verify`'s reading of it (:func:`mqlab.ledger.read_run`, the DuckDB engine) in a
  process of its own, for its elapsed time and peak resident memory, and checks that the
  Report finds exactly the planted numbers;
- times the **floor**: one DuckDB scan of the same files that counts their distinct ids, the
  least any reading of them must do, held to the engine's memory bound (spilling past it, as
  verify may), and once more with DuckDB's own bound (80% of RAM);

and prints time, peak RSS and verify ÷ floor (the floor in the same memory is the one judged).

The run: one producer, two competing consumers (a Redis ``stream`` run), ids in the
producers' form, timestamps of 100,000 messages a second. Lines are built with numpy, a block
of up to a million same-width lines at a time, so writing is not what is measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import LabError, UsageError
from ..ledger import duckdb_engine

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
PRODUCER = "producer-1"
CONSUMERS = ("consumer-1", "consumer-2")
CHUNK = 1_000_000
MAX_COUNT = 1_000_000_000
RATIO_TARGET = 3  # verify ÷ floor, both in the engine's memory bound
BYTES_PER_MESSAGE = 180  # of receipts on disk, sent and received lines together (measured: 17 MB for 100,000)


@dataclass(frozen=True)
class Planted:
    """What a synthetic run holds, by construction."""

    count: int  # acked messages
    lost: int  # acked, never received
    duplicated: int  # received twice (the second time marked redelivered, by the other consumer)
    out_of_order: int  # adjacent first deliveries swapped within one consumer's file

    @classmethod
    def for_count(cls, count: int) -> Planted:
        return cls(count, max(1, count // 10_000), max(1, count // 2_000), max(1, count // 5_000))


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as ASCII digits, ``width`` of them each."""
    out = np.empty((len(values), width), dtype=np.uint8)
    v = values.astype(np.int64)
    for j in range(width - 1, -1, -1):
        out[:, j] = v % 10 + 48
        v = v // 10
    return out


def hex_ids(prefix: bytes, seq: np.ndarray) -> np.ndarray:
    """A producer's ids: 16 hex digits of its own, then the counter in 16 hex digits."""
    out = np.empty((len(seq), 32), dtype=np.uint8)
    out[:, :16] = np.frombuffer(prefix, dtype=np.uint8)
    v = seq.astype(np.uint64)
    for j in range(31, 15, -1):
        out[:, j] = HEX[(v & np.uint64(15)).astype(np.int64)]
        v = v >> np.uint64(4)
    return out


def _block(columns: list) -> bytes:
    """One byte matrix from fixed-width columns (arrays) and constant separators (bytes)."""
    n = next(len(c) for c in columns if isinstance(c, np.ndarray))
    if n == 0:
        return b""
    parts = [c if isinstance(c, np.ndarray) else np.tile(np.frombuffer(c, dtype=np.uint8), (n, 1)) for c in columns]
    return np.hstack(parts).tobytes()


def _pick(rng: np.random.Generator, n: int, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """``k`` distinct indices below ``n`` (none of ``exclude``), sorted, without an n-sized permutation."""
    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < k:
        more = rng.integers(0, n, size=2 * (k - len(chosen)) + 16)
        chosen = np.union1d(chosen, more)
        if exclude is not None and len(exclude):
            chosen = np.setdiff1d(chosen, exclude)
        if len(chosen) > k:
            chosen = np.sort(rng.choice(chosen, size=k, replace=False))
    return chosen


def write_run(directory: Path, planted: Planted, seed: int = 1, progress=None) -> None:
    """The run's receipt files and run.json in ``directory``."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    n = planted.count
    lost = _pick(rng, n, planted.lost)
    again = _pick(rng, n, planted.duplicated, exclude=lost)
    prefix = rng.bytes(8).hex().encode()
    start_ns = time.time_ns() - 3_600 * 10**9
    swaps_left = planted.out_of_order
    blocks = -(-n // CHUNK)
    redelivered: list[list[bytes]] = [[] for _ in CONSUMERS]
    src = PRODUCER.encode()
    with (directory / f"sent-{PRODUCER}.tsv").open("wb") as sent, \
            (directory / f"recv-{CONSUMERS[0]}.tsv").open("wb") as first, \
            (directory / f"recv-{CONSUMERS[1]}.tsv").open("wb") as second:
        recv = (first, second)
        for number, lo in enumerate(range(0, n, CHUNK)):
            hi = min(n, lo + CHUNK)
            seq = np.arange(lo, hi, dtype=np.int64)
            ids = hex_ids(prefix, seq)
            send_ns = start_ns + seq * 10_000
            seq_digits, send_digits = digits(seq, len(str(hi - 1))), digits(send_ns, 19)
            sent.write(_block([ids, b"\t", seq_digits, b"\t", send_digits, b"\t",
                               digits(send_ns + 1_000_000, 19), b"\t\t\n"]))
            recv_digits = digits(send_ns + 2_000_000, 19)
            consumer = (seq % 2).astype(np.int64)
            delivered = np.ones(hi - lo, dtype=bool)
            delivered[lost[(lost >= lo) & (lost < hi)] - lo] = False
            # This block's share of the swaps, spread so that each lands on its own pair.
            swaps = swaps_left if number == blocks - 1 else min(swaps_left, -(-planted.out_of_order // blocks))
            swaps_left -= swaps
            for c, fh in enumerate(recv):
                rows = np.flatnonzero((consumer == c) & delivered)
                order = rows.copy()
                step = max(4, len(rows) // max(1, swaps // len(CONSUMERS) + 1) // 2 * 2)
                share = swaps // len(CONSUMERS) + (c < swaps % len(CONSUMERS))
                at = np.arange(share) * step
                if share and at[-1] + 1 >= len(rows):
                    raise UsageError(f"too many out-of-order ids for {n:,} messages")
                order[at], order[at + 1] = rows[at + 1], rows[at]
                fh.write(_block([ids[order], b"\t" + src + b"\t", seq_digits[order], b"\t", send_digits[order],
                                 b"\t", recv_digits[order], b"\t\t\n"]))
            for i in again[(again >= lo) & (again < hi)] - lo:
                redelivered[1 - consumer[i]].append(b"\t".join([
                    ids[i].tobytes(), src, str(seq[i]).encode(), send_digits[i].tobytes(),
                    str(int(send_ns[i]) + 30 * 10**9).encode(), b"", b"redelivered"]) + b"\n")
            if progress:
                progress(hi, n)
        for fh, lines in zip(recv, redelivered):
            fh.write(b"".join(lines))
    (directory / "run.json").write_text(json.dumps({"stack": "redis", "mode": "stream", "count": n}) + "\n")


def _timed(argv: list[str]) -> tuple[float, dict]:
    """Run ``argv`` (a :func:`_child`); its elapsed seconds and its JSON line (with its own peak RSS)."""
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        errors = [line for line in said if "Error" in line]  # DuckDB ends its error with a link to its docs
        raise LabError(f"the timed {argv[-3]} stopped (exit {proc.returncode}): "
                       + ((errors or said)[-1][:200] if said else "no output"))
    return elapsed, json.loads(lines[-1])


# The timed process: it imports only what its reading needs (not the bench's plotting), reads
# the run (verify) or scans it (floor), and prints one JSON line with its own peak RSS.
CHILD = """
import json, resource, sys
from pathlib import Path
kind, ledger_dir, run_id = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if kind == "verify":
    from mqlab import ledger
    r = ledger.read_run(ledger_dir, run_id)
    out = {"sent": r.sent, "lost": r.lost, "duplicated": r.duplicated, "order": r.out_of_order + r.reordered}
else:
    import duckdb
    from mqlab.ledger import duckdb_engine as engine
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # its bar goes to stdout, where the result goes
    con.execute(f"SET threads = {engine.THREADS}")
    if kind == "floor":  # held to the engine's own bounds: its memory limit, spilling beyond it
        con.execute(f"SET memory_limit = '{engine.MEMORY_LIMIT}'")
        con.execute(f"SET temp_directory = '{ledger_dir / 'spill'}'")
        con.execute(f"SET max_temp_directory_size = '{engine.SPILL_LIMIT}'")
    files = [str(p) for p in sorted((ledger_dir / run_id).glob("*.tsv"))]
    # GROUP BY, not count(DISTINCT): a grouping spills to disk past the memory limit.
    (out,) = con.execute("SELECT count(*) FROM (SELECT id FROM read_csv($files, columns={'id': 'VARCHAR'}, "
                         "delim='\\t', quote='', escape='', header=false, auto_detect=false, null_padding=true, "
                         "strict_mode=false) GROUP BY id)", {"files": files}).fetchone()
    out = {"distinct": out}
out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
"""


@dataclass
class LedgerBench:
    count: int
    write_s: float
    verify_s: float
    verify_rss: int
    floor_s: float | None  # the floor held to verify's memory bound (the engine's); None: it ran out
    floor_rss: int | None
    free_floor_s: float  # the floor with DuckDB's own bound (80% of RAM)
    free_floor_rss: int
    found: dict
    planted: Planted
    floor_error: str = ""  # why the bounded floor could not run

    @property
    def ratio(self) -> float:
        """verify ÷ floor, both held to the same memory bound; where the floor could not run in
        that bound, verify ÷ the floor with all the memory it takes (the harder ratio to meet)."""
        floor = self.floor_s if self.floor_s is not None else self.free_floor_s
        return self.verify_s / floor if floor else float("inf")

    @property
    def free_ratio(self) -> float:
        """verify ÷ the floor that may take what memory it likes."""
        return self.verify_s / self.free_floor_s if self.free_floor_s else float("inf")

    @property
    def matches(self) -> bool:
        p = self.planted
        return (self.found["sent"], self.found["lost"], self.found["duplicated"], self.found["order"]) == (
            p.count, p.lost, p.duplicated, p.out_of_order)


def run(root: Path, count: int, echo, keep: bool = False) -> LedgerBench:
    """Write, verify and scan a synthetic run of ``count`` messages under ``root/.mqlab/bench-ledger``."""
    if not 1_000 <= count <= MAX_COUNT:
        raise UsageError(f"--count must be between 1,000 and {MAX_COUNT:,}, got {count:,}")
    ledger_dir = root / ".mqlab" / "bench-ledger"
    need = count * BYTES_PER_MESSAGE
    shutil.rmtree(ledger_dir, ignore_errors=True)
    ledger_dir.mkdir(parents=True)
    free = shutil.disk_usage(ledger_dir).free
    if free < 2 * need:
        raise UsageError(f"{count:,} messages need about {need / 1e9:.1f} GB of receipts and as much scratch "
                         f"space; {ledger_dir} has {free / 1e9:.1f} GB free")
    planted = Planted.for_count(count)
    run_id = f"bench-ledger-{count}"
    try:
        echo(f"writing {count:,} messages ({planted.lost:,} lost, {planted.duplicated:,} duplicated, "
             f"{planted.out_of_order:,} out of order) to {ledger_dir / run_id}")
        began = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - last[0] >= 5 or done == total:
                last[0] = time.monotonic()
                echo(f"  written {done:,} of {total:,}")

        write_run(ledger_dir / run_id, planted, progress=progress)
        write_s = time.monotonic() - began
        me = [sys.executable, "-c", CHILD]
        echo("verify: reading the run with the ledger's engine (a process of its own)")
        verify_s, found = _timed(me + ["verify", str(ledger_dir), run_id])
        echo(f"floor: one DuckDB scan counting the distinct ids of the same files, in verify's "
             f"{duckdb_engine.MEMORY_LIMIT} of memory")
        try:
            floor_s, floor = _timed(me + ["floor", str(ledger_dir), run_id])
            floor_rss, floor_error = floor["peak_rss"], ""
        except LabError as exc:  # DuckDB's grouping of 100M ids ran out of 500 MB here
            if "Out of Memory" not in str(exc):
                raise
            floor_s, floor_rss, floor_error = None, None, str(exc).split(": ", 1)[-1]
            echo(f"  it could not: {floor_error}")
        echo("floor again, with DuckDB's own memory bound (80% of RAM)")
        free_s, free = _timed(me + ["floor-free", str(ledger_dir), run_id])
        return LedgerBench(count, write_s, verify_s, found["peak_rss"], floor_s, floor_rss, free_s,
                           free["peak_rss"], found, planted, floor_error)
    finally:
        if not keep:
            shutil.rmtree(ledger_dir, ignore_errors=True)


def render(result: LedgerBench) -> str:
    p, f = result.planted, result.found
    rows = [
        ("verify (DuckDB engine)", f"{result.verify_s:.1f} s", f"{result.verify_rss / 2**20:,.0f} MiB"),
        (f"floor: one scan counting distinct ids, in {duckdb_engine.MEMORY_LIMIT}",
         *((f"{result.floor_s:.1f} s", f"{result.floor_rss / 2**20:,.0f} MiB") if result.floor_s is not None
           else ("could not run", "ran out of memory"))),
        ("floor: the same scan, DuckDB's own bound", f"{result.free_floor_s:.1f} s",
         f"{result.free_floor_rss / 2**20:,.0f} MiB"),
    ]
    from ..tables import render as table

    lines = [f"ledger bench: {result.count:,} messages (receipts written in {result.write_s:.1f} s)",
             table(("reading", "time", "peak RSS"), rows, indent=2),
             _ratio_line(result),
             f"planted: {p.lost:,} lost, {p.duplicated:,} duplicated, {p.out_of_order:,} out of order; "
             f"verify found: {f['lost']:,} lost, {f['duplicated']:,} duplicated, {f['order']:,} out of order, "
             f"{f['sent']:,} sent"]
    lines.append("OK: verify found exactly what was planted" if result.matches
                 else "FAIL: verify did not find what was planted")
    return "\n".join(lines)


def _ratio_line(result: LedgerBench) -> str:
    judged = f"(target ≤ {RATIO_TARGET}: {'met' if result.ratio <= RATIO_TARGET else 'missed'})"
    if result.floor_s is not None:
        return (f"verify ÷ floor: {result.ratio:.2f} in the same memory {judged}; {result.free_ratio:.2f} against "
                f"the floor with all the memory it takes")
    return (f"verify ÷ floor: {result.ratio:.2f} against the floor with all the memory it takes {judged}; in "
            f"verify's {duckdb_engine.MEMORY_LIMIT} the floor could not run ({result.floor_error})")


def as_json(result: LedgerBench) -> dict:
    return {**asdict(result), "ratio": result.ratio, "free_ratio": result.free_ratio, "matches": result.matches}


def bench_ledger(root: Path, count: int, echo) -> tuple[str, Path]:
    """`invoke bench ledger`: run it, save ``.mqlab/bench/ledger-<time>.json``; the text and that path."""
    result = run(root, count, echo)
    saved = root / ".mqlab" / "bench" / f"ledger-{time.strftime('%Y%m%dT%H%M%S')}.json"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(as_json(result), indent=1) + "\n")
    return render(result), saved
