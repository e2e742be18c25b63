"""The ledger's two engines agree: DuckDB (mqlab.ledger.duckdb_engine, the default) and Python (the reference).

Every scenario of test_ledger.py is run again with each read of a run compared field by field,
then seeded random runs try every rule at once: several producers and consumers, resends,
losses, duplicates, reorders within and across lanes, redeliveries, keys and bindings, dead
letters, lossy modes, old short lines, numbers that are not, blank lines, torn last lines and
empty files.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

import tests.unit.test_ledger as scenarios
from mqlab import ledger
from mqlab.errors import LabError, UsageError
from mqlab.ledger import duckdb_engine
from mqlab.ledger import run as ledger_run
from mqlab.bench.ledger_bench import Planted, write_run


def both(ledger_dir: Path, run_id: str, **kwargs) -> ledger.Report:
    python = ledger.read_run(ledger_dir, run_id, engine="python", **kwargs)
    duck = ledger.read_run(ledger_dir, run_id, engine="duckdb", **kwargs)
    assert duck == python
    return duck


SCENARIOS = [f for name, f in vars(scenarios).items() if name.startswith("test_") and inspect.isfunction(f)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_every_scenario_of_the_ledger_tests_reads_the_same(scenario, tmp_path, monkeypatch):
    read_run = ledger.read_run

    def compared(*args, **kwargs):
        kwargs.pop("engine", None)
        python = read_run(*args, engine="python", **kwargs)
        duck = read_run(*args, engine="duckdb", **kwargs)
        assert duck == python
        return duck

    monkeypatch.setattr(ledger, "read_run", compared)
    monkeypatch.setattr(ledger_run, "read_run", compared)  # what wait_for_run reads with
    scenario(tmp_path)


def test_the_scenarios_are_found():
    assert len(SCENARIOS) >= 20


# ---------------------------------------------------------------------------- random runs

RUN_INFOS = [
    (None, {}),
    ({"stack": "redis", "mode": "stream"}, {}),
    ({"stack": "rabbitmq", "mode": "work"}, {}),
    ({"stack": "rabbitmq", "mode": "fanout"}, {}),
    ({"stack": "rabbitmq", "mode": "topic", "settings": {"MQLAB_BINDING": "orders.*"}}, {}),
    ({"stack": "rabbitmq-cluster", "mode": "topic"}, {"binding": "#.eu"}),
    ({"stack": "rabbitmq", "mode": "autoack"}, {}),
    ({"stack": "redis", "mode": "pubsub"}, {}),
    ({"stack": "redis", "mode": "stream-fanout"}, {}),
    ({"stack": "kafka", "mode": "group"}, {}),
    ({"stack": "kafka-cluster", "mode": "keyed"}, {}),
    ({"stack": "kafka", "mode": "fanout"}, {}),
    ({"stack": "kafka", "mode": "autocommit"}, {}),
    (None, {"kind": "fanout"}),
    (None, {"kind": "routed"}),
    (None, {"kind": "routed", "binding": "orders.#"}),
    ({"stack": "redis", "mode": "stream"}, {"kind": "routed", "binding": "*"}),
    ({"stack": "kafka", "mode": "group"}, {"kind": "routed", "binding": "a.#.c"}),
    ({"stack": "rabbitmq", "mode": "work"}, {"kind": "fanout"}),
]
KEYS = ["", "", "orders.eu", "orders.us", "audit.eu", "orders", "a.b.c", "a.c", "x..y", "é.eu", "#"]
REASONS = ["poison message (envelope fail=true)", "", "timeout after 3 s", "boom"]


def random_id(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        return f"{rng.getrandbits(128):032x}"
    if r < 0.62:
        return f"{rng.getrandbits(128):032X}"  # hex, but not as the services write it: text
    if r < 0.66:
        return f"{rng.getrandbits(124):031x}"
    if r < 0.70:
        return f"{rng.getrandbits(128):032x}"[:31] + "g"
    if r < 0.74:
        return "é" + str(rng.randint(0, 99))
    return rng.choice("abcmxyz") + str(rng.randint(0, 60))  # short, and sometimes the same twice


def shuffle_a_little(rng: random.Random, items: list, swaps: int) -> None:
    for _ in range(swaps):
        if len(items) > 1:
            i = rng.randrange(len(items) - 1)
            j = min(len(items) - 1, i + rng.choice([1, 1, 2, 5, 30]))
            items[i], items[j] = items[j], items[i]


# Not numbers as both engines read them (Python's int() takes some, DuckDB's cast others), and
# numbers at the edges.
NOT_NUMBERS = ["x", "", "1.5", "1e3", "+3", " 7", "7 ", "1_000", "0x10", "-", "--1", "\u0663", "\u00b2",
               "\uff17", "NaN", str(1 << 63), str((-1 << 63) - 1)]
EDGE_NUMBERS = {"-0": 0, "007": 7, "-12": -12, str((1 << 63) - 1): (1 << 63) - 1, str(-1 << 63): -1 << 63}


class RunWriter:
    """Lines of one file, with the odd blank line, line without id, old short line, extra field
    or number that is not one (at the places ``numbers``)."""

    def __init__(self, rng: random.Random, path: Path, numbers: tuple[int, ...] = ()):
        self.rng, self.path, self.lines, self.numbers = rng, path, [], numbers

    def add(self, fields: list, short_from: int = 1) -> None:
        rng = self.rng
        fields = [str(x) for x in fields]
        r = rng.random()
        if r < 0.04:
            fields = fields[:rng.randint(short_from, len(fields) - 1)]  # an older, shorter format
        elif r < 0.06:
            fields = fields + ["extra"] * rng.randint(1, 2)
        elif r < 0.09 and self.numbers:
            fields[rng.choice(self.numbers)] = rng.choice(NOT_NUMBERS + list(EDGE_NUMBERS))
        self.lines.append("\t".join(fields))
        r = rng.random()
        if r < 0.01:
            self.lines.append("")
        elif r < 0.02:
            self.lines.append("\t" + "\t".join(fields[1:]))  # no id: skipped

    def write(self) -> None:
        rng = self.rng
        if not self.lines and rng.random() < 0.3:
            return  # no file at all
        newline = "\r\n" if rng.random() < 0.05 else "\n"
        data = "".join(line + newline for line in self.lines).encode()
        if self.lines and rng.random() < 0.05:  # a torn write before a line: not UTF-8 any more
            at = rng.choice([0] + [i + 1 for i, byte in enumerate(data) if byte == ord("\n")][:-1])
            data = data[:at] + "é".encode()[:1] + data[at:]
        r = rng.random()
        if r < 0.25 and self.lines:  # a torn last line, still being written
            data += self.lines[-1].encode()[:rng.randint(1, max(1, len(self.lines[-1]) - 1))]
        elif r < 0.3:
            data += rng.choice([b"\t", b"abc", "é".encode()[:1], b"x\t1\t2\t3\t4\t5\t6"])
        self.path.write_bytes(data)


def random_run(rng: random.Random, directory: Path) -> dict:
    """Write a random run into ``directory``; returns read_run's keyword arguments for it."""
    directory.mkdir(parents=True)
    info, kwargs = rng.choice(RUN_INFOS)
    if info is not None:
        ledger.write_run_info(directory, info)
    producers = [f"prod-{i}" for i in range(rng.randint(1, 3))]
    consumers = [f"cons-{i}" for i in range(rng.choice([0, 1, 1, 2, 2, 3, 4]))]
    lanes = rng.choice([[""], ["p0", "p1", "p2"], ["", "p0", "x"], ["p0"]])
    shape = rng.choice(["competing", "fanout", "any"])
    count = rng.randint(0, 120)
    messages = []  # (id, producer, seq, key, send_ns)
    sent = {p: RunWriter(rng, directory / f"sent-{p}.tsv", numbers=(1, 2, 3)) for p in producers}
    next_seq = {p: rng.choice([0, 0, 5]) for p in producers}
    for _ in range(count):
        producer = rng.choice(producers)
        if messages and rng.random() < 0.05:  # sent again, after a reconnect, maybe by another producer
            message_id, key = rng.choice(messages)[0], rng.choice(KEYS)
        else:
            message_id, key = random_id(rng), rng.choice(KEYS)
        seq = next_seq[producer]
        next_seq[producer] += 1
        send_ns = 1_700_000_000_000_000_000 + seq * 1000 + rng.randint(0, 999)
        written_seq = seq if rng.random() > 0.03 else rng.choice(["x", "-1", "", "+3"])
        sent[producer].add([message_id, written_seq, send_ns, send_ns + rng.randint(1, 10**6), key])
        messages.append((message_id, producer, seq, key, send_ns))
    deliveries: dict[str, list] = {c: [] for c in consumers}
    joined = {c: rng.choice([0, 0, count // 3, count // 2]) for c in consumers}
    for i, message in enumerate(messages):
        if not consumers or rng.random() < 0.1:
            continue  # lost
        if shape == "competing":
            targets = [rng.choice(consumers)]
        elif shape == "fanout":
            targets = [c for c in consumers if i >= joined[c] and rng.random() > 0.03]
        else:
            targets = [c for c in consumers if rng.random() < 0.5]
        for c in targets:
            deliveries[c].append(message)
    for c in consumers:
        got = deliveries[c]
        for _ in range(rng.randint(0, 3)):  # received, but never acked by the broker
            got.insert(rng.randint(0, len(got)), (random_id(rng), rng.choice(producers), rng.randint(0, 50), "", 0))
        shuffle_a_little(rng, got, rng.choice([0, 0, 1, 3, 10]))
        recv = RunWriter(rng, directory / f"recv-{c}.tsv", numbers=(2, 3, 4))
        again = []
        for message in got:
            if rng.random() < 0.08:
                again.append(message)  # to be delivered again, later
            if again and rng.random() < 0.3:
                got_again = again.pop(0)
                _write_delivery(rng, recv, got_again, lanes, rng.choice(["redelivered", "redelivered", None]))
            _write_delivery(rng, recv, message, lanes, None)
        for message in again:
            _write_delivery(rng, recv, message, lanes, "redelivered")
        recv.write()
    for name in [c for c in consumers if rng.random() < 0.4] + (["ghost"] if rng.random() < 0.1 else []):
        dead = RunWriter(rng, directory / f"dead-{name}.tsv", numbers=(2, 3))
        for message_id, producer, seq, _key, _ns in rng.sample(messages, min(len(messages), rng.randint(0, 4))):
            dead.add([message_id, producer, seq, 3, rng.choice(REASONS), 99], short_from=4)
        dead.write()
    for writer in sent.values():
        writer.write()
    kwargs = dict(kwargs)
    kwargs["sample_lost"] = rng.choice([0, 1, 5, 5, 12])
    return kwargs


def _write_delivery(rng: random.Random, writer: RunWriter, message: tuple, lanes: list[str], lane: str | None) -> None:
    message_id, producer, seq, key, send_ns = message
    if lane is None:
        lane = rng.choice(lanes) if lanes != ["p0", "p1", "p2"] else f"p{len(key) % 3}"
    src = producer if rng.random() > 0.02 else "someone-else"
    seq = seq if rng.random() > 0.02 else rng.choice([-5, 10**6])
    recv_ns = send_ns + rng.randint(100_000, 50_000_000)
    writer.add([message_id, src, seq, send_ns, recv_ns, key, lane], short_from=1)


@pytest.mark.parametrize("seed", range(60))
def test_random_runs_read_the_same(seed, tmp_path):
    rng = random.Random(seed)
    kwargs = random_run(rng, tmp_path / "r")
    both(tmp_path, "r", **kwargs)


def test_random_runs_cover_every_rule(tmp_path):
    """The random runs above do reach what each rule counts (else they could not catch it)."""
    totals: dict[str, int] = {}
    kinds = set()
    for seed in range(60):
        kwargs = random_run(random.Random(seed), tmp_path / str(seed))
        report = ledger.read_run(tmp_path, str(seed), engine="python", **kwargs)
        kinds.add(report.kind)
        for name in ("sent", "lost", "duplicated", "unacked_received", "unrouted", "dead_lettered", "dropped",
                     "out_of_order", "reordered"):
            totals[name] = totals.get(name, 0) + getattr(report, name)
        totals["missing"] = totals.get("missing", 0) + sum(report.missing_per_consumer.values())
        totals["latencies"] = totals.get("latencies", 0) + (report.latency_p50_ms is not None)
    assert kinds == {"competing", "fanout", "routed"}
    assert all(n > 0 for n in totals.values()), totals


# ---------------------------------------------------------------------------- the files' edges


def test_torn_lines_short_lines_and_empty_files(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "sent-p1.tsv").write_text("a\t0\t1\t2\tk\nb\nc\t1\n\nd\t2\t3\t4\t\te\n" + "e\t3\t4")
    (run / "sent-p2.tsv").write_text("")
    (run / "recv-c1.tsv").write_text("a\tp1\t0\t1\t5000\tk\tp0\nb\nc\tp1\t1\nd\tp1\t2\t3\t9\t\t\tmore\nz\tp1\t9\t1")
    (run / "recv-c2.tsv").write_text("")
    (run / "dead-c1.tsv").write_text("c\tp1\t1\t3\n" + "c\tp1\t1\t3\t\t7\n" + "c\tp1\t1\t3\tboom\t7\n" + "c\tp1")
    report = both(tmp_path, "r")
    assert report.per_producer == {"p1": 4, "p2": 0} and report.per_consumer == {"c1": 4, "c2": 0}
    assert report.dead_reasons == {"unknown": 1, "": 1, "boom": 1}


@pytest.mark.parametrize("data, sent", [(b"a\t0\t1\t2\r\nb\t1\t1\t2\rc\t2\t1\t2\r\n\r\nd\t3\t1\t2\r", 4),
                                        (b"a\t0\r\nb\t1\rc\t2\r\n", 3), (b"a\t0\nb\t1\rc\t2\n", 3),
                                        (b"a\t0\rb\t1\r\nc\t2\n", 3), (b"a\t0\r\r\nb\t1\n", 2),
                                        (b"a\t0\n\rb\t1\n\r", 2)])
def test_line_breaks_as_python_reads_them(tmp_path, data, sent):
    run = tmp_path / "r"
    run.mkdir()
    (run / "sent-p1.tsv").write_bytes(data)
    (run / "recv-c1.tsv").write_bytes(b"a\tp1\t0\t1\t2\r\nc\tp1\t2\t1\t2\n")
    assert both(tmp_path, "r").sent == sent


def test_text_that_is_not_utf8_is_read_as_python_reads_it(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "sent-p1.tsv").write_bytes(b"a\t0\t1\t2\tk\xff\nb\xc3\t1\t1\t2\n\xe9\t2\t1\t2\n")
    (run / "recv-c1.tsv").write_bytes(b"a\tp1\t0\t1\t2\tk\xff\n")
    report = both(tmp_path, "r", kind="routed", binding="k\ufffd")
    assert (report.sent, report.lost, report.unrouted) == (3, 0, 2)


def test_numbers_that_are_not_are_read_as_short_lines_by_both_engines(tmp_path):
    """A delivery whose seq or timestamps are not numbers (as Python's int() or DuckDB's cast
    would have it) is counted, and neither timed nor judged for order."""
    run = tmp_path / "r"
    run.mkdir()
    (run / "sent-p1.tsv").write_text("a\t5\t1\t2\nb\tx\t1\t2\nc\t1.5\t1\t2\nd\t+3\nf\t6\ng\t\u0663\n")
    (run / "recv-c1.tsv").write_text("a\tp1\t5\t1000\t5001000\n"
                                     "b\tp1\tx\t1000\t9001000\n"  # not a number
                                     "c\tp1\t1.5\t1000\t9001000\n"  # DuckDB's cast: 2, a step back
                                     "d\tp1\t3\t1000\t1e3\n"  # DuckDB's cast: 1000, a latency of 0
                                     "e\tp1\t\u0663\t1000\t9001000\n"  # int(): 3, a step back
                                     "f\tp1\t6\t1000\t7001000\n"
                                     "g\tp1\t7\t+1000\t9001000\n"  # int(): 1000
                                     "h\tp1\t8\t1000\t3001000\n")
    report = both(tmp_path, "r")
    assert (report.sent, report.received, report.unacked_received, report.lost) == (6, 8, 2, 0)
    assert (report.out_of_order, report.latency_p50_ms, report.latency_p99_ms) == (0, 5.0, 7.0)


@pytest.mark.parametrize("text, number", [*EDGE_NUMBERS.items(), *((text, None) for text in NOT_NUMBERS)])
def test_receipt_numbers_are_read_as_duckdb_reads_them(text, number):
    assert ledger.receipt_number(text) == number
    with duckdb.connect() as con:
        assert con.execute(f"SELECT {duckdb_engine.SIGNED.format('$1')}", [text]).fetchone()[0] == number


def test_ids_that_look_like_hex_are_not_mixed_up(tmp_path):
    lower = "0123456789abcdef0123456789abcdef"
    ids = [lower, lower.upper(), lower[:31], lower[:31] + "_", "0" + lower[:31], "00" * 16, "f" * 32]
    scenarios.write(tmp_path / "r" / "sent-p1.tsv", scenarios.sent(ids))
    scenarios.write(tmp_path / "r" / "recv-c1.tsv", scenarios.recv(ids[::2], seqs=range(0, len(ids), 2)))
    report = both(tmp_path, "r", sample_lost=10)
    assert report.lost_ids == sorted(ids[1::2])


def test_file_order_holds_over_many_row_groups(tmp_path):
    """300,000 lines (DuckDB stores 122,880 rows a row group): 60 known swaps within Kafka partitions."""
    directory = tmp_path / "big"
    directory.mkdir()
    ledger.write_run_info(directory, {"stack": "kafka", "mode": "group"})
    rng = random.Random(7)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(300_000)]
    scenarios.write(directory / "sent-p1.tsv", scenarios.sent(ids))
    seqs = list(range(len(ids)))
    for i in range(1_000, 300_000, 5_000):
        seqs[i], seqs[i + 4] = seqs[i + 4], seqs[i]  # the same partition (seq % 4): one break each
    lines = [(ids[s], "p1", s, 1000 + s, 5_000_000 + s, "", f"p{s % 4}") for s in seqs if s % 997]
    scenarios.write(directory / "recv-c1.tsv", lines)
    report = both(tmp_path, "big")
    assert (report.out_of_order, report.lost) == (60, len(ids) - len(lines))


def test_an_unknown_engine_is_a_usage_error(tmp_path):
    scenarios.write(tmp_path / "r" / "sent-p1.tsv", scenarios.sent(["a"]))
    with pytest.raises(UsageError, match="unknown ledger engine 'sqlite'"):
        ledger.read_run(tmp_path, "r", engine="sqlite")


def test_the_default_engine_is_duckdb(tmp_path, monkeypatch):
    scenarios.write(tmp_path / "r" / "sent-p1.tsv", scenarios.sent(["a"]))
    calls = []
    monkeypatch.setattr(duckdb_engine, "read_report", lambda *args, **kwargs: calls.append(kwargs))
    ledger.read_run(tmp_path, "r")
    assert len(calls) == 1


# ---------------------------------------------------------------------------- the bounded pipe


def read_fifo(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def test_the_pipe_gives_the_complete_lines_as_they_were_when_it_opened(tmp_path):
    source = tmp_path / "recv-c1.tsv"
    source.write_bytes(b"a\t1\nb\t2\nc\t")
    pipe = duckdb_engine.BoundedPipe(source, str(tmp_path), "pipe")
    with source.open("ab") as fh:
        fh.write(b"3\nd\t4\n")  # written while the file is read: not seen
    assert read_fifo(pipe.path) == b"a\t1\nb\t2\n"
    pipe.close()
    assert not os.path.exists(pipe.path)


@pytest.mark.parametrize("data, length", [(b"", 0), (b"abc", 0), (b"a\n", 2), (b"a\nb", 2), (b"a\r", 2),
                                          (b"x" * 200_000 + b"\n" + b"y" * 100_000, 200_001)])
def test_complete_length(tmp_path, data, length):
    path = tmp_path / "f"
    path.write_bytes(data)
    with path.open("rb") as fh:
        assert duckdb_engine.complete_length(fh.fileno()) == length


def test_a_pipe_nobody_reads_is_closed_without_waiting(tmp_path):
    source = tmp_path / "sent-p1.tsv"
    source.write_bytes(b"a\t1\n" * 1_000_000)
    for opened in (False, True):
        pipe = duckdb_engine.BoundedPipe(source, str(tmp_path), "pipe")
        if opened:  # the reader stops early
            fd = os.open(pipe.path, os.O_RDONLY)
            os.read(fd, 10)
            os.close(fd)
        done = threading.Event()
        threading.Thread(target=lambda: (pipe.close(), done.set()), daemon=True).start()
        assert done.wait(10)


def test_the_scratch_database_and_its_spill_are_kept_under_mqlab_and_removed(tmp_path, monkeypatch):
    """Beside the ledger, not in TMPDIR, with a bound on the spill; gone once the Report is done."""
    ledger_dir = tmp_path / ".mqlab" / "ledger"
    scenarios.write(ledger_dir / "r" / "sent-p1.tsv", scenarios.sent(["a", "b"]))
    scenarios.write(ledger_dir / "r" / "recv-c1.tsv", scenarios.recv(["a"]))
    elsewhere = tmp_path / "tmpdir"
    elsewhere.mkdir()
    monkeypatch.setenv("TMPDIR", str(elsewhere))
    monkeypatch.setattr("tempfile.tempdir", None)
    account, seen = duckdb_engine._account, {}

    def spy(con, *args, **kwargs):
        seen["database"], seen["spill"], seen["bound"] = con.execute(
            "SELECT (SELECT path FROM duckdb_databases() WHERE database_name = current_database()), "
            "current_setting('temp_directory'), current_setting('max_temp_directory_size')").fetchone()
        return account(con, *args, **kwargs)

    monkeypatch.setattr(duckdb_engine, "_account", spy)
    assert ledger.read_run(ledger_dir, "r").lost == 1
    scratch = tmp_path / ".mqlab" / "scratch"
    assert Path(seen["database"]).parent.parent == scratch and Path(seen["spill"]).parent.parent == scratch
    with duckdb.connect(config={"max_temp_directory_size": duckdb_engine.SPILL_LIMIT}) as con:
        assert seen["bound"] == con.execute("SELECT current_setting('max_temp_directory_size')").fetchone()[0]
    assert list(scratch.iterdir()) == [] and list(elsewhere.iterdir()) == []


@contextmanager
def tmpfs(path: Path, options: str):
    """A tmpfs mounted at ``path``, unmounted after: a small or read-only disk, for real."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def synthetic_run(tmp_path: Path) -> Path:
    """100,000 messages (17 MB of receipts) in ``<tmp_path>/.mqlab/ledger/big``; the ledger directory."""
    ledger_dir = tmp_path / ".mqlab" / "ledger"
    write_run(ledger_dir / "big", Planted(100_000, lost=100, duplicated=100, out_of_order=10), seed=3)
    return ledger_dir


def test_a_full_scratch_directory_is_one_line_that_says_where_and_what_to_do(tmp_path):
    ledger_dir = synthetic_run(tmp_path)
    scratch = tmp_path / ".mqlab" / "scratch"
    with tmpfs(scratch, "size=2m"):
        with pytest.raises(duckdb_engine.ScratchError) as caught:
            ledger.read_run(ledger_dir, "big")
        assert list(scratch.iterdir()) == []
    message = str(caught.value)
    assert isinstance(caught.value, LabError) and "\n" not in message
    assert message.startswith(f"the ledger's engine could not write its scratch files in {scratch}: ")
    assert "No space left on device" in message and "Free some disk space there" in message


def test_a_small_tmpdir_does_not_matter(tmp_path, monkeypatch):
    ledger_dir = synthetic_run(tmp_path)
    with tmpfs(tmp_path / "tmpdir", "size=2m") as small:
        monkeypatch.setenv("TMPDIR", str(small))
        monkeypatch.setattr("tempfile.tempdir", None)
        assert ledger.read_run(ledger_dir, "big").sent == 100_000


def test_a_scratch_directory_that_cannot_be_written_is_one_line(tmp_path):
    scenarios.write(tmp_path / ".mqlab" / "ledger" / "r" / "sent-p1.tsv", scenarios.sent(["a"]))
    scratch = tmp_path / ".mqlab" / "scratch"
    if os.geteuid() == 0:  # root writes anywhere it may: only a read-only disk stops it
        with tmpfs(scratch, "ro,size=1m"), pytest.raises(duckdb_engine.ScratchError) as caught:
            ledger.read_run(tmp_path / ".mqlab" / "ledger", "r")
        assert "Read-only file system" in str(caught.value)
    else:
        scratch.mkdir(mode=0o500)
        with pytest.raises(duckdb_engine.ScratchError) as caught:
            ledger.read_run(tmp_path / ".mqlab" / "ledger", "r")
        assert "Permission denied" in str(caught.value)
    assert str(caught.value).startswith(f"the ledger's engine could not write its scratch files in {scratch}: ")


def test_without_named_pipes_the_python_engine_reads_and_says_so_once(tmp_path, monkeypatch, capsys):
    scenarios.write(tmp_path / "r" / "sent-p1.tsv", scenarios.sent(["a", "b"]))
    scenarios.write(tmp_path / "r" / "recv-c1.tsv", scenarios.recv(["a", "a"]))
    expected = ledger.read_run(tmp_path, "r", engine="python")
    monkeypatch.delattr(os, "mkfifo")
    monkeypatch.setattr(ledger_run, "_SAID", set())
    assert [ledger.read_run(tmp_path, "r") for _ in range(3)] == [expected] * 3
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and said[0].startswith("mqlab: this platform has no named pipes (os.mkfifo)")
    assert "the Python engine reads the ledger instead" in said[0]


def open_files() -> set[str]:
    """What this process has open, by path."""
    paths = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return paths


def test_a_pipe_that_cannot_be_made_leaves_no_file_open(tmp_path):
    source = tmp_path / "sent-p1.tsv"
    source.write_bytes(b"a\t1\n")
    (tmp_path / "pipe").write_bytes(b"")  # mkfifo fails: the name is taken
    with pytest.raises(duckdb_engine.ScratchError, match=f"scratch files in {tmp_path}: .*File exists"):
        duckdb_engine.BoundedPipe(source, str(tmp_path), "pipe")
    assert str(source) not in open_files()


def test_a_lossy_mode_drops_what_failed(tmp_path):
    directory = tmp_path / "r"
    directory.mkdir()
    (directory / "run.json").write_text(json.dumps({"stack": "rabbitmq", "mode": "autoack"}))
    scenarios.write(directory / "sent-p1.tsv", scenarios.sent(["a", "b"]))
    scenarios.write(directory / "dead-c1.tsv", [("b", "p1", 1, 1, "dropped", 9)])
    assert both(tmp_path, "r").dropped == 1
