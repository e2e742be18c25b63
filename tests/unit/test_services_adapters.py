"""The adapter registry and each adapter's pure logic (no broker needed)."""

from __future__ import annotations

import sys

import pika
import pytest

from mqlab_services import adapters
from mqlab_services.adapters import kafka as kafka_adapter
from mqlab_services.adapters import kafka_common
from mqlab_services.adapters import rabbitmq as rabbitmq_adapter
from mqlab_services.adapters import redis as redis_adapter
from mqlab_services.settings import Settings


def settings(broker: str, **env) -> Settings:
    values = {"MQLAB_BROKER": broker, **{f"MQLAB_{k.upper()}": v for k, v in env.items()}}
    return Settings.from_env(values, hostname="svc-1")


# -- registry --------------------------------------------------------------------------------

@pytest.mark.parametrize("broker, cls", [("rabbitmq", "RabbitMQAdapter"), ("redis", "RedisAdapter"),
                                         ("kafka", "KafkaAdapter")])
def test_the_registry_names_each_broker_class(broker, cls):
    klass = adapters.adapter_class(broker)
    assert klass.__name__ == cls
    assert klass.name == broker
    assert issubclass(klass, adapters.Adapter)
    assert isinstance(adapters.create(settings(broker)), klass)


def test_an_unknown_broker_lists_the_valid_ones():
    with pytest.raises(adapters.UnknownBrokerError) as info:
        adapters.adapter_class("nats")
    assert str(info.value) == "unknown broker 'nats'; valid brokers: kafka, rabbitmq, redis"


def test_adapters_are_imported_only_when_asked_for():
    import subprocess

    code = ("import sys, mqlab_services.adapters as a; a.adapter_class('redis'); "
            "print(sorted(m for m in ('pika', 'kafka', 'redis') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['redis']"


def test_the_lossy_modes_say_so():
    assert "LOSSY" in adapters.create(settings("rabbitmq", mode="autoack")).describe()
    assert "LOSSY" in adapters.create(settings("redis", mode="pubsub")).describe()
    assert "LOSSY" in adapters.create(settings("kafka", mode="autocommit")).describe()
    assert "LOSSY" not in adapters.create(settings("kafka")).describe()


# -- RabbitMQ --------------------------------------------------------------------------------

def test_rabbitmq_connection_parameters():
    [params] = rabbitmq_adapter.connection_parameters(
        settings("rabbitmq", url="amqp://lab:secret@rabbitmq:5672/%2F"))
    assert (params.host, params.port, params.virtual_host) == ("rabbitmq", 5672, "/")
    assert params.credentials.username == "lab" and params.credentials.password == "secret"
    assert params.heartbeat == 10 and params.connection_attempts == 1
    assert params.client_properties == {"connection_name": "mqlab svc-1"}


def test_rabbitmq_url_options_win_over_lab_defaults():
    [params] = rabbitmq_adapter.connection_parameters(settings("rabbitmq", url="amqp://h/%2F?heartbeat=5"))
    assert params.heartbeat == 5


def test_rabbitmq_cluster_urls_are_each_tried_in_a_shuffled_order():
    urls = "amqp://u:p@rabbitmq-1:5672/%2F, amqp://u:p@rabbitmq-2:5672/%2F,amqp://u:p@rabbitmq-3:5672/%2F?heartbeat=4"
    params = rabbitmq_adapter.connection_parameters(settings("rabbitmq", url=urls), shuffle=list.reverse)
    assert [p.host for p in params] == ["rabbitmq-3", "rabbitmq-2", "rabbitmq-1"]
    assert [p.heartbeat for p in params] == [4, 10, 10]
    assert all(p.credentials.username == "u" and p.connection_attempts == 1 for p in params)


def test_rabbitmq_quorum_mode_declares_a_quorum_queue_of_its_own():
    s = settings("rabbitmq", mode="quorum")
    assert (s.queue, s.queue_type) == ("mailbox.quorum", "quorum")
    assert rabbitmq_adapter.queue_arguments(s) == {"x-queue-type": "quorum", "x-dead-letter-exchange": "mailbox.dlx"}
    assert rabbitmq_adapter.message_properties(s).delivery_mode == 2

def test_rabbitmq_safe_messages_are_persistent_and_lossy_ones_transient():
    safe = rabbitmq_adapter.message_properties(settings("rabbitmq"))
    lossy = rabbitmq_adapter.message_properties(settings("rabbitmq", mode="autoack"))
    assert safe.delivery_mode == 2 and lossy.delivery_mode == 1
    assert safe.content_type == "application/json"


def test_rabbitmq_queue_arguments():
    dlx = {"x-dead-letter-exchange": "mailbox.dlx"}
    assert rabbitmq_adapter.queue_arguments(settings("rabbitmq")) == dlx
    assert rabbitmq_adapter.queue_arguments(settings("rabbitmq", mode="autoack")) == dlx  # the same queue
    assert rabbitmq_adapter.queue_arguments(settings("rabbitmq", queue_type="quorum")) == {
        "x-queue-type": "quorum", **dlx}
    assert rabbitmq_adapter.queue_arguments(settings("rabbitmq", mode="topic")) is None
    assert rabbitmq_adapter.queue_arguments(settings("rabbitmq", mode="topic", queue_type="quorum")) == {
        "x-queue-type": "quorum"}


def test_rabbitmq_heartbeat_comes_from_the_settings():
    assert rabbitmq_adapter.connection_parameters(settings("rabbitmq", heartbeat="3"))[0].heartbeat == 3


class _Frame:
    def __init__(self, method):
        self.method = method


def test_rabbitmq_confirms_map_delivery_tags_to_the_batch():
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq"))
    adapter._acks = [None] * 4
    adapter._outstanding = {11: 0, 12: 1, 13: 2, 14: 3}
    adapter._on_confirm(_Frame(pika.spec.Basic.Ack(delivery_tag=12, multiple=True)))
    adapter._on_confirm(_Frame(pika.spec.Basic.Nack(delivery_tag=13, multiple=False)))
    assert adapter._acks[0] and adapter._acks[1] and adapter._acks[2] is None and adapter._acks[3] is None
    assert adapter._outstanding == {14: 3}
    adapter._on_confirm(_Frame(pika.spec.Basic.Ack(delivery_tag=14, multiple=False)))
    assert adapter._acks[3] and not adapter._outstanding


def test_rabbitmq_close_before_connect_is_harmless():
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq"))
    adapter.close()
    adapter.close()


# -- Redis -----------------------------------------------------------------------------------

def test_redis_client_options_outlast_the_blocking_read():
    opts = redis_adapter.client_options(settings("redis"))
    assert opts["socket_timeout"] * 1000 > redis_adapter.BLOCK_MS
    assert opts["client_name"] == "mqlab-svc-1"


def test_redis_entry_body():
    assert redis_adapter.entry_body({b"data": b'{"mqlab":1}'}) == b'{"mqlab":1}'
    assert redis_adapter.entry_body({b"msg": b"hi", b"from": b"cli"}) == b"msg=hi from=cli"
    assert redis_adapter.entry_body(None) == b""


def test_redis_modes():
    assert redis_adapter.RedisAdapter(settings("redis")).streams is True
    assert redis_adapter.RedisAdapter(settings("redis", mode="pubsub")).streams is False


def test_redis_sentinel_urls_name_the_sentinels_and_the_primary():
    assert redis_adapter.sentinel_address("redis+sentinel://:s%40cret@sentinel-1:26379,sentinel-2,sentinel-3:26381/lab") == (
        [("sentinel-1", 26379), ("sentinel-2", 26379), ("sentinel-3", 26381)], "lab", "s@cret")
    assert redis_adapter.sentinel_address("redis+sentinel://sentinel-1:26379")[1:] == ("mymaster", None)
    assert redis_adapter.sentinel_address("redis://redis:6379/0") is None


class _FakePipeline:
    """A pipeline whose WAIT answers ``replicas``, recording the commands sent."""

    def __init__(self, replicas):
        self.replicas, self.commands = replicas, []

    def xadd(self, stream, fields):
        self.commands.append(("XADD", stream))

    def execute_command(self, *args):
        self.commands.append(args)

    def execute(self, raise_on_error=True):
        replies = [b"1-%d" % i for i, c in enumerate(self.commands) if c[0] == "XADD"]
        return replies + ([self.replicas] if self.commands[-1][0] == "WAIT" else [])


@pytest.mark.parametrize("mode, replicas, acked", [
    ("stream-wait", 1, True), ("stream-wait", 0, False), ("stream", 0, True)])
def test_redis_stream_wait_acks_only_what_a_replica_has(mode, replicas, acked):
    adapter = redis_adapter.RedisAdapter(settings("redis", mode=mode, wait_timeout="1.5"))
    pipe = _FakePipeline(replicas)
    adapter._client = type("Client", (), {"pipeline": lambda self, transaction=False: pipe})()
    acks = adapter.publish([(b"a", ""), (b"b", "")])
    assert [ack is not None for ack in acks] == [acked, acked]
    assert (("WAIT", 1, 1500) in pipe.commands) is (mode == "stream-wait")


@pytest.mark.parametrize("reply, retried", [
    ("NOREPLICAS Not enough good replicas to write.", True),
    ("READONLY You can't write against a read only replica.", True),
    ("WRONGTYPE Operation against a key holding the wrong kind of value", False)])
def test_redis_a_failover_reply_means_reconnect(reply, retried):
    adapter = redis_adapter.RedisAdapter(settings("redis"))
    pipe = _FakePipeline(0)
    pipe.execute = lambda raise_on_error=True: [redis_adapter.redis.exceptions.ResponseError(reply)]
    adapter._client = type("Client", (), {"pipeline": lambda self, transaction=False: pipe})()
    if retried:
        with pytest.raises(adapter.errors):
            adapter.publish([(b"a", "")])
    else:
        assert adapter.publish([(b"a", "")]) == [None]


class _FakeRedis:
    """Just enough of redis.Redis for the stream consumer: a pending entries list with counts.

    ``pending`` are entries this consumer (svc-1) was given before (delivered once), ``stuck``
    those of a consumer ``gone`` (delivered once); every pending entry counts as long idle.
    """

    def __init__(self, pending, new, stuck, stuck_count=1):
        self.new = list(new)
        self.fields = {i: f for i, f in [*pending, *new, *stuck]}
        self.pel = {i: ["svc-1", 1] for i, _f in pending}
        self.pel.update({i: ["gone", stuck_count] for i, _f in stuck})
        self.acked, self.dead, self.calls = [], [], []

    def xreadgroup(self, group, consumer, streams, count, block):
        entries, self.new = self.new, []
        for i, _f in entries:
            self.pel[i] = [consumer, 1]
        return [[b"chatroom.stream", entries]] if entries else []

    def xpending_range(self, name, groupname, min, max, count, consumername=None, idle=None):
        return [{"message_id": i, "consumer": c.encode(), "time_since_delivered": 99_999, "times_delivered": n}
                for i, (c, n) in sorted(self.pel.items()) if consumername in (None, c)][:count]

    def xclaim(self, name, groupname, consumername, min_idle_time, message_ids):
        self.calls.append(("claim", list(message_ids)))
        for i in message_ids:
            self.pel[i] = [consumername, self.pel[i][1] + 1]
        return [(i, self.fields[i]) for i in message_ids]

    def xack(self, stream, group, *ids):
        self.acked.extend(ids)
        for i in ids:
            self.pel.pop(i, None)

    def pipeline(self, transaction=False):
        return self

    def xadd(self, stream, fields):
        self.dead.append((stream, fields))

    def execute(self):
        return []


def test_redis_stream_consumer_takes_up_own_pending_and_dead_consumers_entries_then_reads_new():
    adapter = redis_adapter.RedisAdapter(settings("redis"))
    fake = _FakeRedis(pending=[(b"1-0", {b"data": b"a"})], new=[(b"3-0", {b"data": b"c"})],
                      stuck=[(b"2-0", {b"data": b"b"})])
    adapter._client = fake
    seen = []
    rounds = iter([True, False])

    def handler(bodies):
        seen.append((list(bodies), list(fake.acked)))

    adapter.consume(handler, lambda: next(rounds))
    batches = [(b, acked) for b, acked in seen if b]
    assert batches == [([(b"a", "")], []), ([(b"b", "")], [b"1-0"]), ([(b"c", "")], [b"1-0", b"2-0"])]
    assert fake.acked == [b"1-0", b"2-0", b"3-0"] and fake.dead == []


class _FakePubSub:
    """A pub/sub connection: ``script`` items come one per get_message(); None: nothing there yet."""

    def __init__(self, script):
        self.script = list(script)
        self.timeouts = []

    def pubsub(self):
        return self

    def subscribe(self, channel):
        self.channel = channel

    def get_message(self, timeout):
        self.timeouts.append(timeout)
        return self.script.pop(0) if self.script else None


def test_redis_pubsub_hands_over_what_arrived_without_waiting_to_fill_a_batch():
    adapter = redis_adapter.RedisAdapter(settings("redis", mode="pubsub", batch="10"))
    message = lambda data: {"type": "message", "data": data}  # noqa: E731
    fake = _FakePubSub([{"type": "subscribe"}, message(b"a"), None, message(b"b"), message(b"c"), None])
    adapter._client = fake
    seen = []
    adapter.consume(lambda bodies: seen.append(list(bodies)), lambda: len(seen) < 2)
    assert seen == [[(b"a", "")], [(b"b", ""), (b"c", "")]]
    # The first message of a batch is waited for (up to 0.2 s); the others only if already there.
    assert fake.timeouts[0] == 1.0 and 0.1 < fake.timeouts[1] <= 0.2 and 0.1 < fake.timeouts[3] <= 0.2
    assert fake.timeouts[2] == fake.timeouts[4] == fake.timeouts[5] == 0.0


def test_redis_nothing_is_acked_when_the_handler_fails():
    adapter = redis_adapter.RedisAdapter(settings("redis"))
    fake = _FakeRedis(pending=[(b"1-0", {b"data": b"a"})], new=[], stuck=[])
    adapter._client = fake

    def handler(bodies):
        if bodies:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        adapter.consume(handler, lambda: True)
    assert fake.acked == []


def test_redis_a_failed_entry_stays_pending_is_claimed_again_and_dead_lettered_after_the_last_attempt():
    adapter = redis_adapter.RedisAdapter(settings("redis", max_deliveries="3"))
    fake = _FakeRedis(pending=[], new=[(b"1-0", {b"data": b"bad"}), (b"2-0", {b"data": b"good"})], stuck=[])
    adapter._client = fake
    attempts, dead = [], []

    def handler(bodies):
        attempts.extend(b for b, _k in bodies if b == b"bad")
        return ["boom" if b == b"bad" else None for b, _k in bodies]

    adapter._read_group(handler, dead.extend, ">", block=None)
    assert fake.acked == [b"2-0"] and b"1-0" in fake.pel  # not acked: pending for a retry
    adapter._retry_pending(handler, dead.extend)  # attempt 2
    assert fake.dead == [] and fake.pel[b"1-0"] == ["svc-1", 2]
    adapter._retry_pending(handler, dead.extend)  # attempt 3: the last
    assert len(attempts) == 3
    assert fake.dead == [("chatroom.stream.dead", {b"id": b"1-0", b"reason": b"boom", b"attempts": b"3",
                                                  b"data": b"bad"})]
    assert dead == [(b"bad", "", 3, "boom")]
    assert fake.acked == [b"2-0", b"1-0"] and fake.pel == {}


def test_redis_an_entry_of_a_dead_consumer_delivered_too_often_is_dead_lettered_untried():
    adapter = redis_adapter.RedisAdapter(settings("redis", max_deliveries="3"))
    adapter._client = fake = _FakeRedis(pending=[], new=[], stuck=[(b"7-0", {b"data": b"crash"})], stuck_count=3)
    tried, dead = [], []
    adapter._retry_pending(lambda bodies: tried.extend(bodies), dead.extend)
    assert tried == [] and dead == [(b"crash", "", 3, "delivered 3 times without an ack")]
    assert fake.acked == [b"7-0"]


@pytest.mark.parametrize("mode", ["stream", "stream-wait"])
def test_redis_says_it_takes_up_pending_entries_with_xpending_and_xclaim(mode):
    line = adapters.create(settings("redis", mode=mode, retry_idle="2", claim_idle="30")).describe()
    assert "XPENDING then XCLAIM" in line and "XAUTOCLAIM" not in line
    assert "failed entries after 2s" in line and "a dead consumer's after 30s idle" in line


def test_redis_dead_fields():
    assert redis_adapter.dead_fields(b"1-0", b"x", 3, "why") == {
        b"id": b"1-0", b"reason": b"why", b"attempts": b"3", b"data": b"x"}


# -- Kafka -----------------------------------------------------------------------------------

def test_kafka_safe_producer_config_is_acks_all_and_idempotent():
    config = kafka_adapter.producer_config(settings("kafka", url="kafka:19092"))
    assert config["acks"] == "all" and config["enable_idempotence"] is True
    assert config["bootstrap_servers"] == ["kafka:19092"]


def test_kafka_lossy_producer_config():
    config = kafka_adapter.producer_config(settings("kafka", mode="autocommit"))
    assert config["acks"] == 1 and config["enable_idempotence"] is False


def test_kafka_consumer_config():
    safe = kafka_adapter.consumer_config(settings("kafka", batch="50"))
    assert safe["enable_auto_commit"] is False and safe["group_id"] == "mqlab"
    assert safe["auto_offset_reset"] == "earliest" and safe["max_poll_records"] == 50
    assert kafka_adapter.consumer_config(settings("kafka", mode="autocommit"))["enable_auto_commit"] is True


def test_kafka_configs_are_accepted_by_kafka_python():
    # The client validates keys and combinations (idempotence needs acks=all) at construction;
    # creating one without a broker fails only later, at the bootstrap connection.
    from kafka import KafkaConsumer, KafkaProducer

    for mode in ("group", "fanout", "keyed", "autocommit"):
        config = kafka_adapter.producer_config(settings("kafka", mode=mode))
        assert not set(config) - set(KafkaProducer.DEFAULT_CONFIG)
        config = kafka_adapter.consumer_config(settings("kafka", mode=mode))
        assert not set(config) - set(KafkaConsumer.DEFAULT_CONFIG)


def test_kafka_bootstrap_servers_and_topic_spec():
    s = settings("kafka", url="kafka://a:1, b:2", partitions="6")
    assert kafka_common.bootstrap_servers(s) == ["a:1", "b:2"]
    assert kafka_adapter.topic_spec(s) == {"datascience": {"num_partitions": 6, "replication_factor": 1}}


def test_kafka_rides_out_retriable_errors_and_raises_the_others(monkeypatch, caplog):
    import kafka.errors

    monkeypatch.setattr(kafka_adapter.time, "sleep", lambda s: None)
    outage = kafka_adapter._Outage(backoff_max=2.0)
    with caplog.at_level("INFO", logger="mqlab"):
        outage.failed(kafka.errors.KafkaConnectionError("socket disconnected"), "poll")
        outage.failed(kafka.errors.KafkaConnectionError("socket disconnected"), "poll")
        outage.recovered()
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["poll failed", "broker reachable again"]
    with pytest.raises(kafka.errors.TopicAuthorizationFailedError):
        outage.failed(kafka.errors.TopicAuthorizationFailedError(), "poll")


def test_kafka_consumer_leaves_dead_members_behind_quickly():
    config = kafka_adapter.consumer_config(settings("kafka"))
    assert config["session_timeout_ms"] <= 10_000 < 45_000


class _GoneStream(_FakeRedis):
    def __init__(self, error):
        super().__init__(pending=[], new=[], stuck=[])
        self.error, self.created = error, 0

    def xpending_range(self, *args, **kwargs):
        return []

    def xreadgroup(self, group, consumer, streams, count, block):
        if self.error:
            error, self.error = self.error, None
            raise error
        return []

    def xgroup_create(self, stream, group, id, mkstream):
        self.created += 1
        if isinstance(self.error_on_create, Exception):
            raise self.error_on_create

    error_on_create = None


@pytest.mark.parametrize("message", ["NOGROUP No such key 'chatroom.stream'",
                                     "UNBLOCKED the stream key no longer exists"])
def test_redis_recreates_a_deleted_stream_and_goes_on(message):
    import redis.exceptions

    adapter = redis_adapter.RedisAdapter(settings("redis"))
    adapter._client = fake = _GoneStream(redis.exceptions.ResponseError(message))
    adapter.consume(lambda bodies: None, iter([True, True, False]).__next__)
    assert fake.created == 1


def test_redis_refuses_a_key_that_is_not_a_stream():
    import redis.exceptions

    adapter = redis_adapter.RedisAdapter(settings("redis"))
    adapter._client = fake = _GoneStream(redis.exceptions.ResponseError("NOGROUP gone"))
    fake.error_on_create = redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    with pytest.raises(adapters.BrokerConfigError, match="'chatroom.stream' exists and is not a stream"):
        adapter.consume(lambda bodies: None, lambda: True)


class _Method:
    def __init__(self, tag, exchange="", routing_key="mailbox.durable", redelivered=False):
        self.delivery_tag, self.exchange, self.routing_key = tag, exchange, routing_key
        self.redelivered = redelivered


class _FakeChannel:
    """Yields deliveries like BlockingChannel.consume, with None for an idle timeout."""

    def __init__(self, script, events):
        self.script, self.events = script, events

    def consume(self, queue, auto_ack, inactivity_timeout):
        self.events.append(("consume", queue, auto_ack))
        for self.position, item in enumerate(self.script, 1):
            yield (None, None, None) if item is None else (_Method(item), None, f"m{item}".encode())
        while self.idle_forever:
            yield None, None, None

    idle_forever = True
    buffered = True  # deliveries up to the next idle timeout have arrived already
    position = 0

    def get_waiting_message_count(self):
        if not self.buffered:
            return 0
        rest = self.script[self.position:]
        return rest.index(None) if None in rest else len(rest)

    def basic_ack(self, delivery_tag, multiple):
        self.events.append(("ack", delivery_tag, multiple))

    def cancel(self):
        self.events.append(("cancel",))


def test_rabbitmq_acks_each_batch_after_the_handler_with_one_multiple_ack():
    events = []
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq", batch="2"))
    adapter._channel = _FakeChannel([1, 2, 3, None], events)
    handled = lambda: sum(e[0] == "handled" for e in events)  # noqa: E731
    adapter.consume(lambda bodies: events.append(("handled", bodies)), lambda: handled() < 4)
    assert events == [
        ("consume", "mailbox.durable", False),
        ("handled", [(b"m1", ""), (b"m2", "")]), ("ack", 2, True),
        ("handled", [(b"m3", "")]), ("ack", 3, True),
        ("handled", []),
        ("handled", []),
        ("cancel",),
    ]


def test_rabbitmq_hands_over_what_arrived_without_waiting_to_fill_a_batch():
    events = []
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq", batch="10"))
    adapter._channel = _FakeChannel([1, 2, 3], events)
    adapter._channel.buffered = False  # a slow trickle: nothing else waiting after each delivery
    handled = lambda: sum(e[0] == "handled" for e in events)  # noqa: E731
    adapter.consume(lambda bodies: events.append(("handled", bodies)), lambda: handled() < 3)
    assert events[1:7] == [("handled", [(b"m1", "")]), ("ack", 1, True), ("handled", [(b"m2", "")]), ("ack", 2, True),
                           ("handled", [(b"m3", "")]), ("ack", 3, True)]


def test_rabbitmq_autoack_mode_never_acks():
    events = []
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq", mode="autoack", batch="1"))
    adapter._channel = _FakeChannel([1, None], events)
    calls = []
    adapter.consume(lambda bodies: calls.append(bodies), lambda: len(calls) < 2)
    assert calls[0] == [(b"m1", "")]
    assert events[0] == ("consume", "mailbox.durable", True)
    assert not [e for e in events if e[0] == "ack"]


def test_rabbitmq_a_broker_cancel_finishes_the_batch_then_asks_to_reconnect():
    events = []
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq", batch="10"))
    adapter._channel = _FakeChannel([1, 2], events)
    adapter._channel.idle_forever = False  # the generator ends: cancelled by the broker
    with pytest.raises(pika.exceptions.ConsumerCancelled):
        adapter.consume(lambda bodies: events.append(("handled", bodies)), lambda: True)
    assert events[-2:] == [("handled", [(b"m1", ""), (b"m2", "")]), ("ack", 2, True)]


def test_kafka_a_producer_with_records_in_flight_is_closed_for_good():
    import kafka.errors

    class Sender:
        forced = False

        def force_close(self):
            self.forced = True

    class StuckProducer:
        _closed = False
        _sender = Sender()

        def close(self, timeout=None):
            raise kafka.errors.KafkaTimeoutError("Timeout waiting for future")

    producer = StuckProducer()
    kafka_adapter._close_producer(producer)
    assert producer._sender.forced and producer._closed


def test_rabbitmq_a_confirm_that_arrives_during_basic_publish_is_not_missed():
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq"))

    class EagerChannel:
        """Confirms each message while basic_publish is still running, as a fast broker can."""

        def basic_publish(self, exchange, routing_key, body, properties):
            tag = adapter._next_tag - 1
            adapter._on_confirm(_Frame(pika.spec.Basic.Ack(delivery_tag=tag, multiple=False)))

    adapter._channel = EagerChannel()
    acks = adapter.publish([(b"a", None), (b"b", None)])
    assert all(isinstance(ack, int) for ack in acks)


# -- keys, queues and groups per mode -----------------------------------------------------------

def test_rabbitmq_topic_routing_keys_cycle_by_seq_and_other_modes_have_none():
    topic = adapters.create(settings("rabbitmq", mode="topic", routing_keys="a.x,b.y"))
    assert [topic.key_for(seq) for seq in range(5)] == ["a.x", "b.y", "a.x", "b.y", "a.x"]
    default = adapters.create(settings("rabbitmq", mode="topic"))
    assert [default.key_for(seq) for seq in (0, 1, 2, 3)] == ["orders.eu", "orders.us", "audit.eu", "orders.eu"]
    for mode in ("work", "fanout", "transient", "autoack"):
        assert adapters.create(settings("rabbitmq", mode=mode)).key_for(7) == ""


@pytest.mark.parametrize("binding, queue", [
    ("#", "mailbox.topic.hash"), ("orders.*", "mailbox.topic.orders.star"),
    ("orders.#", "mailbox.topic.orders.hash"), ("audit.eu", "mailbox.topic.audit.eu"),
    ("a b/c", "mailbox.topic.a_b_c"),
])
def test_rabbitmq_topic_queue_is_named_after_the_binding(binding, queue):
    s = settings("rabbitmq", mode="topic", binding=binding)
    assert rabbitmq_adapter.consumer_queue(s) == queue
    assert adapters.create(s).key_for(0) == "orders.eu"


def test_rabbitmq_queue_per_mode():
    assert rabbitmq_adapter.consumer_queue(settings("rabbitmq")) == "mailbox.durable"
    assert rabbitmq_adapter.consumer_queue(settings("rabbitmq", mode="fanout")) == "mailbox.fanout.svc-1"
    assert rabbitmq_adapter.consumer_queue(settings("rabbitmq", mode="transient")) == "mailbox.transient"


def test_rabbitmq_transient_messages_only_in_the_lossy_modes():
    for mode, delivery_mode in (("work", 2), ("fanout", 2), ("topic", 2), ("transient", 1), ("autoack", 1)):
        assert rabbitmq_adapter.message_properties(settings("rabbitmq", mode=mode)).delivery_mode == delivery_mode


def test_rabbitmq_topic_receipts_get_the_routing_key_and_default_exchange_none():
    class TopicChannel(_FakeChannel):
        def consume(self, queue, auto_ack, inactivity_timeout):
            self.events.append(("consume", queue, auto_ack))
            yield _Method(1, "mailbox.topic", "orders.eu"), None, b"m1"
            yield _Method(2, "", "mailbox.topic.hash"), None, b"m2"
            while True:
                yield None, None, None

        def queue_declare(self, queue, **kwargs):
            self.events.append(("declare", queue, kwargs.get("durable")))

        def queue_bind(self, queue, exchange, routing_key=None):
            self.events.append(("bind", queue, exchange, routing_key))

    events, calls = [], []
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq", mode="topic", binding="orders.*"))
    adapter._channel = TopicChannel([], events)
    adapter.consume(lambda batch: calls.append(batch), lambda: len(calls) < 2)
    assert calls[:2] == [[(b"m1", "orders.eu")], [(b"m2", "")]]
    assert events[:3] == [("declare", "mailbox.topic.orders.star", True),
                          ("bind", "mailbox.topic.orders.star", "mailbox.topic", "orders.*"),
                          ("consume", "mailbox.topic.orders.star", False)]
    assert adapter.assignment == ["mailbox.topic.orders.star"] and adapter.subscribed is False  # after stop


def test_rabbitmq_fanout_consumer_has_an_exclusive_auto_delete_queue_bound_to_the_exchange():
    declared = []

    class Channel(_FakeChannel):
        def queue_declare(self, queue, **kwargs):
            declared.append((queue, kwargs))

        def queue_bind(self, queue, exchange, routing_key=None):
            declared.append(("bind", queue, exchange))

    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq", mode="fanout"))
    adapter._channel = Channel([None], [])
    seen = []

    def handler(batch):
        seen.append(adapter.subscribed)

    adapter.consume(handler, lambda: not seen)
    assert declared == [("mailbox.fanout.svc-1", {"exclusive": True, "auto_delete": True}),
                        ("bind", "mailbox.fanout.svc-1", "mailbox.fanout")]
    assert seen == [True]  # subscribed by the first handler call


def test_kafka_keyed_mode_keys_by_seq_and_other_modes_have_none():
    keyed = adapters.create(settings("kafka", mode="keyed", keys="3"))
    assert [keyed.key_for(seq) for seq in range(7)] == ["key-0", "key-1", "key-2", "key-0", "key-1", "key-2", "key-0"]
    assert adapters.create(settings("kafka", mode="keyed")).key_for(13) == "key-5"
    for mode in ("group", "fanout", "autocommit"):
        assert adapters.create(settings("kafka", mode=mode)).key_for(13) == ""


def test_kafka_fanout_consumer_is_alone_in_its_group_from_the_latest_offset():
    fanout = kafka_adapter.consumer_config(settings("kafka", mode="fanout"))
    assert fanout["group_id"] == "mqlab.svc-1" and fanout["auto_offset_reset"] == "latest"
    assert fanout["enable_auto_commit"] is False
    for mode in ("group", "keyed"):
        config = kafka_adapter.consumer_config(settings("kafka", mode=mode))
        assert config["group_id"] == "mqlab" and config["auto_offset_reset"] == "earliest"


def test_kafka_rebalances_wait_for_a_stuck_member_seconds_not_minutes():
    config = kafka_adapter.consumer_config(settings("kafka"))
    assert config["heartbeat_interval_ms"] * 3 <= config["session_timeout_ms"]
    assert config["max_poll_interval_ms"] <= 60_000


def test_kafka_revoke_commits_what_was_processed_for_the_revoked_partitions():
    import asyncio

    from kafka.structs import OffsetAndMetadata, TopicPartition

    committed = []

    class Coordinator:
        async def _commit_offsets_sync_async(self, offsets, timeout_ms):
            committed.append(dict(offsets))

    class Consumer:
        _coordinator = Coordinator()

    adapter = kafka_adapter.KafkaAdapter(settings("kafka"))
    adapter._consumer = Consumer()
    p0, p1 = TopicPartition("datascience", 0), TopicPartition("datascience", 1)
    adapter._uncommitted = {p0: OffsetAndMetadata(11, "", -1), p1: OffsetAndMetadata(5, "", -1)}
    adapter.assignment = [0, 1]
    asyncio.run(kafka_adapter._Rebalance(adapter).on_partitions_revoked({p0}))
    assert committed == [{p0: OffsetAndMetadata(11, "", -1)}]
    assert adapter._uncommitted == {p1: OffsetAndMetadata(5, "", -1)} and adapter.assignment == [1]


def test_kafka_subscribed_only_once_the_positions_of_an_assignment_are_known():
    from kafka.structs import TopicPartition

    asked = []

    class Consumer:
        def assignment(self):
            return {TopicPartition("datascience", 2), TopicPartition("datascience", 0)}

        def position(self, tp, timeout_ms=None):
            asked.append(tp.partition)
            return 0

    adapter = kafka_adapter.KafkaAdapter(settings("kafka", mode="fanout"))
    adapter._consumer = Consumer()
    adapter._settle_assignment()
    assert adapter.subscribed is False and asked == []  # nothing assigned yet
    import asyncio
    asyncio.run(kafka_adapter._Rebalance(adapter).on_partitions_assigned({TopicPartition("datascience", 2)}))
    adapter._settle_assignment()
    assert adapter.subscribed is True and sorted(asked) == [0, 2] and adapter.assignment == [0, 2]


def test_redis_stream_fanout_has_its_own_group_from_now_and_removes_it_on_a_clean_stop():
    class Fake(_FakeRedis):
        def __init__(self):
            super().__init__(pending=[], new=[(b"5-0", {b"data": b"x"})], stuck=[])
            self.calls = []

        def xgroup_create(self, stream, group, id, mkstream):
            self.calls.append(("create", group, id))

        def xreadgroup(self, group, consumer, streams, count, block):
            self.calls.append(("read", group))
            return super().xreadgroup(group, consumer, streams, count, block)

        def xgroup_destroy(self, stream, group):
            self.calls.append(("destroy", group))

    adapter = redis_adapter.RedisAdapter(settings("redis", mode="stream-fanout"))
    adapter._client = fake = Fake()
    seen = []
    adapter.consume(lambda batch: seen.append((batch, adapter.subscribed)), iter([True, False]).__next__)
    assert fake.calls[0] == ("create", "mqlab.svc-1", "$")
    assert fake.calls[-1] == ("destroy", "mqlab.svc-1")
    assert {c[1] for c in fake.calls if c[0] == "read"} == {"mqlab.svc-1"}
    assert ([(b"x", "")], True) in seen and adapter.assignment == ["mqlab.svc-1"]
    assert fake.acked == [b"5-0"]


def test_redis_shared_stream_group_is_not_removed_on_stop():
    adapter = redis_adapter.RedisAdapter(settings("redis"))
    adapter._client = fake = _FakeRedis(pending=[], new=[], stuck=[])
    adapter.consume(lambda batch: None, iter([False]).__next__)  # would fail on xgroup_destroy
    assert adapter.assignment == ["mqlab"] and fake.acked == []


# -- failed messages: retries and dead-lettering ---------------------------------------------

def test_rabbitmq_attempts_travel_in_a_header():
    assert rabbitmq_adapter.attempts_made(None) == 0
    assert rabbitmq_adapter.attempts_made(pika.BasicProperties(headers={"x-mqlab-attempts": 2})) == 2
    assert rabbitmq_adapter.attempts_made(pika.BasicProperties(headers={"x-mqlab-attempts": b"x"})) == 0
    original = pika.BasicProperties(content_type="application/json", delivery_mode=2, headers={"h": 1})
    retry = rabbitmq_adapter.copy_properties(original, 1, "boom")
    assert retry.headers == {"h": 1, "x-mqlab-attempts": 1, "x-mqlab-reason": "boom"}
    assert (retry.delivery_mode, retry.content_type) == (2, "application/json")
    dead = rabbitmq_adapter.copy_properties(original, 3, "boom", "mailbox.durable")
    assert dead.headers["x-mqlab-queue"] == "mailbox.durable"


def test_rabbitmq_reads_the_broker_size_limit_from_the_channel_close():
    text = "PRECONDITION_FAILED - message size 5000000 is larger than configured max size 4194304"
    assert rabbitmq_adapter.broker_size_limit(text) == 4194304
    assert rabbitmq_adapter.broker_size_limit("PRECONDITION_FAILED - inequivalent arg") is None


class _SettleChannel:
    def __init__(self):
        self.events = []

    def basic_ack(self, delivery_tag, multiple):
        self.events.append(("ack", delivery_tag, multiple))

    def basic_nack(self, delivery_tag, multiple, requeue):
        self.events.append(("nack", delivery_tag, requeue))


def _settle(results, headers, confirm=lambda items: [1] * len(items), mode="work", n=None):
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq", mode=mode))
    adapter._channel = channel = _SettleChannel()
    sent, dead = [], []

    def send(items):
        sent.extend(items)
        return confirm(items)

    adapter._send = send
    batch = [(f"m{i}".encode(), "") for i in range(n or len(results))]
    deliveries = [(i + 1, pika.BasicProperties(headers=h)) for i, h in enumerate(headers)]
    adapter._settle("mailbox.durable", batch, deliveries, results, dead.extend, auto_ack=mode == "autoack")
    return channel.events, sent, dead


def test_rabbitmq_a_processed_batch_is_acked_with_one_multiple_ack():
    events, sent, dead = _settle(None, [None, None], n=2)
    assert events == [("ack", 2, True)] and sent == [] and dead == []


def test_rabbitmq_a_failed_message_is_requeued_as_a_counted_copy_before_the_ack():
    events, sent, dead = _settle([None, "boom"], [None, {"x-mqlab-attempts": 1}])
    assert [(ex, rk, body) for ex, rk, body, _p, _m in sent] == [("", "mailbox.durable", b"m1")]
    assert sent[0][3].headers["x-mqlab-attempts"] == 2 and dead == []
    assert events == [("ack", 2, True)]


def test_rabbitmq_the_last_attempt_goes_to_the_dead_letter_exchange_and_is_reported():
    events, sent, dead = _settle(["boom", None], [{"x-mqlab-attempts": 2}, None])
    assert [(ex, rk, body) for ex, rk, body, _p, _m in sent] == [("mailbox.dlx", "mailbox.durable", b"m0")]
    assert sent[0][3].headers["x-mqlab-reason"] == "boom"
    assert dead == [(b"m0", "", 3, "boom")]
    assert events == [("ack", 2, True)]


def test_rabbitmq_an_unconfirmed_copy_leaves_its_original_in_the_queue():
    events, sent, dead = _settle([None, "boom", "bad"], [None, None, {"x-mqlab-attempts": 2}],
                                 confirm=lambda items: [None] * len(items))
    assert dead == []  # not in the dead-letter queue: not recorded as dead
    assert events == [("ack", 1, False), ("nack", 2, True), ("nack", 3, True)]


def test_rabbitmq_autoack_failures_are_only_recorded():
    events, sent, dead = _settle(["boom"], [None], mode="autoack")
    assert events == [] and sent == [] and dead[0][2] == 1 and "autoack" in dead[0][3]


def test_kafka_client_limit_and_reconnects_follow_the_settings():
    config = kafka_adapter.producer_config(settings("kafka", max_message_bytes="2000000"))
    assert config["max_request_size"] == 2000000 and config["reconnect_backoff_max_ms"] <= 5000
    assert kafka_adapter.producer_config(settings("kafka"))["max_request_size"] == 1048576
    assert kafka_adapter.consumer_config(settings("kafka"))["reconnect_backoff_max_ms"] <= 5000


def test_kafka_only_the_largest_records_refused_by_the_broker_count_as_too_large():
    assert kafka_common.broker_rejects([6, 2_000_000, 6], [0, 1, 2]) == [1]
    assert kafka_common.broker_rejects([], []) == []


def test_kafka_dead_letter_headers():
    assert kafka_common.dead_headers("boom", 3, "datascience", 2, 41) == [
        ("mqlab-reason", b"boom"), ("mqlab-attempts", b"3"), ("mqlab-topic", b"datascience"),
        ("mqlab-partition", b"2"), ("mqlab-offset", b"41")]


def test_kafka_failed_records_are_retried_then_produced_to_the_dead_letter_topic(monkeypatch):
    monkeypatch.setattr(kafka_common, "RETRY_PAUSE", 0)
    adapter = kafka_adapter.KafkaAdapter(settings("kafka"))

    class Record:
        def __init__(self, offset):
            self.topic, self.partition, self.offset, self.key = "datascience", 0, offset, None

    class Future:
        def get(self, timeout):
            return None

    class Producer:
        sent = []

        def send(self, topic, value, key, headers):
            self.sent.append((topic, value, dict(headers)))
            return Future()

        def flush(self, timeout):
            pass

    adapter._producer = producer = Producer()
    calls, dead = [], []

    def handler(batch):
        calls.append([b for b, _k in batch])
        return ["boom" if b == b"bad" else None for b, _k in batch]

    batch = [(b"ok", ""), (b"bad", "")]
    records = [Record(5), Record(6)]
    kafka_common.retry_then_dead_letter(adapter.settings, handler, dead.extend, batch, handler(batch), lambda: True,
                                        lambda failed, attempts: adapter._produce_dead(records, batch, failed, attempts))
    assert calls == [[b"ok", b"bad"], [b"bad"], [b"bad"]]
    assert [(t, v, h["mqlab-attempts"], h["mqlab-offset"]) for t, v, h in producer.sent] == [
        ("datascience.dlq", b"bad", b"3", b"6")]
    assert dead == [(b"bad", "", 3, "boom")]


def test_redis_a_paused_server_is_noticed_within_seconds():
    opts = redis_adapter.client_options(settings("redis"))
    assert opts["socket_timeout"] <= 5 and opts["health_check_interval"] <= 5 and opts["socket_keepalive"]


_DENIED = ("INTERNAL_ERROR - Feature `transient_nonexcl_queues` is deprecated.\n"
           "By default, this feature is not permitted anymore.")


def test_rabbitmq_names_the_deprecated_feature_a_connection_close_denies():
    assert rabbitmq_adapter.denied_feature(541, _DENIED) == "transient_nonexcl_queues"
    assert rabbitmq_adapter.denied_feature(320, _DENIED) is None  # a broker shutdown, not a denial
    assert rabbitmq_adapter.denied_feature(541, "INTERNAL_ERROR") is None


def test_rabbitmq_declare_denied_by_the_broker_is_one_line_without_retries():
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq", mode="transient"))

    def declare():
        raise pika.exceptions.ConnectionClosedByBroker(541, _DENIED)

    with pytest.raises(adapters.BrokerConfigError) as error:
        adapter._declare(declare, "queue 'mailbox.transient'", "QUEUE")
    message = str(error.value)
    assert "\n" not in message
    assert "`transient_nonexcl_queues`" in message and "queue 'mailbox.transient'" in message
    assert "deprecated_features.permit.transient_nonexcl_queues = true" in message

    def closed():
        raise pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED - broker shutdown")

    with pytest.raises(pika.exceptions.ConnectionClosedByBroker):  # retried by the caller
        adapter._declare(closed, "queue 'mailbox.transient'", "QUEUE")


@pytest.mark.parametrize("mode", ["work", "fanout", "topic", "transient", "autoack"])
def test_rabbitmq_declares_no_queue_that_rabbitmq_4_3_denies(monkeypatch, mode):
    """No queue of the lab is both non-durable and non-exclusive (denied since RabbitMQ 4.3)."""
    declared = []

    class Impl:
        def confirm_delivery(self, ack_nack_callback, callback):
            callback(None)

        def add_on_return_callback(self, callback):
            pass

    class Channel:
        _impl = Impl()

        def queue_declare(self, queue, durable=False, exclusive=False, auto_delete=False, arguments=None,
                          passive=False):
            declared.append((queue, durable, exclusive))

        def exchange_declare(self, *args, **kwargs):
            pass

        def queue_bind(self, *args, **kwargs):
            pass

        def basic_qos(self, **kwargs):
            pass

    class Connection:
        def __init__(self, params):
            pass

        def channel(self):
            return Channel()

        def process_data_events(self, time_limit=0):
            pass

    monkeypatch.setattr(rabbitmq_adapter.pika, "BlockingConnection", Connection)
    adapter = rabbitmq_adapter.RabbitMQAdapter(settings("rabbitmq", mode=mode))
    adapter.connect()
    adapter._subscribe()
    assert declared and all(durable or exclusive for _queue, durable, exclusive in declared), declared
