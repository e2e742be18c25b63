"""The one receipt reader against the services' writer: the column constants name the fields the
writer puts there, and lines are read as both engines and the timeline read them."""

from mqlab.ledger import receipts
from mqlab_services import ledger as writer
from mqlab_services.envelope import Envelope

ENV = Envelope(id="a1", run="r", src="p-1", seq=7, ts_ns=1_000)


def test_the_columns_name_what_the_writer_puts_there():
    sent = writer.sent_line(ENV, 2_000, "orders.eu", "p2:40").rstrip("\n").split("\t")
    assert (sent[receipts.ID], sent[receipts.SENT_SEQ], sent[receipts.SENT_SEND_NS], sent[receipts.SENT_ACK_NS],
            sent[receipts.SENT_KEY], sent[receipts.SENT_POS]) == ("a1", "7", "1000", "2000", "orders.eu", "p2:40")
    recv = writer.recv_line(ENV, 3_000, "k", "p2").rstrip("\n").split("\t")
    assert (recv[receipts.ID], recv[receipts.RECV_SRC], recv[receipts.RECV_SEQ], recv[receipts.RECV_SEND_NS],
            recv[receipts.RECV_RECV_NS], recv[receipts.RECV_KEY], recv[receipts.RECV_LANE]) == (
        "a1", "p-1", "7", "1000", "3000", "k", "p2")
    dead = writer.dead_line(ENV, 3, "boom", 4_000).rstrip("\n").split("\t")
    assert (dead[receipts.ID], dead[receipts.DEAD_SRC], dead[receipts.DEAD_SEQ], dead[receipts.DEAD_ATTEMPTS],
            dead[receipts.DEAD_REASON], dead[receipts.DEAD_NS]) == ("a1", "p-1", "7", "3", "boom", "4000")


def test_complete_lines_with_an_id_are_read_and_numbers_are_ascii_within_64_bits(tmp_path):
    (tmp_path / "recv-c2.tsv").write_bytes(b"b\tp\t1\t10\t15\n\tp\t2\t10\t16\nc\tp\t2\t\xc2\xb2\t17\r\nd\tp\t3\t10\t1")
    (tmp_path / "recv-c1.tsv").write_text(f"a\tp\t0\t5\t{1 << 63}\n")
    assert [name for name, _path in receipts.files(tmp_path, receipts.RECV)] == ["c1", "c2"]
    lines = list(receipts.lines(tmp_path / "recv-c2.tsv"))  # no id, and a torn last line: not read
    assert lines == [["b", "p", "1", "10", "15"], ["c", "p", "2", "²", "17"]]
    assert [receipts.delivery_times(parts) for parts in lines] == [(1, 10, 15), None]
    assert receipts.column(tmp_path, receipts.RECV, receipts.RECV_RECV_NS) == {"c1": [], "c2": [15, 17]}
