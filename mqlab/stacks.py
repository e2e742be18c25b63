"""The stack registry: every stack the lab can bring up, in one table.

A stack is one Compose file under ``compose/``. Its broker services are named
after the broker, or ``<broker>-<N>`` for the nodes of a cluster; ``producer`` and
``consumer`` come from ``compose/services.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError


@dataclass(frozen=True)
class Node:
    """One broker node: its compose service, and the .env key and default of its host port."""

    service: str
    port_key: str
    port: int


@dataclass(frozen=True)
class Stack:
    name: str
    broker: str  # the services' adapter name: rabbitmq | redis | kafka
    brokers: tuple[str, ...]  # compose services that make up the broker side
    ports: tuple[tuple[str, int], ...]  # (.env key, default host port) published on MQLAB_BIND
    images: tuple[str, ...]  # .env keys of the broker images
    nodes: tuple[Node, ...]  # the broker nodes that hold messages (one, or a cluster's)
    legacy: bool = False
    default_mode: str = ""  # the mode `invoke up` runs without --mode ("": the broker's first)
    sentinels: tuple[Node, ...] = ()  # Redis Sentinel: who knows the primary
    # The unsafe control of a cluster (`invoke proof --control`): the configuration users run by
    # mistake, which can lose acked writes under node faults; a checker that never saw it lose
    # has not shown that it can see a loss. "" on single-node stacks.
    control_mode: str = ""

    @property
    def cluster(self) -> bool:
        return len(self.nodes) > 1

    @property
    def compose_file(self) -> str:
        return f"compose/{self.name}.yml"

    @property
    def project(self) -> str:
        return f"mqlab-{self.name}"


def _nodes(prefix: str, keys: tuple[str, ...], ports: tuple[int, ...]) -> tuple[Node, ...]:
    return tuple(Node(f"{prefix}-{i}", key, port) for i, (key, port) in enumerate(zip(keys, ports), 1))


_RABBITMQ_NODES = _nodes("rabbitmq", ("RABBITMQ_PORT", "RABBITMQ_2_PORT", "RABBITMQ_3_PORT"), (5672, 5673, 5674))
_KAFKA_NODES = _nodes("kafka", ("KAFKA_PORT", "KAFKA_2_PORT", "KAFKA_3_PORT"), (9092, 9093, 9094))
_REDIS_NODES = _nodes("redis", ("REDIS_PORT", "REDIS_2_PORT", "REDIS_3_PORT"), (6379, 6380, 6381))
_SENTINELS = _nodes("sentinel", ("SENTINEL_PORT", "SENTINEL_2_PORT", "SENTINEL_3_PORT"), (26379, 26380, 26381))

STACKS: dict[str, Stack] = {
    s.name: s
    for s in (
        Stack(
            "rabbitmq",
            broker="rabbitmq",
            brokers=("rabbitmq",),
            ports=(("RABBITMQ_PORT", 5672), ("RABBITMQ_UI_PORT", 15672)),
            images=("RABBITMQ_IMAGE",),
            nodes=(Node("rabbitmq", "RABBITMQ_PORT", 5672),),
        ),
        Stack(
            "redis",
            broker="redis",
            brokers=("redis",),
            ports=(("REDIS_PORT", 6379),),
            images=("REDIS_IMAGE",),
            nodes=(Node("redis", "REDIS_PORT", 6379),),
        ),
        Stack(
            "kafka",
            broker="kafka",
            brokers=("kafka",),
            ports=(("KAFKA_PORT", 9092),),
            images=("KAFKA_IMAGE",),
            nodes=(Node("kafka", "KAFKA_PORT", 9092),),
        ),
        Stack(
            "kafka-zookeeper",
            broker="kafka",
            brokers=("zookeeper", "kafka"),
            ports=(("KAFKA_PORT", 9092),),
            images=("ZOOKEEPER_IMAGE", "ZK_KAFKA_IMAGE"),
            nodes=(Node("kafka", "KAFKA_PORT", 9092),),
            legacy=True,
        ),
        Stack(
            "kafka-cluster",
            broker="kafka",
            brokers=tuple(n.service for n in _KAFKA_NODES),
            ports=tuple((n.port_key, n.port) for n in _KAFKA_NODES),
            images=("KAFKA_IMAGE",),
            nodes=_KAFKA_NODES,
            control_mode="leader-ack",  # acks=1: the leader alone
        ),
        Stack(
            "rabbitmq-cluster",
            broker="rabbitmq",
            brokers=tuple(n.service for n in _RABBITMQ_NODES),
            ports=(*((n.port_key, n.port) for n in _RABBITMQ_NODES),
                   ("RABBITMQ_UI_PORT", 15672), ("RABBITMQ_2_UI_PORT", 15673), ("RABBITMQ_3_UI_PORT", 15674)),
            images=("RABBITMQ_IMAGE",),
            nodes=_RABBITMQ_NODES,
            default_mode="quorum",
            control_mode="work",  # a classic queue: it lives on one node
        ),
        Stack(
            "redis-sentinel",
            broker="redis",
            brokers=(*(n.service for n in _REDIS_NODES), *(n.service for n in _SENTINELS)),
            ports=tuple((n.port_key, n.port) for n in (*_REDIS_NODES, *_SENTINELS)),
            images=("REDIS_IMAGE",),
            nodes=_REDIS_NODES,
            default_mode="stream-wait",
            sentinels=_SENTINELS,
            control_mode="stream",  # acked by the primary alone (no WAIT)
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
