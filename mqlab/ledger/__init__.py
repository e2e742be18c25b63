"""The ledger: the proof by receipts. Every message of a run is accounted for by id.

Producers and consumers append one line per message to their own receipt files under
``<ledger>/<run_id>/``; :func:`read_run` merges them into a :class:`Report`: sent and acked,
received (and by which consumer), lost, duplicated, out of order where the mode promises order.

- :mod:`.receipts`      the one reader of the receipt files: their columns, lines and numbers
- :mod:`.report`        the Report, the rules both engines share, and the verify table (:func:`render`)
- :mod:`.python_engine` every id in dicts: the reference
- :mod:`.duckdb_engine` SQL over the files in bounded memory: the default
- :mod:`.run`           a run's directory: run.json, the latest run per stack, :func:`read_run`, :func:`wait_for_run`
- :mod:`.timeline`      when things happened: the longest time without an ack or a delivery
- :mod:`.final_read`    is every acked message still in the broker's log where it was put?
- :mod:`.output`        exactly-once, judged on the txn mode's output topic

    from mqlab import ledger

    report = ledger.wait_for_run(config.ledger_dir, run_id)   # read until the run settles
    print(ledger.render(report))
"""

from __future__ import annotations

from . import receipts, timeline
from .final_read import FinalRead, not_read, read_back
from .output import OutputRead, judge_output
from .receipts import receipt_number
from .report import Report, judge_order, latency_indices, render
from .run import (ENGINES, LATEST, RUN_INFO, latest_run, read_run, read_run_info, record_latest, run_dir,
                  scratch_dir, wait_for_run, write_run_info)

__all__ = ["ENGINES", "FinalRead", "OutputRead", "judge_output", "LATEST", "RUN_INFO", "Report", "not_read", "read_back", "judge_order", "latency_indices", "latest_run", "read_run",
           "read_run_info", "receipt_number", "receipts", "record_latest", "render", "run_dir", "scratch_dir",
           "timeline", "wait_for_run", "write_run_info"]
