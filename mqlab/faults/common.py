"""What the faults share: finding a stack's containers, stamping each step with its time,
waiting for a container's health, and cutting a container off its network."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable

from ..errors import LabError
from ..stack import preflight
from ..stacks import Stack
from ..wait import poll_until

Echo = Callable[[str], None]
HEALTHY_TIMEOUT = 180.0


def stamp(echo: Echo, message: str) -> None:
    echo(f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]} {message}")


def on_swarm(client) -> bool:
    """The client reaches a stack on Swarm (:class:`mqlab.hosts.engines.SwarmEngines`)."""
    return hasattr(client, "containers_of")


def client_for(config, stack: Stack, client):
    """The client the faults act through: the local engine's, or for a stack on Swarm one that
    also reaches every node's engine (:class:`mqlab.hosts.engines.SwarmEngines`)."""
    if not preflight.swarm_services(client, stack):
        return client
    from ..hosts.engines import SwarmEngines  # the hosts layer builds on this one

    return SwarmEngines(config, client)


def service_of(c) -> str:
    """The stack's service a container belongs to, on one engine or on Swarm."""
    swarm = c.labels.get("com.docker.swarm.service.name", "")
    return c.labels.get("com.docker.compose.service") or swarm.split("_", 1)[-1] or c.name


def containers(client, stack: Stack, service: str, running: bool = True) -> list:
    """The service's containers (on Swarm: on every node's engine, the newest first)."""
    if on_swarm(client):
        return client.containers_of(stack, service, running)
    found = client.containers.list(all=not running, filters={"label": [
        f"com.docker.compose.project={stack.project}", f"com.docker.compose.service={service}"]})
    return sorted(found, key=lambda c: c.name)


def wait_healthy(container, echo: Echo, timeout: float = HEALTHY_TIMEOUT) -> None:
    health: list = [None]

    def healthy() -> bool:
        container.reload()
        health[0] = (container.attrs.get("State", {}).get("Health") or {}).get("Status")
        return container.status == "running" and health[0] in (None, "healthy")

    if not poll_until(healthy, timeout, interval=1.0):
        raise LabError(f"{container.name} did not become healthy within {timeout:.0f} s")
    stamp(echo, f"{container.name} is {'healthy' if health[0] else 'running'}")


def network_of(client, c):
    networks = [n for n in c.attrs.get("NetworkSettings", {}).get("Networks", {}) if n != "ingress"]
    if not networks:
        raise LabError(f"{c.name} is on no network")
    return c.client.networks.get(networks[0]) if on_swarm(client) else client.networks.get(networks[0])


def cut(client, c, duration: float, echo: Echo, label: str) -> None:
    """Disconnect ``c`` from its network for ``duration``, then connect it again by its name
    (and at its fixed address, where the compose file gives it one)."""
    net = network_of(client, c)
    fixed = ((c.attrs["NetworkSettings"]["Networks"][net.name].get("IPAMConfig") or {}).get("IPv4Address")
             or None)
    stamp(echo, f"disconnect {c.name} from {net.name} for {duration:g} s")
    net.disconnect(c)
    try:
        time.sleep(duration)
    finally:
        stamp(echo, f"reconnect {c.name} to {net.name}")
        net.connect(c, aliases=[label], ipv4_address=fixed)


def started_at(container) -> str:
    """When Docker last started the container (State.StartedAt): it changes with every start."""
    container.reload()
    return container.attrs["State"]["StartedAt"]


def tool_image(client, stack: Stack) -> str:
    """The services image (it has `tc` and `iptables`), from a running producer or consumer."""
    tool = containers(client, stack, "consumer") or containers(client, stack, "producer")
    if not tool:
        raise LabError(f"{stack.name} has no producer or consumer container to take the services image from")
    # the image's id: the same on every node of a swarm (`docker load` keeps it)
    return tool[0].attrs["Image"]
