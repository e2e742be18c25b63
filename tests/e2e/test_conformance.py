"""Differences between the official images and the images built from packages, guarded.

images/README.md has the table; each row that the compose files settle is tested here,
on the running stack, whichever kind of image it runs.
"""

from __future__ import annotations

import docker
import pytest

from tests.e2e.conftest import invoke


def broker_container(stack: str, service: str):
    containers = docker.from_env().containers.list(filters={"label": [
        f"com.docker.compose.project=mqlab-{stack}", f"com.docker.compose.service={service}"]})
    assert len(containers) == 1, containers
    return containers[0]


@pytest.mark.rabbitmq
def test_rabbitmq_erlang_cookie_belongs_to_the_broker(stacks):
    """The health check runs as the rabbitmq user, so it never creates a root-owned cookie."""
    stacks.up("rabbitmq")
    broker = broker_container("rabbitmq", "rabbitmq")
    owner = broker.exec_run(["stat", "-c", "%U %a", "/var/lib/rabbitmq/.erlang.cookie"]).output.decode().split()
    assert owner == ["rabbitmq", "400"], owner
    # 999, as in the official image: the cluster's cookie is given to that uid (compose/rabbitmq-cluster.yml),
    # so the entry point leaves it alone (on Swarm it is read-only, and a chown fails)
    ids = broker.exec_run(["sh", "-c", "id -u rabbitmq; id -g rabbitmq"]).output.decode().split()
    assert ids == ["999", "999"], ids
    health = broker.attrs["Config"]["Healthcheck"]["Test"]
    assert health[:3] == ["CMD", "gosu", "rabbitmq"], health


@pytest.mark.kafka
def test_kafka_logs_everything_to_the_console(stacks):
    """The controller's and state-change logs reach `invoke logs`; nothing piles up in files."""
    stacks.up("kafka")
    broker = broker_container("kafka", "kafka")
    files = broker.exec_run(["sh", "-c", "ls /opt/kafka/logs 2>/dev/null | grep -c '\\.log' || true"])
    assert files.output.decode().strip() == "0", files.output
    shown = invoke("logs", "--stack", "kafka", "--service", "kafka", "--tail", "100000")
    assert shown.ok, shown.out
    assert "(org.apache.kafka.controller." in shown.out  # only in controller.log with the stock file
    # The image re-renders the mounted file: the same loggers, and no file appender.
    rendered = broker.exec_run(["cat", "/opt/kafka/config/log4j2.yaml"]).output.decode()
    assert 'name: "state.change.logger"' in rendered and "RollingFile" not in rendered, rendered
