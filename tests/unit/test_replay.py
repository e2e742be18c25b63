"""`invoke replay` without a broker: where to start, what a queue says, and the check of what
was read against the ledger."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mqlab import brokers
from mqlab.errors import UsageError
from mqlab.stack import reread as replay
from mqlab.stacks import STACKS
from mqlab_services import ledger as writer
from mqlab_services.envelope import make


@pytest.mark.parametrize("text, expected", [
    ("beginning", ("beginning", None)), ("BEGINNING", ("beginning", None)), ("120", ("offset", 120)),
    ("1733000000000-3", ("entry", "1733000000000-3")),
    ("2026-12-04T21:30:00", ("time", 1_796_419_800 * 10**9)),
    ("2026-12-04T22:30:00+01:00", ("time", 1_796_419_800 * 10**9)),
])
def test_where_to_start(text, expected):
    assert replay.parse_from(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "-5", "12-", "2026-13-40"])
def test_a_start_that_is_none_of_these_is_one_line(text):
    with pytest.raises(UsageError, match="--from must be beginning, an offset, a Redis entry id"):
        replay.parse_from(text)


@pytest.mark.parametrize("mode, says", [("work", "a RabbitMQ classic queue forgets what it delivered"),
                                        ("quorum", "a RabbitMQ quorum queue forgets what it delivered")])
def test_a_queue_cannot_be_read_again_and_says_which_mode_can(mode, says):
    with pytest.raises(UsageError, match=f"{says}, so it cannot be read again: a RabbitMQ stream can"):
        brokers.of(STACKS["rabbitmq"]).replay(None, mode, ("beginning", None), 10)


def test_each_log_refuses_the_other_ones_kind_of_start():
    with pytest.raises(UsageError, match="not by a Redis entry id"):
        brokers.of(STACKS["kafka"]).replay(None, "group", ("entry", "1-0"), 10)
    with pytest.raises(UsageError, match="not by a Kafka offset"):
        brokers.of(STACKS["redis"]).replay(None, "stream", ("offset", 5), 10)
    with pytest.raises(UsageError, match="pub/sub keeps nothing"):
        brokers.of(STACKS["redis"]).replay(None, "pubsub", ("beginning", None), 10)


def envelope(seq: int, run: str = "run1"):
    return make(run, "p-1", seq, ts_ns=1_000, msg_id=f"{seq + 1:032x}")


def recorded(tmp_path, positions: list[str]):
    sent = writer.ReceiptWriter(str(tmp_path), "sent", "p-1")
    for seq, pos in enumerate(positions):
        sent.sent(envelope(seq), 1_000 + seq, "", pos)
    sent.close()
    return SimpleNamespace(ledger_dir=tmp_path)


def test_what_was_read_matches_what_the_ledger_says_was_acked_there(tmp_path):
    config = recorded(tmp_path, ["p0:0", "p0:1", "p1:0"])
    read = [("p0:0", envelope(0).encode(64)), ("p0:1", envelope(1).encode(64)), ("p1:0", envelope(2).encode(64)),
            ("p1:1", b"hello from a tutorial script"), ("p1:2", envelope(7, run="elsewhere").encode(64))]
    found = replay.check(config, read)
    assert (found.read, found.matched, found.foreign, found.unknown_runs, found.ok) == (5, 3, 1, {"elsewhere"}, True)
    text = replay.render("kafka", "group", "beginning", found)
    assert "acked here" in text and "(not an envelope)" in text and text.endswith("OK: the log holds what the "
                                                                                "ledger says was acked there")


def test_an_acked_message_missing_from_the_range_read_or_read_elsewhere_fails(tmp_path):
    config = recorded(tmp_path, ["1700000000000-0", "1700000000000-1", "1700000000000-2"])
    # entry -1 is not in the stream any more; entry -2 holds message 0 again (not acked there)
    read = [("1700000000000-0", envelope(0).encode(64)), ("1700000000000-2", envelope(0).encode(64))]
    found = replay.check(config, read)
    assert found.missing == [envelope(1).id, envelope(2).id] and found.misplaced == [envelope(0).id]
    assert not found.ok and replay.render("redis", "stream", "beginning", found).endswith(
        "FAIL: the log and the ledger disagree")


@pytest.mark.parametrize("start, first", [(("entry", "1733000000000-3"), "1733000000000-3"),
                                          (("time", 1_733_000_000_123_456_789), "1733000000123-0"),
                                          (("beginning", None), "-")])
def test_a_redis_stream_is_read_again_from_an_entry_id_a_time_or_its_start(monkeypatch, start, first):
    asked = []

    class FakeRedis:
        def xrange(self, stream, min, max, count):
            asked.append(min)
            return [(b"1733000000000-3", {b"data": b"x"})] if len(asked) == 1 else []

        def close(self):
            pass

    broker = brokers.of(STACKS["redis"])
    monkeypatch.setattr(broker, "client", lambda config: FakeRedis())
    assert broker.replay(None, "stream", start, 10) == [("1733000000000-3", b"x")]
    assert asked == [first, "(1733000000000-3"]


def test_receipts_of_a_producer_of_an_earlier_log_are_not_held_to_the_range(tmp_path):
    """`invoke down --volumes` empties the log, not the ledger: the steady run's earlier producer
    placed its messages at offsets the new log reuses. Only producers seen in the range are judged."""
    config = recorded(tmp_path, ["p0:0", "p0:1"])  # producer p-1, now gone with its log
    earlier = writer.ReceiptWriter(str(tmp_path), "sent", "p-2")
    now = [make("run1", "p-2", seq, ts_ns=1_000, msg_id=f"{seq + 100:032x}") for seq in range(3)]
    for seq, env in enumerate(now):
        earlier.sent(env, 1_000, "", f"p0:{seq}")
    earlier.close()
    found = replay.check(config, [(f"p0:{seq}", env.encode(64)) for seq, env in enumerate(now[:2])])
    assert found.ok and found.matched == 2 and found.missing == []
    found = replay.check(config, [("p0:0", now[0].encode(64)), ("p0:2", now[2].encode(64))])
    assert found.missing == [now[1].id]  # p-2 was read: its own gap is still seen
