"""Faults on purpose: `invoke chaos <stack> <fault> [--duration S] [--node N|leader|follower]`.

Every fault is bounded in time and puts the stack back as it was; each step is
printed with the time it happened. Containers are found by their compose labels
and acted on with the Docker SDK (kill, stop/start, pause, network disconnect);
``slow-network`` runs ``tc netem`` inside the target's network namespace from a
throw-away container of the services image. The node faults (``kill-node``,
``pause-node``, ``partition-node``, ``rolling-restart``) hit one node of a cluster, or each
in turn, and end only once the broker says every replica is back in step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import docker

from .. import brokers
from ..config import LabConfig
from ..errors import LabError, UsageError
from ..stacks import Stack
from ..wait import poll_until

Echo = Callable[[str], None]
MAX_DURATION = 600.0
HEALTHY_TIMEOUT = 180.0
IN_SYNC_TIMEOUT = 180.0


def _stamp(echo: Echo, message: str) -> None:
    echo(f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]} {message}")


def containers(client, stack: Stack, service: str, running: bool = True) -> list:
    found = client.containers.list(all=not running, filters={"label": [
        f"com.docker.compose.project={stack.project}", f"com.docker.compose.service={service}"]})
    return sorted(found, key=lambda c: c.name)


def broker_container(client, stack: Stack):
    found = containers(client, stack, stack.brokers[-1], running=False)
    if not found:
        raise UsageError(f"{stack.name} has no {stack.brokers[-1]} container: `invoke up {stack.name}` first")
    return found[0]


def one_of(client, stack: Stack, service: str):
    if service == "broker":
        return broker_container(client, stack)
    found = containers(client, stack, service)
    if not found:
        raise UsageError(f"{stack.name} has no running {service}: nothing to break")
    return found[0]


def wait_healthy(container, echo: Echo, timeout: float = HEALTHY_TIMEOUT) -> None:
    health: list = [None]

    def healthy() -> bool:
        container.reload()
        health[0] = (container.attrs.get("State", {}).get("Health") or {}).get("Status")
        return container.status == "running" and health[0] in (None, "healthy")

    if not poll_until(healthy, timeout, interval=1.0):
        raise LabError(f"{container.name} did not become healthy within {timeout:.0f} s")
    _stamp(echo, f"{container.name} is {'healthy' if health[0] else 'running'}")


def _down_then_up(client, stack, duration, echo, how: str, stop) -> None:
    """Stop the broker with ``stop(container)`` (``how`` says so, with ``{name}``), wait
    ``duration``, start it and wait for its health."""
    c = broker_container(client, stack)
    _stamp(echo, how.format(name=c.name))
    stop(c)
    time.sleep(duration)
    _stamp(echo, f"start {c.name}")
    c.start()
    wait_healthy(c, echo)


def kill_broker(client, stack, duration, echo, service):
    _down_then_up(client, stack, duration, echo, "SIGKILL {name}", lambda c: c.kill(signal="SIGKILL"))


def restart_broker(client, stack, duration, echo, service):
    _down_then_up(client, stack, duration, echo, "stop {name} (SIGTERM, graceful)", lambda c: c.stop(timeout=30))


def pause_broker(client, stack, duration, echo, service):
    c = broker_container(client, stack)
    _stamp(echo, f"pause {c.name} for {duration:g} s (its clients' heartbeats are 10 s)")
    c.pause()
    try:
        time.sleep(duration)
    finally:
        _stamp(echo, f"unpause {c.name}")
        c.unpause()
    wait_healthy(c, echo)


def partition(client, stack, duration, echo, service):
    c = one_of(client, stack, service)
    _cut(client, c, duration, echo, c.labels.get("com.docker.compose.service", service))
    if service == "broker":
        wait_healthy(c, echo)


def _kill_and_start(c, duration, echo):
    _stamp(echo, f"SIGKILL {c.name}")
    c.kill(signal="SIGKILL")
    time.sleep(duration)
    c.reload()
    if c.status != "running":
        _stamp(echo, f"start {c.name}")
        c.start()


def kill_consumer(client, stack, duration, echo, service):
    _kill_and_start(one_of(client, stack, "consumer"), duration, echo)


def oneshot_producers(client, stack: Stack) -> list:
    """The running producers of `invoke produce` (compose `run` containers), not the steady one."""
    return [c for c in containers(client, stack, "producer") if c.labels.get("com.docker.compose.oneoff") == "True"]


def kill_producer(client, stack, duration, echo, service):
    """Kill a one-shot `invoke produce` producer if one runs, else the steady one."""
    producers = containers(client, stack, "producer")
    oneshot = oneshot_producers(client, stack)
    target = (oneshot or producers or [None])[0]
    if target is None:
        raise UsageError(f"{stack.name} has no running producer: nothing to break")
    if oneshot:
        _stamp(echo, f"SIGKILL {target.name} (the one-shot producer of `invoke produce`)")
        target.kill(signal="SIGKILL")
        return
    _kill_and_start(target, duration, echo)


def slow_network(client, stack, duration, echo, service, delay_ms: int = 200):
    """Latency with tc netem; where the kernel has no netem, a tbf bandwidth limit instead."""
    c = one_of(client, stack, service or "broker")
    tool = containers(client, stack, "consumer") or containers(client, stack, "producer")
    if not tool:
        raise UsageError(f"{stack.name} has no service container whose image has `tc`")

    def tc(*args: str) -> None:
        client.containers.run(tool[0].image, ["qdisc", *args], network_mode=f"container:{c.id}",
                              cap_add=["NET_ADMIN"], remove=True, user="root", entrypoint=["tc"])

    try:
        tc("add", "dev", "eth0", "root", "netem", "delay", f"{delay_ms}ms", f"{delay_ms // 4}ms")
        _stamp(echo, f"added {delay_ms} ms (±{delay_ms // 4} ms) latency to {c.name} for {duration:g} s (tc netem)")
    except docker.errors.ContainerError as exc:
        if b"unknown" not in (exc.stderr or b"") and "unknown" not in str(exc):
            raise
        tc("add", "dev", "eth0", "root", "tbf", "rate", "256kbit", "burst", "16kbit", "latency", "500ms")
        _stamp(echo, f"this kernel has no netem: limited {c.name} to 256 kbit/s, up to 500 ms queueing, "
                     f"for {duration:g} s (tc tbf)")
    try:
        time.sleep(duration)
    finally:
        _stamp(echo, f"remove the slowdown from {c.name}")
        tc("del", "dev", "eth0", "root")


def pick_node(config: LabConfig, stack: Stack, node: str | None, mode: str, client, echo: Echo):
    """The container of node ``node``: a number (1-based), ``leader`` (the default) or
    ``follower`` (the first node that does not lead)."""
    broker = brokers.of(stack)
    choice = (node or "leader").strip().lower()
    if choice in ("leader", "follower"):
        try:
            leader = broker.topology(config, mode).leader
        except Exception as exc:  # the broker is not answering
            raise LabError(f"could not ask {stack.name} which node leads: {str(exc)[:160]}") from None
        if not leader:
            raise LabError(f"{stack.name} names no leader yet (mode {mode}): has anything been produced?")
        services = [n.service for n in stack.nodes]
        service = leader if choice == "leader" else next((s for s in services if s != leader), leader)
        _stamp(echo, f"the {choice} now is {service} (leader: {leader})")
    elif choice.isdigit():
        service = broker.node_service(int(choice))
    else:
        raise UsageError(f"--node must be a node number, leader or follower, got {node!r}")
    found = containers(client, stack, service, running=False)
    if not found:
        raise UsageError(f"{stack.name} has no {service} container: `invoke up {stack.name}` first")
    return found[0]


def wait_in_sync(config: LabConfig, stack: Stack, mode: str, echo: Echo, timeout: float = IN_SYNC_TIMEOUT) -> None:
    """Wait until the broker says every replica is back in step (a cluster made whole)."""
    if not stack.cluster:
        return
    broker = brokers.of(stack)
    said = [""]

    def whole() -> bool:
        try:
            ok, said[0] = broker.in_sync(config, mode)
        except Exception as exc:  # a node is still starting
            ok, said[0] = False, f"{type(exc).__name__}: {str(exc)[:120]}"
        return ok

    if not poll_until(whole, timeout, interval=1.0):
        raise LabError(f"{stack.name} was not back in sync within {timeout:.0f} s: {said[0]}")
    _stamp(echo, f"{stack.name} in sync: {said[0]}")


def _network_of(client, c):
    networks = list(c.attrs.get("NetworkSettings", {}).get("Networks", {}))
    if not networks:
        raise LabError(f"{c.name} is on no network")
    return client.networks.get(networks[0])


def _cut(client, c, duration: float, echo: Echo, label: str) -> None:
    """Disconnect ``c`` from its network for ``duration``, then connect it again by its name
    (and at its fixed address, where the compose file gives it one)."""
    net = _network_of(client, c)
    fixed = ((c.attrs["NetworkSettings"]["Networks"][net.name].get("IPAMConfig") or {}).get("IPv4Address")
             or None)
    _stamp(echo, f"disconnect {c.name} from {net.name} for {duration:g} s")
    net.disconnect(c)
    try:
        time.sleep(duration)
    finally:
        _stamp(echo, f"reconnect {c.name} to {net.name}")
        net.connect(c, aliases=[label], ipv4_address=fixed)


def kill_node(target, ctx) -> None:
    _stamp(ctx.echo, f"SIGKILL {target.name}")
    target.kill(signal="SIGKILL")
    time.sleep(ctx.duration)
    _stamp(ctx.echo, f"start {target.name}")
    target.start()


def pause_node(target, ctx) -> None:
    _stamp(ctx.echo, f"pause {target.name} for {ctx.duration:g} s")
    target.pause()
    try:
        time.sleep(ctx.duration)
    finally:
        _stamp(ctx.echo, f"unpause {target.name}")
        target.unpause()


def partition_node(target, ctx) -> None:
    _cut(ctx.client, target, ctx.duration, ctx.echo, target.labels.get("com.docker.compose.service", ""))


def rolling_restart(_target, ctx) -> None:
    """Stop and start every node in turn, followers first, each back in sync before the next."""
    leader = brokers.of(ctx.stack).topology(ctx.config, ctx.mode).leader if ctx.stack.cluster else ""
    services = sorted((n.service for n in ctx.stack.nodes), key=lambda s: s == leader)
    for service in services:
        c = containers(ctx.client, ctx.stack, service, running=False)[0]
        _stamp(ctx.echo, f"stop {c.name} (SIGTERM, graceful)" + (" - the leader" if service == leader else ""))
        c.stop(timeout=30)
        time.sleep(ctx.duration)
        _stamp(ctx.echo, f"start {c.name}")
        c.start()
        wait_healthy(c, ctx.echo)
        wait_in_sync(ctx.config, ctx.stack, ctx.mode, ctx.echo)


@dataclass(frozen=True)
class NodeFault:
    """What a node fault gets: the stack, the config, the mode, and how long the fault lasts."""

    config: LabConfig
    stack: Stack
    mode: str
    client: object
    duration: float
    echo: Echo


NODE_FAULTS: dict[str, tuple[Callable, float, str]] = {
    # 10 s: past Sentinel's 5 s down-after, so a killed Redis primary is failed over.
    "kill-node": (kill_node, 10, "SIGKILL one node (--node), wait, start it, wait until in sync"),
    "pause-node": (pause_node, 10, "freeze one node (--node) with docker pause, then unfreeze it"),
    "partition-node": (partition_node, 10, "cut one node (--node) off from its peers and clients, then reconnect it"),
    "rolling-restart": (rolling_restart, 2, "stop and start every node in turn (followers first), "
                                            "each back in sync before the next"),
}

FAULTS: dict[str, tuple[Callable, float, str]] = {
    "kill-broker": (kill_broker, 5, "SIGKILL the broker, wait, start it again"),
    "restart-broker": (restart_broker, 2, "stop the broker gracefully, wait, start it"),
    "pause-broker": (pause_broker, 20, "freeze the broker longer than the clients' heartbeat"),
    "partition": (partition, 15, "disconnect a service (--service, default consumer) from the stack's network"),
    "kill-consumer": (kill_consumer, 3, "SIGKILL a consumer mid-batch, then start it again"),
    "kill-producer": (kill_producer, 3, "SIGKILL a producer before its confirms arrive"),
    "slow-network": (slow_network, 15, "slow a service's network (default: the broker): tc netem latency, or tbf"),
    **NODE_FAULTS,
}


def check_fault(fault: str) -> str:
    if fault not in FAULTS:
        raise UsageError(f"unknown fault {fault!r}: choose one of {', '.join(FAULTS)}")
    return fault


def check_duration(duration: float | None, fault: str) -> float:
    value = FAULTS[fault][1] if duration is None else duration
    if not 0 <= value <= MAX_DURATION:
        raise UsageError(f"--duration must be from 0 to {MAX_DURATION:g} seconds, got {value!r}")
    return value


def check_node(fault: str, node: str | None) -> None:
    if node is not None and fault not in NODE_FAULTS:
        raise UsageError(f"--node goes with the node faults ({', '.join(NODE_FAULTS)}), not {fault}")
    if node is not None and fault == "rolling-restart":
        raise UsageError("rolling-restart restarts every node: it takes no --node")


def inject(config: LabConfig, stack: Stack, fault: str, duration: float | None, echo: Echo,
           service: str | None = None, client=None, node: str | None = None, mode: str = "") -> float:
    """Run one fault against a running stack; returns how long it took."""
    check_fault(fault)
    check_node(fault, node)
    seconds = check_duration(duration, fault)
    if service not in (None, "consumer", "producer", "broker"):
        raise UsageError(f"--service must be consumer, producer or broker, got {service!r}")
    fn = FAULTS[fault][0]
    started = time.monotonic()
    try:
        if fault in NODE_FAULTS:
            ctx = NodeFault(config, stack, mode, client, seconds, echo)
            target = None if fault == "rolling-restart" else pick_node(config, stack, node, mode, client, echo)
            _stamp(echo, f"{fault} on {stack.name}: {FAULTS[fault][2]}")
            fn(target, ctx)
            if target is not None:
                wait_healthy(target, echo)
                wait_in_sync(config, stack, mode, echo)
        else:
            _stamp(echo, f"{fault} on {stack.name}: {FAULTS[fault][2]}")
            fn(client, stack, seconds, echo, service or ("broker" if fault == "slow-network" else "consumer"))
    except docker.errors.DockerException as exc:
        raise LabError(f"{fault} failed: {str(exc).splitlines()[0][:200]}") from None
    elapsed = time.monotonic() - started
    _stamp(echo, f"{fault} done after {elapsed:.1f} s; the stack is restored")
    return elapsed
