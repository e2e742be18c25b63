"""`invoke dlq`: what is in a stack's dead-letter destination, and why.

Read from the host without consuming anything, by the broker's module in
``mqlab.brokers``: RabbitMQ messages are fetched and requeued, the Redis dead stream is
read with XRANGE, the Kafka DLQ topic is read without a consumer group.
"""

from __future__ import annotations

from .. import brokers, tables
from ..config import LabConfig
from ..stacks import Stack


def show(config: LabConfig, stack: Stack, limit: int = 20) -> str:
    name = brokers.names(stack.broker).dlq
    total, found = brokers.of(stack).read_dlq(config, name, limit)
    lines = [f"{stack.name} dead-letter destination {name}: {total:,} message(s)"]
    if found:
        lines.append(tables.render(("MESSAGE ID", "ATTEMPTS", "REASON"),
                                   [(d.message_id, d.attempts, d.reason) for d in found], indent=2))
        if total > len(found):
            lines.append(f"  ... and {total - len(found):,} more")
    return "\n".join(lines)
