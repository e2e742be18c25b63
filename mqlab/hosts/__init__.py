"""More hosts: the lab's stacks on Docker Swarm.

- :mod:`.stackfile` the compose-to-stack rewrite: a Swarm stack file generated from a stack's
  own compose file (``docker compose config``), never kept by hand
- :mod:`.swarm`     deploying it on the swarm the local engine manages, where its tasks run,
  removing it

Front doors: :func:`up` (`invoke up <stack> --swarm`), :func:`down`, :func:`ps`.
"""

from __future__ import annotations

from typing import Callable

from .. import tables
from ..config import LabConfig
from ..stack import preflight, profiles
from ..stack.lifecycle import STACK_SETTINGS, check_mode
from ..stacks import STACKS, Stack, get_stack
from . import swarm

Echo = Callable[[str], None]

__all__ = ["up", "down", "ps", "on_swarm"]


def up(config: LabConfig, stack_name: str, consumers: int, echo: Echo, mode: str | None = None,
       settings: dict[str, str] | None = None, metrics: bool = False, ui: bool = False) -> Stack:
    """Deploy ``stack`` on the swarm the local engine manages, generated from its compose file."""
    stack = get_stack(stack_name)
    mode = check_mode(stack, mode)
    extras = profiles.select(stack, metrics, ui, config.offline)
    preflight.check_consumers(consumers)
    client = preflight.docker_client()
    swarm.check_manager(client)
    workers = swarm.workers(client)
    env = {**{k: "" for k in STACK_SETTINGS}, **(settings or {}), **dict(extras.settings), "MQLAB_MODE": mode}
    config.ledger_dir.mkdir(parents=True, exist_ok=True)
    path = swarm.generate(config, stack, consumers, workers, env, extras.names)
    echo(f"deploying {stack.name} on the swarm ({workers[0]} worker(s)) in mode {mode} with {consumers} "
         f"consumer(s), from {path.relative_to(config.root)}")
    swarm.deploy(path, stack, echo)
    echo(f"{stack.name} is up on the swarm: `invoke ps` shows where each task runs")
    return stack


def on_swarm() -> list[Stack]:
    """The lab's stacks deployed on the swarm the local engine manages (none outside a swarm)."""
    names = swarm.stack_names()
    return [STACKS[name.removeprefix("mqlab-")] for name in names if name.removeprefix("mqlab-") in STACKS]


def down(stack_name: str | None, echo: Echo) -> list[Stack]:
    """Remove the stack (or every lab stack) from the swarm; the ones removed."""
    found = [s for s in on_swarm() if stack_name in (None, s.name)]
    for stack in found:
        echo(f"removing {stack.name} from the swarm")
        swarm.remove(stack, echo)
    return found


def ps() -> str:
    """Where each task of the lab's swarm stacks runs, or "" when there is none."""
    rows = [(stack.name, t.service, t.node, t.state, t.error or "-") for stack in on_swarm() for t in swarm.tasks(stack)]
    return tables.render(("STACK", "SERVICE", "SWARM NODE", "STATE", "ERROR"), rows) if rows else ""
