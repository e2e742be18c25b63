"""Kafka's txn mode without a broker: what the transactional producer and the consume-transform-
produce stage ask of the client, in what order; and how the ledger judges the output topic."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import kafka.errors
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from mqlab import brokers, ledger
from mqlab.brokers import kafka as kafka_host
from mqlab.stacks import STACKS
from mqlab_services import adapters
from mqlab_services.adapters import kafka as kafka_adapter
from mqlab_services.adapters import kafka_txn
from mqlab_services.envelope import make
from mqlab_services.settings import Settings


def settings(**env) -> Settings:
    return Settings.from_env({"MQLAB_BROKER": "kafka", "MQLAB_MODE": "txn", "MQLAB_URL": "k:9092",
                              "MQLAB_NAME": "stage-1", **env})


class FakeTxnProducer:
    """A transactional producer that records every call; ``fail_on`` makes that call raise."""

    def __init__(self, calls: list, fail_on: str = "", **config):
        self.calls, self.fail_on, self.config, self.offset = calls, fail_on, config, 40
        calls.append(("new", config["transactional_id"]))

    def _call(self, name, *args):
        self.calls.append((name, *args))
        if name == self.fail_on:
            raise kafka.errors.KafkaError(f"{name} failed")

    def init_transactions(self):
        self._call("init")

    def begin_transaction(self):
        self._call("begin")

    def send(self, topic, value=None, key=None, headers=None):
        self._call("send", topic, value)
        metadata = SimpleNamespace(partition=1, offset=self.offset)
        self.offset += 1
        return SimpleNamespace(add_callback=lambda fn: fn(metadata), add_errback=lambda fn: None)

    def send_offsets_to_transaction(self, offsets, group_metadata):
        self._call("offsets", dict(offsets), group_metadata)

    def commit_transaction(self):
        self._call("commit")

    def abort_transaction(self):
        self._call("abort")

    # What the stage's bounded calls use: kafka-python's transaction manager and sender.
    @property
    def _transaction_manager(self):
        def answer(name, *args):
            self._call(name, *args)
            return SimpleNamespace(wait=lambda timeout_ms: self.answers)
        return SimpleNamespace(begin_commit=lambda: answer("commit"),
                               send_offsets_to_transaction=lambda offsets, meta: answer("offsets", dict(offsets), meta))

    answers = True  # False: the broker never answers (the wait times out)
    _sender = SimpleNamespace(wakeup=lambda: None)

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        self.calls.append(("close",))


def producing(monkeypatch, fail_on=""):
    calls: list = []
    monkeypatch.setattr(kafka_txn, "KafkaProducer", lambda **config: FakeTxnProducer(calls, fail_on, **config))
    return calls


def test_the_adapter_of_txn_is_the_transactional_one_for_both_clients():
    assert type(adapters.create(settings())).__name__ == "KafkaTxnAdapter"
    assert type(adapters.create(settings(MQLAB_KAFKA_CLIENT="confluent-kafka"))).__name__ == "ConfluentKafkaTxnAdapter"


def test_the_producer_is_transactional_with_a_stable_id_and_acks_a_batch_when_its_commit_returns(monkeypatch):
    calls = producing(monkeypatch)
    acks = kafka_txn.KafkaTxnAdapter(settings(MQLAB_NAME="producer-7")).publish([(b"a", ""), (b"b", "")])
    assert calls[:3] == [("new", "mqlab-producer-7"), ("init",), ("begin",)]
    assert [c[0] for c in calls[3:]] == ["send", "send", "commit"]
    assert [adapters.pos_of(a) for a in acks] == ["p1:40", "p1:41"] and all(isinstance(a, int) for a in acks)
    config = kafka_txn.txn_producer_config(settings(), "producer")
    assert not set(config) - set(KafkaProducer.DEFAULT_CONFIG)  # every key is one kafka-python knows
    assert config["acks"] == "all" and config["enable_idempotence"] is True


def test_a_batch_whose_commit_failed_is_aborted_and_not_acked(monkeypatch):
    calls = producing(monkeypatch, fail_on="commit")
    adapter = kafka_txn.KafkaTxnAdapter(settings())
    with pytest.raises(adapter.errors):  # the caller reconnects (a new producer fences this one) and resends
        adapter.publish([(b"a", "")])
    assert ("abort",) in calls and adapter._producer is None


class FakeConsumer:
    def __init__(self, polls):
        self.polls, self.seeks = list(polls), []

    def poll(self, timeout_ms, max_records):
        return self.polls.pop(0) if self.polls else {}

    def group_metadata(self):
        return "group-metadata"

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))

    def assignment(self):
        return set()


def record(partition: int, offset: int, value: bytes):
    return SimpleNamespace(topic="datascience", partition=partition, offset=offset, value=value, key=None)


def staged(monkeypatch, polls, fail_on=""):
    calls = producing(monkeypatch, fail_on)
    adapter = kafka_txn.KafkaTxnAdapter(settings())
    adapter._consumer = FakeConsumer(polls)
    adapter._settle_assignment = lambda: None
    handled = []
    left = [len(polls)]

    def running():
        left[0] -= 1
        return left[0] >= 0

    adapter.consume(lambda batch: handled.extend(batch), running)
    return calls, adapter, handled


def test_the_stage_writes_each_result_and_commits_its_input_offsets_in_one_transaction(monkeypatch):
    tp0, tp2 = TopicPartition("datascience", 0), TopicPartition("datascience", 2)
    calls, adapter, handled = staged(monkeypatch, [{tp0: [record(0, 5, b"x"), record(0, 6, b"y")],
                                                    tp2: [record(2, 9, b"z")]}])
    assert calls[0] == ("new", "mqlab-stage-stage-1") and len(handled) == 3
    txn = [c for c in calls if c[0] in ("begin", "send", "offsets", "commit")]
    assert [c[0] for c in txn] == ["begin", "send", "send", "send", "offsets", "commit"]
    assert [c[1:] for c in txn if c[0] == "send"] == [("datascience.out", b"x"), ("datascience.out", b"y"),
                                                     ("datascience.out", b"z")]
    # the input offsets go with the transaction, never through the consumer's own commit
    assert txn[4][1:] == ({tp0: OffsetAndMetadata(7, "", -1), tp2: OffsetAndMetadata(10, "", -1)}, "group-metadata")


def test_an_aborted_transaction_reads_its_poll_again(monkeypatch):
    tp0 = TopicPartition("datascience", 0)
    calls, adapter, _handled = staged(monkeypatch, [{tp0: [record(0, 5, b"x"), record(0, 6, b"y")]}], "commit")
    assert ("abort",) in calls and adapter._consumer.seeks == [(tp0, 5)]
    assert calls.count(("init",)) == 2  # a new stage producer: it fences the aborted one


def test_the_stage_reads_committed_records_only():
    config = kafka_adapter.consumer_config(settings())
    assert config["isolation_level"] == "read_committed" and config["enable_auto_commit"] is False
    assert not set(config) - set(KafkaConsumer.DEFAULT_CONFIG)


def envelope(seq: int, run: str = "run1"):
    return make(run, "p-1", seq, ts_ns=1_000, msg_id=f"{seq + 1:032x}")


def test_the_ledger_judges_exactly_once_on_the_output_topic(tmp_path):
    from mqlab_services import ledger as writer

    sent = writer.ReceiptWriter(str(tmp_path), "sent", "p-1")
    for seq in range(4):
        sent.sent(envelope(seq), 1_000 + seq, "", f"p0:{seq}")
    sent.close()
    ids = [envelope(seq).id for seq in range(4)]
    # in the output: the first once, the second twice (a duplicate is counted), the fourth missing
    judged = ledger.judge_output(tmp_path / "run1", "datascience.out", Counter({ids[0]: 1, ids[1]: 2, ids[2]: 1}))
    assert (judged.acked, judged.once, judged.missing, judged.more_than_once) == (4, 2, 1, 1)
    assert judged.missing_ids == [ids[3]] and not judged.exactly_once
    report = ledger.Report("run1", mode="txn", sent=4, received=4, unique_received=4, output=judged)
    text = ledger.render(report)
    assert "2 once, 1 missing, 1 more than once" in text and not report.ok
    assert text.splitlines()[-1] == ("FAIL: 1 acked ids missing from datascience.out; "
                                     "1 ids more than once in datascience.out")


class FakeReader:
    """The output topic as a read_committed reader gets it: what aborted transactions wrote is
    not among the records at all; offsets skip over it (and over the transaction markers)."""

    made: list = []

    def __init__(self, **config):
        FakeReader.made.append(config)
        self.at = {}
        self.log = {0: [(0, envelope(0).encode(64)), (3, envelope(1).encode(64)), (4, envelope(1).encode(64)),
                        (6, envelope(9, run="other").encode(64))]}

    def partitions_for_topic(self, topic):
        return {0}

    def assign(self, tps):
        self.tp = tps[0]

    def offsets_for_times(self, times):
        return {tp: SimpleNamespace(offset=0) for tp in times}

    def end_offsets(self, tps):
        return {tp: 7 for tp in tps}

    def seek(self, tp, offset):
        self.at[tp.partition] = offset

    def position(self, tp):
        return self.at[tp.partition]

    def poll(self, timeout_ms, max_records):
        records = [SimpleNamespace(offset=o, value=v) for o, v in self.log[0] if o >= self.at[0]]
        self.at[0] = 7
        return {self.tp: records}

    def close(self):
        pass


def test_the_output_is_read_read_committed_and_counted_per_id_of_the_run(monkeypatch, tmp_path):
    monkeypatch.setattr(kafka_host, "KafkaConsumer", FakeReader)
    counts = brokers.of(STACKS["kafka"]).read_output(SimpleNamespace(integer=lambda key, default, *a: default),
                                                      "txn", "run1", 1_000_000_000)
    # the reader is read_committed; a second client only asks for the high watermarks
    assert [c.get("isolation_level") for c in FakeReader.made[-2:]] == ["read_committed", None]
    assert counts == Counter({envelope(0).id: 1, envelope(1).id: 2})  # another run's record is not counted


def test_the_output_is_read_once_the_transactions_open_when_the_read_began_have_ended(monkeypatch):
    """A read_committed reader's end is the last stable offset: before an open transaction. The
    read waits until it reaches the high watermark the read began with (here after two looks)."""
    stable = iter([3, 5, 7, 7])

    class Reader(FakeReader):
        def end_offsets(self, tps):  # readers[0] reads read_committed; readers[1] asks for the high watermarks
            return {tp: next(stable) if self is readers[0] else 7 for tp in tps}

    readers = []
    monkeypatch.setattr(kafka_host, "KafkaConsumer", lambda **config: readers.append(Reader(**config)) or readers[-1])
    monkeypatch.setattr(kafka_host.time, "sleep", lambda s: None)
    counts = brokers.of(STACKS["kafka"]).read_output(SimpleNamespace(integer=lambda key, default, *a: default),
                                                      "txn", "run1", 1_000_000_000)
    assert next(stable) == 7  # it looked three times: 3, 5, then 7 = the high watermark
    assert counts == Counter({envelope(0).id: 1, envelope(1).id: 2})


@pytest.mark.parametrize("mode", [m.name for m in __import__("mqlab_services.modes", fromlist=["MODES"]).MODES
                                  if m.broker == "kafka"])
@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_every_kafka_mode_describes_itself_at_start_up(mode, client):
    """The start-up line is the first thing a consumer does: a mode it cannot describe never consumes."""
    adapter = adapters.create(settings(MQLAB_MODE=mode, MQLAB_KAFKA_CLIENT=client))
    said = adapter.describe()
    assert said.startswith("topic datascience") and (mode != "txn" or "in one transaction" in said)


def test_a_transaction_call_that_gets_no_answer_times_out_and_the_poll_is_read_again(monkeypatch):
    """After a broker restart kafka-python's send_offsets_to_transaction waited forever: the
    stage bounds the wait, aborts, and starts a new producer that fences the old one."""
    producer = FakeTxnProducer([], transactional_id="mqlab-stage-1")
    producer.answers = False
    with pytest.raises(kafka.errors.KafkaTimeoutError, match="send_offsets_to_transaction had no answer"):
        kafka_txn._bounded(producer, "send_offsets_to_transaction", {}, "meta")
    producer.answers = True
    kafka_txn._bounded(producer, "commit_transaction")
    assert [c[0] for c in producer.calls] == ["new", "offsets", "commit"]


@pytest.mark.parametrize("role", ["producer", "stage"])
def test_confluent_kafka_accepts_the_transactional_config(role):
    """librdkafka checks a config when the producer is made (no broker needed): it refuses a
    message timeout above the transaction timeout."""
    import confluent_kafka
    from mqlab_services.adapters import kafka_confluent_txn
    config = kafka_confluent_txn.txn_producer_config(settings(MQLAB_KAFKA_CLIENT="confluent-kafka"), role)
    producer = confluent_kafka.Producer({**config, "bootstrap.servers": "127.0.0.1:1"})
    assert producer is not None and config["message.timeout.ms"] <= config["transaction.timeout.ms"]


class ConfluentCalls:
    """A confluent-kafka producer and consumer that only record what the stage asked of them."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if name in ("consumer_group_metadata",):
            return lambda: "group-metadata"
        return lambda *args, **kwargs: self.calls.append((name, *args))


def test_the_confluent_stage_commits_its_input_offsets_inside_the_transaction(monkeypatch):
    from confluent_kafka import TopicPartition as ConfluentTP
    from mqlab_services.adapters import kafka_confluent_txn
    adapter = kafka_confluent_txn.ConfluentKafkaTxnAdapter(settings(MQLAB_KAFKA_CLIENT="confluent-kafka"))
    fake = ConfluentCalls()
    adapter._consumer, adapter._producer = fake, fake
    from tests.unit.test_kafka_confluent import Message
    polls = [[Message(5, b"x", partition=0), Message(6, b"y", partition=0), Message(9, b"z", partition=2)]]
    adapter._poll = lambda: polls.pop(0) if polls else []
    left = [2]

    def running():
        left[0] -= 1
        return left[0] >= 0

    handled = []
    adapter.consume(lambda batch: handled.extend(batch), running)
    names = [c[0] for c in fake.calls]
    assert len(handled) == 3 and "commit" not in names  # never the consumer's own commit
    assert names == ["begin_transaction", "produce", "produce", "produce", "send_offsets_to_transaction",
                     "commit_transaction"]
    offsets = fake.calls[4][1]
    assert [(tp.partition, tp.offset) for tp in offsets] == [(0, 7), (2, 10)]
    assert all(isinstance(tp, ConfluentTP) for tp in offsets)
