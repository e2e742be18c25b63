"""The tasks through invoke's MockContext: flags reach the library, errors are one line."""

import shlex
import sys

import pytest
from invoke import Exit, MockContext, Result

import tasks
from mqlab import ledger


def test_unknown_stack_is_one_line_listing_the_stacks():
    with pytest.raises(Exit) as err:
        tasks.up(MockContext(), "rabbit")
    message = str(err.value.message)
    assert message.startswith("mqlab: unknown stack 'rabbit'")
    assert "rabbitmq, redis, kafka, kafka-zookeeper" in message
    assert err.value.code == 1


def test_docker_not_reachable_is_one_line(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(Exit) as err:
        tasks.up(MockContext(), "redis")
    assert "Docker engine not reachable" in err.value.message
    assert "\n" not in err.value.message


@pytest.mark.parametrize("count,size,expected", [
    ("0", 512, "--count must be a whole number"),
    ("ten", 512, "--count must be a number, got 'ten'"),
    ("10", "5", "--size must be from"),
])
def test_bad_count_or_size_is_refused_before_any_command(count, size, expected):
    ctx = MockContext()  # any ctx.run would raise: nothing may run
    with pytest.raises(Exit) as err:
        tasks.produce(ctx, "redis", count, size)
    assert expected in err.value.message


def test_bad_consumers_value():
    with pytest.raises(Exit) as err:
        tasks.scale(MockContext(), "kafka", "-2")
    assert "--consumers must be from 0 to 32" in err.value.message


def test_env_value_not_a_number(monkeypatch):
    monkeypatch.setenv("MQLAB_CONSUMERS", "three")
    with pytest.raises(Exit) as err:
        tasks.up(MockContext(), "redis")
    assert "MQLAB_CONSUMERS='three' is not a number" in err.value.message


def test_test_task_runs_pytest_on_the_unit_suite():
    expected = shlex.join([sys.executable, "-m", "pytest", "-v", "--durations=25", "tests/unit", "-m", "kafka_zookeeper"])
    ctx = MockContext(run={expected: Result("", exited=0)})
    tasks.test(ctx, unit=True, stack="kafka-zookeeper")
    ctx.run.assert_called_once()


def test_verify_reads_the_latest_run_and_fails_on_loss(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    monkeypatch.delenv("MQLAB_OFFLINE", raising=False)
    (tmp_path / ".env").write_text("A=1\n")
    led = tmp_path / ".mqlab" / "ledger"
    (led / "r1").mkdir(parents=True)
    (led / "r1" / "sent-p.tsv").write_text("a\t0\t1\t2\nb\t1\t1\t2\n")
    (led / "r1" / "recv-c.tsv").write_text("a\tp\t0\t1\t9\n")
    ledger.record_latest(led, "redis", "r1")
    with pytest.raises(Exit) as err:
        tasks.verify(MockContext(), "redis", settle=0, timeout=0)
    assert err.value.code == 1 and err.value.message is None  # the table says why, not an error line
    out = capsys.readouterr().out
    assert "run r1" in out and "FAIL: 1 acked messages lost" in out
    (led / "r1" / "recv-c.tsv").write_text("a\tp\t0\t1\t9\nb\tp\t1\t1\t9\n")
    tasks.verify(MockContext(), "redis", settle=0, timeout=0)
    assert "OK: every acked message was received" in capsys.readouterr().out


def test_every_task_and_flag_has_help():
    from invoke import Collection

    for name, t in Collection.from_module(tasks).tasks.items():
        assert t.__doc__ and t.__doc__.strip(), name
        params = [p for p in t.get_arguments() if p.name not in ("c",)]
        for p in params:
            assert p.help, f"{name} --{p.name} has no help"



@pytest.mark.parametrize("argv,message", [
    (["produce", "redis", "--count", "5", "--size", "5x"], "mqlab: --size must be a number, got '5x'"),
    (["bench", "kafka", "--duration", "2.5x"], "mqlab: --duration must be a number, got '2.5x'"),
    (["verify", "redis", "--settle", "soon"], "mqlab: --settle must be a number, got 'soon'"),
])
def test_a_flag_that_is_not_a_number_is_one_line_from_the_command_line(argv, message):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "invoke", *argv], cwd=tasks.ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 1
    assert (done.stdout + done.stderr).strip() == message


def test_numeric_flags_show_as_numbers_and_no_short_flag_is_made_up():
    """What `invoke --help <task>` prints for each flag (invoke's help_for, in process)."""
    from invoke import Collection

    collection = Collection.from_module(tasks)
    contexts = {c.name: c for c in collection.to_contexts()}
    for name, t in collection.tasks.items():
        ctx = contexts[name]
        lines = [ctx.help_for(flag)[0] for flag in ctx.flags]
        for argument in t.get_arguments():
            if argument.name in tasks.NUMERIC_FLAGS:
                flag = argument.name.replace("_", "-")
                assert any(f"--{flag}={tasks.NUMERIC_FLAGS[argument.name]}" in line for line in lines), (name, flag)
        short = sorted({part for line in lines for part in line.replace(",", " ").split()
                        if part.startswith("-") and not part.startswith("--")})
        assert short in ([], ["-k"]), (name, short)


def test_invoke_itself_prints_the_numeric_labels_and_compare_stands_in_for_the_stack():
    """`invoke --help` as a user runs it: the one place where the lab patches invoke (its
    help_for). An invoke release that stops calling it, or changes the line it wraps, fails here."""
    import subprocess

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "invoke", *argv], cwd=tasks.ROOT, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=60)

    shown = run("--help", "bench").stdout
    for flag in ("--rate=NUMBER", "--duration=NUMBER", "--repeat=auto|INT", "--budget=NUMBER", "--size=INT", "--latency-rate=NUMBER"):
        assert flag in shown, (flag, shown)
    assert "--count=INT" in run("--help", "produce").stdout
    compared = run("bench", "--compare")
    said = compared.stdout + compared.stderr
    assert "did not receive required positional arguments" not in said, said  # --compare fills in the stack
    assert "Traceback" not in said


@pytest.mark.parametrize("task_name", ["up", "bench", "verify"])
def test_help_after_a_task_with_one_positional_argument_shows_its_help(task_name):
    """invoke hands `--help` after such a task to its positional argument; the task shows its help
    instead of taking '--help' for a stack."""
    import subprocess

    done = subprocess.run([sys.executable, "-m", "invoke", task_name, "--help"], cwd=tasks.ROOT, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"Usage: inv[oke] [--core-opts] {task_name} ") and "unknown stack" not in done.stdout
