"""Stack lifecycle: up, down, scale, and waiting until the consumers are consuming.

Every operation takes a :class:`~mqlab.config.LabConfig` and a runner (see
:mod:`.compose`), so the tasks stay thin and the logic is testable.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

from .. import brokers, images
from ..config import LabConfig
from ..errors import LabError, UsageError
from ..modes import mode_info, names_of
from ..stacks import STACKS, Stack, get_stack
from ..wait import poll_until
from . import compose, preflight, profiles
from .containers import running_stack, running_stacks
from .expose import check_expose
from .expose import warning as expose_warning
from .stats import STALE_S, read_status

Echo = Callable[[str], None]


# Settings that must stay the same for every service of a running stack: `scale` and
# `produce` reuse what the running containers were started with.
STACK_SETTINGS = ("MQLAB_MODE", "MQLAB_BINDING", "MQLAB_ROUTING_KEYS", "MQLAB_KEYS", "MQLAB_METRICS_PORT")


def check_mode(stack: Stack, mode: str | None) -> str:
    """The mode to run (the stack's default when None), or a UsageError listing the valid ones."""
    modes = names_of(stack.broker)
    if mode is None or mode == "":
        return stack.default_mode or modes[0]
    if mode not in modes:
        raise UsageError(f"unknown mode {mode!r} for {stack.name}: choose one of {', '.join(modes)}")
    if mode_info(stack.broker, mode).replicated and not stack.cluster:
        clusters = [s.name for s in STACKS.values() if s.broker == stack.broker and s.cluster]
        raise UsageError(f"mode {mode} waits for replicas, and {stack.name} has none: "
                         f"use {' or '.join(clusters)}")
    return mode


def running_settings(client, stack: Stack) -> dict[str, str]:
    """The STACK_SETTINGS the stack's running services were started with (empty when none run)."""
    for service in ("consumer", "producer"):
        containers = client.containers.list(filters={"label": [f"com.docker.compose.project={stack.project}",
                                                                f"com.docker.compose.service={service}"]})
        for c in containers:
            env = dict(item.partition("=")[::2] for item in c.attrs.get("Config", {}).get("Env", []))
            return {key: env.get(key, "") for key in STACK_SETTINGS}
    on_swarm = preflight.swarm_services(client, stack)
    for service in ("consumer", "producer"):
        if service in on_swarm:
            env = preflight.service_env(on_swarm[service])
            return {key: env.get(key, "") for key in STACK_SETTINGS}
    return {}


def current_mode(client, stack: Stack) -> str:
    return check_mode(stack, running_settings(client, stack).get("MQLAB_MODE"))


def _image_names(config: LabConfig, stack: Stack, extras: profiles.Profiles) -> list[str]:
    return [config.get(key) for key in (*stack.images, *extras.images) if config.get(key)]


def ensure_broker_images(config: LabConfig, stack: Stack, run: compose.Runner, echo: Echo, client,
                         extras: profiles.Profiles = profiles.Profiles()) -> None:
    """Make sure the broker images (and those of the ``extras`` profiles) exist: pull them, or
    build them from packages with --offline."""
    if config.offline:
        images.build_for_stack(config.root, stack.name, progress=echo, extra=extras.images)
        return
    missing = []
    for name in _image_names(config, stack, extras):
        try:
            client.images.get(name)
        except Exception:
            missing.append(name)
    if not missing:
        return
    echo(f"pulling {', '.join(missing)}")
    result = run(compose.compose_argv(config, stack, "pull", "--quiet", *stack.brokers, *extras.services,
                                      profiles=extras.names),
                 env=compose.compose_env(config), capture=True, check=False)
    if result.exited != 0:
        raise LabError(
            f"could not pull {', '.join(missing)} (no registry reachable?): "
            f"run `invoke up {stack.name} --offline` to build the images from packages instead"
        )


def up(config: LabConfig, stack_name: str, consumers: int, run: compose.Runner, echo: Echo,
       mode: str | None = None, settings: dict[str, str] | None = None, expose: bool = False,
       metrics: bool = False, ui: bool = False) -> Stack:
    """Start ``stack`` in ``mode`` (default: the broker's safe mode); ``settings`` are extra
    STACK_SETTINGS for the services, such as MQLAB_BINDING. ``expose`` publishes the ports
    beyond loopback, and is refused while default credentials are in use. ``metrics`` and ``ui``
    add the profiles of :mod:`.profiles` (Prometheus and exporters; the broker's web UI)."""
    stack = get_stack(stack_name)
    mode = check_mode(stack, mode)
    extras = profiles.select(stack, metrics, ui, config.offline)
    preflight.check_consumers(consumers)
    exposure = check_expose(config, stack) if expose else {}
    if exposure:
        config = replace(config, values={**config.values, **exposure})
    client = preflight.docker_client()
    preflight.check_compose()
    projects = preflight.running_projects(client)
    if not any(c.status == "running" for c in projects.get(stack.project, [])):
        preflight.check_ports(config, replace(stack, ports=stack.ports + extras.ports), client)
    ensure_broker_images(config, stack, run, echo, client, extras)
    config.ledger_dir.mkdir(parents=True, exist_ok=True)
    if exposure:
        echo(expose_warning(stack, exposure))
    if stack.legacy:
        echo(f"{stack.name} is the legacy ZooKeeper-mode stack (Kafka 3.9); prefer `kafka` (KRaft) for new work")
    echo(f"starting {stack.name} in mode {mode} with {consumers} consumer(s); waiting for health checks")
    env = {**compose.compose_env(config), **{k: "" for k in STACK_SETTINGS}, **(settings or {}),
           **dict(extras.settings), "MQLAB_MODE": mode, **exposure}
    result = run(compose.up_argv(config, stack, consumers, extras.names), env=env, check=False)
    if result.exited != 0:
        # Leave nothing half-started behind.
        run(compose.down_argv(config, stack, volumes=False), env=compose.compose_env(config), capture=True, check=False)
        raise LabError(f"{stack.name} did not become healthy (docker compose exit {result.exited}); "
                       "see the output above, the stack was taken down")
    try:
        wait_for_consumers(config, stack, consumers, echo)
    except LabError:
        run(compose.down_argv(config, stack, volumes=False), env=compose.compose_env(config), capture=True, check=False)
        raise
    for line in profiles.addresses(config, extras):
        echo(line)
    echo(f"{stack.name} is up: `invoke logs --follow` shows messages flowing, `invoke produce {stack.name} --count 10000` sends a run")
    return stack


def down(config: LabConfig, stack_name: str | None, volumes: bool, run: compose.Runner, echo: Echo) -> list[Stack]:
    if stack_name:
        get_stack(stack_name)
    client = preflight.docker_client()
    preflight.check_compose()
    stacks = running_stacks(stack_name, client)
    if not stacks:
        echo("no mqlab stack is running")
    for stack in stacks:
        echo(f"stopping {stack.name}" + (" and removing its volumes" if volumes else ""))
        run(compose.down_argv(config, stack, volumes), env=compose.compose_env(config), check=True)
    return stacks


def scale(config: LabConfig, stack_name: str, consumers: int, run: compose.Runner, echo: Echo) -> None:
    get_stack(stack_name)
    preflight.check_consumers(consumers)
    client = preflight.docker_client()
    stack = running_stack(stack_name, client)
    echo(f"scaling {stack.name} consumers to {consumers}")
    on_swarm = preflight.swarm_services(client, stack)
    if "consumer" in on_swarm:  # `docker service scale`: Swarm spreads the tasks over its workers
        on_swarm["consumer"].scale(consumers)
    else:
        env = {**compose.compose_env(config), **running_settings(client, stack)}
        result = run(compose.scale_argv(config, stack, consumers), env=env, check=False)
        if result.exited != 0:
            raise LabError(f"scaling {stack.name} failed (docker compose exit {result.exited})")
    wait_for_consumers(config, stack, consumers, echo)


def ready_consumers(config: LabConfig, stack: Stack, client) -> int:
    """Running consumer containers whose fresh status file says they are consuming (on Swarm,
    whose files are on the nodes: the consumer tasks Swarm says are running)."""
    on_swarm = preflight.swarm_services(client, stack)
    if "consumer" in on_swarm:
        return sum(1 for t in on_swarm["consumer"].tasks(filters={"desired-state": "running"})
                   if t.get("Status", {}).get("State") == "running")
    now = time.time_ns()
    ready = 0
    for c in client.containers.list(filters={"label": [f"com.docker.compose.project={stack.project}",
                                                       "com.docker.compose.service=consumer"]}):
        status = read_status(config.ledger_dir, c.attrs.get("Config", {}).get("Hostname", ""))
        if status.get("subscribed") and (now - int(status.get("updated_ns", 0))) / 1e9 < STALE_S:
            ready += 1
    return ready


def broker_sees(config: LabConfig, stack: Stack, mode: str) -> tuple[int | None, str]:
    """How many consumers the broker sees (None when it is not asked), or -1 and why it could not say."""
    try:
        return brokers.of(stack).consumers_seen(config, mode), ""
    except Exception as exc:  # the broker may be restarting
        return -1, f"{type(exc).__name__}: {str(exc)[:120]}"


def wait_for_consumers(config: LabConfig, stack: Stack, consumers: int, echo: Echo, timeout: float = 90.0) -> None:
    """Wait until every consumer says it is consuming and, where the broker can tell (a shared
    RabbitMQ queue, Redis pub/sub, a Kafka group), the broker sees that many consumers."""
    client = preflight.docker_client()
    mode = current_mode(client, stack)
    echo(f"waiting for {consumers} consumer(s) to be consuming")
    state = {"ready": 0, "seen": None, "error": ""}

    def settled() -> bool:
        state["ready"] = ready_consumers(config, stack, client)
        state["seen"], state["error"] = broker_sees(config, stack, mode)
        return state["ready"] == consumers and state["seen"] in (None, consumers)

    if not poll_until(settled, timeout, interval=1.0):
        seen = f"{state['ready']} consumer(s) consuming"
        if state["seen"] is not None:
            seen += f", the broker sees {max(state['seen'], 0)}"
        raise LabError(f"after {timeout:.0f} s {seen}, not {consumers}; see `invoke logs --service consumer`"
                       + (f" (last probe: {state['error']})" if state["error"] else ""))
    echo(f"{consumers} consumer(s) consuming")

