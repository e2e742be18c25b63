"""Faults on purpose: `invoke chaos <stack> <fault> [--duration S]`.

Every fault is bounded in time and puts the stack back as it was; each step is
printed with the time it happened. Containers are found by their compose labels
and acted on with the Docker SDK (kill, stop/start, pause, network disconnect);
``slow-network`` runs ``tc netem`` inside the target's network namespace from a
throw-away container of the services image.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable

import docker

from .config import LabConfig
from .errors import LabError, UsageError
from .stacks import Stack
from .wait import poll_until

Echo = Callable[[str], None]
MAX_DURATION = 600.0
HEALTHY_TIMEOUT = 180.0


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
    label = c.labels.get("com.docker.compose.service", service)
    networks = list(c.attrs.get("NetworkSettings", {}).get("Networks", {}))
    if not networks:
        raise LabError(f"{c.name} is on no network")
    net = client.networks.get(networks[0])
    _stamp(echo, f"disconnect {c.name} from {net.name} for {duration:g} s")
    net.disconnect(c)
    try:
        time.sleep(duration)
    finally:
        _stamp(echo, f"reconnect {c.name} to {net.name}")
        net.connect(c, aliases=[label])
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


def kill_producer(client, stack, duration, echo, service):
    """Kill a one-shot `invoke produce` producer if one runs, else the steady one."""
    producers = containers(client, stack, "producer")
    oneshot = [c for c in producers if c.labels.get("com.docker.compose.oneoff") == "True"]
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


FAULTS: dict[str, tuple[Callable, float, str]] = {
    "kill-broker": (kill_broker, 5, "SIGKILL the broker, wait, start it again"),
    "restart-broker": (restart_broker, 2, "stop the broker gracefully, wait, start it"),
    "pause-broker": (pause_broker, 20, "freeze the broker longer than the clients' heartbeat"),
    "partition": (partition, 15, "disconnect a service (--service, default consumer) from the stack's network"),
    "kill-consumer": (kill_consumer, 3, "SIGKILL a consumer mid-batch, then start it again"),
    "kill-producer": (kill_producer, 3, "SIGKILL a producer before its confirms arrive"),
    "slow-network": (slow_network, 15, "slow a service's network (default: the broker): tc netem latency, or tbf"),
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


def inject(config: LabConfig, stack: Stack, fault: str, duration: float | None, echo: Echo,
           service: str | None = None, client=None) -> float:
    """Run one fault against a running stack; returns how long it took."""
    check_fault(fault)
    seconds = check_duration(duration, fault)
    if service not in (None, "consumer", "producer", "broker"):
        raise UsageError(f"--service must be consumer, producer or broker, got {service!r}")
    fn = FAULTS[fault][0]
    started = time.monotonic()
    _stamp(echo, f"{fault} on {stack.name}: {FAULTS[fault][2]}")
    try:
        fn(client, stack, seconds, echo, service or ("broker" if fault == "slow-network" else "consumer"))
    except docker.errors.DockerException as exc:
        raise LabError(f"{fault} failed: {str(exc).splitlines()[0][:200]}") from None
    elapsed = time.monotonic() - started
    _stamp(echo, f"{fault} done after {elapsed:.1f} s; the stack is restored")
    return elapsed
