"""Node faults: one node of a cluster (or the one broker) killed, paused, cut off or
restarted in turn, and what the broker showed of it.

Each fault is bounded in time, undone at its end, and over only once the broker says every
replica is back in step. Its :class:`FaultResult` says when it began, when it was undone and
when the cluster was whole again, and its evidence: what the broker or Docker showed of it
(a new start time, the peers' own words about the node being out of reach), never the lab's
own account of what it did. A fault without evidence did not show that it happened.

Two kinds of partition, as in Jepsen:

- ``partition-node`` disconnects the node from the stack's network: it is cut off from
  everything, its clients included;
- ``isolate-node`` cuts it off from its peers only (the other broker nodes, and Sentinel's
  sentinels), with packet filters in its own network namespace, set from a throw-away
  container of the services image that shares that namespace (``NET_ADMIN``). Its clients
  still reach it. That is where brokers lose acknowledged writes: an old Redis primary keeps
  taking them, an old Kafka leader with ``acks=1`` keeps acknowledging them.
"""

from __future__ import annotations

import ipaddress
import shlex
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .. import brokers
from ..brokers import Peer
from ..config import LabConfig
from ..errors import LabError, UsageError
from ..stacks import Stack
from ..wait import poll_until
from .common import (HEALTHY_TIMEOUT, Echo, containers, cut, network_of, on_swarm, service_of, stamp, started_at, tool_image,
                     wait_healthy)

IN_SYNC_TIMEOUT = 180.0
FILTER_CHAIN = "MQLAB-ISOLATE"
WATCH_EVERY_S = 2.0  # how often the peers are asked about the node during a fault


@dataclass
class FaultResult:
    """One fault: when it began, was undone and was over (the stack whole), in ns since the
    epoch, and what the broker or Docker showed of it ("": nothing, so it is not proven)."""

    fault: str
    node: str  # the target's compose service; "all" for a rolling restart; "" for a stack fault
    started_ns: int
    healed_ns: int
    ended_ns: int
    evidence: str = ""

    @property
    def seconds(self) -> float:
        return (self.ended_ns - self.started_ns) / 1e9


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
        stamp(echo, f"the {choice} now is {service} (leader: {leader})")
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
    stamp(echo, f"{stack.name} in sync: {said[0]}")


def kill_node(target, ctx) -> None:
    stamp(ctx.echo, f"SIGKILL {target.name}")
    target.kill(signal="SIGKILL")
    time.sleep(ctx.duration)
    if on_swarm(ctx.client):  # Swarm starts a new task itself (restart policy), on the same node (placement)
        found = current(ctx, target)
        stamp(ctx.echo, f"Swarm started a new task of {service_of(target)} on {ctx.client.node_of(found)}: "
                        f"{found.name}")
        return
    stamp(ctx.echo, f"start {target.name}")
    target.start()


def current(ctx, target, replaced: bool = False):
    """The node's running container now: on Swarm a killed, cut-off or restarted task is
    replaced by a new one on the same swarm node (``replaced``: wait for one that is not
    ``target``); on one engine, the target itself."""
    if not on_swarm(ctx.client):
        return target
    service, found = service_of(target), []

    def running() -> bool:
        found[:] = [c for c in containers(ctx.client, ctx.stack, service) if not replaced or c.id != target.id]
        return bool(found)

    if not poll_until(running, HEALTHY_TIMEOUT, interval=1.0):
        raise LabError(f"Swarm did not run {service} again within {HEALTHY_TIMEOUT:.0f} s")
    return found[0]


def pause_node(target, ctx) -> None:
    stamp(ctx.echo, f"pause {target.name} for {ctx.duration:g} s")
    target.pause()
    try:
        time.sleep(ctx.duration)
    finally:
        stamp(ctx.echo, f"unpause {target.name}")
        target.unpause()


def partition_node(target, ctx) -> None:
    cut(ctx.client, target, ctx.duration, ctx.echo, service_of(target))


def rolling_restart(_target, ctx) -> None:
    """Stop and start every node in turn, followers first, each back in sync before the next."""
    leader = brokers.of(ctx.stack).topology(ctx.config, ctx.mode).leader if ctx.stack.cluster else ""
    services = sorted((n.service for n in ctx.stack.nodes), key=lambda s: s == leader)
    for service in services:
        c = containers(ctx.client, ctx.stack, service, running=False)[0]
        if on_swarm(ctx.client):
            _swarm_restart(ctx, c, service, " - the leader" if service == leader else "")
            continue
        stamp(ctx.echo, f"stop {c.name} (SIGTERM, graceful)" + (" - the leader" if service == leader else ""))
        c.stop(timeout=30)
        time.sleep(ctx.duration)
        stamp(ctx.echo, f"start {c.name}")
        c.start()
        wait_healthy(c, ctx.echo)
        wait_in_sync(ctx.config, ctx.stack, ctx.mode, ctx.echo)


def _swarm_restart(ctx, c, service: str, note: str) -> None:
    """On Swarm a stopped task is replaced, not started again: `docker service update --force`
    stops the node's task gracefully and starts a new one on the same machine (its placement)."""
    name = f"{ctx.stack.project}_{service}"
    stamp(ctx.echo, f"docker service update --force {name}: Swarm stops {c.name} (SIGTERM, graceful) and starts "
                    f"a new task{note}")
    ctx.client.local.services.get(name).force_update()
    found = current(ctx, c, replaced=True)
    stamp(ctx.echo, f"Swarm started {found.name} on {ctx.client.node_of(found)}")
    wait_healthy(found, ctx.echo)
    wait_in_sync(ctx.config, ctx.stack, ctx.mode, ctx.echo)


def _peer_containers(client, stack: Stack, target) -> list:
    """The other broker containers of the stack: its nodes, and for Redis its sentinels."""
    return [c for service in stack.brokers for c in containers(client, stack, service) if c.id != target.id]


def _peer_addresses(client, stack: Stack, target) -> list[tuple[str, str]]:
    """(compose service, IPv4 address on the target's network) of each peer."""
    net = network_of(client, target).name
    found = []
    for c in _peer_containers(client, stack, target):
        address = (c.attrs["NetworkSettings"]["Networks"].get(net) or {}).get("IPAddress")
        if address:
            found.append((service_of(c), str(ipaddress.ip_address(address))))
    return found


def _filter(ctx: "NodeFault", target, script: str) -> None:
    """Run iptables commands in the target's network namespace, from a throw-away container
    of the services image: nothing is installed in the broker's image, so the official images
    and the offline ones are cut off alike."""
    target.client.containers.run(tool_image(ctx.client, ctx.stack), ["sh", "-c", script], entrypoint=[],
                              network_mode=f"container:{target.id}", cap_add=["NET_ADMIN"], remove=True,
                              user="root")


def _unfilter_script() -> str:
    chain = FILTER_CHAIN
    return (f"iptables -D INPUT -j {chain} 2>/dev/null; iptables -D OUTPUT -j {chain} 2>/dev/null; "
            f"iptables -F {chain} 2>/dev/null; iptables -X {chain} 2>/dev/null; true")


def isolate_script(addresses: list[str]) -> str:
    """Drop every packet from and to ``addresses`` (the peers), in both directions, in one chain
    of our own that the heal removes whole; anything left from an earlier run goes first."""
    chain = FILTER_CHAIN
    rules = [f"iptables -N {chain}", f"iptables -I INPUT -j {chain}", f"iptables -I OUTPUT -j {chain}"]
    for address in addresses:
        quoted = shlex.quote(str(ipaddress.ip_address(address)))
        rules += [f"iptables -A {chain} -s {quoted} -j DROP", f"iptables -A {chain} -d {quoted} -j DROP"]
    return _unfilter_script() + "; " + " && ".join(rules)


def isolate_node(target, ctx) -> None:
    peers = _peer_addresses(ctx.client, ctx.stack, target)
    if not peers:
        raise LabError(f"{target.name} has no peers to be cut off from: isolate-node needs a cluster")
    stamp(ctx.echo, f"isolate {target.name} from {', '.join(s for s, _ in peers)} for {ctx.duration:g} s "
                    "(packet filters in its network namespace; its clients still reach it)")
    _filter(ctx, target, isolate_script([address for _, address in peers]))
    try:
        time.sleep(ctx.duration)
    finally:
        stamp(ctx.echo, f"heal: remove the packet filters from {target.name}")
        _filter(ctx, target, _unfilter_script())


def isolate_host(target, ctx) -> None:
    host = ctx.client.node_of(target)
    others = sorted(name for name, node in ctx.client.nodes.items() if name != host)
    stamp(ctx.echo, f"isolate swarm node {host} (it runs {service_of(target)}) from {', '.join(others)} for "
                    f"{ctx.duration:g} s: its link is down, so its engine, brokers and clients are all cut off")
    from ..hosts import rig  # the hosts layer knows the rig's links

    link = rig.set_link(host, up=False)
    try:
        time.sleep(ctx.duration)
    finally:
        stamp(ctx.echo, f"heal: link {link} of {host} up")
        rig.set_link(host, up=True)


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
    # 15 s: past Kafka's 9 s broker session, so the controller fences the node (the evidence).
    "pause-node": (pause_node, 15, "freeze one node (--node) with docker pause, then unfreeze it"),
    "partition-node": (partition_node, 15, "disconnect one node (--node) from the stack's network: cut off "
                                           "from its peers AND its clients; then reconnect it"),
    # 20 s: past Kafka's 9 s broker session and Sentinel's 5 s down-after, so the peers
    # elect another leader while the old one still takes its clients' writes.
    "isolate-node": (isolate_node, 20, "cut one node (--node) off from its peers only (packet filters); its "
                                       "clients still reach it; then heal"),
    # 20 s: as isolate-node, and past Swarm's own verdict that the node is down.
    "isolate-host": (isolate_host, 20, "on Swarm: cut the machine that runs one node (--node) off from every "
                                       "other machine (its link down): its brokers, clients and engine; then heal"),
    "rolling-restart": (rolling_restart, 2, "stop and start every node in turn (followers first), "
                                            "each back in sync before the next"),
}


SWARM_REFUSED = {
    "partition-node": "Swarm refuses `docker network disconnect` on its networks; isolate-node cuts a node off "
                      "its peers, isolate-host its whole machine",
}


class _Watch:
    """Asks the peers about the node every few seconds while a fault lasts (some only tell
    during it), and once more after: the first thing they said that it was out of reach."""

    def __init__(self, ctx: NodeFault, target):
        self.ctx, self.target, self.said = ctx, target, ""
        self.node = service_of(target)
        self.since = int(time.time()) - 1
        self.peers = [self._peer(c) for c in _peer_containers(ctx.client, ctx.stack, target)]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mqlab-fault-watch", daemon=True)

    def _peer(self, c) -> Peer:
        return Peer(service_of(c),
                    lambda: c.logs(since=self.since).decode(errors="replace"),
                    lambda argv, user="": c.exec_run(argv, user=user).output.decode(errors="replace"))

    def ask(self) -> None:
        if not self.said:
            try:
                self.said = brokers.of(self.ctx.stack).saw_down(self.ctx.config, self.node, self.peers)
            except Exception:  # a peer restarting or gone: ask again later
                pass

    def _run(self) -> None:
        while not self.done.wait(WATCH_EVERY_S) and not self.said:
            self.ask()

    def __enter__(self) -> "_Watch":
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.done.set()
        self.thread.join(timeout=30)
        self.ask()


def _evidence(fault: str, ctx: NodeFault, target, before: dict[str, str], watch: _Watch | None) -> str:
    """What the broker or Docker showed of the fault ("": nothing)."""
    if fault in ("kill-node", "rolling-restart"):
        now = {service: started_at(c) for service, c in _node_containers(ctx).items()}
        restarted = [s for s in now if now[s] != before.get(s)] if fault == "rolling-restart" else \
            [s for s in now if s == service_of(target) and now[s] != before.get(s)]
        if fault == "rolling-restart" and len(restarted) < len(now):
            return ""
        return f"Docker: {', '.join(restarted)} started again ({', '.join(now[s] for s in restarted)})" if restarted \
            else ""
    said = watch.said if watch else ""
    if fault == "isolate-node" and said:
        service = service_of(target)
        if started_at(target) != before.get(service) or target.status != "running":
            return ""  # it did not stay up: not the partition this fault is about
        return f"{said}; {service} stayed up (Docker: started at {before[service]}, running)"
    return said


def _node_containers(ctx: NodeFault) -> dict:
    """Each node's container (on Swarm, its newest task's)."""
    return {n.service: found[0] for n in ctx.stack.nodes
            if (found := containers(ctx.client, ctx.stack, n.service, running=False))}


def run_node_fault(config: LabConfig, stack: Stack, fault: str, seconds: float, node: str | None, mode: str,
                   client, echo: Echo, describe: str) -> FaultResult:
    """Pick the node, break it, undo it, wait until the stack is whole: what happened, with its evidence."""
    ctx = NodeFault(config, stack, mode, client, seconds, echo)
    if on_swarm(client) and fault in SWARM_REFUSED:
        raise UsageError(f"{fault} does not run on Swarm: {SWARM_REFUSED[fault]}")
    if fault == "isolate-host" and not on_swarm(client):
        raise UsageError(f"isolate-host cuts off a machine of a swarm: `invoke hosts up 3` and "
                         f"`invoke up {stack.name} --swarm` first (isolate-node cuts off a node on one engine)")
    target = None if fault == "rolling-restart" else pick_node(config, stack, node, mode, client, echo)
    before = {service: started_at(c) for service, c in _node_containers(ctx).items()}
    stamp(echo, f"{fault} on {stack.name}: {describe}")
    started = time.time_ns()
    if target is None:
        NODE_FAULTS[fault][0](target, ctx)
        healed, watch = time.time_ns(), None
    else:
        with _Watch(ctx, target) as watch:
            NODE_FAULTS[fault][0](target, ctx)
            healed = time.time_ns()
        wait_healthy(current(ctx, target), echo)
        wait_in_sync(config, stack, mode, echo)
    evidence = _evidence(fault, ctx, target, before, watch)
    stamp(echo, f"evidence: {evidence}" if evidence else "evidence: none (neither the peers nor Docker showed "
                                                          "the fault)")
    name = "all" if target is None else service_of(target)
    return FaultResult(fault, name, started, healed, time.time_ns(), evidence)
