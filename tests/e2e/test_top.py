"""`invoke top` in a real terminal (tmux): the flow live, and a fault as it happens."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.rabbitmq


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, text=True, stdout=subprocess.PIPE, timeout=30).stdout


def _screen(session: str) -> str:
    return _tmux("capture-pane", "-p", "-t", f"{session}:0")


def _wait_for(session: str, seen, timeout: float = 60) -> str:
    """The screen once ``seen(screen)`` holds; fails with the last screen after ``timeout``."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(session)
        if seen(screen):
            return screen
        time.sleep(0.5)
    pytest.fail(f"not on the screen within {timeout:.0f} s; it showed:\n{screen}")


def _consumer_rows(screen: str) -> dict[str, list[str]]:
    """Each consumer's row by its container's name (top shows it without the ``mqlab-rabbitmq-`` prefix)."""
    return {f"mqlab-rabbitmq-{m.group(1)}": m.group(2).split()
            for m in re.finditer(r"^ (consumer-\d+)\s+consumer\s+(.*)", screen, re.M)}


@pytest.fixture
def terminal(stacks):
    """A terminal running `invoke top rabbitmq` on a running stack with two consumers."""
    stacks.up("rabbitmq", consumers=2)
    if not shutil.which("tmux"):
        pytest.fail("tmux is not installed (.ci/run installs it)")
    session = f"mqlab-top-{uuid.uuid4().hex[:6]}"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in os.environ.items() if k.startswith("MQLAB_"))
    _tmux("new-session", "-d", "-s", session, "-x", "180", "-y", "50",
          # without COLUMNS and LINES, which a tmux server started from a test run may hand down
          f"cd {shlex.quote(str(ROOT))} && env -u COLUMNS -u LINES {env} {shlex.quote(sys.executable)} -m invoke top rabbitmq "
          f"--duration 300; sleep 600")
    yield session
    subprocess.run(["tmux", "kill-session", "-t", session], timeout=30)


def test_top_shows_the_flow_live_and_a_killed_consumer_as_it_happens(terminal):
    # the consumers, each with a rate above zero (the steady producer sends 2 a second)
    screen = _wait_for(terminal, lambda s: len(_consumer_rows(s)) == 2 and "broker (asked" in s
                       and all(float(row[1]) > 0 for row in _consumer_rows(s).values()))
    assert re.search(r"queue mailbox\.durable\s+leader rabbitmq", screen), screen  # the broker's own view
    assert re.search(r"^ producer-1\s+producer\s+running", screen, re.M), screen
    # state, rate, its history, received so far, the node it is connected to, its backlog
    assert all(row[3] != "0" and row[4] == "rabbitmq" and row[5:7] == ["0", "ready"]
               for row in _consumer_rows(screen).values()), screen
    assert re.search(r"run steady: .*acked [1-9]", screen), screen

    # the fault, from another window of the same terminal, as a user would
    began = datetime.now().strftime("%H:%M:%S")
    _tmux("new-window", "-d", "-t", terminal, f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m invoke "
          "chaos rabbitmq kill-consumer --duration 3 > /dev/null 2>&1")

    def since_began(screen: str, source: str, pattern: str) -> list[re.Match]:
        """Event lines from ``source`` matching ``pattern``, stamped at or after the fault began
        (top also shows the event file's last minute, which may hold an earlier test's fault)."""
        return [m for m in re.finditer(rf"(\d\d:\d\d:\d\d)\s+{source}\s+{pattern}", screen) if m.group(1) >= began]

    screen = _wait_for(terminal, lambda s: since_began(s, "lab", r"SIGKILL (mqlab-rabbitmq-consumer-\d)")
                       and since_began(s, "lab", "kill-consumer undone"), timeout=90)
    killed = since_began(screen, "lab", r"SIGKILL (mqlab-rabbitmq-consumer-\d)")[0].group(2)
    assert since_began(screen, "docker", rf"{killed} died \(exit 137\)"), screen
    assert since_began(screen, "docker", rf"{killed} started"), screen
    # and the restarted consumer back on its row, consuming again
    _wait_for(terminal, lambda s: _consumer_rows(s).get(killed, [""])[0] == "subscribed"
              and float(_consumer_rows(s)[killed][1]) > 0, timeout=90)

    _tmux("send-keys", "-t", f"{terminal}:0", "q")
    _wait_for(terminal, lambda s: "mqlab-rabbitmq-consumer" not in s, timeout=15)  # q leaves top


def test_a_verified_run_with_a_fault_in_it_is_plotted_with_the_fault_shaded(stacks):
    from mqlab import config, events
    from mqlab.ledger import picture
    from tests.e2e.conftest import invoke, start_stream, wait_for_acked, LEDGER

    stacks.up("rabbitmq", consumers=2)
    run_id = f"plot-{uuid.uuid4().hex[:6]}"
    stream = start_stream("rabbitmq", run_id, count=1500, rate=250)
    wait_for_acked(run_id, 300)
    broke = invoke("chaos", "rabbitmq", "kill-consumer", "--duration", "2")
    assert broke.ok, broke.out
    assert stream.wait(timeout=120) == 0, stream.stdout.read()
    done = invoke("verify", "rabbitmq", "--run-id", run_id, "--settle", "5", "--plot")
    assert done.ok, done.out
    png = ROOT / ".mqlab" / "timelines" / f"{run_id}.png"
    assert f"timeline: .mqlab/timelines/{run_id}.png" in done.out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # what it drew: the fault from the event file inside the run, and the run's rates
    cfg = config.load(ROOT, config.offline_default())
    drawn = picture.series(LEDGER / run_id, faults=events.read(cfg.events_file, "rabbitmq")[0])
    assert [label for _start, _end, label in drawn.windows] == ["kill-consumer"]
    start, end, _ = drawn.windows[0]
    assert 0 < start < end < len(drawn.acks)
    assert sum(n for _s, n in drawn.acks) == 1500
