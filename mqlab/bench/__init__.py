"""`invoke bench`: the lab's own clients measured beside each broker's own benchmark tool.

- :mod:`.plan`   the parameters, the trials of a run, and running them (:func:`bench`), then
  :func:`compare` to put the latest run of each stack side by side
- :mod:`.stack`  the stack during a run: its compose calls, the trial containers, CPU pinning
- :mod:`.record` what a run records besides its trials, and the files it is saved to
- :mod:`.report` merging the trial containers' results, medians and ratios, Markdown and plots
- :mod:`.spread` paired ratios per repeat, their intervals and the ✓/≈/✗ judgement
- :mod:`.ledger_bench` `invoke bench ledger`: verify on a synthetic run against one DuckDB scan

Front doors: :class:`BenchParams`, :func:`bench`, :func:`compare`, :func:`markdown` (the report
of a run) and :data:`BENCH_DIR`, where runs are saved.

    from mqlab import bench as lab_bench

    run = lab_bench.bench(config, "redis", lab_bench.BenchParams(), print, progress, runner)
    print(lab_bench.markdown(run))
"""

from __future__ import annotations

from .ledger_bench import bench_ledger
from .plan import BENCH_DIR, BenchParams, bench, compare
from .report import markdown

__all__ = ["BENCH_DIR", "BenchParams", "bench", "bench_ledger", "compare", "markdown"]
