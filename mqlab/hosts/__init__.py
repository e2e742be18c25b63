"""More hosts: the lab's stacks on Docker Swarm, and a local multi-node swarm to try them on.

**The rig** (``invoke hosts up N`` / ``status`` / ``down``): each of the N worker nodes is a
second dockerd in a network namespace of its own (``mqlab-node-K``), on a host bridge
(``mqlab-br0``) through a veth pair, at .(10+K) of one private subnet (``MQLAB_HOSTS_SUBNET``,
default 10.213.0.0/24). The local engine is the swarm manager, at .1 on the bridge. Nothing is
routed off the machine: the namespaces have no default route, and the host forwards nothing
(the bridge works at layer 2).

- :mod:`.plan`      names, addresses, paths and the refusals, worked out before anything is made
- :mod:`.state`     ``/run/mqlab-nodes/rig.json``: what was made, so that ``down`` undoes exactly that
- :mod:`.rig`       :func:`up`, :func:`down`, :func:`status` of the rig

**Stacks on the swarm** (``invoke up <stack> --swarm``):

- :mod:`.stackfile` the compose-to-stack rewrite: a Swarm stack file generated from a stack's
  own compose file (``docker compose config``), never kept by hand
- :mod:`.swarm`     deploying it on the swarm the local engine manages, where its tasks run,
  removing it; front doors :func:`swarm_up`, :func:`swarm_down`, :func:`swarm_ps`

    from mqlab import hosts

    hosts.up(root, 3, "10.213.0.0/24", None, print)     # the rig
    hosts.swarm_up(config, "kafka-cluster", 2, print)   # a stack on it
    print(hosts.swarm_ps())
    hosts.swarm_down(config, "kafka-cluster", False, print)
    hosts.down(print)
"""

from __future__ import annotations

from typing import Callable

from .. import tables
from ..config import LabConfig
from ..stack import preflight, profiles
from ..stack.expose import check_expose
from ..stack.expose import warning as expose_warning
from ..faults.nodes import wait_in_sync
from ..stack.lifecycle import STACK_SETTINGS, check_mode, wait_for_consumers
from ..stacks import STACKS, Stack, get_stack
from . import engines, gateway, swarm
from .plan import DEFAULT_SUBNET, MAX_NODES, SUBNET_KEY
from .rig import down, status, up

Echo = Callable[[str], None]



__all__ = ["DEFAULT_SUBNET", "MAX_NODES", "SUBNET_KEY", "down", "on_swarm", "status", "swarm_down", "swarm_ps",
           "swarm_up", "up"]


def swarm_up(config: LabConfig, stack_name: str, consumers: int, echo: Echo, mode: str | None = None,
       settings: dict[str, str] | None = None, metrics: bool = False, ui: bool = False,
       expose: bool = False) -> Stack:
    """Deploy ``stack`` on the swarm the local engine manages, generated from its compose file."""
    stack = get_stack(stack_name)
    mode = check_mode(stack, mode)
    extras = profiles.select(stack, metrics, ui, config.offline)
    preflight.check_consumers(consumers)
    # --expose: the gateway publishes on MQLAB_EXPOSE_BIND instead of 127.0.0.1, on the manager only
    exposure = check_expose(config, stack) if expose else {}
    client = preflight.docker_client()
    swarm.check_manager(client)
    workers = swarm.workers(client)
    env = {**{k: "" for k in STACK_SETTINGS}, **(settings or {}), **dict(extras.settings), "MQLAB_MODE": mode,
           **exposure}
    if exposure:
        echo(expose_warning(stack, exposure))
    config.ledger_dir.mkdir(parents=True, exist_ok=True)
    path, done = swarm.generate(config, stack, consumers, workers, env, extras.names)
    echo(f"deploying {stack.name} on the swarm ({workers[0]} worker(s)) in mode {mode} with {consumers} "
         f"consumer(s), from {path.relative_to(config.root)}")
    swarm.deploy(path, stack, echo)
    echo(f"gateway {gateway.name(stack)}: " + gateway.start(client, config, stack, done.ports))
    wait_in_sync(config, stack, mode, echo)  # Swarm has no health checks here: the broker's own word
    wait_for_consumers(config, stack, consumers, echo)
    echo(f"{stack.name} is up on the swarm: `invoke ps` shows where each task runs")
    return stack


def on_swarm() -> list[Stack]:
    """The lab's stacks deployed on the swarm the local engine manages (none outside a swarm)."""
    names = swarm.stack_names()
    return [STACKS[name.removeprefix("mqlab-")] for name in names if name.removeprefix("mqlab-") in STACKS]


def swarm_down(config: LabConfig, stack_name: str | None, volumes: bool, echo: Echo) -> list[Stack]:
    """Remove the stack (or every lab stack) from the swarm, and with ``volumes`` its volumes on
    every swarm node; the ones removed."""
    found = [s for s in on_swarm() if stack_name in (None, s.name)]
    for stack in found:
        echo(f"removing {stack.name} from the swarm" + (" and its volumes on every node" if volumes else ""))
        client = preflight.docker_client()
        gateway.stop(client, stack)
        swarm.remove(stack, echo)
        if volumes:
            removed = engines.remove_volumes(config, client, stack)
            echo(f"{stack.name}: volumes removed: " + (", ".join(f"{node} {n}" for node, n in removed.items())))
    return found


def swarm_ps() -> str:
    """Where each task of the lab's swarm stacks runs, or "" when there is none."""
    rows = [(stack.name, t.service, t.node, t.state, t.error or "-") for stack in on_swarm() for t in swarm.tasks(stack)]
    return tables.render(("STACK", "SERVICE", "SWARM NODE", "STATE", "ERROR"), rows) if rows else ""
