"""E2e plumbing: run the lab's tasks as a user would, and keep at most one stack up at a time.

Stacks are shared across the tests that use the same one (starting a stack costs
tens of seconds), and every stack is taken down with its volumes at the end,
whether the tests passed or failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

import docker
import pytest

from mqlab import config
from mqlab.faults import chaos
from mqlab.ledger import receipts, timeline
from mqlab.modes import names_of
from mqlab.stack import lifecycle
from mqlab.stacks import STACKS, get_stack
from tests.conftest import ROOT, engine_or_skip

STACK_PARAMS = [
    pytest.param("rabbitmq", marks=pytest.mark.rabbitmq, id="rabbitmq"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("kafka", marks=pytest.mark.kafka, id="kafka"),
    pytest.param("kafka-zookeeper", marks=pytest.mark.kafka_zookeeper, id="kafka-zookeeper"),
]


STACK_ORDER = ["rabbitmq", "redis", "kafka", "kafka-zookeeper", "kafka-cluster", "rabbitmq-cluster", "redis-sentinel"]


def _stack_of(item) -> int:
    params = getattr(getattr(item, "callspec", None), "params", {})
    stack = (params.get("stack_name") or params.get("cluster")
             or getattr(params.get("case"), "stack", None))
    if stack is None:  # a test of one stack, marked rather than parametrized
        marks = {m.name for m in item.iter_markers()}
        stack = next((s for s in STACK_ORDER if s.replace("-", "_") in marks), None)
    return STACK_ORDER.index(stack) + 1 if stack in STACK_ORDER else 0


def _mode_of(item) -> int:
    """The rank of the test's mode among its broker's modes (the default, 0, when it names none)."""
    case = getattr(getattr(item, "callspec", None), "params", {}).get("case")
    marker = item.get_closest_marker("mode")
    stack = STACK_ORDER[_stack_of(item) - 1] if _stack_of(item) else None
    mode = case.mode if isinstance(case, Case) else (marker.args[0] if marker else None)
    modes = names_of(STACKS[stack].broker) if stack else ()
    return modes.index(mode) if mode in modes else 0


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
    # Run the tests of one stack together, and of one mode within it: starting a stack costs
    # tens of seconds, and a change of mode restarts its services. The multi-node rig's test
    # comes last: it puts the local engine into swarm mode while it runs.
    items.sort(key=lambda item: ((len(STACK_ORDER) + 1, 0) if item.get_closest_marker("hosts") else
                                 (_stack_of(item), _mode_of(item))) if "/e2e/" in str(item.fspath) else (-1, 0))


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
    """Keeps one stack up; switching stacks takes the previous one down with its volumes.
    Switching modes on the same stack restarts only the services, not the broker."""

    def __init__(self):
        self.current: str | None = None
        self.settings: tuple = ()

    def up(self, stack: str, consumers: int = 1, mode: str | None = None, binding: str | None = None,
           profiles: tuple[str, ...] = ()) -> None:
        """``profiles``: flags such as --metrics and --ui; their services stay up until the stack goes down."""
        settings = (mode, binding, profiles)
        if self.current == stack and self.settings == settings:
            if len(running(stack, "consumer")) == consumers:
                # Already so: only wait, as `invoke scale` would, until they are consuming.
                lifecycle.wait_for_consumers(config.load(ROOT, config.offline_default()), get_stack(stack),
                                             consumers, print)
                return
            scaled = invoke("scale", stack, "--consumers", str(consumers))
            assert scaled.ok, scaled.out
            return
        if self.current != stack:
            self.down()
        args = ["up", stack, "--consumers", str(consumers)]
        args += ["--mode", mode] if mode else []
        args += ["--binding", binding] if binding else []
        args += list(profiles)
        started = invoke(*args)
        if not started.ok:
            invoke("down", stack, "--volumes")  # `up` cleans up after itself; make sure
            self.current = None
        assert started.ok, started.out
        self.current, self.settings = stack, settings

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


@dataclass(frozen=True)
class Case:
    """One stack in one delivery mode, with the marks of its stack."""

    stack: str
    mode: str
    consumers: int = 3

    def param(self):
        return pytest.param(self, marks=getattr(pytest.mark, self.stack.replace("-", "_")),
                            id=f"{self.stack}-{self.mode}")


def produce(stack: str, count: int, *extra: str) -> str:
    """`invoke produce`, returning the run id it printed."""
    import re

    done = invoke("produce", stack, "--count", str(count), "--size", "256", *extra)
    assert done.ok, done.out
    return re.search(r"run (\S+) sent", done.out).group(1)


def verify(stack: str, run_id: str, settle: int = 15, timeout: int = 180):
    """`invoke verify` as a user runs it, and the ledger's Report for exact assertions, with the
    final read of the broker's log (``report.final``, ``report.gone``) and, in a transactional mode, the
    output topic (``report.output``), as verify does them."""
    from mqlab import ledger
    from mqlab.modes import mode_info
    from mqlab.stack import runs

    done = invoke("verify", stack, "--run-id", run_id, "--settle", str(settle), "--timeout", str(timeout))
    report = ledger.read_run(ROOT / ".mqlab" / "ledger", run_id)
    cfg = config.load(ROOT, config.offline_default())
    report.final = runs.final_read(cfg, get_stack(stack), report.mode, run_id)
    if report.mode and mode_info(get_stack(stack).broker, report.mode).transactional:
        report.output = runs.output_read(cfg, get_stack(stack), report.mode, run_id)
    return done, report


STREAM_RATE = 250  # msg/s of start_stream, unless a test asks for another


def start_stream(stack: str, run_id: str, count: int = 2500, rate: int = STREAM_RATE) -> subprocess.Popen:
    """`invoke produce` at a fixed rate in the background, for faults and scaling mid-stream."""
    return subprocess.Popen([sys.executable, "-m", "invoke", "produce", stack, "--count", str(count), "--size", "256",
                             "--rate", str(rate), "--run-id", run_id],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


# -- evidence that a fault happened: from the ledger's receipts and from Docker -----------------

LEDGER = ROOT / ".mqlab" / "ledger"


def acked_count(run_id: str) -> int:
    return sum(len(v) for v in receipts.column(LEDGER / run_id, *timeline.ACK_NS).values())


def wait_for_acked(run_id: str, count: int, timeout: float = 60) -> int:
    """Wait until the run's producers have ``count`` broker-acked messages on record."""
    deadline = time.monotonic() + timeout
    while acked_count(run_id) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return acked_count(run_id)


def ack_gap_s(run_id: str) -> float:
    """The longest time without a producer ack, in seconds."""
    return timeline.ack_gap_s(LEDGER / run_id)


def consumer_silence_s(run_id: str, until_ns: int | None = None) -> float:
    """The longest time one consumer received nothing while the run (or, until ``until_ns``,
    the fault) went on, in seconds."""
    return timeline.consumer_silence_s(LEDGER / run_id, until_ns)


def running(stack: str, service: str) -> list:
    return chaos.containers(docker.from_env(), get_stack(stack), service)


def started_at(stack: str, service: str) -> list[str]:
    """When each container of a service last started (Docker's State.StartedAt)."""
    found = chaos.containers(docker.from_env(), get_stack(stack), service, running=False)
    return sorted(c.attrs["State"]["StartedAt"] for c in found)


def latency_ms_by_send_time(run_id: str) -> list[tuple[int, float]]:
    """(send_ns, end-to-end latency in ms) of every first delivery of the run."""
    seen, found = set(), []
    for _consumer, path in receipts.files(LEDGER / run_id, receipts.RECV):
        for parts in receipts.lines(path):
            times = receipts.delivery_times(parts)
            if times is not None and parts[receipts.ID] not in seen:
                seen.add(parts[receipts.ID])
                _seq, sent_ns, received_ns = times
                found.append((sent_ns, (received_ns - sent_ns) / 1e6))
    return sorted(found)
