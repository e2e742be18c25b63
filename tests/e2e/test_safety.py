"""Safe defaults and bad input: loopback-only ports, credentials before exposure, and
failures that leave no half-started stack behind."""

from __future__ import annotations

import socket

import docker
import pytest

from tests.e2e.conftest import invoke


def lab_containers(stack: str) -> list:
    return docker.from_env().containers.list(all=True, filters={"label": f"com.docker.compose.project=mqlab-{stack}"})


def test_every_published_port_binds_to_loopback(stacks, stack_name):
    stacks.up(stack_name)
    bindings = []
    for c in lab_containers(stack_name):
        for port, binds in (c.attrs["NetworkSettings"]["Ports"] or {}).items():
            bindings += [(c.name, port, b["HostIp"]) for b in binds or ()]
    assert bindings, "the stack publishes no port"
    assert all(ip == "127.0.0.1" for _, _, ip in bindings), bindings


@pytest.mark.parametrize("stack,expected", [
    pytest.param("rabbitmq", "default guest credentials", marks=pytest.mark.rabbitmq, id="rabbitmq"),
    pytest.param("redis", "Redis has no password", marks=pytest.mark.redis, id="redis"),
    pytest.param("kafka", "no authentication", marks=pytest.mark.kafka, id="kafka"),
])
def test_expose_is_refused_with_default_credentials(stacks, stack, expected):
    stacks.down()
    refused = invoke("up", stack, "--expose")
    assert not refused.ok
    assert expected in refused.out and "Traceback" not in refused.out
    assert lab_containers(stack) == []


@pytest.mark.redis
def test_exposed_redis_requires_its_password(stacks):
    import redis

    stacks.down()
    env = {"REDIS_PASSWORD": "lab-s3cret", "MQLAB_EXPOSE_BIND": "127.0.0.1"}  # the test stays on loopback
    try:
        started = invoke("up", "redis", "--expose", env=env)
        assert started.ok, started.out
        with pytest.raises(redis.AuthenticationError):
            redis.Redis().ping()
        assert redis.Redis(password="lab-s3cret").ping()
    finally:
        assert invoke("down", "redis", "--volumes", env=env).ok


@pytest.mark.rabbitmq
def test_exposed_rabbitmq_refuses_guest(stacks):
    import pika

    stacks.down()
    env = {"RABBITMQ_USER": "lab", "RABBITMQ_PASSWORD": "lab-s3cret", "MQLAB_EXPOSE_BIND": "127.0.0.1"}
    try:
        started = invoke("up", "rabbitmq", "--expose", env=env)
        assert started.ok, started.out
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.ConnectionParameters(connection_attempts=1))
        pika.BlockingConnection(pika.ConnectionParameters(
            credentials=pika.PlainCredentials("lab", "lab-s3cret"))).close()
    finally:
        assert invoke("down", "rabbitmq", "--volumes", env=env).ok


@pytest.mark.redis
def test_a_busy_port_is_one_line_and_starts_nothing(stacks):
    stacks.down()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 6379))
        holder.listen()
        refused = invoke("up", "redis")
    assert not refused.ok
    assert "port 6379 on 127.0.0.1 is in use" in refused.out and "Traceback" not in refused.out
    assert lab_containers("redis") == []


@pytest.mark.parametrize("args,expected", [
    (("up", "nosuchstack"), "unknown stack 'nosuchstack'"),
    (("up", "redis", "--mode", "nosuchmode"), "unknown mode 'nosuchmode' for redis"),
    (("chaos", "redis", "nosuchfault"), "unknown fault 'nosuchfault'"),
    (("produce", "redis", "--count", "-5"), "--count must be"),
    (("produce", "redis", "--count", "99999999999"), "--count must be"),
    (("up", "redis", "--consumers", "many"), "--consumers must be a number"),
])
def test_bad_input_is_one_line_and_starts_nothing(stacks, args, expected):
    stacks.down()
    done = invoke(*args)
    assert not done.ok
    assert expected in done.out and "Traceback" not in done.out
    assert lab_containers("redis") == []


def test_env_value_that_is_not_a_number(stacks):
    stacks.down()
    done = invoke("up", "redis", env={"MQLAB_CONSUMERS": "lots"})
    assert not done.ok and "MQLAB_CONSUMERS='lots' is not a number" in done.out
    assert lab_containers("redis") == []
