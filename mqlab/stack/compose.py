"""Build ``docker compose`` command lines for a stack, and run them through a runner.

A runner (:class:`Runner`) runs an argv in the foreground, ``run(argv, *, env=None,
capture=False, check=True, timeout=None)``, returning an object with ``.exited`` (int),
``.stdout`` and ``.stderr`` (str), or in the background, ``run.start(argv, *, env=None,
log=path)``, returning a :class:`Job`. The tasks pass an :class:`InvokeRunner` built on
invoke's ``Context.run``; every Docker Compose call of the lab goes through one.
Command lines are argv lists, joined with :func:`shlex.join` only at the edge.
"""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path
from typing import Protocol, Sequence

from invoke.exceptions import CommandTimedOut

from ..config import LabConfig
from ..errors import LabError
from ..stacks import Stack


class Result(Protocol):
    exited: int
    stdout: str
    stderr: str


class Job(Protocol):
    """A command running in the background, its output going to a log file."""

    def running(self) -> bool: ...

    def wait(self) -> int: ...

    def interrupt(self) -> None: ...


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], *, env: dict[str, str] | None = None, capture: bool = False,
                 check: bool = True, timeout: float | None = None) -> Result: ...

    def start(self, argv: Sequence[str], *, env: dict[str, str] | None = None, log: Path) -> Job: ...


class InvokeRunner:
    """A runner on invoke's ``Context.run`` (the environment is added to the process's own)."""

    def __init__(self, c):
        self.c = c

    def __call__(self, argv, *, env=None, capture=False, check=True, timeout=None):
        try:
            return self.c.run(shlex.join(argv), env=env or {}, hide=capture, warn=not check, pty=False,
                              in_stream=False, timeout=timeout)
        except CommandTimedOut:
            raise LabError(f"`{' '.join(argv[:5])} ...` took over {timeout:.0f} s and was stopped") from None

    def start(self, argv, *, env=None, log: Path) -> "InvokeJob":
        out = log.open("w")
        promise = self.c.run(shlex.join(argv), env=env or {}, asynchronous=True, warn=True, pty=False,
                             in_stream=False, out_stream=out, err_stream=out)
        return InvokeJob(promise, out)


class InvokeJob:
    def __init__(self, promise, out):
        self.promise, self.out = promise, out
        self.exited: int | None = None

    def running(self) -> bool:
        return self.exited is None and not self.promise.runner.process_is_finished

    def wait(self) -> int:
        if self.exited is None:
            try:
                self.exited = self.promise.join().exited
            finally:
                self.out.close()
        return self.exited

    def interrupt(self) -> None:
        """Ctrl-C for the command (SIGINT): `docker compose run` passes it on to the container."""
        if self.running():
            os.kill(self.promise.runner.process.pid, signal.SIGINT)


def compose_env(config: LabConfig) -> dict[str, str]:
    """Variables the compose files need from the host, beyond ``.env``."""
    return {"MQLAB_LEDGER_HOST_DIR": str(config.ledger_dir)}


def compose_argv(config: LabConfig, stack: Stack, *args: str, profiles: Sequence[str] = ()) -> list[str]:
    """``docker compose`` on the stack's file, with the compose ``profiles`` enabled ("*": all)."""
    # No --project-directory: paths in the compose files are relative to compose/,
    # exactly as when a user runs `docker compose -f compose/<stack>.yml` by hand.
    argv = ["docker", "compose"]
    for path in config.env_files:
        argv += ["--env-file", str(path)]
    argv += ["-f", str(config.root / stack.compose_file)]
    for profile in profiles:
        argv += ["--profile", profile]
    return [*argv, *args]


def up_argv(config: LabConfig, stack: Stack, consumers: int, profiles: Sequence[str] = ()) -> list[str]:
    build = ["--no-build"] if config.offline else ["--build"]
    return compose_argv(config, stack, "up", "--detach", "--wait", *build,
                        "--scale", f"consumer={consumers}", profiles=profiles)


def scale_argv(config: LabConfig, stack: Stack, consumers: int) -> list[str]:
    # Only the consumers change: --no-deps, so that a broker whose health check is
    # recovering from a fault does not fail the scaling.
    return compose_argv(config, stack, "up", "--detach", "--wait", "--no-build", "--no-recreate", "--no-deps",
                        "--scale", f"consumer={consumers}", "consumer")


def down_argv(config: LabConfig, stack: Stack, volumes: bool) -> list[str]:
    # Every profile: `down` leaves the containers of a profile it was not given (--metrics, --ui).
    return compose_argv(config, stack, "down", "--remove-orphans", *(["--volumes"] if volumes else []),
                        profiles=["*"])


def logs_argv(config: LabConfig, stack: Stack, services: Sequence[str], follow: bool, tail: int | None) -> list[str]:
    extra = ["--follow"] if follow else []
    if tail is not None:
        extra += ["--tail", str(tail)]
    return compose_argv(config, stack, "logs", *extra, *services)


def _producer_args(count: int, size: int, run_id: str, rate: float | None, poison_every: int) -> list[str]:
    extra = ["--rate", f"{rate:g}"] if rate else []
    extra += ["--poison-every", str(poison_every)] if poison_every else []
    return ["producer", "--count", str(count), "--size", str(size), "--run-id", run_id, *extra]


def produce_argv(config: LabConfig, stack: Stack, count: int, size: int, run_id: str,
                 rate: float | None = None, poison_every: int = 0) -> list[str]:
    # --use-aliases: the one-shot producer answers to the name `producer` too, so that under
    # --metrics Prometheus finds it as it finds the steady one (config/prometheus/services.yml).
    return compose_argv(config, stack, "run", "--rm", "--no-deps", "--use-aliases", "-T", "producer",
                        *_producer_args(count, size, run_id, rate, poison_every))


def swarm_produce_argv(config: LabConfig, stack: Stack, image: str, env: dict[str, str], count: int, size: int,
                       run_id: str, rate: float | None = None, poison_every: int = 0) -> list[str]:
    """The one-shot producer of a stack on Swarm: a container on the manager, on the stack's
    attachable overlay network, with the steady producer's environment (``env``), writing its
    receipts straight into the local ledger."""
    argv = ["docker", "run", "--rm", "--init", "--network", f"{stack.project}_default", "--network-alias", "producer",
            "--label", f"mqlab.oneshot={stack.name}", "-v", f"{config.ledger_dir}:/ledger"]
    for key, value in sorted(env.items()):
        argv += ["-e", f"{key}={value}"]
    return [*argv, image, *_producer_args(count, size, run_id, rate, poison_every)]
