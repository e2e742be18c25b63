"""What the rig is made of, worked out before anything is made: names, addresses, paths, and
the checks that refuse in one line. Nothing here runs a command, so all of it is unit-tested."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import UsageError

MAX_NODES = 5
DEFAULT_SUBNET = "10.213.0.0/24"
SUBNET_KEY = "MQLAB_HOSTS_SUBNET"
BRIDGE = "mqlab-br0"
RUN_DIR = Path("/run/mqlab-nodes")          # sockets, pid files, exec roots, logs, the state file
DATA_DIR = Path("/var/lib/mqlab-nodes")     # the nodes' data roots (images, containers)
STATE_FILE = RUN_DIR / "rig.json"
#: The host side of the bridge is .1, node K is .(NODE_OFFSET + K).
NODE_OFFSET = 10


@dataclass(frozen=True)
class Node:
    """One worker: a dockerd in its own network namespace, on the bridge through a veth pair."""

    index: int
    address: str
    prefix: int

    @property
    def name(self) -> str:
        """The namespace, the host name of its engine and so the swarm node's name."""
        return f"mqlab-node-{self.index}"

    @property
    def veth(self) -> str:
        """The host end of the veth pair (at most 15 characters, the kernel's limit)."""
        return f"mqlab-veth{self.index}"

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.name}"

    @property
    def run_dir(self) -> Path:
        return RUN_DIR / self.name

    @property
    def data_root(self) -> Path:
        return DATA_DIR / self.name / "data"

    @property
    def exec_root(self) -> Path:
        return self.run_dir / "exec"

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def host(self) -> str:
        """The engine's address for ``docker -H``."""
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.run_dir / "dockerd.log"

    def dockerd_argv(self) -> list[str]:
        """dockerd in the node's network namespace, under its own host name.

        ``nsenter --net`` joins the namespace and nothing else: ``ip netns exec`` would also
        remount /sys, and dockerd then finds no devices cgroup. ``unshare --uts`` gives the
        engine a host name of its own, which becomes the swarm node's name. Each path that
        dockerd keeps is its own (a second engine would fight the host's over the default pid
        file, exec root and sockets); the config file is an empty one, so that the host's
        daemon.json (its ``hosts``, say) does not leak in. No iptables rules, no forwarding
        and no default bridge: the node's containers reach others over overlay networks only.
        ``--dns``: the node's own DNS stub (:mod:`.dnsstub`, :meth:`dns_argv`), which refuses at
        once a name that Docker's DNS does not know.
        """
        return ["nsenter", f"--net={self.netns_path}", "unshare", "--uts",
                "sh", "-c", 'hostname "$0" && exec "$@"', self.name,
                "dockerd", "--config-file", str(self.run_dir / "daemon.json"),
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "-H", self.host, "--pidfile", str(self.run_dir / "dockerd.pid"),
                "--iptables=false", "--ip-forward=false", "--bridge=none", "--dns", self.address]

    def dns_argv(self, python: str) -> list[str]:
        """The node's DNS stub, on its own address in its namespace (:mod:`.dnsstub` says why)."""
        return ["nsenter", f"--net={self.netns_path}", python, "-m", "mqlab.hosts.dnsstub", self.address]

    @property
    def dns_log(self) -> Path:
        return self.run_dir / "dnsstub.log"


@dataclass(frozen=True)
class Plan:
    subnet: ipaddress.IPv4Network
    count: int

    @property
    def gateway(self) -> str:
        """The host side of the bridge: the swarm manager's address."""
        return str(self.subnet.network_address + 1)

    @property
    def nodes(self) -> list[Node]:
        return [Node(k, str(self.subnet.network_address + NODE_OFFSET + k), self.subnet.prefixlen)
                for k in range(1, self.count + 1)]


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    """The nodes' subnet from the setting: a private IPv4 network with room for .1 and every node."""
    try:
        subnet = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        raise UsageError(f"{SUBNET_KEY}={text!r} is not a network such as {DEFAULT_SUBNET} "
                         "(no host bits set)") from None
    if subnet.version != 4 or not subnet.is_private or subnet.is_loopback or subnet.is_link_local:
        raise UsageError(f"{SUBNET_KEY}={text} must be a private IPv4 network such as {DEFAULT_SUBNET}")
    if subnet.num_addresses < NODE_OFFSET + MAX_NODES + 2:
        raise UsageError(f"{SUBNET_KEY}={text} is too small: the nodes take .{NODE_OFFSET + 1} to "
                         f".{NODE_OFFSET + MAX_NODES}; use a /27 or larger, such as {DEFAULT_SUBNET}")
    return subnet


def parse_count(text: str | int) -> int:
    try:
        count = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"the number of nodes must be a whole number from 1 to {MAX_NODES}, got {text!r}") from None
    if not 1 <= count <= MAX_NODES:
        raise UsageError(f"the number of nodes must be from 1 to {MAX_NODES}, got {count}")
    return count


def subnet_in_use(subnet: ipaddress.IPv4Network, addresses: Iterable[tuple[str, str]],
                  routes: Iterable[tuple[str, str]]) -> str | None:
    """Why the host already uses ``subnet``, or None. ``addresses`` are (interface, address/prefix)
    as ``ip -j addr`` lists them, ``routes`` (destination, interface) as ``ip -j route``; a
    default route overlaps everything and is not a conflict."""
    for dev, cidr in addresses:
        iface = ipaddress.ip_interface(cidr)
        if iface.version == 4 and (iface.ip in subnet or iface.network.overlaps(subnet)):
            return f"{cidr} is on interface {dev}"
    for dst, dev in routes:
        if dst in ("default", ""):
            continue
        try:
            network = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if network.version == 4 and network.overlaps(subnet):
            return f"a route to {dst} via {dev or 'an unnamed interface'}"
    return None


def refusal(*, euid: int, tools: dict[str, bool], netns_works: bool, engine_error: str | None,
            conflict: str | None, swarm: tuple[str, str, bool], gateway: str) -> str | None:
    """The one line why ``hosts up`` cannot work here, or None. Checked in the order a user
    would fix them.

    ``tools``: the commands needed, and whether each is on PATH. ``netns_works``: ``ip netns
    list`` answered. ``engine_error``: why the local engine does not answer. ``conflict``:
    :func:`subnet_in_use`. ``swarm``: the local engine's swarm state, the address it advertises
    and whether it is a manager (``docker info``).
    """
    if euid != 0:
        return "hosts up needs root (it makes network namespaces, a bridge and engines): run it as root"
    missing = [name for name, found in tools.items() if not found]
    if missing:
        return (f"{', '.join(missing)} not found: install iproute2 (ip), util-linux (nsenter, unshare) "
                "and Docker Engine (dockerd, docker)")
    if not netns_works:
        return "`ip netns` does not work here: this iproute2 or kernel has no network namespaces"
    if engine_error:
        return engine_error
    if conflict:
        return f"the nodes' subnet is already in use on this machine ({conflict}): set {SUBNET_KEY} to a free one"
    state, address, manager = swarm
    if state == "inactive":
        return None
    if state == "active" and manager and address == gateway:
        return None
    if state == "active":
        return (f"the local engine is already in a swarm, advertising {address}, which the nodes cannot "
                f"reach (they see only {gateway}): `docker swarm leave --force` first, if nothing of yours runs there")
    return f"the local engine's swarm is {state}: fix or leave it (`docker swarm leave --force`) first"
