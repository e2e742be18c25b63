"""The stack during a benchmark: its compose calls, the trial containers and CPU pinning.

Every Docker Compose call goes through the runner the task passes (``compose.Runner``).
With two or more CPUs, the broker containers are pinned to the first half of them and
every client to the rest (``docker update --cpuset-cpus`` and ``MQLAB_CLIENT_CPUS``); the
broker's pinning is undone at the end. A stack that was not running is started (broker
only) and stopped again at the end, its volumes kept.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from .. import brokers
from ..brokers import native
from ..config import LabConfig
from ..errors import LabError
from ..stack import compose, preflight
from ..stack.lifecycle import ensure_broker_images
from ..stack.stats import read_status
from ..stacks import Stack
from ..wait import poll_until

Echo = Callable[[str], None]

SUBSCRIBE_TIMEOUT_S = 60.0


def client_cpus(cpus: int) -> tuple[str, str] | None:
    """(broker cpuset, clients cpuset) for pinning, or None on one CPU."""
    if cpus < 2:
        return None
    half = cpus // 2
    broker = "0" if half == 1 else f"0-{half - 1}"
    clients = str(half) if cpus - half == 1 else f"{half}-{cpus - 1}"
    return broker, clients


#: py-spy samples per second (`invoke bench --profile`).
PROFILE_RATE = 250


class BenchStack:
    def __init__(self, config: LabConfig, stack: Stack, run: compose.Runner, echo: Echo):
        self.config, self.stack, self.run, self.echo = config, stack, run, echo
        self.client = preflight.docker_client()
        self.pinning = client_cpus(os.cpu_count() or 1)
        self.started_stack = False

    # -- compose --------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {**compose.compose_env(self.config), "MQLAB_CLIENT_CPUS": self.pinning[1] if self.pinning else ""}

    def compose(self, *args: str, timeout: float = 300.0, what: str = "") -> compose.Result:
        """Run `docker compose ARGS` on the stack, quietly; with ``what``, a failure is a LabError."""
        result = self.run(compose.compose_argv(self.config, self.stack, *args), env=self.env(), capture=True,
                          check=False, timeout=timeout)
        if what and result.exited != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise LabError(f"{what} failed (exit {result.exited}): {' | '.join(tail) or 'no output'}")
        return result

    def running(self) -> bool:
        containers = preflight.running_projects(self.client).get(self.stack.project, [])
        services = {c.labels.get("com.docker.compose.service") for c in containers if c.status == "running"}
        return all(b in services for b in self.stack.brokers)

    def ensure_up(self) -> None:
        """Start the broker if it is not running (and remember to stop it at the end)."""
        preflight.check_compose()
        ensure_broker_images(self.config, self.stack, self.run, self.echo, self.client)
        if not self.config.offline:
            self.compose("build", "producer", timeout=900, what="building the services image")
        if self.running():
            self.echo(f"{self.stack.name} is running: benchmarking it as it is")
            return
        preflight.check_ports(self.config, self.stack, self.client)
        self.config.ledger_dir.mkdir(parents=True, exist_ok=True)
        self.echo(f"starting {self.stack.name} (broker only) for the benchmark; it is stopped again at the end")
        self.started_stack = True
        self.compose("up", "--detach", "--wait", "--no-build", *self.stack.brokers, timeout=600,
                     what=f"starting {self.stack.name}")

    def down(self) -> None:
        """Stop a stack the benchmark started; its volumes stay (they may hold older data)."""
        if self.started_stack:
            self.echo(f"stopping {self.stack.name} (it was started for the benchmark)")
            self.run(compose.down_argv(self.config, self.stack, volumes=False), env=self.env(), capture=True,
                     check=False, timeout=300)

    # -- pinning --------------------------------------------------------------------
    def pin(self, pinned: bool) -> None:
        if not self.pinning:
            return
        cpus = self.pinning[0] if pinned else f"0-{(os.cpu_count() or 1) - 1}"
        for container in preflight.running_projects(self.client).get(self.stack.project, []):
            if container.labels.get("com.docker.compose.service") in self.stack.brokers and container.status == "running":
                container.update(cpuset_cpus=cpus)

    # -- trial containers -----------------------------------------------------------
    def launch(self, service: str, name: str, env: dict[str, str], args: list[str], log: Path,
               profile: str | None = None) -> compose.Job:
        """`bench ARGS` in a one-off container of ``service``, named ``name``, in the background;
        under py-spy when ``profile`` names the file (in the container) for its samples."""
        profiler = ["py-spy", "record", "--gil", "--rate", str(PROFILE_RATE), "--format", "raw", "--output", profile,
                    "--"] if profile else []
        argv = compose.compose_argv(self.config, self.stack, "run", "--rm", "--no-deps", "-T", "--name", name,
                                    *[a for key, value in env.items() for a in ("-e", f"{key}={value}")],
                                    service, *profiler, "bench", *args)
        return self.run.start(argv, env=self.env(), log=log)

    def remove(self, names: list[str]) -> None:
        for name in names:
            try:
                self.client.containers.get(name).remove(force=True)
            except Exception:  # gone already
                pass

    def wait(self, jobs: list[compose.Job], until: float, label: str, names: list[str],
             tick: Callable[[float], None]) -> None:
        """Wait for the trial's containers to exit, calling ``tick(seconds waited)``; at the wall-clock
        time ``until`` they are removed and the trial fails."""
        started = time.monotonic()
        while any(job.running() for job in jobs):
            if time.time() > until:
                self.remove(names)
                for job in jobs:
                    job.wait()
                raise LabError(f"{label}: the bench containers did not finish in time; they were removed")
            tick(time.monotonic() - started)
            time.sleep(0.25)
        for job in jobs:
            job.wait()

    def wait_subscribed(self, names: list[str], jobs: list[compose.Job], label: str, logs: Path) -> None:
        def ready() -> bool:
            if any(not job.running() for job in jobs):
                return True  # one exited: nothing more will subscribe
            return all(read_status(self.config.ledger_dir, n).get("subscribed") for n in names)

        poll_until(ready, SUBSCRIBE_TIMEOUT_S, interval=0.2)
        subscribed = sum(bool(read_status(self.config.ledger_dir, n).get("subscribed")) for n in names)
        if subscribed < len(names):
            self.remove(names)
            raise LabError(f"{label}: {subscribed} of {len(names)} bench consumer(s) subscribed; see the logs in {logs}")

    def tool(self, *args: str, seconds: float) -> str:
        """Run the broker's own benchmark tool (its compose service) and return what it printed."""
        service = brokers.of(self.stack).tool_service
        result = self.compose("run", "--rm", "-T", service, *args, timeout=seconds + 180)
        if result.exited != 0:
            raise LabError(f"{service} failed (exit {result.exited}): "
                           f"{native.gist(result.stdout + chr(10) + result.stderr)}")
        return result.stdout

    def delete(self, made: dict[str, str]) -> None:
        """Remove what a trial made on the broker (see bench_names): its data would only fill
        memory and disk. Best effort: a failure is said, and the run goes on."""
        try:
            brokers.of(self.stack).delete(self.config, made)
        except Exception as exc:
            self.echo(f"could not delete the trial's {self.stack.broker} data: {type(exc).__name__}: {exc}")
