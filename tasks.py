"""mqlab tasks. Each one parses its flags and calls the library in ``mqlab/``.

Run ``invoke --list`` for the tasks and ``invoke --help <task>`` for their flags.
"""

from __future__ import annotations

import functools
import shlex
import subprocess
import sys
import time
from pathlib import Path

from invoke import Exit, Task
from invoke import task as invoke_task
from invoke.parser import Argument, ParserContext
from invoke.exceptions import UnexpectedExit
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mqlab import bench as lab_bench
from mqlab import config as lab_config
from mqlab import faults as lab_faults
from mqlab import hosts as lab_hosts
from mqlab import images as lab_images
from mqlab import stack as lab_stack
from mqlab.errors import LabError, UsageError
from mqlab.modes import BROKERS, names_of
from mqlab.stacks import STACKS, get_stack

ROOT = Path(__file__).resolve().parent
STACK_NAMES = ", ".join(STACKS)
MODES_HELP = "; ".join(f"{broker}: {', '.join(names_of(broker))}" for broker in BROKERS)
OFFLINE_HELP = "use the images built from packages (`invoke images`), building what is missing; default from MQLAB_OFFLINE"


#: What each numeric flag takes, as `--help` shows it (INT, NUMBER); by the parameter's name.
NUMERIC_FLAGS = {
    "consumers": "INT", "count": "INT", "size": "INT", "poison_every": "INT", "limit": "INT", "tail": "INT",
    "producers": "INT", "repeat": "auto|INT", "budget": "NUMBER", "rate": "NUMBER", "settle": "NUMBER", "timeout": "NUMBER",
    "duration": "NUMBER", "watch": "NUMBER", "warmup": "NUMBER", "latency_rate": "NUMBER", "rounds": "INT",
    "nodes": "INT",
}


class LabTask(Task):
    """Numbers reach a task as text, so that a bad value gets the lab's one-line error
    (invoke itself would stop with a traceback when it cannot cast a flag); `--help` still
    shows them as INT or NUMBER. No short flags are made up: each flag is spelled out."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "auto_shortflags": False})

    def get_arguments(self, *args, **kwargs):
        arguments = super().get_arguments(*args, **kwargs)
        for argument in arguments:
            if argument.kind in (int, float) or argument.name in NUMERIC_FLAGS:
                argument.kind = str
                argument.value_label = NUMERIC_FLAGS.get(argument.name, "NUMBER")
        return arguments


def _help_for(self, flag):
    """invoke's help line of a flag, with INT or NUMBER for the lab's numeric flags."""
    names, text = _invoke_help_for(self, flag)
    label = getattr(self.flags[flag], "value_label", None)
    return (names.replace("=STRING", f"={label}").replace(" STRING", f" {label}") if label else names), text


# The one patch of invoke, kept on purpose. invoke labels a flag's value from its kind alone
# ({str: STRING, int: INT}; a float flag gets no label and reads like a switch), and it casts
# the value itself, with a traceback on a bad one. The lab wants both: its own one-line error
# (so numbers arrive as text) and INT or NUMBER in `--help`. invoke offers no hook for the
# label: its help comes from ParserContext.help_for, and the contexts are built by invoke's
# own Collection, not by the task. A Program subclass would need a command of its own instead
# of `invoke`. So help_for is wrapped, and it changes only flags that carry a value_label.
# tests/unit/test_tasks.py runs `invoke --help` as a user does and fails if an invoke release
# stops calling it or changes its format.
_invoke_help_for = ParserContext.help_for
ParserContext.help_for = _help_for


def task(*args, **kwargs):
    """invoke's @task, making LabTask (or a subclass given as ``klass``) tasks."""
    return invoke_task(*args, **{"klass": LabTask, **kwargs})


HELP_FLAGS = ("--help", "-h")


def lab_task(fn):
    """Turn the lab's errors into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if any(value in HELP_FLAGS for value in (*args[1:], *kwargs.values()) if isinstance(value, str)):
            # `invoke up --help`: invoke hands --help to a task's positional argument as its value
            # (it prints help only for `invoke --help up`), so the task shows its help itself.
            sys.exit(subprocess.run([sys.executable, "-m", "invoke", "--help", fn.__name__.replace("_", "-")],
                                    cwd=ROOT).returncode)
        try:
            return fn(*args, **kwargs)
        except LabError as exc:
            raise Exit(f"mqlab: {exc}", code=1) from None
        except UnexpectedExit as exc:
            raise Exit(f"mqlab: `{exc.result.command}` failed with exit {exc.result.exited}", code=exc.result.exited or 1) from None

    return wrapper


def _runner(c) -> lab_stack.InvokeRunner:
    return lab_stack.InvokeRunner(c)


def _config(offline: bool = False):
    return lab_config.load(ROOT, offline or lab_config.offline_default())


def _echo(message: str) -> None:
    print(f"mqlab: {message}", flush=True)


@task(help={
    "stack": f"the stack to start: {STACK_NAMES}",
    "consumers": "how many consumer containers to start (default 1, or MQLAB_CONSUMERS)",
    "mode": "delivery mode (default: the stack's safe one). " + MODES_HELP,
    "binding": "RabbitMQ topic mode: the consumers' binding pattern, such as 'orders.*' (default '#')",
    "expose": "publish the ports on MQLAB_EXPOSE_BIND (default 0.0.0.0), not only 127.0.0.1; "
              "refused with default credentials, and for Kafka",
    "offline": OFFLINE_HELP,
    "metrics": "also start Prometheus (127.0.0.1:PROMETHEUS_PORT, default 9090) with the broker's exporter "
               "(RabbitMQ's own plugin, redis_exporter; none for Kafka) and the services' /metrics",
    "swarm": "deploy on the swarm this engine manages (`invoke hosts up N` makes a local one), generated from "
             "the same compose file: nothing published, brokers by name, broker node K on the worker labelled "
             "mqlab.node=K",
    "ui": "also start the broker's web UI on a 127.0.0.1 port: redis-commander (Redis stacks), "
          "kafka-ui (Kafka stacks, not with --offline); RabbitMQ's management UI is always up",
})
@lab_task
def up(c, stack, consumers=None, mode=None, binding=None, expose=False, offline=False, metrics=False, ui=False,
       swarm=False):
    """Start a stack: the broker, its consumers and a steady producer; waits until healthy."""
    cfg = _config(offline)
    n = cfg.integer("MQLAB_CONSUMERS", 1, 0, 32) if consumers is None else lab_stack.parse_int(consumers, "consumers")
    settings = {"MQLAB_BINDING": binding} if binding else {}
    if swarm:
        lab_hosts.swarm_up(cfg, stack, n, _echo, mode=mode, settings=settings, metrics=metrics, ui=ui, expose=expose)
        return
    lab_stack.up(cfg, stack, n, _runner(c), _echo, mode=mode, settings=settings, expose=expose, metrics=metrics, ui=ui)


@task(positional=["stack"], help={
    "stack": f"the stack to stop ({STACK_NAMES}), or `all` for every running mqlab stack",
    "volumes": "also remove the stack's volumes (a clean slate: broker data is lost)",
})
@lab_task
def down(c, stack, volumes=False):
    """Stop a stack (or all of them) and remove its containers; on the swarm, remove the stack."""
    name = None if stack == "all" else stack
    if lab_hosts.swarm_down(_config(), name, volumes, _echo) and name is not None:
        return
    lab_stack.down(_config(), name, volumes, _runner(c), _echo)


@task
@lab_task
def ps(c):
    """List the containers of every mqlab stack, with state, health and ports."""
    on_swarm = lab_hosts.swarm_ps()
    rows = lab_stack.ps()
    if rows or not on_swarm:
        print(lab_stack.render_ps(rows))
    if on_swarm:
        print(("\n" if rows else "") + "on the swarm:\n" + on_swarm)


@task(help={
    "service": "one service: producer, consumer, the broker's name, or all (the default)",
    "stack": "the stack; needed only when several are running",
    "follow": "keep printing new lines until Ctrl-C",
    "tail": "show only the last N lines of each container",
})
@lab_task
def logs(c, service="all", stack=None, follow=False, tail=None):
    """Show the logs of a running stack's services."""
    n = None if tail is None else lab_stack.parse_int(tail, "tail")
    lab_stack.logs(_config(), stack, None if service == "all" else service, follow, n, _runner(c))


@task(help={
    "stack": f"the running stack to scale ({STACK_NAMES})",
    "consumers": "the number of consumer containers wanted",
})
@lab_task
def scale(c, stack, consumers):
    """Change the number of consumer containers of a running stack."""
    lab_stack.scale(_config(), stack, lab_stack.parse_int(consumers, "consumers"), _runner(c), _echo)


@task(help={
    "stack": f"the running stack to send to ({STACK_NAMES})",
    "count": "how many messages to send (1 to 10,000,000)",
    "size": "the size of each message in bytes, envelope included (default 512)",
    "run_id": "a name for this run (default: a new time-based id)",
    "rate": "send at this many messages per second (default: as fast as the broker confirms)",
    "poison_every": "make every K-th message fail processing, to see dead-lettering (default 0: none)",
})
@lab_task
def produce(c, stack, count, size=512, run_id=None, rate=None, poison_every=0):
    """Send COUNT messages through a one-shot producer container, with a progress bar."""
    n = lab_stack.parse_int(count, "count")
    s = lab_stack.parse_int(size, "size")
    cfg = _config()
    with Progress(TextColumn("acked"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False) as bar:
        job = bar.add_task("acked", total=n)
        run = lab_stack.produce(cfg, stack, n, s, run_id, lambda done, total: bar.update(job, completed=done),
                                _echo, _runner(c), rate=None if rate is None else lab_stack.parse_float(rate, "rate"),
                                poison_every=lab_stack.parse_int(poison_every, "poison-every"))
    _echo(f"run {run} sent; check it with `invoke verify {stack}`")


@task(help={
    "stack": f"the stack the run went through ({STACK_NAMES})",
    "run_id": "the run to check (default: the latest `invoke produce` on this stack)",
    "settle": "stop waiting when nothing new arrived for this many seconds (default 10)",
    "timeout": "wait at most this many seconds for consumers to catch up (default 120)",
    "plot": "also draw the run's timeline to .mqlab/timelines/<run id>.png: send, ack and delivery rates, latency "
            "points, the faults from the event file shaded, lost and duplicated messages at their send time",
})
@lab_task
def verify(c, stack, run_id=None, settle=10, timeout=120, plot=False):
    """Account for every message of a run: sent, received, lost, duplicated. Fails if any acked message is lost."""
    cfg = _config()
    report, text = lab_stack.verify(cfg, stack, run_id, lab_stack.parse_float(settle, "settle"),
                                    lab_stack.parse_float(timeout, "timeout"))
    print(text)
    if plot:
        _echo(f"timeline: {lab_stack.plot(cfg, get_stack(stack), report).relative_to(ROOT)}")
    if not report.ok:
        raise Exit(code=1)


@task(help={
    "stack": f"the running stack ({STACK_NAMES})",
    "fault": "kill-broker, restart-broker, pause-broker, partition, kill-consumer, kill-producer, slow-network; "
             "on every node of a stack: kill-node, pause-node, partition-node (the node cut off from everything, "
             "its clients included), isolate-node (cut off from its peers only: its clients still reach it), "
             "rolling-restart; on Swarm (`invoke up <stack> --swarm`): isolate-host (the machine that runs the "
             "node cut off from every other machine: its link down)",
    "duration": "how long the fault lasts, in seconds (default per fault; at most 600)",
    "service": "partition and slow-network: which service to hit: consumer, producer or broker",
    "node": "kill-node, pause-node, partition-node, isolate-node, isolate-host: a node number (1-3), leader "
            "(default: the "
            "partition leader, quorum queue leader or Redis primary) or follower",
})
@lab_task
def chaos(c, stack, fault, duration=None, service=None, node=None):
    """Break a running stack on purpose for a bounded time, then restore it; prints each step."""
    seconds = None if duration is None else lab_stack.parse_float(duration, "duration")
    lab_faults.inject_fault(_config(), stack, fault, seconds, _echo, service, node)


@task(help={
    "stack": "the running cluster (kafka-cluster, rabbitmq-cluster, redis-sentinel)",
    "faults": f"comma-separated node faults to run (default: all of {', '.join(lab_faults.PROOF_FAULTS)}; on "
              f"Swarm {', '.join(lab_faults.SWARM_FAULTS)})",
    "nodes": "comma-separated targets of kill-node, pause-node, partition-node and isolate-node: leader, "
             "follower (default: both); rolling-restart restarts every node",
    "rounds": "rounds per fault and target (default 5, at most 50)",
    "rate": "messages per second produced during each round (default 200)",
    "size": "the size of each message in bytes (default 256)",
    "control": "then run the same rounds in the cluster's unsafe control mode (kafka-cluster leader-ack, "
               "redis-sentinel stream, rabbitmq-cluster work) and print its tables beside the safe ones: "
               "a checker that never saw a loss has not shown that it can see one",
    "swarm": "the stack deployed with `invoke up <stack> --swarm`: its faults act through each swarm node's "
             "engine, and isolate-host cuts off a whole machine",
})
@lab_task
def proof(c, stack, faults="", nodes="leader,follower", rounds=5, rate=200, size=256, control=False, swarm=False):
    """Run R rounds of each node fault under a steady produce, verify and read back each round, one table per fault."""
    cfg = _config()
    text, saved, why = lab_faults.prove(cfg, stack, _words(faults), _words(nodes),
                                        lab_stack.parse_int(rounds, "rounds"), lab_stack.parse_float(rate, "rate"),
                                        lab_stack.parse_int(size, "size"), _runner(c), _echo, control=control,
                                        swarm=swarm)
    print(text)
    _echo(f"every round is in {saved.with_suffix('.json')}; the tables and pictures in {saved}")
    if why:
        _echo(f"FAIL: {why}")
        raise Exit(code=1)


def _words(text: str) -> list[str]:
    return [word.strip() for word in str(text).split(",") if word.strip()]


@task(help={
    "stack": f"the running stack ({STACK_NAMES}); a log: Kafka, a Redis stream (queues cannot be read again)",
    "from_": "where to start: beginning (default), an offset (Kafka, in every partition), a Redis entry id "
             "(<ms>-<seq>), or a time such as 2026-12-04T21:30:00 (UTC unless it names its zone)",
    "count": "read at most this many messages (default 100, at most 1,000,000)",
})
@lab_task
def replay(c, stack, from_="beginning", count=100):
    """Read a log again without disturbing its consumers, and check it against the ledger."""
    text, ok = lab_stack.replay(_config(), stack, from_, lab_stack.parse_int(count, "count"))
    print(text)
    if not ok:
        raise Exit(code=1)


@task(help={
    "stack": f"the running stack ({STACK_NAMES})",
    "limit": "show at most this many messages (default 20)",
})
@lab_task
def dlq(c, stack, limit=20):
    """Show what is in the stack's dead-letter queue, stream or topic, and why it is there."""
    print(lab_stack.show_dlq(_config(), stack, lab_stack.parse_int(limit, "limit")))


@task(help={
    "stack": f"the running stack ({STACK_NAMES})",
    "watch": "refresh every N seconds until Ctrl-C (at most 1 hour)",
})
@lab_task
def stats(c, stack, watch=None):
    """Per consumer: messages received, rate, partitions or queue, and the backlog at the broker."""
    period = None if watch is None else lab_stack.parse_float(watch, "watch")
    deadline = time.monotonic() + 3600
    while True:
        print(lab_stack.show_stats(_config(), stack), flush=True)
        if not period or time.monotonic() > deadline:
            return
        time.sleep(max(period, 0.5))
        print()


@task(help={
    "stack": f"the running stack to watch ({STACK_NAMES})",
    "duration": "stop after this many seconds (default: at q or Ctrl-C, at most 1 hour)",
})
@lab_task
def top(c, stack, duration=None):
    """A live view of a running stack: rates, counters, the broker's leaders and backlog, faults and restarts as they happen."""
    lab_stack.watch(_config(), stack, None if duration is None else lab_stack.parse_float(duration, "duration"))


class _FillsStack(Argument):
    """A flag that, when given, stands in for the task's positional stack (see StackOrCompare)."""

    stack: Argument

    def set_value(self, value, cast=True):
        super().set_value(value, cast)
        if value and self.stack.value is None:
            self.stack.set_value("", cast=False)


class StackOrCompare(LabTask):
    """`invoke bench <stack>` or `invoke bench --compare`: invoke's positional arguments are
    required, so --compare fills in the stack (with "") when it is given."""

    def get_arguments(self, *args, **kwargs):
        arguments = super().get_arguments(*args, **kwargs)
        stack = next(a for a in arguments if a.name == "stack")
        return [_fills(a, stack) if a.name == "compare" else a for a in arguments]


def _fills(flag: Argument, stack: Argument) -> _FillsStack:
    """The same flag as a _FillsStack (invoke's Argument keeps what it was made with)."""
    made = _FillsStack(names=flag.names, kind=flag.kind, default=flag.default, help=flag.help,
                       optional=flag.optional, incrementable=flag.incrementable, attr_name=flag.attr_name)
    made.stack = stack
    return made


@task(klass=StackOrCompare, positional=["stack"], help={
    "stack": f"the stack to benchmark ({STACK_NAMES}); started for the run (broker only) if it is not running; "
             "or ledger: the ledger's own speed on a synthetic run, no broker",
    "size": "message size in bytes, for mqlab and the native tool alike (default 1024); not for bench ledger: "
            "a receipt holds no message body",
    "rate": "messages per second in all, or 'max' for as fast as the client goes (default max)",
    "duration": "seconds measured per trial, after the warm-up (default 10)",
    "warmup": "seconds per trial before measuring starts (default 3)",
    "producers": "mqlab producer containers per trial; the rate is split between them (default 1)",
    "consumers": "mqlab consumer containers per trial (default 1)",
    "mode": "the mqlab delivery mode to measure (default: the broker's safe one); "
            "its lossy counterpart is measured too: rabbitmq autoack, redis pubsub, kafka autocommit",
    "repeat": "auto (the default): repeat every trial until each judged ratio's interval is within ±0.05, "
              "at least 3 times, at most 9, within --budget; or a number: exactly that many repeats",
    "budget": "--repeat auto: seconds the whole run may take at most (default: the planned time of 6 repeats, "
              "what a bootstrap interval needs)",
    "quick": "a first look in about a minute: one client, the safe mode and its bare loop, one short repeat, "
             "no tool and no latency trials; printed as preliminary, with no ✓ or ✗",
    "latency_rate": "the fixed rate of the latency trials, msg/s (default 1000; 0 for none)",
    "client": "the Python client(s) to measure: for Kafka kafka-python or confluent-kafka (default: all, "
              "side by side); RabbitMQ has pika, Redis redis-py",
    "no_native": "skip the broker's own tool (PerfTest, redis-benchmark, kafka-*-perf-test)",
    "no_bare": "skip the bare client (the same library and safety settings without the lab's code; "
               "gives O = mqlab ÷ bare client, at max rate only)",
    "profile": "run mqlab's and the bare client's containers under py-spy and write the top entries of each "
               "profile to .mqlab/bench/<run>-profile.md",
    "compare": "do not run anything: put the latest run of every benchmarked stack into one table and plot",
    "count": "bench ledger only: messages in the synthetic run (default 10,000,000)",
    "offline": OFFLINE_HELP,
})
@lab_task
def bench(c, stack, size="", rate="max", duration=10.0, warmup=3.0, producers=1, consumers=1, mode=None,
          repeat="auto", latency_rate=1000, client="all", no_native=False, no_bare=False, profile=False,
          compare=False, count=10_000_000, budget="", quick=False, offline=False):
    """Measure throughput and end-to-end latency of mqlab's clients next to the broker's own tool."""
    if stack == "ledger":
        if str(size).strip():
            raise Exit("mqlab: bench ledger takes no --size: a receipt holds no message body (ids, sequence "
                       "numbers, times), so the ledger's work is the same for any message size", code=2)
        result, saved = lab_bench.bench_ledger(ROOT, lab_stack.parse_int(count, "count"), _echo)
        print(result)
        _echo(f"wrote {saved.relative_to(ROOT)}")
        if not result.endswith("OK: verify found exactly what was planted"):
            raise Exit(code=1)
        return
    cfg = _config(offline)
    if compare:
        if stack:
            raise Exit("mqlab: --compare takes no stack: it uses the latest run of every stack", code=2)
        table, files = lab_bench.compare(cfg)
        print(table)
        _echo("wrote " + ", ".join(str(f.relative_to(ROOT)) for f in files))
        return
    if not stack:
        raise Exit(f"mqlab: name a stack to benchmark ({STACK_NAMES}), or use --compare", code=2)
    params = lab_bench.BenchParams.from_flags(
        size=size, rate=rate, duration=duration, warmup=warmup, producers=producers,
        consumers=consumers, mode=mode, repeat=repeat, latency_rate=latency_rate, client=client, native=not no_native,
        bare=not no_bare, profile=profile, budget=budget, quick=quick)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn()) as bar:
        job = bar.add_task("starting", total=1.0)
        run = lab_bench.bench(cfg, stack, params, _echo,
                              lambda done, label: bar.update(job, completed=done, description=label), _runner(c))
        bar.update(job, completed=1.0, description="done")
    print(lab_bench.markdown(run))
    out = lab_bench.BENCH_DIR
    _echo(f"wrote {out}/{run['id']}.json, .md, -throughput.png and -latency.png; "
          "`invoke bench --compare` puts the stacks side by side")


class _ActionFillsNodes(Argument):
    """The action of `invoke hosts`: any but `up` stands in for the node count (see HostsTask)."""

    nodes: Argument

    def set_value(self, value, cast=True):
        super().set_value(value, cast)
        if value != "up" and self.nodes.value is None:
            self.nodes.set_value("", cast=False)


class HostsTask(LabTask):
    """`invoke hosts up N`, `invoke hosts down`, `invoke hosts status`: invoke's positional
    arguments are required, so an action other than `up` fills in the node count (with "")."""

    def get_arguments(self, *args, **kwargs):
        arguments = super().get_arguments(*args, **kwargs)
        nodes = next(a for a in arguments if a.name == "nodes")
        action = next(a for a in arguments if a.name == "action")
        made = _ActionFillsNodes(names=action.names, kind=action.kind, default=action.default, help=action.help,
                                 positional=True, optional=action.optional, incrementable=action.incrementable,
                                 attr_name=action.attr_name)
        made.nodes = nodes
        return [made if a is action else a for a in arguments]


HOSTS_ACTIONS = ("up", "down", "status")


@task(klass=HostsTask, positional=["action", "nodes"], help={
    "action": "up N: make a local swarm of N worker nodes (1-5), each a dockerd in its own network namespace, "
              "the local engine its manager; status: the nodes, their addresses, swarm state and images; "
              "down: undo everything up made",
    "nodes": "up: the number of worker nodes, 1 to 5",
    "images": "up: the images to load into each node, comma-separated names of `invoke images` "
              "(default: every lab image on the local engine), or none",
})
@lab_task
def hosts(c, action, nodes=None, images=None):
    """A local multi-node Docker Swarm on this machine (root): hosts up N, hosts status, hosts down."""
    if action not in HOSTS_ACTIONS:
        raise UsageError(f"unknown action {action!r}: choose up N, down or status")
    if action == "up":
        lab_hosts.up(ROOT, nodes, _config().get(lab_hosts.SUBNET_KEY, lab_hosts.DEFAULT_SUBNET), images, _echo)
        print(lab_hosts.status())
    elif images is not None:
        raise UsageError(f"--images is for `hosts up`, not `hosts {action}`")
    elif action == "down":
        if not lab_hosts.down(_echo):
            _echo("no rig is up: nothing to take down")
    else:
        text = lab_hosts.status()
        print(text) if text is not None else _echo("no rig is up (`invoke hosts up N` makes one)")


@task(help={
    "rebuild": "rebuild every image even when an up-to-date one exists",
    "only": "build only this image (base, rabbitmq, redis, kafka, bitnami-kafka, bitnami-zookeeper, services)",
})
@lab_task
def images(c, rebuild=False, only=None):
    """Build every image the stacks use from Debian packages and Maven Central, without a registry."""
    lab_images.build_all(ROOT, rebuild=rebuild, only=only, progress=_echo)


@task(help={
    "unit": "run only the unit tests (no Docker needed)",
    "e2e": "run only the end-to-end tests (a real engine and brokers)",
    "stack": f"run only the e2e tests of this stack ({STACK_NAMES})",
    "k": "only tests matching this pytest -k expression",
})
@lab_task
def test(c, unit=False, e2e=False, stack=None, k=None):
    """Run the test suite: unit tests, then end-to-end tests against real stacks."""
    argv = [sys.executable, "-m", "pytest", "-v", "--durations=25"]  # the slowest, to keep CI short
    if unit and not e2e:
        argv.append("tests/unit")
    elif e2e and not unit:
        argv.append("tests/e2e")
    else:
        argv += ["tests/unit", "tests/e2e"]  # the fast ones first
    if stack:
        argv += ["-m", get_stack(stack).name.replace("-", "_")]
    if k:
        argv += ["-k", k]
    c.run(shlex.join(argv), pty=False, in_stream=False)
