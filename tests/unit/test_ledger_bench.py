"""The ledger bench's synthetic run holds what it says it does, and verify finds exactly that."""

import subprocess
import sys

import pytest

from mqlab import ledger
from mqlab.bench import ledger_bench
from tests.conftest import ROOT


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_verify_finds_exactly_the_planted_losses_duplicates_and_disorder(tmp_path, engine):
    planted = ledger_bench.Planted.for_count(2_500_000 // 100)  # 25,000: a few of each
    ledger_bench.write_run(tmp_path / "r", planted, seed=5)
    report = ledger.read_run(tmp_path, "r", engine=engine)
    assert (report.sent, report.lost, report.duplicated, report.out_of_order + report.reordered) == (
        planted.count, planted.lost, planted.duplicated, planted.out_of_order)
    assert report.unacked_received == 0


def test_the_runs_span_several_blocks_and_keep_their_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_bench, "CHUNK", 7_000)  # 30,000 messages in 5 blocks, seq widths change inside
    planted = ledger_bench.Planted(30_000, lost=7, duplicated=11, out_of_order=13)
    ledger_bench.write_run(tmp_path / "r", planted, seed=9)
    report = ledger.read_run(tmp_path, "r")
    assert (report.sent, report.lost, report.duplicated, report.out_of_order + report.reordered) == (30_000, 7, 11, 13)


def test_a_run_that_holds_more_than_was_planted_is_a_failure():
    planted = ledger_bench.Planted.for_count(100_000)
    found = {"sent": 100_000, "lost": planted.lost + 1, "duplicated": planted.duplicated,
             "order": planted.out_of_order}
    result = ledger_bench.LedgerBench(100_000, 0.1, 1.0, 2**27, 0.5, 2**26, 0.25, 2**28, found, planted)
    assert not result.matches and result.ratio == 2.0 and result.free_ratio == 4.0
    assert ledger_bench.render(result).endswith("FAIL: verify did not find what was planted")


def test_invoke_bench_ledger_reports_the_planted_numbers_and_the_floor_ratio():
    done = subprocess.run([sys.executable, "-m", "invoke", "bench", "ledger", "--count", "100000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    planted = ledger_bench.Planted.for_count(100_000)
    assert (f"verify found: {planted.lost:,} lost, {planted.duplicated:,} duplicated, "
            f"{planted.out_of_order:,} out of order, 100,000 sent") in done.stdout
    assert "OK: verify found exactly what was planted" in done.stdout
    assert "verify ÷ floor: " in done.stdout and " in the same memory (target ≤ 3: " in done.stdout
    assert not (ROOT / ".mqlab" / "bench-ledger").exists()  # the synthetic run is removed after


def test_bench_ledger_refuses_a_size_in_one_line_and_says_why():
    done = subprocess.run([sys.executable, "-m", "invoke", "bench", "ledger", "--size", "512"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (done.stdout + done.stderr).strip().startswith("mqlab: bench ledger takes no --size: a receipt holds no")
    assert not (ROOT / ".mqlab" / "bench-ledger").exists()  # refused before anything was written


def test_bench_ledger_refuses_a_count_out_of_range_in_one_line():
    done = subprocess.run([sys.executable, "-m", "invoke", "bench", "ledger", "--count", "10"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert (done.stdout + done.stderr).strip() == "mqlab: --count must be between 1,000 and 1,000,000,000, got 10"


def test_a_timed_child_that_prints_no_result_is_one_lab_error_not_a_traceback():
    import sys

    from mqlab.errors import LabError
    with pytest.raises(LabError, match=r"the timed floor stopped \(exit 3\): out of memory"):
        ledger_bench._timed([sys.executable, "-c", "import sys; print('out of memory', file=sys.stderr); sys.exit(3)",
                             "floor", "dir", "run"])
    with pytest.raises(LabError, match=r"the timed floor stopped \(exit 0\): 100% ▕██"):
        ledger_bench._timed([sys.executable, "-c", "print('100% ▕██')", "floor", "dir", "run"])
    elapsed, out = ledger_bench._timed([sys.executable, "-c", "print('bar'); print('{\"distinct\": 3}')",
                                        "floor", "dir", "run"])
    assert out == {"distinct": 3} and elapsed > 0


def test_a_floor_that_ran_out_of_verifys_memory_is_said_and_verify_is_held_to_the_unbounded_one():
    planted = ledger_bench.Planted.for_count(100_000)
    found = {"sent": 100_000, "lost": planted.lost, "duplicated": planted.duplicated, "order": planted.out_of_order}
    result = ledger_bench.LedgerBench(100_000, 0.1, 4.0, 2**27, None, None, 1.0, 2**28, found, planted,
                                      "Out of Memory Error: could not allocate block")
    assert result.ratio == 4.0 and result.matches
    text = ledger_bench.render(result)
    assert "could not run" in text and "target ≤ 3: missed" in text and "could not allocate block" in text
