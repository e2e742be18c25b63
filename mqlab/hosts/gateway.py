"""The gateway: the lab's door into a stack on Swarm, on the manager's loopback.

Swarm cannot keep a ``127.0.0.1:`` binding, so no port of a swarm stack is published by Swarm.
Instead one container of the services image, ``mqlab-<stack>-gateway``, runs on the local
engine (the manager), attached to the stack's overlay network, and publishes every port the
compose file would publish, on the same loopback address and port, forwarding each to its
service by name (``forward``, :mod:`mqlab_services.forward`). So the lab's host side (produce's
progress, verify's final read, stats, faults that ask the broker) reaches a swarm stack the
way it reaches one on one engine, and nothing is open beyond the machine.
"""

from __future__ import annotations

import docker

from ..config import LabConfig
from ..errors import LabError
from ..stacks import Stack
from .engines import services_image
from .stackfile import Port

LABEL = "mqlab.gateway"


def name(stack: Stack) -> str:
    return f"{stack.project}-gateway"


def start(client, config: LabConfig, stack: Stack, ports: list[Port]) -> str:
    """(Re)start the gateway for ``ports``; a line saying what it publishes."""
    stop(client, stack)
    if not ports:
        return "no port to publish"
    routes = [f"{p.published}={p.service}:{p.target}" for p in ports]
    try:
        client.containers.run(services_image(config), ["forward", *routes], name=name(stack), detach=True, init=True,
                              network=f"{stack.project}_default", labels={LABEL: stack.name},
                              ports={f"{p.published}/tcp": (p.host_ip, p.published) for p in ports},
                              restart_policy={"Name": "unless-stopped"})
    except docker.errors.DockerException as exc:
        raise LabError(f"the gateway of {stack.name} did not start: {str(exc)[:200]}") from None
    return "published on the manager: " + ", ".join(f"{p.host_ip}:{p.published} -> {p.service}:{p.target}"
                                                    for p in ports)


def stop(client, stack: Stack) -> None:
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}={stack.name}"}):
        c.remove(force=True)
