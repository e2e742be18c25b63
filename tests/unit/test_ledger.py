from pathlib import Path

import pytest

from mqlab import ledger
from mqlab.errors import UsageError


def write(path: Path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for parts in lines:
            fh.write("\t".join(str(p) for p in parts) + "\n")


def sent(ids, producer="p1"):
    return [(i, n, 1000 + n, 2000 + n) for n, i in enumerate(ids)]


def recv(ids, src="p1", seqs=None):
    seqs = seqs if seqs is not None else range(len(ids))
    return [(i, src, s, 1000 + s, 5_000_000 + 1000 + s) for i, s in zip(ids, seqs)]


def test_all_received_is_ok(tmp_path):
    ids = [f"m{i}" for i in range(10)]
    write(tmp_path / "r1" / "sent-p1.tsv", sent(ids))
    write(tmp_path / "r1" / "recv-c1.tsv", recv(ids[:6]))
    write(tmp_path / "r1" / "recv-c2.tsv", recv(ids[6:], seqs=range(6, 10)))
    report = ledger.read_run(tmp_path, "r1")
    assert (report.sent, report.received, report.lost, report.duplicated) == (10, 10, 0, 0)
    assert report.per_consumer == {"c1": 6, "c2": 4}
    assert report.ok
    assert report.latency_p50_ms == pytest.approx(5.0)


def test_lost_duplicated_and_unacked_are_counted(tmp_path):
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a", "b", "c", "d"]))
    write(tmp_path / "r" / "recv-c1.tsv", recv(["a", "b", "b", "x"], seqs=[0, 1, 1, 9]))
    report = ledger.read_run(tmp_path, "r")
    assert report.lost == 2
    assert report.lost_ids == ["c", "d"]
    assert report.duplicated == 1
    assert report.extra_deliveries == 1
    assert report.unacked_received == 1
    assert not report.ok
    text = ledger.render(report)
    assert "FAIL: 2 acked messages lost" in text
    assert "first lost ids: c, d" in text


def test_out_of_order_per_producer(tmp_path):
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a", "b", "c"]))
    write(tmp_path / "r" / "recv-c1.tsv", recv(["a", "c", "b"], seqs=[0, 2, 1]))
    assert ledger.read_run(tmp_path, "r").out_of_order == 1


def test_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "r" / "sent-p1.tsv"
    write(path, sent(["a"]))
    with path.open("a") as fh:
        fh.write("b\t1\t5")  # still being written
    assert ledger.read_run(tmp_path, "r").sent == 1


def test_unknown_run_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no ledger for run 'nope'"):
        ledger.read_run(tmp_path, "nope")


def test_latest_run_round_trip_and_missing(tmp_path):
    with pytest.raises(UsageError, match="invoke produce redis"):
        ledger.latest_run(tmp_path, "redis")
    ledger.record_latest(tmp_path, "redis", "run-7")
    assert ledger.latest_run(tmp_path, "redis") == "run-7"


def test_wait_returns_early_when_complete(tmp_path):
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a"]))
    write(tmp_path / "r" / "recv-c1.tsv", recv(["a"]))
    calls = []
    report = ledger.wait_for_run(tmp_path, "r", settle=5, timeout=5, sleep=calls.append)
    assert report.ok and calls == []


def test_wait_gives_up_after_settle_without_progress(tmp_path):
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a", "b"]))
    write(tmp_path / "r" / "recv-c1.tsv", recv(["a"]))
    now = [0.0]
    report = ledger.wait_for_run(tmp_path, "r", settle=3, timeout=100, poll=1,
                                 clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert report.lost == 1
    assert 3 <= now[0] <= 4


def test_hundred_thousand_messages_read_quickly(tmp_path):
    ids = [f"{i:032x}" for i in range(100_000)]
    write(tmp_path / "big" / "sent-p1.tsv", sent(ids))
    write(tmp_path / "big" / "recv-c1.tsv", recv(ids[:50_000]))
    write(tmp_path / "big" / "recv-c2.tsv", recv(ids[50_000:], seqs=range(50_000, 100_000)))
    report = ledger.read_run(tmp_path, "big")
    assert report.sent == 100_000 and report.received == 100_000 and report.lost == 0


def sent_keyed(ids, keys):
    return [(i, n, 1000 + n, 2000 + n, k) for n, (i, k) in enumerate(zip(ids, keys))]


def test_fanout_every_subscriber_must_get_every_message(tmp_path):
    ids = ["a", "b", "c", "d"]
    write(tmp_path / "r" / "sent-p1.tsv", sent(ids))
    write(tmp_path / "r" / "recv-s1.tsv", recv(ids))
    write(tmp_path / "r" / "recv-s2.tsv", recv(["a", "b", "d"], seqs=[0, 1, 3]))
    report = ledger.read_run(tmp_path, "r", kind="fanout")
    assert report.missing_per_consumer == {"s1": 0, "s2": 1}
    assert report.lost == 1 and report.lost_ids == ["c"]
    assert report.duplicated == 0 and report.received == 7


def test_fanout_late_subscriber_is_due_only_what_came_after_it_joined(tmp_path):
    ids = ["a", "b", "c", "d"]
    write(tmp_path / "r" / "sent-p1.tsv", sent(ids))
    write(tmp_path / "r" / "recv-s1.tsv", recv(ids))
    write(tmp_path / "r" / "recv-late.tsv", recv(["c", "d"], seqs=[2, 3]))
    report = ledger.read_run(tmp_path, "r", kind="fanout")
    assert report.lost == 0 and report.ok


def test_competing_counts_a_message_once_for_the_group(tmp_path):
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a", "b"]))
    write(tmp_path / "r" / "recv-c1.tsv", recv(["a"]))
    write(tmp_path / "r" / "recv-c2.tsv", recv(["b"], seqs=[1]))
    report = ledger.read_run(tmp_path, "r", kind="competing")
    assert report.lost == 0 and report.duplicated == 0


def test_routed_mode_only_due_what_matches_the_binding(tmp_path):
    ids = ["a", "b", "c"]
    write(tmp_path / "r" / "sent-p1.tsv", sent_keyed(ids, ["orders.eu", "audit.eu", "orders.us"]))
    write(tmp_path / "r" / "recv-c1.tsv", recv(["a"]))
    report = ledger.read_run(tmp_path, "r", kind="routed", binding="orders.*")
    assert report.unrouted == 1
    assert report.lost == 1 and report.lost_ids == ["c"]


def test_order_is_checked_per_key(tmp_path):
    write(tmp_path / "r" / "sent-p1.tsv", sent_keyed(["a", "b", "c"], ["k1", "k2", "k1"]))
    # k2's message arrives after k1's later one: fine, order is per key.
    lines = [("a", "p1", 0, 1, 2, "k1"), ("c", "p1", 2, 1, 2, "k1"), ("b", "p1", 1, 1, 2, "k2")]
    write(tmp_path / "r" / "recv-c1.tsv", lines)
    assert ledger.read_run(tmp_path, "r").out_of_order == 0
    write(tmp_path / "r2" / "recv-c1.tsv", [("c", "p1", 2, 1, 2, "k1"), ("a", "p1", 0, 1, 2, "k1")])
    write(tmp_path / "r2" / "sent-p1.tsv", sent_keyed(["a", "c"], ["k1", "k1"]))
    assert ledger.read_run(tmp_path, "r2").out_of_order == 1


def test_kind_comes_from_the_run_info(tmp_path):
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a"]))
    write(tmp_path / "r" / "recv-s1.tsv", recv(["a"]))
    write(tmp_path / "r" / "recv-s2.tsv", [])
    ledger.write_run_info(tmp_path / "r", {"stack": "redis", "mode": "pubsub"})
    (tmp_path / "r" / "recv-s2.tsv").touch()
    report = ledger.read_run(tmp_path, "r")
    assert report.kind == "fanout" and report.mode == "pubsub"
    assert report.missing_per_consumer == {"s1": 0, "s2": 1}
    assert "mode pubsub, judged as fanout" in ledger.render(report)


def test_dead_lettered_messages_are_accounted_for_not_lost(tmp_path):
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a", "b", "c"]))
    write(tmp_path / "r" / "recv-c1.tsv", recv(["a", "c"], seqs=[0, 2]))
    write(tmp_path / "r" / "dead-c1.tsv", [("b", "p1", 1, 3, "poison message (envelope fail=true)", 99)])
    report = ledger.read_run(tmp_path, "r")
    assert report.lost == 0 and report.dead_lettered == 1 and report.ok
    assert report.dead_reasons == {"poison message (envelope fail=true)": 1}
    assert "dead-lettered (see `invoke dlq`)" in ledger.render(report)


def test_in_a_lossy_mode_a_failed_message_is_dropped_and_lost(tmp_path):
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a", "b"]))
    write(tmp_path / "r" / "recv-c1.tsv", recv(["a"]))
    write(tmp_path / "r" / "dead-c1.tsv", [("b", "p1", 1, 1, "poison message; dropped (autoack mode, no retries)", 9)])
    ledger.write_run_info(tmp_path / "r", {"stack": "rabbitmq", "mode": "autoack"})
    report = ledger.read_run(tmp_path, "r")
    assert report.dropped == 1 and report.lost == 1 and not report.ok
    assert "failed and dropped" in ledger.render(report)


def test_line_counter_reads_only_what_was_appended(tmp_path):
    from mqlab.stack.runs import LineCounter

    counter = LineCounter(tmp_path, "sent-*.tsv")
    assert counter() == 0
    write(tmp_path / "sent-a.tsv", sent(["x", "y"]))
    assert counter() == 2
    write(tmp_path / "sent-a.tsv", sent(["z"]))
    write(tmp_path / "sent-b.tsv", sent(["w"]))
    assert counter() == 4


def _run_info(directory: Path, stack: str, mode: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ledger.write_run_info(directory, {"stack": stack, "mode": mode})


def lanes(ids, seqs, lanes_):
    return [(i, "p1", s, 1000 + s, 5_000_000 + s, "", lane) for i, s, lane in zip(ids, seqs, lanes_)]


def test_kafka_order_is_judged_per_partition(tmp_path):
    _run_info(tmp_path / "r", "kafka", "group")
    ids = [f"m{i}" for i in range(6)]
    write(tmp_path / "r" / "sent-p1.tsv", sent(ids))
    # One consumer reads two partitions: their records interleave, each partition in order.
    write(tmp_path / "r" / "recv-c1.tsv", lanes(["m1", "m3", "m0", "m2", "m5", "m4"], [1, 3, 0, 2, 5, 4],
                                                 ["p1", "p1", "p0", "p0", "p1", "p0"]))
    report = ledger.read_run(tmp_path, "r")
    assert (report.out_of_order, report.reordered, report.lost) == (0, 0, 0)
    # Within one partition, a record that comes before an earlier one breaks the promise.
    write(tmp_path / "r" / "recv-c2.tsv", lanes(["m0", "m2", "m1"], [0, 2, 1], ["p0", "p0", "p0"]))
    report = ledger.read_run(tmp_path, "r")
    assert report.out_of_order == 1
    assert "VIOLATION" in ledger.render(report)


def test_a_shared_queue_promises_order_only_to_a_single_consumer(tmp_path):
    _run_info(tmp_path / "r", "rabbitmq", "work")
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a", "b", "c", "d"]))
    write(tmp_path / "r" / "recv-c1.tsv", recv(["b", "a"], seqs=[1, 0]))
    assert (ledger.read_run(tmp_path, "r").out_of_order, ledger.read_run(tmp_path, "r").reordered) == (1, 0)
    write(tmp_path / "r" / "recv-c2.tsv", recv(["d", "c"], seqs=[3, 2]))
    report = ledger.read_run(tmp_path, "r")
    assert (report.out_of_order, report.reordered) == (0, 2)
    assert "reordered where no order is promised (information)" in ledger.render(report)


def test_redeliveries_and_repeats_have_no_promised_place(tmp_path):
    _run_info(tmp_path / "r", "rabbitmq", "work")
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a", "b", "c"]))
    write(tmp_path / "r" / "recv-c1.tsv", [("a", "p1", 0, 1, 2, "", ""), ("c", "p1", 2, 1, 2, "", ""),
                                          ("b", "p1", 1, 1, 2, "", "redelivered"), ("a", "p1", 0, 1, 2, "", "")])
    report = ledger.read_run(tmp_path, "r")
    assert (report.out_of_order, report.reordered, report.duplicated, report.lost) == (0, 0, 1, 0)


def test_fanout_subscribers_dead_letters_are_accounted_not_lost(tmp_path):
    _run_info(tmp_path / "r", "rabbitmq", "fanout")
    write(tmp_path / "r" / "sent-p1.tsv", sent(["a", "b", "c", "d"]))
    for consumer in ("c1", "c2"):
        write(tmp_path / "r" / f"recv-{consumer}.tsv", recv(["a", "b", "d"], seqs=[0, 1, 3]))
        write(tmp_path / "r" / f"dead-{consumer}.tsv", [("c", "p1", 2, 3, "poison message", 9)])
    report = ledger.read_run(tmp_path, "r")
    assert (report.lost, report.dead_lettered, report.missing_per_consumer) == (0, 1, {"c1": 0, "c2": 0})
    # A subscriber that neither received nor dead-lettered it lost it.
    (tmp_path / "r" / "dead-c2.tsv").unlink()
    report = ledger.read_run(tmp_path, "r")
    assert (report.lost, report.missing_per_consumer) == (1, {"c1": 0, "c2": 1})
