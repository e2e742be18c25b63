"""The stack registry: every stack the lab can bring up, in one table.

A stack is one Compose file under ``compose/``. Its broker services are named
after the broker; ``producer`` and ``consumer`` come from ``compose/services.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError


@dataclass(frozen=True)
class Stack:
    name: str
    broker: str  # the services' adapter name: rabbitmq | redis | kafka
    brokers: tuple[str, ...]  # compose services that make up the broker side
    ports: tuple[tuple[str, int], ...]  # (.env key, default host port) published on MQLAB_BIND
    images: tuple[str, ...]  # .env keys of the broker images
    legacy: bool = False

    @property
    def compose_file(self) -> str:
        return f"compose/{self.name}.yml"

    @property
    def project(self) -> str:
        return f"mqlab-{self.name}"


STACKS: dict[str, Stack] = {
    s.name: s
    for s in (
        Stack(
            "rabbitmq",
            broker="rabbitmq",
            brokers=("rabbitmq",),
            ports=(("RABBITMQ_PORT", 5672), ("RABBITMQ_UI_PORT", 15672)),
            images=("RABBITMQ_IMAGE",),
        ),
        Stack(
            "redis",
            broker="redis",
            brokers=("redis",),
            ports=(("REDIS_PORT", 6379),),
            images=("REDIS_IMAGE",),
        ),
        Stack(
            "kafka",
            broker="kafka",
            brokers=("kafka",),
            ports=(("KAFKA_PORT", 9092),),
            images=("KAFKA_IMAGE",),
        ),
        Stack(
            "kafka-zookeeper",
            broker="kafka",
            brokers=("zookeeper", "kafka"),
            ports=(("KAFKA_PORT", 9092),),
            images=("ZOOKEEPER_IMAGE", "ZK_KAFKA_IMAGE"),
            legacy=True,
        ),
    )
}

PROJECT_PREFIX = "mqlab-"


def get_stack(name: str | None) -> Stack:
    """Return the stack called ``name``, or raise a UsageError that lists the valid names."""
    try:
        return STACKS[name]  # type: ignore[index]
    except KeyError:
        valid = ", ".join(STACKS)
        shown = "no stack given" if not name else f"unknown stack {name!r}"
        raise UsageError(f"{shown}: choose one of {valid}") from None


def stack_of_project(project: str) -> Stack | None:
    """The stack a compose project name belongs to, if it is one of the lab's."""
    if project.startswith(PROJECT_PREFIX):
        return STACKS.get(project[len(PROJECT_PREFIX):])
    return None
