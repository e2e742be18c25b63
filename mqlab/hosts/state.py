"""The rig's state file (``/run/mqlab-nodes/rig.json``): what ``hosts up`` made, written after
each step, so that ``hosts down`` undoes exactly that, from any shell, and a failed ``up`` undoes
what it had made so far. /run is emptied at boot, when everything the rig made is gone too."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import LabError

VERSION = 1


@dataclass
class NodeState:
    index: int
    name: str
    address: str
    netns: bool = False        # `ip netns add` done
    veth: str = ""             # the host end, once made
    pid: int = 0               # the node's dockerd (the process nsenter became)
    dns_pid: int = 0           # the node's DNS stub (dnsstub)
    node_id: str = ""          # its id in the manager's node list, once joined
    images: list[str] = field(default_factory=list)


@dataclass
class RigState:
    subnet: str
    count: int
    gateway: str
    bridge: str = ""                 # once made
    swarm_created: bool = False      # the rig ran `docker swarm init`, so `down` leaves the swarm
    gwbridge_existed: bool = True    # docker_gwbridge was there before; if not, `down` removes it when unused
    complete: bool = False           # `up` finished
    nodes: list[NodeState] = field(default_factory=list)
    version: int = VERSION

    def node(self, index: int) -> NodeState:
        return next(n for n in self.nodes if n.index == index)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "RigState":
        data = json.loads(text)
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {VERSION}")
        nodes = [NodeState(**n) for n in data.pop("nodes", [])]
        return cls(**data, nodes=nodes)


def load(path: Path) -> RigState | None:
    """The state, or None when there is no rig."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return RigState.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise LabError(f"{path} cannot be read ({exc}): look at it, undo by hand what it lists, then remove it") \
            from None


def save(path: Path, state: RigState) -> None:
    """Write the state atomically: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, path)
