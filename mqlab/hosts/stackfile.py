"""Swarm stack files, generated from the lab's own compose files, never kept by hand.

``docker compose config`` flattens a stack (``extends`` resolved, variables filled in, the
chosen profiles only); :func:`rewrite` turns the result into what ``docker stack deploy``
takes (the version 3 schema) and behaves the same on Swarm:

- **Endpoints**: every service gets ``deploy.endpoint_mode: dnsrr``. Swarm's default virtual
  IPs need IPVS, which these machines lack ("No route to host"); with DNS round robin a
  service's name resolves to its tasks' own addresses, as on one engine.
- **Readiness**: ``depends_on`` (its conditions are ignored by Swarm) and health checks are
  dropped: Swarm's DNS names a task only once it is healthy, and a cluster's nodes must find
  each other by name before any of them can be. The lab's services wait for their broker
  themselves.
- **Restarts**: ``restart`` becomes ``deploy.restart_policy``; a service without one (the brokers,
  which the lab starts again itself on one engine) is restarted by Swarm (``any``).
- **Ports**: none is published by Swarm. Swarm drops a ``127.0.0.1:`` binding and opens the port on
  every interface, so the lab's tasks reach the brokers from a container on the stack's
  network instead, which is made ``attachable``.
- **Addresses**: fixed IPv4 addresses, the network's address plan and the ``extra_hosts``
  entries that pin the stack's own services are dropped (Swarm cannot pin an address);
  brokers find each other by name.
- **Configs**: a ``configs`` entry with ``content`` is written to a file beside the stack
  file (Swarm takes configs by file only). Bind mounts stay binds (:func:`_volumes`), but for
  the receipts: each node keeps its own in the volume ``ledger``, and ``invoke verify`` gathers
  them from every node (:func:`mqlab.hosts.engines.gather`).
- **Ports** are kept in :attr:`Rewritten.ports`: the gateway (:mod:`.gateway`) publishes them on
  the manager's loopback, forwarding to the services over the stack's overlay network.
- **What Swarm has no use for**: ``build``, ``container_name``, ``cpuset``, ``profiles``,
  ``pull_policy`` and keys the version 3 schema does not know are dropped, and said so in
  :attr:`Rewritten.dropped`.

    flat = stackfile.flatten(config, stack, profiles=())   # docker compose config, as a dict
    done = stackfile.rewrite(flat)                          # Rewritten(document, dropped, files)
    path = stackfile.write(done, out_dir / f"{stack.name}.yml")
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..config import LabConfig
from ..errors import LabError
from ..stack import compose
from ..stacks import Stack

VERSION = "3.9"
#: Service keys of the version 3 schema that a generated stack keeps as they are.
KEPT = {"cap_add", "cap_drop", "command", "entrypoint", "environment", "extra_hosts", "healthcheck", "hostname",
        "image", "init", "labels", "logging", "networks", "stop_grace_period", "stop_signal", "sysctls", "tmpfs",
        "ulimits", "user", "volumes", "working_dir", "configs", "deploy", "secrets"}
RESTART = {"always": "any", "unless-stopped": "any", "on-failure": "on-failure", "no": "none"}
DEPLOY_KEYS = {"mode", "replicas", "endpoint_mode", "placement", "restart_policy", "resources", "labels",
               "update_config", "rollback_config", "max_replicas_per_node"}


LEDGER_TARGET = "/ledger"  # where the services write their receipts (compose/services.yml)
LEDGER_VOLUME = "ledger"  # on Swarm: a volume on each node, gathered by `invoke verify` (engines.gather)


@dataclass(frozen=True)
class Port:
    """A port the compose file publishes: the gateway publishes it on the manager instead."""

    service: str
    host_ip: str
    published: int
    target: int


@dataclass
class Rewritten:
    document: dict
    dropped: list[str] = field(default_factory=list)  # "service: key (why)"
    files: dict[str, str] = field(default_factory=dict)  # config file name -> its content, written beside
    ports: list[Port] = field(default_factory=list)  # what one engine would publish: the gateway's routes


def flatten(config: LabConfig, stack: Stack, profiles: Sequence[str] = (), env: dict[str, str] | None = None) -> dict:
    """``docker compose config`` of a stack, as the lab runs it on one engine (``env``: the
    services' settings, such as MQLAB_MODE), as a dict."""
    argv = compose.compose_argv(config, stack, "config", "--format", "json", profiles=profiles)
    try:
        done = subprocess.run(argv, text=True, capture_output=True, timeout=60,
                              env={**os.environ, **compose.compose_env(config), **(env or {})})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"`docker compose config` did not run: {exc}") from None
    if done.returncode != 0:
        raise LabError("`docker compose config` failed: " + (done.stderr.strip().splitlines() or ["no output"])[-1])
    return json.loads(done.stdout)


def _mode(value) -> int:
    return int(value, 8) if isinstance(value, str) else int(value)


def _volumes(name: str, service: dict, configs: dict, out: Rewritten) -> tuple[list, list]:
    """The volumes as Swarm takes them. A bind mount stays a bind: its source must be at the
    same path on every node (the local rig shares the machine's files; on a real swarm, the
    checkout). Made Swarm configs, Kafka's configuration file was refused by its image's
    start-up ("error while preparing configs"), so they are not."""
    volumes, service_configs = [], list(service.get("configs") or [])
    for volume in service.get("volumes") or []:
        kept = {k: v for k, v in volume.items() if k in ("type", "source", "target", "read_only")}
        if volume.get("type") == "bind" and volume.get("target") == LEDGER_TARGET:
            # receipts are written where the service runs: the node's own volume, gathered by verify
            kept = {"type": "volume", "source": LEDGER_VOLUME, "target": LEDGER_TARGET}
            out.dropped.append(f"{name}: volumes {LEDGER_TARGET} bind (receipts go to the node's volume "
                               f"{LEDGER_VOLUME!r}; `invoke verify` gathers them from every node)")
        if volume.get("type") == "bind" and volume.get("bind", {}).get("create_host_path"):
            out.dropped.append(f"{name}: volumes {volume['target']} create_host_path (the path must exist on each node)")
        volumes.append(kept)
    return volumes, service_configs


def _service(name: str, service: dict, configs: dict, out: Rewritten, own: set[str]) -> dict:
    result = {}
    for key, value in service.items():
        if value is None:
            continue
        if key in ("volumes", "configs"):
            continue
        if key == "healthcheck":
            # Swarm's DNS names a task only once it is healthy, and a cluster's nodes must find each
            # other by name before any of them is (Kafka's KRaft quorum: "UnknownHostException: kafka-2")
            out.dropped.append(f"{name}: healthcheck (Swarm's DNS would hide the node until healthy)")
        elif key == "networks":
            # a fixed address cannot be kept on Swarm: only the networks' names stay
            result[key] = sorted(value)
            if any(isinstance(v, dict) and v.get("ipv4_address") for v in value.values()):
                out.dropped.append(f"{name}: networks ipv4_address (Swarm cannot pin an address)")
        elif key == "extra_hosts":
            # an address pinned for one of the stack's own services cannot hold on Swarm: by name instead
            kept = [entry for entry in value if re.split(r"[:=]", entry, maxsplit=1)[0] not in own]  # name=ip or name:ip
            if kept:
                result[key] = kept
            if len(kept) < len(value):
                out.dropped.append(f"{name}: extra_hosts of the stack's own services (found by name on Swarm)")
        elif key == "ports":
            out.ports += [Port(name, p.get("host_ip") or "127.0.0.1", int(p["published"]), int(p["target"]))
                          for p in value if p.get("published") and p.get("protocol", "tcp") == "tcp"]
            out.dropped.append(f"{name}: ports (nothing is published on Swarm; the lab reaches it on the network)")
        elif key == "depends_on":
            out.dropped.append(f"{name}: depends_on (Swarm ignores it; the services wait for their broker)")
        elif key == "restart":
            continue  # becomes deploy.restart_policy below
        elif key in KEPT:
            result[key] = value
        else:
            out.dropped.append(f"{name}: {key} (not in Swarm's schema, or no use there)")
    volumes, service_configs = _volumes(name, service, configs, out)
    if volumes:
        result["volumes"] = volumes
    if service_configs:
        result["configs"] = [{**c, "mode": _mode(c["mode"])} if "mode" in c else c for c in service_configs]
    deploy = {k: v for k, v in (service.get("deploy") or {}).items() if k in DEPLOY_KEYS}
    deploy["endpoint_mode"] = "dnsrr"
    # No restart in the compose file (the brokers: on one engine the lab starts a node again itself):
    # on Swarm a task that ended is never started again, only replaced, so Swarm must do it.
    deploy.setdefault("restart_policy", {"condition": RESTART.get(service.get("restart", "always"), "none")})
    result["deploy"] = deploy
    return result


def rewrite(flat: dict) -> Rewritten:
    """The stack document for ``docker stack deploy``, from ``docker compose config``'s output."""
    out = Rewritten({"version": VERSION})
    configs: dict[str, dict] = {}
    for name, raw in (flat.get("configs") or {}).items():
        if "content" in raw:
            filename = f"{name}.config"
            out.files[filename] = raw["content"]
            configs[name] = {"file": f"./{filename}"}
        else:
            configs[name] = {k: v for k, v in raw.items() if k in ("file", "external", "name")}
    own = set(flat.get("services") or {})
    out.document["services"] = {name: _service(name, service, configs, out, own)
                                for name, service in sorted((flat.get("services") or {}).items())}
    networks = {}
    for name in flat.get("networks") or {"default": {}}:
        networks[name] = {"driver": "overlay", "attachable": True}
    out.document["networks"] = networks
    volumes = {name: {k: v for k, v in (raw or {}).items() if k in ("driver", "driver_opts", "external", "labels")}
               for name, raw in (flat.get("volumes") or {}).items()}
    if any(v.get("source") == LEDGER_VOLUME for s in out.document["services"].values() for v in s.get("volumes", [])):
        volumes[LEDGER_VOLUME] = {}
    if volumes:
        out.document["volumes"] = volumes
    if configs:
        out.document["configs"] = configs
    return out


def write(done: Rewritten, path: Path) -> Path:
    """The stack file, and the config files it names, side by side."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for filename, content in done.files.items():
        (path.parent / filename).write_text(content)
    header = "".join(f"# dropped: {line}\n" for line in done.dropped)
    # JSON is YAML too: no YAML writer needed, and the comments above it still parse
    path.write_text("# Generated by mqlab from the stack's compose file; do not edit.\n" + header
                    + json.dumps(done.document, indent=1) + "\n")
    return path
