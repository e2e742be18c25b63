"""Each swarm node's own engine: where a swarm stack's containers are, and its receipts.

A swarm's manager schedules tasks, but a task's container lives on the engine of the node it
runs on, and so do the files it writes. The lab reaches each node's engine directly:

- the manager is the local engine;
- the nodes of the local rig (``invoke hosts up``) by their sockets in its state file;
- the nodes of a real swarm by ``MQLAB_SWARM_ENGINES``, ``name=address`` pairs separated by
  commas (``node-2=ssh://lab@node-2,node-3=tcp://10.0.0.3:2376``), as ``docker -H`` takes them.

:func:`gather` copies a run's receipts from every node into the local ledger: each producer and
consumer on Swarm writes them to the volume ``<project>_ledger`` of the node it runs on. A node
that cannot be read stops it with one line naming the node: a verdict on a partial ledger
would be a lie.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker
import requests

from ..config import LabConfig
from ..errors import LabError, UsageError
from ..stacks import Stack
from . import plan, state
from .stackfile import LEDGER_VOLUME

ENGINES_KEY = "MQLAB_SWARM_ENGINES"
TIMEOUT_S = 15  # seconds for one call to a node's engine


@dataclass(frozen=True)
class SwarmNode:
    name: str  # its host name, as `docker node ls` shows it
    state: str  # ready, down, unknown
    address: str | None  # its engine for `docker -H`; None: the local engine


def services_image(config: LabConfig) -> str:
    """The services image (``.env``): the gateway runs it, and a node's receipts are read through it."""
    return config.get("MQLAB_SERVICES_IMAGE")


def parse_engines(text: str) -> dict[str, str]:
    """``a=unix:///x,b=ssh://y`` -> {"a": "unix:///x", "b": "ssh://y"}."""
    found = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, address = item.partition("=")
        if not sep or not name.strip() or "://" not in address:
            raise UsageError(f"{ENGINES_KEY} takes name=address pairs (such as node-2=ssh://lab@node-2), "
                             f"got {item!r}")
        found[name.strip()] = address.strip()
    return found


def nodes(config: LabConfig, client) -> list[SwarmNode]:
    """Every node of the swarm the local engine manages, with its engine's address."""
    local = client.info().get("Name", "")
    rig = state.load(plan.STATE_FILE)
    known = {n.name: f"unix://{plan.RUN_DIR / n.name / 'docker.sock'}" for n in (rig.nodes if rig else [])}
    known.update(parse_engines(config.get(ENGINES_KEY) or ""))
    found = []
    for node in client.nodes.list():
        name = node.attrs.get("Description", {}).get("Hostname", node.id)
        address = None if name == local else known.get(name, "")
        found.append(SwarmNode(name, node.attrs.get("Status", {}).get("State", "unknown"), address))
    return sorted(found, key=lambda n: n.name)


def connect(node: SwarmNode):
    """A client of the node's engine; LabError naming the node when there is none to reach."""
    if node.address == "":
        raise LabError(f"swarm node {node.name}: no address for its engine (set {ENGINES_KEY}, "
                       f"such as {node.name}=ssh://user@{node.name})")
    try:
        client = docker.DockerClient(base_url=node.address, timeout=TIMEOUT_S) if node.address \
            else docker.from_env(timeout=TIMEOUT_S)
        client.ping()
        return client
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise LabError(f"swarm node {node.name} ({node.state}): its engine cannot be reached "
                       f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from None


def clients(config: LabConfig, client) -> dict[str, object]:
    """A client of every node's engine, by node name (LabError for a node that cannot be reached)."""
    return {node.name: connect(node) for node in nodes(config, client)}


def containers(engines: dict[str, object], stack: Stack, service: str, running: bool = True) -> list:
    """The containers of one service of a swarm stack, on whichever node they are."""
    label = f"com.docker.swarm.service.name={stack.project}_{service}"
    found = [c for engine in engines.values() for c in engine.containers.list(all=not running,
                                                                               filters={"label": label})]
    return sorted(found, key=lambda c: c.attrs.get("Created", ""), reverse=True)


def _extract(chunks, run_id: str, target: Path) -> int:
    """The regular files of ``<run_id>/`` in a tar stream, written into ``target``; how many."""
    data = io.BytesIO(b"".join(chunks))
    count = 0
    with tarfile.open(fileobj=data, mode="r|") as tar:
        for member in tar:
            path = PurePosixPath(member.name)
            if not member.isfile() or len(path.parts) != 2 or path.parts[0] != run_id:
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                (target / path.name).write_bytes(handle.read())
                count += 1
    return count


def read_node(node: SwarmNode, stack: Stack, run_id: str, image: str, target: Path) -> int:
    """Copy the run's receipts on one node into ``target``; how many files. LabError names the
    node when it cannot be read."""
    engine = connect(node)
    volume = f"{stack.project}_{LEDGER_VOLUME}"
    try:
        try:
            engine.volumes.get(volume)
        except docker.errors.NotFound:
            return 0  # nothing of this stack ever ran there
        box = engine.containers.create(image, entrypoint=["true"], volumes={volume: {"bind": "/ledger", "mode": "ro"}},
                                       labels={"mqlab.reader": stack.name})
        try:
            try:
                chunks, _ = box.get_archive(f"/ledger/{run_id}")
            except docker.errors.NotFound:
                return 0
            return _extract(chunks, run_id, target)
        finally:
            box.remove(force=True)
    except (docker.errors.DockerException, requests.RequestException, OSError, tarfile.TarError) as exc:
        raise LabError(f"swarm node {node.name}: its receipts of run {run_id} cannot be read "
                       f"({type(exc).__name__}: {str(exc)[:100]}); no verdict on a partial ledger") from None


def gather(config: LabConfig, client, stack: Stack, run_id: str, target: Path) -> dict[str, int]:
    """Every node's receipts of the run, copied into ``target``: files read per node."""
    image = services_image(config)
    target.mkdir(parents=True, exist_ok=True)
    return {node.name: read_node(node, stack, run_id, image, target) for node in nodes(config, client)}


def remove_volumes(config: LabConfig, client, stack: Stack, timeout: float = 60.0) -> dict[str, int]:
    """Remove the stack's volumes on every node (they outlive ``docker stack rm``); how many per
    node. A volume still held by a container that is stopping is tried again until ``timeout``."""
    label = f"com.docker.stack.namespace={stack.project}"
    removed = {}
    for node in nodes(config, client):
        engine = connect(node)
        count, deadline = 0, time.monotonic() + timeout
        while True:
            left = engine.volumes.list(filters={"label": label})
            for volume in left:
                try:
                    volume.remove()
                    count += 1
                except docker.errors.APIError:  # in use until its container is gone
                    pass
            if not engine.volumes.list(filters={"label": label}):
                break
            if time.monotonic() > deadline:
                raise LabError(f"swarm node {node.name}: volumes of {stack.name} still in use after {timeout:.0f} s")
            time.sleep(1)
        removed[node.name] = count
    return removed


class SwarmEngines:
    """The local engine (the manager: its own containers, networks and services, as a Docker
    client), which also reaches every node's engine: what the faults act through on Swarm."""

    def __init__(self, config: LabConfig, local):
        self.local = local
        self.nodes = {node.name: node for node in nodes(config, local)}
        self.engines = {name: connect(node) for name, node in self.nodes.items()}

    def __getattr__(self, name: str):
        return getattr(self.local, name)

    def containers_of(self, stack: Stack, service: str, running: bool = True) -> list:
        """The service's containers on every node, the newest first."""
        return containers(self.engines, stack, service, running)

    def node_of(self, container) -> str:
        """The swarm node a container runs on."""
        return next((name for name, engine in self.engines.items() if engine is container.client), "?")
