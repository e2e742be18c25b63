"""Faults on purpose: `invoke chaos <stack> <fault> [--duration S] [--node N|leader|follower]`.

Every fault is bounded in time and puts the stack back as it was; each step is
printed with the time it happened. Containers are found by their compose labels
and acted on with the Docker SDK (kill, stop/start, pause, network disconnect);
``slow-network`` runs ``tc netem`` inside the target's network namespace from a
throw-away container of the services image. The node faults (:mod:`.nodes`: ``kill-node``,
``pause-node``, ``partition-node``, ``isolate-node``, ``rolling-restart``) hit one node of a
cluster, or each in turn, end only once the broker says every replica is back in step, and
say what the broker or Docker showed of them.
"""

from __future__ import annotations

import time
from typing import Callable

import docker

from .. import events
from ..config import LabConfig
from ..errors import LabError, UsageError
from ..stacks import Stack
from .common import Echo, containers, cut, on_swarm, service_of, stamp, tool_image, wait_healthy
from .nodes import NODE_FAULTS, FaultResult, run_node_fault

MAX_DURATION = 600.0


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


def _down_then_up(client, stack, duration, echo, how: str, stop) -> None:
    """Stop the broker with ``stop(container)`` (``how`` says so, with ``{name}``), wait
    ``duration``, start it and wait for its health."""
    c = broker_container(client, stack)
    stamp(echo, how.format(name=c.name))
    stop(c)
    time.sleep(duration)
    stamp(echo, f"start {c.name}")
    c.start()
    wait_healthy(c, echo)


def kill_broker(client, stack, duration, echo, service):
    _down_then_up(client, stack, duration, echo, "SIGKILL {name}", lambda c: c.kill(signal="SIGKILL"))


def restart_broker(client, stack, duration, echo, service):
    _down_then_up(client, stack, duration, echo, "stop {name} (SIGTERM, graceful)", lambda c: c.stop(timeout=30))


def pause_broker(client, stack, duration, echo, service):
    c = broker_container(client, stack)
    stamp(echo, f"pause {c.name} for {duration:g} s (its clients' heartbeats are 10 s)")
    c.pause()
    try:
        time.sleep(duration)
    finally:
        stamp(echo, f"unpause {c.name}")
        c.unpause()
    wait_healthy(c, echo)


def partition(client, stack, duration, echo, service):
    c = one_of(client, stack, service)
    cut(client, c, duration, echo, service_of(c))
    if service == "broker":
        wait_healthy(c, echo)


def _kill_and_start(c, duration, echo):
    stamp(echo, f"SIGKILL {c.name}")
    c.kill(signal="SIGKILL")
    time.sleep(duration)
    c.reload()
    if c.status != "running":
        stamp(echo, f"start {c.name}")
        c.start()


def kill_consumer(client, stack, duration, echo, service):
    _kill_and_start(one_of(client, stack, "consumer"), duration, echo)


def oneshot_producers(client, stack: Stack) -> list:
    """The running producers of `invoke produce` (compose `run` containers, or on Swarm the
    manager's containers it labels), not the steady one."""
    if on_swarm(client):
        return client.local.containers.list(filters={"label": f"mqlab.oneshot={stack.name}"})
    return [c for c in containers(client, stack, "producer") if c.labels.get("com.docker.compose.oneoff") == "True"]


def kill_producer(client, stack, duration, echo, service):
    """Kill a one-shot `invoke produce` producer if one runs, else the steady one."""
    producers = containers(client, stack, "producer")
    oneshot = oneshot_producers(client, stack)
    target = (oneshot or producers or [None])[0]
    if target is None:
        raise UsageError(f"{stack.name} has no running producer: nothing to break")
    if oneshot:
        stamp(echo, f"SIGKILL {target.name} (the one-shot producer of `invoke produce`)")
        target.kill(signal="SIGKILL")
        return
    _kill_and_start(target, duration, echo)


def slow_network(client, stack, duration, echo, service, delay_ms: int = 200):
    """Latency with tc netem; where the kernel has no netem, a tbf bandwidth limit instead."""
    c = one_of(client, stack, service or "broker")
    image = tool_image(client, stack)

    def tc(*args: str) -> None:
        client.containers.run(image, ["qdisc", *args], network_mode=f"container:{c.id}",
                              cap_add=["NET_ADMIN"], remove=True, user="root", entrypoint=["tc"])

    try:
        tc("add", "dev", "eth0", "root", "netem", "delay", f"{delay_ms}ms", f"{delay_ms // 4}ms")
        stamp(echo, f"added {delay_ms} ms (±{delay_ms // 4} ms) latency to {c.name} for {duration:g} s (tc netem)")
    except docker.errors.ContainerError as exc:
        if b"unknown" not in (exc.stderr or b"") and "unknown" not in str(exc):
            raise
        tc("add", "dev", "eth0", "root", "tbf", "rate", "256kbit", "burst", "16kbit", "latency", "500ms")
        stamp(echo, f"this kernel has no netem: limited {c.name} to 256 kbit/s, up to 500 ms queueing, "
                     f"for {duration:g} s (tc tbf)")
    try:
        time.sleep(duration)
    finally:
        stamp(echo, f"remove the slowdown from {c.name}")
        tc("del", "dev", "eth0", "root")


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
           service: str | None = None, client=None, node: str | None = None, mode: str = "") -> FaultResult:
    """Run one fault against a running stack: when it began, was undone and was over, and (for
    the node faults) what the broker or Docker showed of it."""
    check_fault(fault)
    check_node(fault, node)
    seconds = check_duration(duration, fault)
    if service not in (None, "consumer", "producer", "broker"):
        raise UsageError(f"--service must be consumer, producer or broker, got {service!r}")
    fault_id, started = events.new_id(), time.time_ns()
    events.append(config.events_file, stack.name, "fault", f"{fault}: {FAULTS[fault][2]}", fault=fault, id=fault_id,
                  ns=started)

    def logged(line: str) -> None:  # every step also goes to the event file, for `invoke top`
        echo(line)
        events.append(config.events_file, stack.name, "step", line.split(" ", 1)[-1], fault=fault, id=fault_id)

    result = None
    try:
        if fault in NODE_FAULTS:
            result = run_node_fault(config, stack, fault, seconds, node, mode, client, logged, FAULTS[fault][2])
        else:
            stamp(logged, f"{fault} on {stack.name}: {FAULTS[fault][2]}")
            FAULTS[fault][0](client, stack, seconds, logged,
                             service or ("broker" if fault == "slow-network" else "consumer"))
            result = FaultResult(fault, "", started, time.time_ns(), time.time_ns())
    except docker.errors.DockerException as exc:
        raise LabError(f"{fault} failed: {str(exc).splitlines()[0][:200]}") from None
    finally:  # an interrupted fault's window ends here too, so a timeline never leaves it open
        events.append(config.events_file, stack.name, "healed", f"{fault} undone", fault=fault, id=fault_id,
                      started_ns=started, ns=result.healed_ns if result else None)
    stamp(echo, f"{fault} done after {result.seconds:.1f} s; the stack is restored")
    return result
