"""Settings: one frozen object from MQLAB_* variables, with one-line errors that name the variable."""

from __future__ import annotations

import dataclasses

import pytest

from mqlab_services.settings import MODES, SAFE_MODES, Settings, SettingsError


def build(**env) -> Settings:
    return Settings.from_env({f"MQLAB_{k.upper()}": v for k, v in env.items()}, hostname="host-1")


def test_defaults_use_the_tutorial_names_and_the_safe_mode():
    s = build(broker="rabbitmq")
    assert (s.broker, s.mode, s.safe) == ("rabbitmq", "durable", True)
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
    assert s.mode == MODES[broker][0] == SAFE_MODES[broker]


def test_values_are_read_and_typed():
    s = build(broker="KAFKA", url="kafka:19092", mode="autocommit", rate="0.5", partitions="6",
              batch="10", name="p-2", ledger_dir="/tmp/l", key="src", claim_idle="2.5")
    assert (s.broker, s.url, s.mode, s.safe) == ("kafka", "kafka:19092", "autocommit", False)
    assert (s.rate, s.partitions, s.batch, s.claim_idle) == (0.5, 6, 10, 2.5)
    assert (s.name, s.ledger_dir, s.key) == ("p-2", "/tmp/l", "src")


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
    ({"broker": "redis", "mode": "durable"}, "MQLAB_MODE", "stream, pubsub"),
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
    ({"broker": "kafka", "key": "random"}, "MQLAB_KEY", "none, src"),
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
