"""Faults on purpose, and the proof that a cluster keeps what it acked through them.

- :mod:`.chaos` one bounded fault against a running stack, each step printed, the stack
  restored at the end: kill, pause or cut off the broker, a service or one node of a cluster
- :mod:`.proof` rounds of node faults under a steady produce, each round judged by the
  ledger; one table per fault

Front doors: :func:`inject_fault` (`invoke chaos`), :func:`prove` (`invoke proof`) and
:data:`PROOF_FAULTS`, the node faults a proof runs.

    from mqlab import faults

    faults.inject_fault(config, "rabbitmq", "kill-broker", None, print)
"""

from __future__ import annotations

from typing import Callable

from ..config import LabConfig
from ..stack import preflight
from ..stack.containers import running_stack
from ..stack.lifecycle import current_mode
from ..stacks import get_stack
from . import chaos
from .common import client_for
from .proof import FAULTS as PROOF_FAULTS
from .proof import SWARM_FAULTS
from .proof import prove

__all__ = ["PROOF_FAULTS", "SWARM_FAULTS", "inject_fault", "prove"]


def inject_fault(config: LabConfig, stack_name: str, fault: str, duration: float | None, echo: Callable[[str], None],
                 service: str | None = None, node: str | None = None) -> float:
    """Break a running stack on purpose for a bounded time, then restore it; returns how long it took."""
    get_stack(stack_name)  # an unknown stack first, then the fault
    chaos.check_fault(fault)
    chaos.check_node(fault, node)
    chaos.check_duration(duration, fault)
    client = preflight.docker_client()
    stack = running_stack(stack_name, client)
    client = client_for(config, stack, client)
    return chaos.inject(config, stack, fault, duration, echo, service, client, node=node,
                        mode=current_mode(client, stack))
