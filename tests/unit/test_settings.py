"""Settings: one frozen object from MQLAB_* variables, with one-line errors that name the variable."""

from __future__ import annotations

import dataclasses

import pytest

from mqlab_services.settings import MODES, Settings, SettingsError


def build(**env) -> Settings:
    return Settings.from_env({f"MQLAB_{k.upper()}": v for k, v in env.items()}, hostname="host-1")


def test_defaults_use_the_tutorial_names_and_the_safe_mode():
    s = build(broker="rabbitmq")
    assert (s.broker, s.mode, s.safe, s.fanout) == ("rabbitmq", "work", True, False)
    assert s.url == "amqp://guest:guest@localhost:5672/%2F"
    assert s.queue == "mailbox.durable" and s.queue != "mailbox"
    assert (s.stream, s.channel, s.group) == ("chatroom.stream", "chatroom", "mqlab")
    assert (s.topic, s.partitions) == ("datascience", 3)
    assert s.ledger_dir == "/ledger"
    assert s.name == "host-1"
    assert s.rate == 2.0


@pytest.mark.parametrize("broker, url", [("redis", "redis://localhost:6379/0"), ("kafka", "localhost:9092")])
def test_each_broker_has_its_own_default_url_and_safe_mode(broker, url):
    s = build(broker=broker)
    assert s.url == url
    assert s.mode == MODES[broker][0]
    assert s.safe


@pytest.mark.parametrize("broker, modes", [
    ("rabbitmq", ("work", "fanout", "topic", "transient", "autoack")),
    ("redis", ("stream", "stream-fanout", "pubsub")),
    ("kafka", ("group", "fanout", "keyed", "autocommit")),
])
def test_the_modes_per_broker_the_first_is_the_default(broker, modes):
    assert build(broker=broker, mode="").mode == modes[0]  # an empty MQLAB_MODE means the default
    for mode in modes:
        assert build(broker=broker, mode=mode.upper()).mode == mode


@pytest.mark.parametrize("broker, mode, safe, fanout", [
    ("rabbitmq", "work", True, False), ("rabbitmq", "fanout", True, True),
    ("rabbitmq", "topic", True, False), ("rabbitmq", "transient", False, False),
    ("rabbitmq", "autoack", False, False),
    ("redis", "stream", True, False), ("redis", "stream-fanout", True, True), ("redis", "pubsub", False, True),
    ("kafka", "group", True, False), ("kafka", "fanout", True, True), ("kafka", "keyed", True, False),
    ("kafka", "autocommit", False, False),
])
def test_which_modes_are_lossy_and_which_fan_out(broker, mode, safe, fanout):
    s = build(broker=broker, mode=mode)
    assert (s.safe, s.fanout) == (safe, fanout)


def test_fanout_modes_give_each_subscriber_its_own_group():
    assert build(broker="kafka", mode="fanout", name="c-7").subscriber_group == "mqlab.c-7"
    assert build(broker="redis", mode="stream-fanout", group="g").subscriber_group == "g.host-1"
    assert build(broker="kafka", mode="keyed").subscriber_group == "mqlab"


def test_rabbitmq_queue_and_exchange_follow_the_mode():
    assert (build(broker="rabbitmq").queue, build(broker="rabbitmq").exchange) == ("mailbox.durable", "")
    assert build(broker="rabbitmq", mode="transient").queue == "mailbox.transient"
    assert build(broker="rabbitmq", mode="autoack").queue == "mailbox.durable"
    assert build(broker="rabbitmq", mode="fanout").exchange == "mailbox.fanout"
    assert build(broker="rabbitmq", mode="topic").exchange == "mailbox.topic"
    assert build(broker="rabbitmq", mode="topic", exchange="x.t").exchange == "x.t"
    assert build(broker="rabbitmq", mode="transient", queue="q1").queue == "q1"


def test_topic_and_keyed_settings():
    s = build(broker="rabbitmq", mode="topic")
    assert (s.routing_keys, s.binding) == (("orders.eu", "orders.us", "audit.eu"), "#")
    s = build(broker="rabbitmq", mode="topic", routing_keys=" a.b , c ", binding="orders.*")
    assert (s.routing_keys, s.binding) == (("a.b", "c"), "orders.*")
    assert build(broker="kafka", mode="keyed").keys == 8
    assert build(broker="kafka", mode="keyed", keys="3").keys == 3


def test_values_are_read_and_typed():
    s = build(broker="KAFKA", url="kafka:19092", mode="autocommit", rate="0.5", partitions="6",
              batch="10", name="p-2", ledger_dir="/tmp/l", keys="4", claim_idle="2.5")
    assert (s.broker, s.url, s.mode, s.safe) == ("kafka", "kafka:19092", "autocommit", False)
    assert (s.rate, s.partitions, s.batch, s.claim_idle) == (0.5, 6, 10, 2.5)
    assert (s.name, s.ledger_dir, s.keys) == ("p-2", "/tmp/l", 4)


def test_blank_values_mean_the_default():
    assert build(broker="redis", rate="", batch="  ").rate == 2.0


def test_settings_are_frozen():
    s = build(broker="redis")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.rate = 5  # type: ignore[misc]


def test_other_variables_are_ignored():
    env = {"MQLAB_BROKER": "redis", "RATE": "x", "MQLAB_SOMETHING_ELSE": "x"}
    assert Settings.from_env(env, hostname="h").rate == 2.0


@pytest.mark.parametrize("env, variable, fragment", [
    ({}, "MQLAB_BROKER", "is not set"),
    ({"broker": "nats"}, "MQLAB_BROKER", "rabbitmq, redis, kafka"),
    ({"broker": "redis", "mode": "durable"}, "MQLAB_MODE", "stream, stream-fanout, stream-wait, pubsub"),
    ({"broker": "rabbitmq", "mode": "acks-all"}, "MQLAB_MODE", "work, quorum, fanout, topic, stream, transient, autoack"),
    ({"broker": "kafka", "mode": "durable"}, "MQLAB_MODE", "group, fanout, keyed, autocommit"),
    ({"broker": "redis", "rate": "fast"}, "MQLAB_RATE", "must be a number"),
    ({"broker": "redis", "rate": "-1"}, "MQLAB_RATE", "positive"),
    ({"broker": "redis", "rate": "0"}, "MQLAB_RATE", "positive"),
    ({"broker": "redis", "rate": "nan"}, "MQLAB_RATE", "positive"),
    ({"broker": "redis", "batch": "1.5"}, "MQLAB_BATCH", "whole number"),
    ({"broker": "redis", "prefetch": "0"}, "MQLAB_PREFETCH", "at least 1"),
    ({"broker": "kafka", "partitions": "-3"}, "MQLAB_PARTITIONS", "at least 1"),
    ({"broker": "redis", "connect_attempts": "many"}, "MQLAB_CONNECT_ATTEMPTS", "whole number"),
    ({"broker": "redis", "name": "../etc"}, "MQLAB_NAME", "letters, digits"),
    ({"broker": "redis", "name": "a b"}, "MQLAB_NAME", "letters, digits"),
    ({"broker": "kafka", "keys": "0"}, "MQLAB_KEYS", "at least 1"),
    ({"broker": "kafka", "keys": "many"}, "MQLAB_KEYS", "whole number"),
    ({"broker": "rabbitmq", "routing_keys": "a,,b"}, "MQLAB_ROUTING_KEYS", "comma-separated"),
    ({"broker": "rabbitmq", "routing_keys": "a b,c"}, "MQLAB_ROUTING_KEYS", "comma-separated"),
    ({"broker": "rabbitmq", "mode": "fanout", "queue_type": "quorum"}, "MQLAB_QUEUE_TYPE", "per-subscriber"),
    ({"broker": "rabbitmq", "mode": "transient", "queue_type": "quorum"}, "MQLAB_QUEUE_TYPE", "transient"),
])
def test_bad_values_raise_one_line_errors_naming_the_variable(env, variable, fragment):
    with pytest.raises(SettingsError) as info:
        build(**env)
    message = str(info.value)
    assert message.startswith(variable)
    assert fragment in message
    assert "\n" not in message


def test_the_hostname_is_checked_like_a_name():
    with pytest.raises(SettingsError, match="MQLAB_NAME"):
        Settings.from_env({"MQLAB_BROKER": "redis"}, hostname="bad host")


def test_nothing_is_read_from_the_environment_at_import():
    import os
    import subprocess
    import sys

    env = {**os.environ, "MQLAB_BROKER": "not-a-broker", "MQLAB_RATE": "fast"}
    code = "import mqlab_services.settings, mqlab_services.producer, mqlab_services.consumer"
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


@pytest.mark.parametrize("broker, dlq, limit", [("rabbitmq", "mailbox.dead", 4194304),
                                                ("redis", "chatroom.stream.dead", 4194304),
                                                ("kafka", "datascience.dlq", 1048576)])
def test_dead_letter_and_size_defaults_per_broker(broker, dlq, limit):
    s = build(broker=broker)
    assert (s.dlq, s.max_message_bytes) == (dlq, limit)
    assert (s.max_deliveries, s.retry_idle, s.dlx, s.heartbeat) == (3, 1.0, "mailbox.dlx", 10)


def test_dead_letter_settings_can_be_changed():
    s = build(broker="redis", max_deliveries="5", retry_idle="0.5", dlq="dead", max_message_bytes="100",
              heartbeat="0")
    assert (s.max_deliveries, s.retry_idle, s.dlq, s.max_message_bytes, s.heartbeat) == (5, 0.5, "dead", 100, 0)


@pytest.mark.parametrize("key, value, message", [
    ("max_deliveries", "0", "MQLAB_MAX_DELIVERIES must be at least 1"),
    ("retry_idle", "-1", "MQLAB_RETRY_IDLE must be a positive number"),
    ("max_message_bytes", "1MB", "MQLAB_MAX_MESSAGE_BYTES must be a whole number"),
    ("heartbeat", "-5", "MQLAB_HEARTBEAT must be at least 0"),
])
def test_bad_dead_letter_settings_name_the_variable(key, value, message):
    with pytest.raises(SettingsError, match=message):
        build(broker="kafka", **{key: value})
