"""Build ``docker compose`` command lines for a stack, and run them through a runner.

A runner is any callable ``run(argv, *, env=None, capture=False, check=True)``
that returns an object with ``.exited`` (int) and ``.stdout`` (str); tasks pass
one built on invoke's ``Context.run``.
Command lines are argv lists, joined with :func:`shlex.join` only at the edge.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

from .config import LabConfig
from .stacks import Stack


class Result(Protocol):
    exited: int
    stdout: str


Runner = Callable[..., Result]


def compose_env(config: LabConfig) -> dict[str, str]:
    """Variables the compose files need from the host, beyond ``.env``."""
    return {"MQLAB_LEDGER_HOST_DIR": str(config.ledger_dir)}


def compose_argv(config: LabConfig, stack: Stack, *args: str) -> list[str]:
    # No --project-directory: paths in the compose files are relative to compose/,
    # exactly as when a user runs `docker compose -f compose/<stack>.yml` by hand.
    argv = ["docker", "compose"]
    for path in config.env_files:
        argv += ["--env-file", str(path)]
    argv += ["-f", str(config.root / stack.compose_file), *args]
    return argv


def up_argv(config: LabConfig, stack: Stack, consumers: int) -> list[str]:
    build = ["--no-build"] if config.offline else ["--build"]
    return compose_argv(config, stack, "up", "--detach", "--wait", *build,
                        "--scale", f"consumer={consumers}")


def scale_argv(config: LabConfig, stack: Stack, consumers: int) -> list[str]:
    # Only the consumers change: --no-deps, so that a broker whose health check is
    # recovering from a fault does not fail the scaling.
    return compose_argv(config, stack, "up", "--detach", "--wait", "--no-build", "--no-recreate", "--no-deps",
                        "--scale", f"consumer={consumers}", "consumer")


def down_argv(config: LabConfig, stack: Stack, volumes: bool) -> list[str]:
    return compose_argv(config, stack, "down", "--remove-orphans", *(["--volumes"] if volumes else []))


def logs_argv(config: LabConfig, stack: Stack, services: Sequence[str], follow: bool, tail: int | None) -> list[str]:
    extra = ["--follow"] if follow else []
    if tail is not None:
        extra += ["--tail", str(tail)]
    return compose_argv(config, stack, "logs", *extra, *services)


def produce_argv(config: LabConfig, stack: Stack, count: int, size: int, run_id: str,
                 rate: float | None = None, poison_every: int = 0) -> list[str]:
    extra = ["--rate", f"{rate:g}"] if rate else []
    extra += ["--poison-every", str(poison_every)] if poison_every else []
    return compose_argv(config, stack, "run", "--rm", "--no-deps", "-T", "producer",
                        "producer", "--count", str(count), "--size", str(size), "--run-id", run_id, *extra)
