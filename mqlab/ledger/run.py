"""A run's ledger directory: what `invoke produce` recorded about it, the latest run of each
stack, and reading the run into a :class:`~.report.Report` with one of the two engines.

Two engines read the files, to the same Report: DuckDB (:mod:`.duckdb_engine`, the default:
millions of messages in bounded memory) and plain Python (:mod:`.python_engine`, the reference,
and the engine where there are no named pipes for DuckDB to read through).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from ..modes import Mode, mode_info
from ..stacks import STACKS
from ..wait import poll_until
from . import python_engine
from .report import Report

LATEST = "latest-{stack}"
RUN_INFO = "run.json"
ENGINES = ("duckdb", "python")
_SAID: set[str] = set()


def run_dir(ledger: Path, run_id: str) -> Path:
    return ledger / run_id


def scratch_dir(ledger: Path) -> Path:
    """Where the DuckDB engine keeps its scratch database and spill: beside the ledger, in
    ``.mqlab/scratch/``, on the project's disk rather than in TMPDIR (often a tmpfs: memory)."""
    return ledger.parent / "scratch"


def _say_once(message: str) -> None:
    """One line on stderr, once a process: `verify` reads a run again and again while it waits."""
    if message not in _SAID:
        _SAID.add(message)
        print(f"mqlab: {message}", file=sys.stderr, flush=True)


def _mode_of(info: dict) -> Mode | None:
    """The mode the run's stack ran in, when run.json names a known stack and mode."""
    stack = STACKS.get(info.get("stack", ""))
    return mode_info(stack.broker, info.get("mode", "")) if stack else None


def _binding(report: Report, info: dict, binding: str | None) -> str | None:
    """The consumers' topic binding of a routed run: given, as the run recorded it, or ``#``."""
    if report.kind != "routed":
        return None
    return binding or (info.get("settings") or {}).get("MQLAB_BINDING") or "#"


def _engine_here(engine: str) -> str:
    if engine == "duckdb" and not hasattr(os, "mkfifo"):
        _say_once("this platform has no named pipes (os.mkfifo), which the DuckDB ledger engine reads "
                  "through: the Python engine reads the ledger instead, with every id in memory")
        return "python"
    return engine


def read_run(ledger: Path, run_id: str, sample_lost: int = 5, kind: str | None = None,
             binding: str | None = None, engine: str = "duckdb") -> Report:
    """Merge the receipt files of ``run_id`` into a Report.

    ``kind`` (competing, fanout or routed) says how to judge the run; by default it is
    taken from the run's ``run.json``, written by `invoke produce`. ``binding`` is the
    consumers' topic binding in routed mode (default ``#``). ``engine`` reads the files:
    ``duckdb`` (:mod:`.duckdb_engine`, bounded memory) or ``python`` (the reference)."""
    if engine not in ENGINES:
        raise UsageError(f"unknown ledger engine {engine!r}: one of {', '.join(ENGINES)}")
    directory = run_dir(ledger, run_id)
    if not directory.is_dir():
        raise UsageError(f"no ledger for run {run_id!r} in {ledger}")
    info = read_run_info(directory)
    known = _mode_of(info)
    report = Report(run_id, kind=kind or (known.kind if known else "competing"), mode=info.get("mode", ""))
    rules = {"order_scope": known.order_scope if known else "subscriber",
             # Modes without a dead-letter destination drop a message that failed: it is lost.
             "drop_dead": known is not None and not known.dead_letter,
             "binding": _binding(report, info, binding), "sample_lost": sample_lost}
    if _engine_here(engine) == "duckdb":
        from . import duckdb_engine  # DuckDB loads only when a run is read with it

        duckdb_engine.read_report(directory, report, scratch=scratch_dir(ledger), **rules)
    else:
        python_engine.read_report(directory, report, **rules)
    return report


def wait_for_run(ledger: Path, run_id: str, *, settle: float = 10.0, timeout: float = 120.0,
                 poll: float = 0.5, on_poll: Callable[[Report], None] | None = None,
                 gather: Callable[[], object] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> Report:
    """Read the run until every acked message is received, or nothing new arrived for ``settle``
    seconds, or ``timeout`` passed. Bounded in time; returns the last Report. ``gather``, when
    given, brings the receipts in before each read (from the nodes of a swarm)."""
    last = {"report": None, "seen": -1, "changed": clock()}

    def settled() -> bool:
        if gather:
            gather()
        report = last["report"] = read_run(ledger, run_id)
        if on_poll:
            on_poll(report)
        if report.received != last["seen"]:
            last["seen"], last["changed"] = report.received, clock()
        return bool(report.sent and report.lost == 0) or clock() - last["changed"] >= settle

    poll_until(settled, timeout, interval=poll, clock=clock, sleep=sleep)
    return last["report"]


def write_run_info(directory: Path, info: dict) -> None:
    """What `invoke produce` knew about the run: stack, mode, count, size, rate, settings."""
    (directory / RUN_INFO).write_text(json.dumps(info, indent=1) + "\n")


def read_run_info(directory: Path) -> dict:
    try:
        return json.loads((directory / RUN_INFO).read_text())
    except (OSError, ValueError):
        return {}


def record_latest(ledger: Path, stack: str, run_id: str) -> None:
    ledger.mkdir(parents=True, exist_ok=True)
    (ledger / LATEST.format(stack=stack)).write_text(run_id + "\n")


def latest_run(ledger: Path, stack: str) -> str:
    marker = ledger / LATEST.format(stack=stack)
    if not marker.exists():
        raise UsageError(f"no produce run recorded for {stack}: run `invoke produce {stack} --count N` first, or pass --run-id")
    return marker.read_text().strip()
