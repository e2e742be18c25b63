"""The confluent-kafka adapter (MQLAB_KAFKA_CLIENT=confluent-kafka): selection, settings and logic, no broker."""

from __future__ import annotations

import subprocess
import sys

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from mqlab_services import adapters, bench
from mqlab_services.adapters import kafka as kafka_adapter
from mqlab_services.adapters import kafka_common
from mqlab_services.adapters import kafka_confluent as ck
from mqlab_services.settings import Settings, SettingsError


def settings(broker: str = "kafka", **env) -> Settings:
    values = {"MQLAB_BROKER": broker, **{f"MQLAB_{k.upper()}": v for k, v in env.items()}}
    return Settings.from_env(values, hostname="svc-1")


def confluent(**env) -> ck.ConfluentKafkaAdapter:
    adapter = adapters.create(settings(kafka_client="confluent-kafka", **env))
    assert isinstance(adapter, ck.ConfluentKafkaAdapter)
    return adapter


# -- the setting and the selection -----------------------------------------------------------

def test_the_kafka_client_setting_defaults_to_kafka_python_and_accepts_confluent_kafka():
    assert settings().kafka_client == "kafka-python"
    assert settings(kafka_client="").kafka_client == "kafka-python"
    assert settings(kafka_client=" Confluent-Kafka ").kafka_client == "confluent-kafka"


def test_a_bad_kafka_client_is_one_line_naming_the_variable():
    with pytest.raises(SettingsError) as info:
        settings(kafka_client="librdkafka")
    assert str(info.value) == ("MQLAB_KAFKA_CLIENT must be one of: kafka-python, confluent-kafka; "
                               "got 'librdkafka'")


def test_the_kafka_client_setting_is_ignored_for_the_other_brokers():
    for broker in ("rabbitmq", "redis"):
        assert settings(broker, kafka_client="librdkafka").kafka_client == "kafka-python"
        assert type(adapters.create(settings(broker, kafka_client="confluent-kafka"))).name == broker


def test_choosing_confluent_kafka_never_imports_kafka_python():
    """In a fresh interpreter: the confluent adapter, created and described, loads no `kafka` module."""
    code = ("import sys\n"
            "from mqlab_services import adapters\n"
            "from mqlab_services.settings import Settings\n"
            "s = Settings.from_env({'MQLAB_BROKER': 'kafka', 'MQLAB_KAFKA_CLIENT': 'confluent-kafka'}, hostname='h')\n"
            "adapter = adapters.create(s)\n"
            "print(type(adapter).__name__, adapter.describe())\n"
            "loaded = sorted(m for m in sys.modules if m == 'kafka' or m.startswith('kafka.'))\n"
            "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ConfluentKafkaAdapter topic datascience")


def test_create_picks_the_kafka_adapter_of_the_setting():
    assert type(adapters.create(settings())) is kafka_adapter.KafkaAdapter
    assert type(adapters.create(settings(kafka_client="kafka-python"))) is kafka_adapter.KafkaAdapter
    assert type(adapters.create(settings(kafka_client="confluent-kafka"))) is ck.ConfluentKafkaAdapter
    assert adapters.adapter_class("kafka") is kafka_adapter.KafkaAdapter
    assert ck.ConfluentKafkaAdapter.name == "kafka" and issubclass(ck.ConfluentKafkaAdapter, adapters.Adapter)
    with pytest.raises(adapters.UnknownBrokerError, match="unknown Kafka client 'x'; valid clients: "
                                                          "kafka-python, confluent-kafka"):
        adapters.adapter_class("kafka", "x")


@pytest.mark.parametrize("client, absent", [("kafka-python", "confluent_kafka"), ("confluent-kafka", "pika")])
def test_the_other_kafka_client_is_not_imported(client, absent):
    code = (f"import sys; from mqlab_services import adapters; adapters.adapter_class('kafka', {client!r}); "
            f"print({absent!r} in sys.modules, 'redis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    code = "import sys, mqlab_services.adapters as a; a.adapter_class('redis'); print('confluent_kafka' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_the_lossy_mode_says_so_at_start():
    assert "LOSSY" in confluent(mode="autocommit").describe()
    assert "LOSSY" not in confluent().describe() and "confluent-kafka" in confluent().describe()


def test_bench_results_name_the_client_and_its_version():
    import importlib.metadata

    assert bench.client_name("kafka") == f"kafka-python {importlib.metadata.version('kafka-python')}"
    assert bench.client_name("kafka", "confluent-kafka") == \
        f"confluent-kafka {importlib.metadata.version('confluent-kafka')}"
    assert bench.client_name("redis", "confluent-kafka").startswith("redis-py ")


# -- configuration per mode ------------------------------------------------------------------

def test_safe_producers_are_acks_all_and_idempotent_and_lossy_ones_acks_1():
    for mode in ("group", "fanout", "keyed"):
        config = ck.producer_config(settings(mode=mode, url="kafka://a:1, b:2"))
        assert config["acks"] == "all" and config["enable.idempotence"] is True
        assert config["bootstrap.servers"] == "a:1,b:2" and config["client.id"] == "mqlab-svc-1"
    config = ck.producer_config(settings(mode="autocommit"))
    assert config["acks"] == 1 and config["enable.idempotence"] is False
    assert config["linger.ms"] == 5
    # Every batch gets its delivery reports (failures included) before publish() gives up on it.
    assert config["message.timeout.ms"] < ck.CONFIRM_TIMEOUT * 1000


def test_the_message_size_limit_is_the_setting_at_least_librdkafkas_minimum():
    assert ck.producer_config(settings())["message.max.bytes"] == 1048576
    assert ck.producer_config(settings(max_message_bytes="2000000"))["message.max.bytes"] == 2000000
    assert ck.producer_config(settings(max_message_bytes="10"))["message.max.bytes"] == 1000


@pytest.mark.parametrize("mode, group, reset, auto", [
    ("group", "mqlab", "earliest", False), ("keyed", "mqlab", "earliest", False),
    ("fanout", "mqlab.svc-1", "latest", False), ("autocommit", "mqlab", "earliest", True),
])
def test_consumer_config_per_mode(mode, group, reset, auto):
    config = ck.consumer_config(settings(mode=mode))
    assert (config["group.id"], config["auto.offset.reset"], config["enable.auto.commit"]) == (group, reset, auto)
    assert config["session.timeout.ms"] == 10_000 and config["max.poll.interval.ms"] <= 60_000
    assert config["reconnect.backoff.max.ms"] <= 5000


@pytest.mark.parametrize("mode", ["group", "fanout", "keyed", "autocommit"])
def test_configs_are_accepted_by_librdkafka(mode):
    # librdkafka checks names, ranges and combinations at construction, before any connection.
    s = settings(mode=mode, url="127.0.0.1:1")
    Producer(ck.producer_config(s)).purge()
    Consumer(ck.consumer_config(s)).close()
    assert "client.id" in ck.admin_config(s)


def test_a_setting_librdkafka_refuses_is_a_config_error_not_a_reason_to_reconnect():
    adapter = confluent()
    with pytest.raises(adapters.BrokerConfigError, match="confluent-kafka refused the settings"):
        adapter._client(Producer, {"bootstrap.servers": "127.0.0.1:1", "linger.ms": -5})


def test_keys_per_mode_are_kafka_pythons():
    assert [confluent(mode="keyed", keys="3").key_for(seq) for seq in range(4)] == ["key-0", "key-1", "key-2", "key-0"]
    assert confluent(mode="group").key_for(13) == ""


# -- producing -------------------------------------------------------------------------------

def _err(code: int, text: str = "") -> KafkaError:
    return KafkaError(code, text or "error")


class _Delivered:
    """A delivery report's message: the partition and offset the broker gave the record."""

    def __init__(self, partition: int, offset: int):
        self._partition, self._offset = partition, offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeProducer:
    """Delivery reports from ``outcomes``, one per produced record in order: None (acked) or an error code.

    A record whose value is longer than ``client_limit`` is refused by produce() itself.
    """

    def __init__(self, outcomes=(), client_limit=10**9, errors=()):
        self.outcomes, self.client_limit, self.errors = list(outcomes), client_limit, list(errors)
        self.produced, self.pending, self.purged = [], [], False
        self.error_cb = None
        self.offset = 40  # where the log of partition 2 ends


    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
        if len(value) > self.client_limit:
            raise KafkaException(_err(KafkaError.MSG_SIZE_TOO_LARGE, "Message size too large"))
        self.produced.append((topic, value, key, headers))
        self.pending.append(on_delivery)

    def flush(self, timeout):
        for err in self.errors:
            self.error_cb(err)
        for callback in self.pending:
            code = self.outcomes.pop(0) if self.outcomes else None
            self.offset += code is None
            callback(None if code is None else _err(code), _Delivered(2, self.offset - 1) if code is None else None)
        self.pending = []
        return 0

    def purge(self, **kwargs):
        self.purged = True


def _producing(adapter, fake):
    adapter._producer = fake
    fake.error_cb = adapter._on_error
    return fake


def test_publish_returns_the_ack_time_of_each_delivered_record():
    adapter = confluent(mode="keyed")
    fake = _producing(adapter, FakeProducer([None, KafkaError._MSG_TIMED_OUT, None]))
    acks = adapter.publish([(b"a", "key-0"), (b"b", "key-1"), (b"c", "")])
    assert isinstance(acks[0], int) and acks[1] is None and isinstance(acks[2], int)
    # where the broker put each record, for the final read of the log
    assert [adapters.pos_of(acks[0]), adapters.pos_of(acks[2])] == ["p2:40", "p2:41"]
    assert [(t, v, k) for t, v, k, _h in fake.produced] == [
        ("datascience", b"a", b"key-0"), ("datascience", b"b", b"key-1"), ("datascience", b"c", None)]


def test_publish_rejects_what_the_client_or_the_broker_refuses_as_too_large():
    adapter = confluent()
    fake = _producing(adapter, FakeProducer([None, KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.MSG_SIZE_TOO_LARGE],
                                            client_limit=100))
    acks = adapter.publish([(b"x" * 200, ""), (b"ok", ""), (b"y" * 50, ""), (b"z", "")])
    assert isinstance(acks[0], adapters.Rejected) and "client limit (1048576 bytes)" in acks[0].reason
    assert isinstance(acks[1], int)
    # The broker failed two records: only the largest counts as too large, the other is sent again.
    assert isinstance(acks[2], adapters.Rejected) and "broker limit" in acks[2].reason and acks[3] is None
    assert fake.purged and adapter._producer is None  # a new producer, a clean idempotent sequence


def test_publish_raises_when_all_brokers_are_down_and_records_are_unconfirmed():
    adapter = confluent()
    _producing(adapter, FakeProducer([KafkaError._MSG_TIMED_OUT], errors=[_err(KafkaError._ALL_BROKERS_DOWN)]))
    with pytest.raises(adapter.errors) as info:
        adapter.publish([(b"a", "")])
    assert info.value.args[0].code() == KafkaError._ALL_BROKERS_DOWN
    # Everything confirmed: a past outage is no reason to reconnect.
    _producing(adapter, FakeProducer([None], errors=[_err(KafkaError._ALL_BROKERS_DOWN)]))
    assert isinstance(adapter.publish([(b"a", "")])[0], int)


def test_publish_raises_on_a_fatal_error():
    adapter = confluent()
    fatal = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    _producing(adapter, FakeProducer([None], errors=[fatal]))
    with pytest.raises(KafkaException):
        adapter.publish([(b"a", "")])


# -- consuming -------------------------------------------------------------------------------

class Message:
    def __init__(self, offset, value=b"m", key=None, partition=0, err=None, topic="datascience"):
        self._offset, self._value, self._key, self._partition, self._err, self._topic = (
            offset, value, key, partition, err, topic)

    def error(self):
        return self._err

    def value(self):
        return self._value

    def key(self):
        return self._key

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset


class FakeConsumer:
    """consume() hands out ``batches`` in turn (then nothing); commits are recorded."""

    def __init__(self, batches, committed=None, high=100):
        self.batches, self.commits, self.calls, self.assigned = list(batches), [], [], None
        self._committed, self.high = committed or {}, high

    def consume(self, num_messages, timeout):
        self.calls.append((num_messages, timeout))
        if timeout == 0:  # what else has arrived: the rest of the current batch
            batch, self.rest = self.rest, []
            return batch
        batch = self.batches.pop(0) if self.batches else []
        self.rest = batch[1:]
        return batch[:1]

    def commit(self, offsets, asynchronous):
        assert asynchronous is False
        self.commits.append(sorted((tp.partition, tp.offset) for tp in offsets))
        return offsets

    def committed(self, partitions, timeout):
        return [TopicPartition(tp.topic, tp.partition, self._committed.get(tp.partition, -1001))
                for tp in partitions]

    def get_watermark_offsets(self, tp, timeout):
        return 0, self.high

    def assign(self, partitions):
        self.assigned = sorted((tp.partition, tp.offset) for tp in partitions)


def _consume(adapter, consumer, rounds, handler=lambda batch: None, dead=None):
    adapter._consumer = consumer
    left = iter(range(rounds))
    seen = []

    def recording(batch):
        seen.append(list(batch))
        return handler(batch)

    adapter.consume(recording, lambda: next(left, None) is not None, dead)
    return seen


def test_a_batch_is_what_has_arrived_and_is_committed_after_the_handler():
    adapter = confluent(batch="50")
    fake = FakeConsumer([[Message(5, b"a", b"key-1"), Message(6, b"b"), Message(9, b"c", partition=2)], []])
    seen = _consume(adapter, fake, 2)
    assert seen == [[(b"a", "key-1"), (b"b", ""), (b"c", "")], []]
    assert fake.calls[:2] == [(1, ck.POLL_S), (49, 0)]  # wait for a first record only
    assert fake.commits == [[(0, 7), (2, 10)]] and adapter._uncommitted == {}


def test_nothing_is_committed_when_the_handler_raises_or_in_autocommit_mode():
    adapter = confluent()
    fake = FakeConsumer([[Message(1)]])

    def failing(batch):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        _consume(adapter, fake, 1, failing)
    assert fake.commits == []
    adapter = confluent(mode="autocommit")
    fake = FakeConsumer([[Message(1)]])
    _consume(adapter, fake, 1)
    assert fake.commits == []  # librdkafka commits in the background


def test_an_outage_is_ridden_out_and_a_fatal_error_raised():
    adapter = confluent()
    fake = FakeConsumer([[Message(0, err=_err(KafkaError._TRANSPORT))], [Message(3)]])
    assert _consume(adapter, fake, 2) == [[], [(b"m", "")]]
    fake = FakeConsumer([[Message(0, err=_err(KafkaError.TOPIC_AUTHORIZATION_FAILED))]])
    with pytest.raises(KafkaException):
        _consume(adapter, fake, 1)
    adapter._fatal = KafkaError(KafkaError._FATAL, "fatal", fatal=True)
    with pytest.raises(KafkaException):
        _consume(adapter, FakeConsumer([]), 1)


def test_a_commit_lost_to_a_rebalance_is_dropped_and_one_lost_to_an_outage_kept():
    adapter = confluent()

    class Failing(FakeConsumer):
        def commit(self, offsets, asynchronous):
            raise KafkaException(_err(self.code))

    fake = Failing([[Message(4)]])
    fake.code = KafkaError._WAIT_COORD
    _consume(adapter, fake, 1)
    assert adapter._uncommitted == {("datascience", 0): 5}  # the next commit covers them
    fake = Failing([[Message(8)]])
    fake.code = KafkaError.ILLEGAL_GENERATION
    _consume(adapter, fake, 1)
    assert adapter._uncommitted == {}


def test_revoke_commits_what_was_processed_of_the_revoked_partitions():
    adapter = confluent()
    fake = FakeConsumer([])
    adapter._uncommitted = {("datascience", 0): 11, ("datascience", 1): 5}
    adapter.assignment = [0, 1]
    adapter._on_revoke(fake, [TopicPartition("datascience", 0)])
    assert fake.commits == [[(0, 11)]]
    assert adapter._uncommitted == {("datascience", 1): 5} and adapter.assignment == [1]
    adapter._on_lost(fake, [TopicPartition("datascience", 1)])
    assert adapter._uncommitted == {} and adapter.assignment == [] and len(fake.commits) == 1


def test_assignment_and_subscribed_and_fanout_starting_at_the_end_as_of_now():
    adapter = confluent()
    fake = FakeConsumer([])
    adapter._on_assign(fake, [TopicPartition("datascience", 2), TopicPartition("datascience", 0)])
    assert adapter.assignment == [0, 2] and adapter.subscribed and fake.assigned is None
    adapter = confluent(mode="fanout")
    fake = FakeConsumer([], committed={1: 7}, high=42)
    adapter._on_assign(fake, [TopicPartition("datascience", 0), TopicPartition("datascience", 1)])
    assert fake.assigned == [(0, 42), (1, 7)] and adapter.assignment == [0, 1] and adapter.subscribed


def test_failed_records_are_retried_then_dead_lettered_with_kafka_pythons_headers(monkeypatch):
    monkeypatch.setattr(kafka_common, "RETRY_PAUSE", 0)
    adapter = confluent()
    producer = _producing(adapter, FakeProducer())
    fake = FakeConsumer([[Message(5, b"ok"), Message(6, b"bad", b"k", partition=2)]])
    calls, dead = [], []

    def handler(batch):
        calls.append([b for b, _k in batch])
        return ["boom" if b == b"bad" else None for b, _k in batch]

    _consume(adapter, fake, 3, handler, dead.extend)  # running() is asked before each retry too
    assert calls[1:] == [[b"bad"], [b"bad"]]
    assert producer.produced == [("datascience.dlq", b"bad", b"k",
                                  kafka_common.dead_headers("boom", 3, "datascience", 2, 6))]
    assert dead == [(b"bad", "k", 3, "boom")]
    assert fake.commits == [[(0, 6), (2, 7)]]  # after the dead-letter topic took it


def test_a_dead_letter_the_topic_did_not_take_leaves_the_batch_uncommitted(monkeypatch):
    monkeypatch.setattr(kafka_common, "RETRY_PAUSE", 0)
    adapter = confluent(max_deliveries="1")
    _producing(adapter, FakeProducer([KafkaError.NOT_ENOUGH_REPLICAS]))
    fake = FakeConsumer([[Message(6, b"bad")]])
    dead = []
    with pytest.raises(KafkaException):
        _consume(adapter, fake, 1, lambda batch: ["boom"], dead.extend)
    assert dead == [] and fake.commits == []


def test_close_never_raises():
    adapter = confluent()
    adapter.close()

    class Broken:
        def close(self):
            raise KafkaException(_err(KafkaError._TRANSPORT))

        def purge(self, **kwargs):
            raise RuntimeError("gone")

    adapter._consumer, adapter._producer = Broken(), Broken()
    adapter.subscribed = True
    adapter.close()
    adapter.close()
    assert adapter._consumer is None and adapter._producer is None and not adapter.subscribed
