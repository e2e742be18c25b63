"""Ask Kafka, from the host, how many members the lab's consumer group has once it is settled.

Used after `up` and `scale`: a consumer that says it is consuming may still be in the
middle of a rebalance; the group is settled only when the broker calls it Stable.
"""

from __future__ import annotations

from . import clients
from .config import LabConfig

last_error = ""  # the last probe failure, for the message when waiting gives up


def kafka_group_members(config: LabConfig) -> int:
    """Members of the lab's group, or 0 while it is empty or rebalancing. With more consumers
    than partitions, some members hold no partition: they still count, as the group's spares."""
    from kafka import KafkaAdminClient

    group = clients.names("kafka").group
    admin = KafkaAdminClient(bootstrap_servers=clients.kafka_bootstrap(config),
                             request_timeout_ms=10_000)
    try:
        described = admin.describe_groups([group]).get(group) or {}
    finally:
        admin.close()
    if described.get("group_state") != "Stable":
        return 0
    return len(described.get("members", []))


def try_kafka_group_members(config: LabConfig) -> int:
    """Like kafka_group_members, but -1 (and ``last_error`` set) when the broker can't be asked."""
    global last_error
    try:
        return kafka_group_members(config)
    except Exception as exc:  # the broker may be restarting
        last_error = f"{type(exc).__name__}: {str(exc)[:120]}"
        return -1
