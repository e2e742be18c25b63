"""E2e plumbing: run the lab's tasks as a user would, and keep at most one stack up at a time.

Stacks are shared across the tests that use the same one (starting a stack costs
tens of seconds), and every stack is taken down with its volumes at the end,
whether the tests passed or failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT, engine_or_skip

STACK_PARAMS = [
    pytest.param("rabbitmq", marks=pytest.mark.rabbitmq, id="rabbitmq"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("kafka", marks=pytest.mark.kafka, id="kafka"),
    pytest.param("kafka-zookeeper", marks=pytest.mark.kafka_zookeeper, id="kafka-zookeeper"),
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class Done:
    code: int
    out: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def invoke(*args: str, timeout: float = 600, env: dict | None = None) -> Done:
    """Run ``invoke ARGS`` in the project, the way the README tells a user to."""
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    print(f"$ invoke {' '.join(args)}  -> exit {proc.returncode}\n{proc.stdout[-4000:]}")
    return Done(proc.returncode, proc.stdout)


class StackManager:
    """Keeps one stack up; switching stacks takes the previous one down with its volumes."""

    def __init__(self):
        self.current: str | None = None

    def up(self, stack: str, consumers: int = 1) -> None:
        if self.current == stack:
            scaled = invoke("scale", stack, "--consumers", str(consumers))
            assert scaled.ok, scaled.out
            return
        self.down()
        started = invoke("up", stack, "--consumers", str(consumers))
        if not started.ok:
            invoke("down", stack, "--volumes")  # `up` cleans up after itself; make sure
        assert started.ok, started.out
        self.current = stack

    def down(self) -> None:
        if self.current:
            stopped = invoke("down", self.current, "--volumes")
            self.current = None
            assert stopped.ok, stopped.out


@pytest.fixture(scope="session")
def stacks():
    engine_or_skip()
    manager = StackManager()
    yield manager
    manager.down()


@pytest.fixture(params=STACK_PARAMS, scope="session")
def stack_name(request):
    return request.param
