"""A stack on the swarm that the local engine manages: deploy it from its generated stack file
(:mod:`.stackfile`), see where its tasks run, and remove it.

The stack is deployed as ``mqlab-<stack>`` (the project name it has on one engine), so its
services are ``mqlab-<stack>_<service>`` and its network ``mqlab-<stack>_default``, an
attachable overlay. Its generated files are kept in ``.mqlab/swarm/<stack>/``.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..config import LabConfig
from ..errors import LabError, UsageError
from ..stacks import Stack
from . import stackfile

Echo = Callable[[str], None]
CONVERGE_TIMEOUT = 300.0  # seconds for every service to have its tasks running (and healthy)


@dataclass(frozen=True)
class Task:
    service: str  # the stack's service (without the stack's prefix)
    node: str  # the swarm node it runs on
    state: str  # Running, Starting, Failed, ...
    error: str


def _docker(*args: str, timeout: float = 60) -> str:
    try:
        done = subprocess.run(["docker", *args], text=True, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"`docker {' '.join(args[:3])}` did not run: {exc}") from None
    if done.returncode != 0:
        raise LabError(f"`docker {' '.join(args[:3])}` failed: "
                       + (done.stderr.strip().splitlines() or ["no output"])[-1])
    return done.stdout


def stack_names() -> list[str]:
    """The stacks on the swarm this engine manages ([] when it manages none)."""
    try:
        out = _docker("stack", "ls", "--format", "{{.Name}}")
    except LabError:  # not a manager, or no swarm: no stack
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def check_manager(client) -> None:
    """The local engine must manage a swarm: Swarm's services are created through a manager."""
    swarm = client.info().get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active":
        raise UsageError("this engine is in no swarm: `invoke hosts up N` makes a local one, or "
                         "`docker swarm init` a one-node swarm")
    if not swarm.get("ControlAvailable"):
        raise UsageError("this engine is a swarm worker: run the lab on a manager of the swarm")


def stack_dir(config: LabConfig, stack: Stack) -> Path:
    return config.root / ".mqlab" / "swarm" / stack.name


#: How long Swarm waits before it starts a broker's task again: kill-node's default duration, past
#: Sentinel's 5 s down-after, so a killed primary is failed over as on one engine.
BROKER_RESTART_DELAY = "10s"
NODE_LABEL = "mqlab.node"  # 1..N on the swarm's workers: where broker node K runs (`invoke hosts up` sets it)


def workers(client) -> tuple[int, int]:
    """The swarm's workers that are ready and take tasks, and how many of them carry
    :data:`NODE_LABEL` 1, 2, … without a gap."""
    ready = [n for n in client.nodes.list(filters={"role": "worker"})
             if n.attrs.get("Status", {}).get("State") == "ready"
             and n.attrs.get("Spec", {}).get("Availability") == "active"]
    labels = {n.attrs.get("Spec", {}).get("Labels", {}).get(NODE_LABEL) for n in ready}
    labelled = 0
    while str(labelled + 1) in labels:
        labelled += 1
    return len(ready), labelled


def _node_number(service: str) -> int | None:
    """kafka-2 -> 2, sentinel-3 -> 3; None for a broker of one node."""
    tail = service.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def place(done: stackfile.Rewritten, stack: Stack, consumers: int, workers: int, labelled: int) -> None:
    """``consumers`` consumer tasks; where the swarm has workers, every task runs on them (the
    manager runs the lab's own tasks); broker node K of a cluster runs on the worker labelled
    ``mqlab.node=K`` (counting round), so each broker node has a machine of its own where
    there are enough of them; Swarm starts a broker's task again after
    :data:`BROKER_RESTART_DELAY`."""
    services = done.document["services"]
    for name in stack.brokers:
        if name in services:  # a killed node stays down as long as kill-node keeps it down on one engine
            services[name]["deploy"]["restart_policy"]["delay"] = BROKER_RESTART_DELAY
    if "consumer" in services:
        services["consumer"]["deploy"]["replicas"] = consumers
    for name, service in services.items():
        constraints = ["node.role==worker"] if workers else []
        number = _node_number(name) if name in stack.brokers else None
        if number is not None and labelled:
            constraints.append(f"node.labels.{NODE_LABEL}=={(number - 1) % labelled + 1}")
        if constraints:
            service["deploy"]["placement"] = {"constraints": constraints}


def generate(config: LabConfig, stack: Stack, consumers: int, workers: tuple[int, int], env: dict[str, str],
             profiles: Sequence[str] = ()) -> tuple[Path, stackfile.Rewritten]:
    """The stack file for Swarm in :func:`stack_dir`, with the services' settings in ``env``."""
    done = stackfile.rewrite(stackfile.flatten(config, stack, profiles, env))
    place(done, stack, consumers, *workers)
    return stackfile.write(done, stack_dir(config, stack) / f"{stack.name}.yml"), done


def tasks(stack: Stack, current: bool = True) -> list[Task]:
    """Every task of the stack that should be running (``current``), or the ones that failed
    too, and the node each is on."""
    wanted = ["--filter", "desired-state=running"] if current else []
    out = _docker("stack", "ps", stack.project, *wanted, "--no-trunc", "--format", "{{json .}}")
    found = []
    for line in out.splitlines():
        row = json.loads(line)
        service = row.get("Name", "").split(".", 1)[0].removeprefix(f"{stack.project}_")
        found.append(Task(service, row.get("Node", ""), row.get("CurrentState", "").split(" ", 1)[0],
                          row.get("Error", "")))
    return sorted(found, key=lambda t: (t.service, t.node))


def replicas(stack: Stack) -> dict[str, tuple[int, int]]:
    """Each service's running and wanted tasks (``docker stack services``)."""
    out = _docker("stack", "services", stack.project, "--format", "{{.Name}} {{.Replicas}}")
    found = {}
    for line in out.splitlines():
        name, _, count = line.partition(" ")
        running, _, wanted = count.split(" ", 1)[0].partition("/")
        if running.isdigit() and wanted.isdigit():
            found[name.removeprefix(f"{stack.project}_")] = (int(running), int(wanted))
    return found


def deploy(path: Path, stack: Stack, echo: Echo, timeout: float = CONVERGE_TIMEOUT) -> None:
    """``docker stack deploy``, then wait until every service has all its tasks running."""
    _docker("stack", "deploy", "--detach=true", "--prune", "-c", str(path), stack.project, timeout=120)
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        counts = replicas(stack)
        short = {name: f"{r}/{w}" for name, (r, w) in sorted(counts.items()) if r < w}
        failed = [t for t in tasks(stack, current=False) if t.error][:2]
        summary = (f"{len(counts) - len(short)} of {len(counts)} service(s) running"
                   + ("; waiting for " + ", ".join(f"{n} {c}" for n, c in short.items()) if short else ""))
        if summary != shown:
            echo(summary + "".join(f"; {t.service} on {t.node}: {t.error}" for t in failed))
            shown = summary
        if counts and not short:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{stack.name} did not start on the swarm within {timeout:.0f} s: {summary}"
                           + "".join(f"; {t.service} on {t.node}: {t.error}" for t in failed))
        time.sleep(2)


def remove(stack: Stack, echo: Echo) -> None:
    """``docker stack rm``, and wait until its tasks are gone (its network goes with the last one)."""
    _docker("stack", "rm", stack.project)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not _docker("ps", "-q", "--filter", f"label=com.docker.stack.namespace={stack.project}").strip():
            echo(f"{stack.name} removed from the swarm")
            return
        time.sleep(1)
    raise LabError(f"{stack.name}'s containers were still there 120 s after `docker stack rm`")
