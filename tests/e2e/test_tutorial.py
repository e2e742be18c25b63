"""The tutorial's own scripts (tests/e2e/tutorial/), run unchanged against each stack.

The consumer starts first and runs until it is stopped, as in the tutorial. Pub/sub and
Kafka's default consumer (no group, latest offset) only see what is sent after they are
ready, so warm-up batches are sent until the consumer prints one; then one batch with a
fresh prefix must be printed whole, each message exactly once.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tests.conftest import ROOT
from tests.e2e.test_clients import broker_of

TUTORIAL = ROOT / "tests" / "e2e" / "tutorial"
BATCH = 10  # the tutorial's producers send ten messages
READY_TIMEOUT = 90.0
DELIVERY_TIMEOUT = 30.0

pytestmark = pytest.mark.timeout(300)


class Script:
    """A tutorial script as a process, its printed lines collected by a thread."""

    def __init__(self, name: str, *args: str):
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.proc = subprocess.Popen([sys.executable, str(TUTORIAL / name), *args], cwd=TUTORIAL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def received(self, prefix: str) -> list[str]:
        """Every ``Received <prefix> ...`` line printed so far."""
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                break
        return [line for line in self.seen if line.startswith(f" [x] Received {prefix} ")]

    def wait(self, prefix: str, count: int, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.received(prefix)) < count and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.2)
        return self.received(prefix)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the tutorial's "To exit press CTRL+C"
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_producer(broker: str, prefix: str) -> None:
    done = subprocess.run([sys.executable, str(TUTORIAL / f"{broker}_producer.py"), prefix], cwd=TUTORIAL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout
    assert done.stdout.count(" [x] Sent ") == BATCH, done.stdout


def test_tutorial_scripts_deliver_every_message(stacks, stack_name):
    broker = broker_of(stack_name)
    if broker == "kafka" and sys.version_info >= (3, 12):
        pytest.skip("the tutorial's kafka3 (kafka-python3 3.0.0) does not import on Python 3.12+")
    stacks.up(stack_name)
    consumer = Script(f"{broker}_consumer.py")
    try:
        warmup = f"warmup-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + READY_TIMEOUT
        while not consumer.wait(warmup, 1, 2.0) and time.monotonic() < deadline:
            assert consumer.proc.poll() is None, "\n".join(consumer.seen)
            run_producer(broker, warmup)
        assert consumer.received(warmup), f"the consumer printed nothing sent: {consumer.seen[-20:]}"

        prefix = f"run-{uuid.uuid4().hex[:8]}"
        run_producer(broker, prefix)
        got = consumer.wait(prefix, BATCH, DELIVERY_TIMEOUT)
        assert sorted(got) == sorted(f" [x] Received {prefix} {i}" for i in range(BATCH)), consumer.seen[-30:]
    finally:
        consumer.stop()
