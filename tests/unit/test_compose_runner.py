"""The runner every Docker Compose call goes through, on invoke's Context: foreground and background."""

import sys
import time

import pytest
from invoke import Context

from mqlab.stack.compose import InvokeRunner
from mqlab.errors import LabError


def test_a_foreground_command_gives_its_exit_and_output():
    run = InvokeRunner(Context())
    done = run([sys.executable, "-c", "import os; print(os.environ['MQLAB_X']); raise SystemExit(3)"],
               env={"MQLAB_X": "seen"}, capture=True, check=False)
    assert done.exited == 3 and done.stdout.strip() == "seen"


def test_a_foreground_command_over_its_time_is_one_line():
    run = InvokeRunner(Context())
    with pytest.raises(LabError, match="took over 1 s and was stopped"):
        run([sys.executable, "-c", "import time; time.sleep(30)"], capture=True, check=False, timeout=1)


def test_a_background_command_runs_while_the_caller_polls_and_logs_to_a_file(tmp_path):
    run = InvokeRunner(Context())
    log = tmp_path / "out.log"
    job = run.start([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(1); print('done')"],
                    log=log)
    assert job.running()
    polls = 0
    while job.running():
        polls += 1
        time.sleep(0.05)
    assert job.wait() == 0 and polls > 3
    assert log.read_text().split() == ["started", "done"]


def test_a_background_command_can_be_interrupted(tmp_path):
    run = InvokeRunner(Context())
    # The child takes Ctrl-C as a process started from a terminal does, even where this test runs
    # with SIGINT ignored (a background job of a non-interactive shell passes SIG_IGN on).
    child = "import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); time.sleep(30)"
    job = run.start([sys.executable, "-c", child], log=tmp_path / "out.log")
    time.sleep(0.3)
    started = time.monotonic()
    job.interrupt()
    assert job.wait() != 0 and time.monotonic() - started < 10
