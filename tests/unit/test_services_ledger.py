"""The services' receipt writer: file names, line format, flushing and sequence recovery."""

from __future__ import annotations

import pytest

from mqlab_services import envelope, ledger
from mqlab_services.ledger import ReceiptWriter


def env(seq: int, run: str = "r1", src: str = "p1") -> envelope.Envelope:
    return envelope.make(run, src, seq, ts_ns=1000 + seq, msg_id=f"{seq:032x}")


def test_sent_lines(tmp_path):
    writer = ReceiptWriter(str(tmp_path), "sent", "p1")
    writer.sent(env(1), ack_ns=5000)
    writer.sent(env(2), ack_ns=6000)
    assert writer.flush() == 2
    text = (tmp_path / "r1" / "sent-p1.tsv").read_text()
    assert text == f"{1:032x}\t1\t1001\t5000\t\t\n{2:032x}\t2\t1002\t6000\t\t\n"


def test_recv_lines(tmp_path):
    writer = ReceiptWriter(str(tmp_path), "recv", "c1")
    writer.received(env(3, src="prod-a"), recv_ns=9000)
    writer.flush()
    assert (tmp_path / "r1" / "recv-c1.tsv").read_text() == f"{3:032x}\tprod-a\t3\t1003\t9000\t\t\n"


def test_recv_lines_carry_the_key_and_the_lane(tmp_path):
    writer = ReceiptWriter(str(tmp_path), "recv", "c1")
    writer.received(env(4), recv_ns=9000, key="orders.eu")
    writer.received(env(5), recv_ns=9001, key=b"key-5", lane="p2")
    writer.close()
    rows = [line.split("\t") for line in (tmp_path / "r1" / "recv-c1.tsv").read_text().splitlines()]
    assert [len(r) for r in rows] == [7, 7]
    assert [(r[5], r[6]) for r in rows] == [("orders.eu", ""), ("key-5", "p2")]
    sent = ReceiptWriter(str(tmp_path), "sent", "p1")
    sent.sent(env(6), ack_ns=1, key="key-6", pos="p2:17")
    sent.sent(env(7), ack_ns=2)
    sent.close()
    rows = [line.split("\t") for line in (tmp_path / "r1" / "sent-p1.tsv").read_text().splitlines()]
    assert rows == [[f"{6:032x}", "6", "1006", "1", "key-6", "p2:17"], [f"{7:032x}", "7", "1007", "2", "", ""]]


@pytest.mark.parametrize("key, shown", [
    (None, ""), ("", ""), ("a\tb\nc", "a?b?c"), (b"\xff\x01k", "\\xff?k"), ("κλειδί", "κλειδί"),
])
def test_keys_from_the_wire_stay_one_field(key, shown):
    assert ledger.clean_key(key) == shown
    assert ledger.recv_line(env(1), 5, key, key).count("\t") == 6


def test_nothing_reaches_the_file_before_flush_and_everything_after(tmp_path):
    writer = ReceiptWriter(str(tmp_path), "recv", "c1")
    writer.received(env(1), recv_ns=1)
    path = tmp_path / "r1" / "recv-c1.tsv"
    assert not path.exists()
    writer.flush()
    # Readable by another process (the host's verify) while the writer keeps the file open.
    assert len(path.read_text().splitlines()) == 1


def test_runs_go_to_their_own_directories_and_files_are_appended(tmp_path):
    writer = ReceiptWriter(str(tmp_path), "recv", "c1")
    writer.received(env(1, run="a"), 1)
    writer.received(env(1, run="b"), 1)
    writer.flush()
    writer.received(env(2, run="a"), 2)
    writer.close()
    again = ReceiptWriter(str(tmp_path), "recv", "c1")
    again.received(env(3, run="a"), 3)
    again.close()
    assert len((tmp_path / "a" / "recv-c1.tsv").read_text().splitlines()) == 3
    assert len((tmp_path / "b" / "recv-c1.tsv").read_text().splitlines()) == 1


def test_old_run_files_are_closed_beyond_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger, "MAX_OPEN_FILES", 2)
    writer = ReceiptWriter(str(tmp_path), "recv", "c1")
    for run in ("a", "b", "c", "a"):
        writer.received(env(1, run=run), 1)
        writer.flush()
    assert list(writer._files) == ["c", "a"]
    writer.close()
    assert len((tmp_path / "a" / "recv-c1.tsv").read_text().splitlines()) == 2


def test_next_seq_lets_a_restarted_producer_continue(tmp_path):
    writer = ReceiptWriter(str(tmp_path), "sent", "p1")
    assert writer.next_seq("r1") == 0
    for seq in (0, 1, 5, 3):
        writer.sent(env(seq), 1)
    writer.close()
    with open(tmp_path / "r1" / "sent-p1.tsv", "a") as f:
        f.write("torn-li")  # a crash mid-line
    assert ReceiptWriter(str(tmp_path), "sent", "p1").next_seq("r1") == 6


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'sent', 'recv' or 'dead'"):
        ReceiptWriter(str(tmp_path), "acked", "p1")


def test_dead_lines_hold_attempts_and_a_one_line_reason(tmp_path):
    with ReceiptWriter(str(tmp_path), "dead", "c1") as w:
        w.dead(env(5), 3, "KeyError: 'x'\tat\r\nline 2", 99)
    with open(tmp_path / "r1" / "dead-c1.tsv") as f:
        lines = f.read().splitlines()
    assert lines == [f"{5:032x}\tp1\t5\t3\tKeyError: 'x' at  line 2\t99"]


def test_long_reasons_are_cut():
    reason = ledger.clean_reason("x" * 1000)
    assert len(reason) == ledger.REASON_MAX and reason.endswith("...")
    assert ledger.dead_line(env(1), 2, "r", 7).count("\t") == 5
