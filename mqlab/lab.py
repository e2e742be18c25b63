"""The front doors of the tasks that act on a running stack: chaos, dlq and stats.

Each checks its input and that the stack runs, then hands over to its module.
Lifecycle (up, down, scale) is :mod:`mqlab.lifecycle`, runs (produce, verify) are
:mod:`mqlab.runs`, containers (ps, logs) are :mod:`mqlab.containers`.
"""

from __future__ import annotations

from typing import Callable

from . import chaos as lab_chaos
from . import dlq as lab_dlq
from . import preflight
from . import stats as lab_stats
from .config import LabConfig
from .errors import LabError, UsageError
from .containers import running_stack
from .lifecycle import current_mode
from .stacks import get_stack

Echo = Callable[[str], None]


def chaos(config: LabConfig, stack_name: str, fault: str, duration: float | None, echo: Echo,
          service: str | None = None, node: str | None = None) -> float:
    get_stack(stack_name)  # an unknown stack first, then the fault
    lab_chaos.check_fault(fault)
    lab_chaos.check_node(fault, node)
    lab_chaos.check_duration(duration, fault)
    client = preflight.docker_client()
    stack = running_stack(stack_name, client)
    return lab_chaos.inject(config, stack, fault, duration, echo, service, client, node=node,
                            mode=current_mode(client, stack))


def dlq(config: LabConfig, stack_name: str, limit: int) -> str:
    get_stack(stack_name)
    if not 1 <= limit <= 10_000:
        raise UsageError(f"--limit must be from 1 to 10,000, got {limit!r}")
    stack = running_stack(stack_name, preflight.docker_client())
    try:
        return lab_dlq.show(config, stack, limit)
    except Exception as exc:  # the broker is not answering
        raise LabError(f"could not read the dead-letter destination of {stack.name}: {str(exc)[:160]}") from None


def stats(config: LabConfig, stack_name: str) -> str:
    client = preflight.docker_client()
    stack = running_stack(stack_name, client)
    return lab_stats.render(lab_stats.collect(config, stack, client, current_mode(client, stack)))

