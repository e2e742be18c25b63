"""The lab's containers as Docker sees them: which stacks run, `invoke ps`, `invoke logs`,
and the names the services go by."""

from __future__ import annotations

from dataclasses import dataclass

from .. import tables
from ..config import LabConfig
from ..errors import UsageError
from ..stacks import Stack, get_stack, stack_of_project
from . import compose, preflight


def running_stack(stack_name: str, client) -> Stack:
    """The stack called ``stack_name``, which must be running."""
    stack = get_stack(stack_name)
    if stack.project not in preflight.running_projects(client) and not preflight.swarm_services(client, stack):
        raise UsageError(f"{stack.name} is not running: `invoke up {stack.name}` first")
    return stack


def running_stacks(stack_name: str | None, client) -> list[Stack]:
    if stack_name:
        return [get_stack(stack_name)]
    found = []
    for project in preflight.running_projects(client):
        stack = stack_of_project(project)
        if stack:
            found.append(stack)
    return found


@dataclass
class Row:
    stack: str
    service: str
    name: str
    state: str
    health: str
    ports: str


def ps(client=None) -> list[Row]:
    client = client or preflight.docker_client()
    rows = []
    for project, containers in sorted(preflight.running_projects(client).items()):
        for c in containers:
            state = c.attrs.get("State", {})
            health = (state.get("Health") or {}).get("Status", "-")
            ports = []
            for container_port, bindings in (c.attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
                for b in bindings or ():
                    ports.append(f"{b.get('HostIp')}:{b.get('HostPort')}->{container_port}")
            rows.append(Row(project[len("mqlab-"):], c.labels.get("com.docker.compose.service", "?"),
                            c.name, c.status, health, ", ".join(sorted(set(ports)))))
    rows.sort(key=lambda r: (r.stack, r.service, r.name))
    return rows


def render_ps(rows: list[Row]) -> str:
    if not rows:
        return "no mqlab stack is running"
    return tables.render(("STACK", "SERVICE", "CONTAINER", "STATE", "HEALTH", "PORTS"),
                         [(r.stack, r.service, r.name, r.state, r.health, r.ports) for r in rows])


def resolve_stack_for_service(stack_name: str | None, client) -> Stack:
    """The stack a logs/stats call is about: the one given, or the only one running."""
    if stack_name:
        return get_stack(stack_name)
    stacks = running_stacks(None, client)
    if len(stacks) == 1:
        return stacks[0]
    if not stacks:
        raise UsageError("no mqlab stack is running: `invoke up <stack>` first")
    raise UsageError("several stacks are running (" + ", ".join(s.name for s in stacks) + "): pass --stack")


def logs(config: LabConfig, stack_name: str | None, service: str | None, follow: bool, tail: int | None,
         run: compose.Runner) -> None:
    client = preflight.docker_client()
    stack = resolve_stack_for_service(stack_name, client)
    services = [service] if service else []
    valid = {"producer", "consumer", *stack.brokers}
    if service and service not in valid:
        raise UsageError(f"unknown service {service!r} in {stack.name}: choose one of {', '.join(sorted(valid))}")
    run(compose.logs_argv(config, stack, services, follow, tail), env=compose.compose_env(config), check=False)


def consumer_names(client, stack: Stack) -> dict[str, str]:
    """Map container hostnames (what the services call themselves) to compose container names."""
    names = {}
    try:
        for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={stack.project}"}):
            hostname = c.attrs.get("Config", {}).get("Hostname", "")
            if hostname:
                names[hostname] = c.name
    except Exception:
        pass
    return names

