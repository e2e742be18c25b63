"""Stack lifecycle: up, down, scale, ps, logs, produce, verify.

Every operation takes a :class:`~mqlab.config.LabConfig` and a runner (see
:mod:`mqlab.compose`), so the tasks stay thin and the logic is testable.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from . import brokers, compose, ledger, preflight, tables
from .wait import poll_until
from .config import LabConfig
from .errors import LabError, UsageError
from .stacks import Stack, get_stack, stack_of_project

Echo = Callable[[str], None]


# Settings that must stay the same for every service of a running stack: `scale` and
# `produce` reuse what the running containers were started with.
STACK_SETTINGS = ("MQLAB_MODE", "MQLAB_BINDING", "MQLAB_ROUTING_KEYS", "MQLAB_KEYS")


def modes_of(stack: Stack) -> tuple[str, ...]:
    from mqlab_services.settings import MODES

    return MODES[stack.broker]


def check_mode(stack: Stack, mode: str | None) -> str:
    """The mode to run (the broker's default when None), or a UsageError listing the valid ones."""
    modes = modes_of(stack)
    if mode is None or mode == "":
        return modes[0]
    if mode not in modes:
        raise UsageError(f"unknown mode {mode!r} for {stack.name}: choose one of {', '.join(modes)}")
    return mode


def running_settings(client, stack: Stack) -> dict[str, str]:
    """The STACK_SETTINGS the stack's running services were started with (empty when none run)."""
    for service in ("consumer", "producer"):
        containers = client.containers.list(filters={"label": [f"com.docker.compose.project={stack.project}",
                                                                f"com.docker.compose.service={service}"]})
        for c in containers:
            env = dict(item.partition("=")[::2] for item in c.attrs.get("Config", {}).get("Env", []))
            return {key: env.get(key, "") for key in STACK_SETTINGS}
    return {}


def current_mode(client, stack: Stack) -> str:
    return check_mode(stack, running_settings(client, stack).get("MQLAB_MODE"))


def _image_names(config: LabConfig, stack: Stack) -> list[str]:
    return [config.get(key) for key in stack.images if config.get(key)]


def ensure_broker_images(config: LabConfig, stack: Stack, run: compose.Runner, echo: Echo, client) -> None:
    """Make sure the broker images exist: pull them, or build them from packages with --offline."""
    if config.offline:
        from . import images

        images.build_for_stack(config.root, stack.name, progress=echo)
        return
    missing = []
    for name in _image_names(config, stack):
        try:
            client.images.get(name)
        except Exception:
            missing.append(name)
    if not missing:
        return
    echo(f"pulling {', '.join(missing)}")
    result = run(compose.compose_argv(config, stack, "pull", "--quiet", *stack.brokers),
                 env=compose.compose_env(config), capture=True, check=False)
    if result.exited != 0:
        raise LabError(
            f"could not pull {', '.join(missing)} (no registry reachable?): "
            f"run `invoke up {stack.name} --offline` to build the images from packages instead"
        )


def check_expose(config: LabConfig, stack: Stack) -> dict[str, str]:
    """Exposing a stack beyond loopback needs real credentials; returns the compose variables for it."""
    brokers.get(stack.broker).check_expose(config)
    return {"MQLAB_BIND": config.get("MQLAB_EXPOSE_BIND", "0.0.0.0") or "0.0.0.0"}


def up(config: LabConfig, stack_name: str, consumers: int, run: compose.Runner, echo: Echo,
       mode: str | None = None, settings: dict[str, str] | None = None, expose: bool = False) -> Stack:
    """Start ``stack`` in ``mode`` (default: the broker's safe mode); ``settings`` are extra
    STACK_SETTINGS for the services, such as MQLAB_BINDING. ``expose`` publishes the ports
    beyond loopback, and is refused while default credentials are in use."""
    stack = get_stack(stack_name)
    mode = check_mode(stack, mode)
    preflight.check_consumers(consumers)
    exposure = check_expose(config, stack) if expose else {}
    if exposure:
        config = replace(config, values={**config.values, **exposure})
    client = preflight.docker_client()
    preflight.check_compose()
    projects = preflight.running_projects(client)
    if not any(c.status == "running" for c in projects.get(stack.project, [])):
        preflight.check_ports(config, stack, client)
    ensure_broker_images(config, stack, run, echo, client)
    config.ledger_dir.mkdir(parents=True, exist_ok=True)
    if exposure:
        echo(f"exposing {stack.name} on {exposure['MQLAB_BIND']}: anyone who can reach this machine can connect with the credentials")
    if stack.legacy:
        echo(f"{stack.name} is the legacy ZooKeeper-mode stack (Kafka 3.9); prefer `kafka` (KRaft) for new work")
    echo(f"starting {stack.name} in mode {mode} with {consumers} consumer(s); waiting for health checks")
    env = {**compose.compose_env(config), **{k: "" for k in STACK_SETTINGS}, **(settings or {}), "MQLAB_MODE": mode,
           **exposure}
    result = run(compose.up_argv(config, stack, consumers), env=env, check=False)
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
    echo(f"{stack.name} is up: `invoke logs --follow` shows messages flowing, `invoke produce {stack.name} --count 10000` sends a run")
    return stack


def _stacks_to_act_on(stack_name: str | None, client) -> list[Stack]:
    if stack_name:
        return [get_stack(stack_name)]
    found = []
    for project in preflight.running_projects(client):
        stack = stack_of_project(project)
        if stack:
            found.append(stack)
    return found


def down(config: LabConfig, stack_name: str | None, volumes: bool, run: compose.Runner, echo: Echo) -> list[Stack]:
    if stack_name:
        get_stack(stack_name)
    client = preflight.docker_client()
    preflight.check_compose()
    stacks = _stacks_to_act_on(stack_name, client)
    if not stacks:
        echo("no mqlab stack is running")
    for stack in stacks:
        echo(f"stopping {stack.name}" + (" and removing its volumes" if volumes else ""))
        run(compose.down_argv(config, stack, volumes), env=compose.compose_env(config), check=True)
    return stacks


def scale(config: LabConfig, stack_name: str, consumers: int, run: compose.Runner, echo: Echo) -> None:
    stack = get_stack(stack_name)
    preflight.check_consumers(consumers)
    client = preflight.docker_client()
    if stack.project not in preflight.running_projects(client):
        raise UsageError(f"{stack.name} is not running: `invoke up {stack.name}` first")
    echo(f"scaling {stack.name} consumers to {consumers}")
    env = {**compose.compose_env(config), **running_settings(client, stack)}
    result = run(compose.scale_argv(config, stack, consumers), env=env, check=False)
    if result.exited != 0:
        raise LabError(f"scaling {stack.name} failed (docker compose exit {result.exited})")
    wait_for_consumers(config, stack, consumers, echo)


def ready_consumers(config: LabConfig, stack: Stack, client) -> int:
    """Running consumer containers whose fresh status file says they are consuming."""
    from .stats import STALE_S, read_status

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
        return brokers.get(stack.broker).consumers_seen(config, mode), ""
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
    stacks = _stacks_to_act_on(None, client)
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


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class LineCounter:
    """Counts lines in growing files, reading only what was appended since the last call."""

    def __init__(self, directory: Path, pattern: str):
        self.directory, self.pattern = directory, pattern
        self.seen: dict[Path, tuple[int, int]] = {}  # path -> (bytes read, lines)

    def __call__(self) -> int:
        for path in self.directory.glob(self.pattern):
            offset, lines = self.seen.get(path, (0, 0))
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            self.seen[path] = (offset + len(chunk), lines + chunk.count(b"\n"))
        return sum(lines for _, lines in self.seen.values())


def check_run_id(run_id: str) -> str:
    from mqlab_services.envelope import valid_run_id

    if not valid_run_id(run_id):
        raise UsageError(f"--run-id must be letters, digits, '.', '_' or '-', got {run_id!r}")
    return run_id


def check_rate(rate: float | None) -> float | None:
    if rate is not None and not 0 < rate <= 1_000_000:
        raise UsageError(f"--rate must be a number of messages per second from 1 to 1,000,000, got {rate!r}")
    return rate


def _start_run(config: LabConfig, stack: Stack, count: int, size: int, run_id: str, rate: float | None,
               poison_every: int, client) -> tuple[Path, dict[str, str]]:
    """Record a run's settings in its ledger directory; the settings the producer gets."""
    settings = running_settings(client, stack)
    mode = check_mode(stack, settings.get("MQLAB_MODE"))
    directory = ledger.run_dir(config.ledger_dir, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    ledger.write_run_info(directory, {"stack": stack.name, "mode": mode, "count": count, "size": size,
                                      "rate": rate, "poison_every": poison_every, "settings": settings,
                                      "started_ns": time.time_ns()})
    ledger.record_latest(config.ledger_dir, stack.name, run_id)
    return directory, {**settings, "MQLAB_MODE": mode}


def produce(config: LabConfig, stack_name: str, count: int, size: int, run_id: str | None,
            progress: Callable[[int, int], None], echo: Echo, run: compose.Runner, poll: float = 0.25,
            rate: float | None = None, poison_every: int = 0) -> str:
    """Run a one-shot producer container for ``count`` messages (at ``rate`` msg/s, or as fast as
    confirms allow), reporting acked progress. Returns the run id; raises LabError when it fails."""
    stack = get_stack(stack_name)
    preflight.check_count(count)
    preflight.check_size(size)
    check_rate(rate)
    if not 0 <= poison_every <= count:
        raise UsageError(f"--poison-every must be from 0 (none) to the count, got {poison_every!r}")
    run_id = check_run_id(run_id) if run_id else new_run_id()
    client = preflight.docker_client()
    if stack.project not in preflight.running_projects(client):
        raise UsageError(f"{stack.name} is not running: `invoke up {stack.name}` first")
    directory, settings = _start_run(config, stack, count, size, run_id, rate, poison_every, client)
    output = directory / "producer-output.log"
    acked = LineCounter(directory, "sent-*.tsv")
    job = run.start(compose.produce_argv(config, stack, count, size, run_id, rate, poison_every),
                    env={**compose.compose_env(config), **settings}, log=output)
    try:
        while job.running():
            progress(acked(), count)
            time.sleep(poll)
    except KeyboardInterrupt:
        job.interrupt()
        job.wait()
        raise
    exited = job.wait()
    progress(acked(), count)
    if exited != 0:
        tail = output.read_text(errors="replace").strip().splitlines()[-3:]
        raise LabError(f"producer failed (exit {exited}): " + (" | ".join(tail) or "no output")
                       + f" (run {run_id}: `invoke verify {stack.name} --run-id {run_id}` checks what was acked)")
    return run_id


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


def verify(config: LabConfig, stack_name: str, run_id: str | None, settle: float, timeout: float,
           on_poll: Callable[[ledger.Report], None] | None = None) -> tuple[ledger.Report, str]:
    stack = get_stack(stack_name)
    run_id = run_id or ledger.latest_run(config.ledger_dir, stack.name)
    report = ledger.wait_for_run(config.ledger_dir, run_id, settle=settle, timeout=timeout, on_poll=on_poll)
    try:
        names = consumer_names(preflight.docker_client(), stack)
    except LabError:
        names = {}
    return report, ledger.render(report, names)


def chaos(config: LabConfig, stack_name: str, fault: str, duration: float | None, echo: Echo,
          service: str | None = None) -> float:
    from . import chaos as lab_chaos

    stack = get_stack(stack_name)
    lab_chaos.check_fault(fault)
    lab_chaos.check_duration(duration, fault)
    client = preflight.docker_client()
    if stack.project not in preflight.running_projects(client):
        raise UsageError(f"{stack.name} is not running: `invoke up {stack.name}` first")
    return lab_chaos.inject(config, stack, fault, duration, echo, service, client)


def dlq(config: LabConfig, stack_name: str, limit: int) -> str:
    from . import dlq as lab_dlq

    stack = get_stack(stack_name)
    if not 1 <= limit <= 10_000:
        raise UsageError(f"--limit must be from 1 to 10,000, got {limit!r}")
    client = preflight.docker_client()
    if stack.project not in preflight.running_projects(client):
        raise UsageError(f"{stack.name} is not running: `invoke up {stack.name}` first")
    try:
        return lab_dlq.show(config, stack, limit)
    except Exception as exc:  # the broker is not answering
        raise LabError(f"could not read the dead-letter destination of {stack.name}: {str(exc)[:160]}") from None


def stats(config: LabConfig, stack_name: str) -> str:
    from . import stats as lab_stats

    stack = get_stack(stack_name)
    client = preflight.docker_client()
    if stack.project not in preflight.running_projects(client):
        raise UsageError(f"{stack.name} is not running: `invoke up {stack.name}` first")
    return lab_stats.render(lab_stats.collect(config, stack, client, current_mode(client, stack)))
