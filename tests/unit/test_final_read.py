"""The final read: acked messages looked up in the broker's log where the broker put them,
from answers recorded the way Kafka and Redis give them."""

from __future__ import annotations

from types import SimpleNamespace

from mqlab import brokers, ledger
from mqlab.brokers import kafka as kafka_host
from mqlab.brokers import redis as redis_host
from mqlab.config import LabConfig
from mqlab.stacks import STACKS
from mqlab_services import ledger as writer
from mqlab_services.envelope import make


def envelope(seq: int):
    """An envelope of run1 and its bytes, as a producer sends them."""
    env = make("run1", "p-1", seq, ts_ns=1_000 + seq, msg_id=f"{seq + 1:032x}")
    return env, env.encode(128)


def write_run(directory, positions: list[str], received: int = 0) -> list[str]:
    """A run whose producer recorded ``positions``; the consumer received the first ``received``."""
    sent = writer.ReceiptWriter(str(directory.parent), "sent", "p-1")  # writes <ledger>/run1/
    recv = writer.ReceiptWriter(str(directory.parent), "recv", "c-1")
    ids = []
    for seq, pos in enumerate(positions):
        env, _data = envelope(seq)
        sent.sent(env, 1_000 + seq, "", pos)
        if seq < received:
            recv.received(env, 2_000 + seq)
        ids.append(env.id)
    sent.close()
    recv.close()
    return ids


def config(tmp_path) -> LabConfig:
    return LabConfig(root=tmp_path, offline=False, values={})


def test_an_id_missing_or_replaced_at_its_position_is_gone_and_said_if_it_was_delivered(tmp_path):
    ids = write_run(tmp_path / "run1", ["p0:0", "p0:1", "p0:2", "p1:0"], received=4)
    log = {"p0:0": ids[0], "p0:2": "another-id", "p1:0": ids[3]}  # p0:1 truncated, p0:2 taken over
    found = ledger.read_back(tmp_path / "run1", "partition and offset", lambda positions: log)
    assert (found.read, found.checked, found.gone, found.gone_received) == (True, 4, 2, 2)
    assert sorted(found.gone_ids) == sorted([ids[1], ids[2]])


def test_without_positions_nothing_is_read_and_it_says_so(tmp_path):
    write_run(tmp_path / "run1", ["", ""])
    found = ledger.read_back(tmp_path / "run1", "x", lambda positions: {})
    assert not found.read and "no positions on record" in found.note


class _Record(SimpleNamespace):
    pass


class _FakeKafkaConsumer:
    """A partition whose log, after a leader change, ends before offsets that were acked."""

    def __init__(self, logs: dict[int, list[bytes]]):
        self.logs, self.at = logs, {}

    def assign(self, tps):
        self.tp = tps[0]

    def beginning_offsets(self, tps):
        return {tp: 0 for tp in tps}

    def end_offsets(self, tps):
        return {tp: len(self.logs[tp.partition]) for tp in tps}

    def seek(self, tp, offset):
        self.at[tp.partition] = offset

    def position(self, tp):
        return self.at[tp.partition]

    def poll(self, timeout_ms, max_records):
        log, start = self.logs[self.tp.partition], self.at[self.tp.partition]
        records = [_Record(offset=o, value=log[o]) for o in range(start, min(start + 2, len(log)))]
        self.at[self.tp.partition] = start + len(records)
        return {self.tp: records} if records else {}

    def close(self):
        pass


def test_kafka_reads_each_partition_from_its_leader_and_a_truncated_offset_is_gone(tmp_path, monkeypatch):
    bodies = [envelope(seq)[1] for seq in range(5)]
    ids = write_run(tmp_path / "run1", ["p0:0", "p0:1", "p0:2", "p1:0", "p1:1"])
    # The new leader of p0 never had offset 2 (its log ends at 2); p1 holds everything.
    logs = {0: [bodies[0], bodies[1]], 1: [bodies[3], bodies[4]]}
    monkeypatch.setattr(kafka_host, "KafkaConsumer", lambda **_options: _FakeKafkaConsumer(logs))
    broker = brokers.of(STACKS["kafka-cluster"])
    found = ledger.read_back(tmp_path / "run1", broker.log_position,
                             lambda positions: broker.read_log(config(tmp_path), "group", positions))
    assert (found.checked, found.gone, found.gone_ids) == (5, 1, [ids[2]])


class _FakeRedis:
    """XRANGE over a stream as the new primary has it, in pages."""

    def __init__(self, entries: list[tuple[bytes, dict]]):
        self.entries, self.calls = entries, []

    def xrange(self, name, min, max, count):
        self.calls.append(min)
        key = lambda e: tuple(int(x) for x in e.split("-"))  # noqa: E731
        low = min.lstrip("(")
        chosen = [(e, f) for e, f in self.entries
                  if (key(e.decode()) > key(low) if min.startswith("(") else key(e.decode()) >= key(low))
                  and key(e.decode()) <= key(max)]
        return chosen[:count]

    def close(self):
        pass


def test_redis_reads_the_stream_by_entry_id_in_pages_and_a_missing_entry_is_gone(tmp_path, monkeypatch):
    bodies = [envelope(seq)[1] for seq in range(5)]
    entry_ids = [f"1700000000000-{n}" for n in range(5)]
    ids = write_run(tmp_path / "run1", entry_ids, received=5)
    # The old primary took entries 3 and 4 while cut off; the new one never had them.
    fake = _FakeRedis([(e.encode(), {b"data": b}) for e, b in zip(entry_ids[:3], bodies[:3])])
    monkeypatch.setattr(redis_host, "READ_PAGE", 2)
    broker = brokers.of(STACKS["redis-sentinel"])
    monkeypatch.setattr(type(broker), "client", lambda self, cfg, **options: fake)
    found = ledger.read_back(tmp_path / "run1", broker.log_position,
                             lambda positions: broker.read_log(config(tmp_path), "stream", positions))
    assert (found.checked, found.gone, found.gone_received) == (5, 2, 2)
    assert sorted(found.gone_ids) == sorted(ids[3:])
    assert fake.calls == ["1700000000000-0", "(1700000000000-1"]  # paged, exclusive after the first page


def test_the_verify_table_shows_the_final_read_and_fails_on_an_id_gone():
    report = ledger.Report("run1", sent=10, received=10, unique_received=10)
    report.final = ledger.FinalRead(read=True, by="stream entry id", checked=10, gone=3, gone_received=3,
                                    gone_ids=["a", "b", "c"])
    text = ledger.render(report)
    assert "acked but gone from the broker's log (final read by stream entry id)  3 of 10; 3 of them delivered" \
        in " ".join(text.split()) or "3 of 10; 3 of them delivered before they were gone" in text
    assert not report.ok and text.splitlines()[-1] == "FAIL: 3 acked messages gone from the broker's log"
    report.final = ledger.not_read("a rabbitmq queue forgets what it delivered: no log to read back")
    assert report.ok and "not read: a rabbitmq queue forgets" in ledger.render(report)


def test_a_rabbitmq_stream_says_why_it_is_not_read_back_where_a_queue_says_it_forgets(tmp_path):
    from mqlab.stack import runs
    cfg = LabConfig(root=tmp_path, offline=False, values={})
    stream = runs.final_read(cfg, STACKS["rabbitmq"], "stream", "run1")
    quorum = runs.final_read(cfg, STACKS["rabbitmq-cluster"], "quorum", "run1")
    assert not stream.read and "publisher confirm carries no offset" in stream.note and "replay" in stream.note
    assert not quorum.read and quorum.note == "a rabbitmq queue forgets what it delivered: no log to read back"
