"""The ledger's two engines agree: DuckDB (mqlab.ledgersql, the default) and Python (the reference).

Every scenario of test_ledger.py is run again with each read of a run compared field by field,
then seeded random runs try every rule at once: several producers and consumers, resends,
losses, duplicates, reorders within and across lanes, redeliveries, keys and bindings, dead
letters, lossy modes, old short lines, blank lines, torn last lines and empty files.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import threading
from pathlib import Path

import pytest

import tests.unit.test_ledger as scenarios
from mqlab import ledger, ledgersql
from mqlab.errors import UsageError


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


class RunWriter:
    """Lines of one file, with the odd blank line, line without id, old short line or extra field."""

    def __init__(self, rng: random.Random, path: Path):
        self.rng, self.path, self.lines = rng, path, []

    def add(self, fields: list, short_from: int = 1) -> None:
        rng = self.rng
        fields = [str(x) for x in fields]
        r = rng.random()
        if r < 0.04:
            fields = fields[:rng.randint(short_from, len(fields) - 1)]  # an older, shorter format
        elif r < 0.06:
            fields = fields + ["extra"] * rng.randint(1, 2)
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
    sent = {p: RunWriter(rng, directory / f"sent-{p}.tsv") for p in producers}
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
        recv = RunWriter(rng, directory / f"recv-{c}.tsv")
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
        dead = RunWriter(rng, directory / f"dead-{name}.tsv")
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
    monkeypatch.setattr(ledgersql, "read_report", lambda *args, **kwargs: calls.append(kwargs))
    ledger.read_run(tmp_path, "r")
    assert len(calls) == 1


# ---------------------------------------------------------------------------- the bounded pipe


def read_fifo(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def test_the_pipe_gives_the_complete_lines_as_they_were_when_it_opened(tmp_path):
    source = tmp_path / "recv-c1.tsv"
    source.write_bytes(b"a\t1\nb\t2\nc\t")
    pipe = ledgersql.BoundedPipe(source, str(tmp_path), "pipe")
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
        assert ledgersql.complete_length(fh.fileno()) == length


def test_a_pipe_nobody_reads_is_closed_without_waiting(tmp_path):
    source = tmp_path / "sent-p1.tsv"
    source.write_bytes(b"a\t1\n" * 1_000_000)
    for opened in (False, True):
        pipe = ledgersql.BoundedPipe(source, str(tmp_path), "pipe")
        if opened:  # the reader stops early
            fd = os.open(pipe.path, os.O_RDONLY)
            os.read(fd, 10)
            os.close(fd)
        done = threading.Event()
        threading.Thread(target=lambda: (pipe.close(), done.set()), daemon=True).start()
        assert done.wait(10)


def test_the_scratch_directory_is_removed(tmp_path, monkeypatch):
    scenarios.write(tmp_path / "r" / "sent-p1.tsv", scenarios.sent(["a", "b"]))
    scenarios.write(tmp_path / "r" / "recv-c1.tsv", scenarios.recv(["a"]))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    assert ledger.read_run(tmp_path, "r").lost == 1
    assert list(scratch.iterdir()) == []


def test_a_lossy_mode_drops_what_failed(tmp_path):
    directory = tmp_path / "r"
    directory.mkdir()
    (directory / "run.json").write_text(json.dumps({"stack": "rabbitmq", "mode": "autoack"}))
    scenarios.write(directory / "sent-p1.tsv", scenarios.sent(["a", "b"]))
    scenarios.write(directory / "dead-c1.tsv", [("b", "p1", 1, 1, "dropped", 9)])
    assert both(tmp_path, "r").dropped == 1
