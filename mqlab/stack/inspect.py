"""Looking inside a running stack: the front doors of `invoke dlq` and `invoke stats`.

Each checks its input and that the stack runs, then hands over to its module
(:mod:`.dlq`, :mod:`.stats`).
"""

from __future__ import annotations

from ..config import LabConfig
from ..errors import LabError, UsageError
from ..stacks import get_stack
from . import dlq, preflight, stats
from .containers import running_stack
from .lifecycle import current_mode


def show_dlq(config: LabConfig, stack_name: str, limit: int) -> str:
    """What is in the stack's dead-letter destination (at most ``limit`` messages), and why."""
    get_stack(stack_name)
    if not 1 <= limit <= 10_000:
        raise UsageError(f"--limit must be from 1 to 10,000, got {limit!r}")
    stack = running_stack(stack_name, preflight.docker_client())
    try:
        return dlq.show(config, stack, limit)
    except Exception as exc:  # the broker is not answering
        raise LabError(f"could not read the dead-letter destination of {stack.name}: {str(exc)[:160]}") from None


def show_stats(config: LabConfig, stack_name: str) -> str:
    """Per consumer: messages received, rate, partitions or queue; and the backlog at the broker."""
    client = preflight.docker_client()
    stack = running_stack(stack_name, client)
    return stats.render(stats.collect(config, stack, client, current_mode(client, stack)))
