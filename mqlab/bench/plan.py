"""`invoke bench <stack>`: the lab's services against the broker's own benchmark tool.

One run is a list of trials, each bounded in time (warm-up + duration, then a short drain):

=============  =====================================================================
trial          what runs
=============  =====================================================================
safe           mqlab's producer(s) and consumer(s) in bench mode, in ``--mode``
               (default: the broker's safe mode), at ``--rate`` (default: max)
lossy          the same at the same rate in the broker's lossy mode (RabbitMQ
               autoack, Redis pubsub, Kafka autocommit): the price of safety
bare           at max rate, in the safe and the lossy mode: the bare client, the plain loop
               of the same library with the same settings, batch and pinning, without the
               lab's envelope, ledger or per-message bookkeeping (mqlab_services.bare):
               O = mqlab ÷ bare is what the lab's own code costs
native         the broker's own tool with the same message size and safety
               (PerfTest, redis-benchmark, kafka-producer/consumer-perf-test)
safe, native   again at ``--latency-rate`` (1,000 msg/s): latency at a fixed rate; with
               them the bare client's safe loop, one message per round trip when due
               (MQLAB_BATCH=1), whose ack p99 is the client's own floor
=============  =====================================================================

Each trial is repeated ``--repeat`` times (interleaved), and the report takes medians.
mqlab's trials run ``bench producer``/``bench consumer`` from the services image with
``docker compose run`` on the stack's network, on a queue, stream or topic of their own
(``bench.<trial>``, deleted afterwards), so the lab's steady traffic does not mix in.
Their results come back as JSON files through the ledger directory. With two or more
CPUs, the broker containers are pinned to the first half of them and every client to
the rest (``docker update --cpuset-cpus`` and ``MQLAB_CLIENT_CPUS``); the broker's
pinning is undone at the end. A stack that was not running is started (broker only)
and taken down again at the end.

Results go to ``.mqlab/bench/``: ``<run>.json`` (parameters, environment, every trial
with its time series and quantiles, the summary), ``<run>.md``, and the PNG plots
``<run>-throughput.png`` and ``<run>-latency.png``. :func:`compare` puts the latest run
of each stack into one table and one plot.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from mqlab_services.bare import MODES as BARE_MODES
from mqlab_services.settings import CLIENTS

from .. import brokers
from ..brokers import NativeRun
from ..config import LabConfig
from ..errors import LabError, UsageError
from ..modes import mode_info
from ..stack import compose, preflight
from ..stack.lifecycle import check_mode
from ..stacks import STACKS, Stack, get_stack
from . import record as bench_record
from . import spread as bench_spread
from . import report as bench_report
from .stack import BenchStack

Echo = Callable[[str], None]
#: progress(fraction of the run done, what runs now)
Progress = Callable[[float, str], None]

BENCH_DIR = Path(".mqlab") / "bench"
SCHEMA = 1
#: The services' defaults of MQLAB_BATCH and MQLAB_PREFETCH; what the services use is given to
#: the native tools too: PerfTest's confirm window and qos, redis-benchmark's pipeline.
BATCH = 100
PREFETCH = 200
DRAIN_S = 10.0  # after the producers' end, consumers stop once idle for 1 s, or after this
START_LEAD_S = 6.0  # seconds from launching a trial's containers to its start time
RESULT_GRACE_S = 90.0  # beyond the trial's own length, before its containers are removed
LIMITS = {
    "size": (1, 1024 * 1024),
    "duration": (1, 600),
    "warmup": (0, 120),
    "producers": (1, 8),
    "consumers": (1, 8),
    "repeat": (1, 9),
    "budget": (60, 7200),
}
#: ``--quick``: the safe mode and its bare loop, one short repeat, no tool, no latency trials.
QUICK = {"repeat": 1, "duration": 4.0, "warmup": 1.0, "native": False, "latency_rate": None, "lossy": False,
         "quick": True}
MAX_AUTO_REPEATS = 9  # --repeat auto stops here whatever the intervals say


@dataclass(frozen=True)
class BenchParams:
    size: int = 1024
    rate: float | None = None  # None: as fast as the client goes
    duration: float = 10.0
    warmup: float = 3.0
    producers: int = 1
    consumers: int = 1
    mode: str | None = None
    repeat: int | None = None  # None: auto, repeated until every judged interval is narrow or the budget is spent
    budget: float | None = None  # --repeat auto: seconds at most for the whole run; None: default_budget
    latency_rate: float | None = 1000.0  # None: no fixed-rate latency trials
    native: bool = True
    bare: bool = True  # the bare client at max rate (O = mqlab ÷ bare)
    profile: bool = False  # run mqlab's and the bare client's containers under py-spy
    clients: tuple[str, ...] | None = None  # None: every client the services have for the broker
    lossy: bool = True  # the lossy twin (and its bare loop) beside the safe mode
    quick: bool = False  # a preliminary look: judged by no target

    @classmethod
    def from_flags(cls, *, size, rate, duration, warmup, producers, consumers, mode, repeat, latency_rate,
                   client, native: bool, bare: bool = True, profile: bool = False, budget=None,
                   quick: bool = False) -> "BenchParams":
        """The parameters from the task's flags, as text or numbers: ``rate`` may be 'max',
        ``repeat`` 'auto', ``latency_rate`` 0 (no fixed-rate trials), ``client`` 'all' or a
        comma-separated list. ``quick``: one client, the safe mode and its bare loop, one short
        repeat (QUICK), whatever the other flags say about those."""
        latency = preflight.parse_float(latency_rate, "latency-rate")
        params = cls(size=cls.size if str(size).strip() == "" else preflight.parse_int(size, "size"),
                     rate=parse_rate(rate),
                     duration=preflight.parse_float(duration, "duration"),
                     warmup=preflight.parse_float(warmup, "warmup"),
                     producers=preflight.parse_int(producers, "producers"),
                     consumers=preflight.parse_int(consumers, "consumers"), mode=mode,
                     repeat=None if str(repeat).strip().lower() == "auto" else preflight.parse_int(repeat, "repeat"),
                     budget=None if budget in (None, "") else preflight.parse_float(budget, "budget"),
                     latency_rate=None if latency == 0 else parse_rate(latency, "latency-rate"), native=native,
                     bare=bare, profile=profile,
                     clients=None if client in ("", "all", None) else tuple(client.split(",")))
        return replace(params, **QUICK) if quick else params


def parse_rate(value, name: str = "rate") -> float | None:
    """``max`` (or nothing) means as fast as possible; otherwise messages per second."""
    if value is None or str(value).strip().lower() in ("", "max"):
        return None
    rate = preflight.parse_float(value, name)
    if not 1 <= rate <= 1_000_000:
        raise UsageError(f"--{name} must be 'max' or from 1 to 1,000,000 messages/s, got {value!r}")
    return rate


def check_params(stack: Stack, params: BenchParams) -> BenchParams:
    for name, (low, high) in LIMITS.items():
        value = getattr(params, name)
        if value is not None and not low <= value <= high:
            raise UsageError(f"--{name} must be from {low:,} to {high:,}, got {value!r}")
    mode = check_mode(stack, params.mode)
    known = clients_of(stack.broker)
    clients = params.clients or known
    unknown = [c for c in clients if c not in known]
    if unknown:
        raise UsageError(f"unknown client {unknown[0]!r} for {stack.name}: choose {', '.join(known)} or all")
    return replace(params, mode=mode, clients=tuple(clients[:1]) if params.quick else tuple(clients))


@dataclass(frozen=True)
class Trial:
    label: str  # "mqlab work", "PerfTest", ...
    role: str  # safe | unsafe | bare | bare-unsafe | native
    phase: str  # throughput | latency
    rate: float | None
    mode: str | None  # mqlab trials: the services' mode
    repeat: int
    client: str | None = None  # mqlab trials: the Python client


def plan(stack: Stack, params: BenchParams) -> list[Trial]:
    """The trials of a run with a fixed ``--repeat``, repeats interleaved so that drift spreads
    over every kind (``--repeat auto`` asks for one repeat at a time: :func:`plan_repeat`)."""
    return [t for repeat in range(params.repeat or 1) for t in plan_repeat(stack, params, repeat)]


def plan_repeat(stack: Stack, params: BenchParams, repeat: int) -> list[Trial]:
    """The trials of one repeat: every kind once."""
    phases = [("throughput", params.rate)]
    if params.latency_rate is not None and params.latency_rate != params.rate:
        phases.append(("latency", params.latency_rate))
    unsafe = mode_info(stack.broker, params.mode).lossy if params.lossy else ""  # "": the mode is lossy itself
    clients = params.clients or clients_of(stack.broker)

    def label(mode: str, client: str, who: str = "mqlab") -> str:
        return f"{who} {mode}" + (f" ({client})" if len(clients) > 1 else "")

    bare = [(role, mode) for role, mode in (("bare", params.mode), ("bare-unsafe", unsafe))
            if params.bare and params.rate is None and mode in BARE_MODES.get(stack.broker, ())]
    # The bare loop measures only its acks: beside a tool that measures end to end it has nothing to add.
    bare_latency = params.bare and params.mode in BARE_MODES.get(stack.broker, ()) \
        and brokers.of(stack).tool_latency != "e2e"
    trials = []
    for phase, rate in phases:
        for client in clients:
            trials.append(Trial(label(params.mode, client), "safe", phase, rate, params.mode, repeat, client))
            if phase == "throughput" and unsafe:
                trials.append(Trial(label(unsafe, client), "unsafe", phase, rate, unsafe, repeat, client))
            if phase == "throughput":
                trials += [Trial(label(mode, client, "bare"), role, phase, None, mode, repeat, client)
                           for role, mode in bare if mode]
            elif bare_latency:  # the bare client's own ack latency at the same rate: the p99's floor
                trials.append(Trial(label(params.mode, client, "bare"), "bare", phase, rate, params.mode,
                                    repeat, client))
        if params.native:
            trials.append(Trial(brokers.of(stack).tool_label, "native", phase, rate, None, repeat))
    return trials


def clients_of(broker: str) -> tuple[str, ...]:
    """The Python clients the services can use for ``broker``; the first is the default."""
    return tuple(name for name, _dist in CLIENTS[broker])


def trial_seconds(params: BenchParams) -> float:
    """About how long one trial takes, for the progress bar."""
    return START_LEAD_S + params.warmup + params.duration + 3.0


def bench_names(trial_id: str, mode: str | None = None) -> dict[str, str]:
    """The services' settings that give a trial a queue, stream, topic and group of its own
    (and, in RabbitMQ's fanout and topic modes, an exchange)."""
    name = f"bench.{trial_id}"
    names = {"MQLAB_QUEUE": name, "MQLAB_STREAM": name, "MQLAB_CHANNEL": name, "MQLAB_TOPIC": name,
             "MQLAB_GROUP": name, "MQLAB_DLQ": f"{name}.dead", "MQLAB_DLX": f"{name}.dlx",
             "MQLAB_OUTPUT": f"{name}.out"}
    if mode in ("fanout", "topic"):
        names["MQLAB_EXCHANGE"] = f"{name}.{mode}"
    return names


class Bench:
    """One benchmark run of one stack: the trials in order, then the saved results."""

    def __init__(self, config: LabConfig, stack: Stack, params: BenchParams, echo: Echo, progress: Progress,
                 run: compose.Runner):
        self.config = config
        self.stack = stack
        self.params = params
        self.echo = echo
        self.progress = progress
        self.on = BenchStack(config, stack, run, echo)
        self.id = f"{stack.name}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
        self.parts_dir = config.ledger_dir / "_bench" / self.id
        self.batch = config.integer("MQLAB_BATCH", BATCH, 1, 100_000)
        self.prefetch = config.integer("MQLAB_PREFETCH", PREFETCH, 1, 65_535)
        self.trials: list[dict] = []
        self._done_s = 0.0
        self._total_s = 1.0
        self.stopped_because = ""

    def _tick(self, label: str) -> Callable[[float], None]:
        per_trial = trial_seconds(self.params)
        return lambda waited: self.progress(min(1.0, (self._done_s + min(waited, per_trial)) / self._total_s), label)

    def mqlab_trial(self, trial: Trial, trial_id: str) -> dict:
        p = self.params
        parts = self.parts_dir / trial_id
        parts.mkdir(parents=True, exist_ok=True)
        env = {**bench_names(trial_id, trial.mode), "MQLAB_MODE": trial.mode or "",
               "MQLAB_KAFKA_CLIENT": trial.client or ""}
        if trial.role == "bare" and trial.rate is not None:  # one message per round trip, when due
            env["MQLAB_BATCH"] = "1"
        start = time.time() + START_LEAD_S
        common = ["--out", f"/ledger/_bench/{self.id}/{trial_id}", "--trial", trial_id, "--start", f"{start:.3f}",
                  "--warmup", f"{p.warmup:g}", "--duration", f"{p.duration:g}",
                  *(["--bare"] if trial.role.startswith("bare") else [])]
        prefix = f"{self.stack.project}-bench-{trial_id}"
        consumers = [f"{prefix}-c{i}" for i in range(p.consumers)]
        producers = [f"{prefix}-p{i}" for i in range(p.producers)]
        out = f"/ledger/_bench/{self.id}/{trial_id}"

        def profile(name: str) -> str | None:
            return f"{out}/{name}.pyspy" if p.profile else None

        jobs = [self.on.launch("consumer", name, {**env, "MQLAB_NAME": name}, ["consumer", *common],
                               parts / f"{name}.log", profile(name)) for name in consumers]
        try:
            self.on.wait_subscribed(consumers, jobs, trial.label, self.parts_dir)
            rate = [] if trial.rate is None else ["--rate", f"{trial.rate / p.producers:g}"]
            jobs += [self.on.launch("producer", name, {**env, "MQLAB_NAME": name},
                                    ["producer", *common, "--size", str(p.size), *rate], parts / f"{name}.log",
                                    profile(name))
                     for name in producers]
            self.on.wait(jobs, start + p.warmup + p.duration + DRAIN_S + RESULT_GRACE_S, trial.label,
                         consumers + producers, self._tick(trial.label))
        finally:
            self.on.remove(consumers + producers)
            self.on.delete(env)
            for name in consumers:
                (self.config.ledger_dir / "_status" / f"{name}.json").unlink(missing_ok=True)
        return self._mqlab_results(trial, parts, [job.wait() for job in jobs])

    @staticmethod
    def _mqlab_results(trial: Trial, parts: Path, exits: list[int]) -> dict:
        producers_out, consumers_out = bench_report.read_parts(parts)
        if not producers_out or not consumers_out:
            logs = sorted(parts.glob("*.log"))
            tail = logs[-1].read_text(errors="replace").strip().splitlines()[-2:] if logs else []
            raise LabError(f"{trial.label}: no results (exit codes {[e for e in exits if e]}): {' | '.join(tail)}")
        record = bench_report.merge_mqlab(producers_out, consumers_out)
        profiles = {}
        for path in sorted(parts.glob("*.pyspy")):  # <project>-bench-<trial>-p0.pyspy, ...-c0.pyspy
            name = path.stem.rsplit("-", 1)[-1]
            role = "producer" if name.startswith("p") else "consumer"
            profiles[f"{role} {name}"] = bench_report.profile_summary(path.read_text(errors="replace"))
        if profiles:
            record["profile"] = profiles
        return record

    def native_trial(self, trial: Trial, trial_id: str) -> dict:
        """The broker's own tool with the lab's message size and safety settings."""
        p = self.params
        made = bench_names(trial_id)
        run = NativeRun(config=self.config, stack=self.stack, size=p.size, seconds=p.warmup + p.duration,
                        warmup=p.warmup, duration=p.duration, rate=trial.rate, producers=p.producers,
                        consumers=p.consumers, batch=self.batch, prefetch=self.prefetch, trial_id=trial_id,
                        names=made, tool=self.on.tool, delete=self.on.delete)
        try:
            result = brokers.of(self.stack).native_trial(run)
        finally:
            self.on.delete(made)
        return bench_report.native_trial(result)

    def run(self) -> dict:
        p = self.params
        per_repeat = len(plan_repeat(self.stack, p, 0)) * trial_seconds(p)
        budget = p.budget or default_budget(per_repeat)
        self._total_s = per_repeat * p.repeat if p.repeat else budget
        self.on.ensure_up()
        started = time.monotonic()
        try:
            self.on.pin(True)
            for repeat in range(p.repeat or MAX_AUTO_REPEATS):
                if p.repeat is None:
                    go, self.stopped_because = bench_spread.more_repeats(
                        judged_spreads(bench_report.summarise(self.trials)), repeat, time.monotonic() - started,
                        budget, per_repeat)
                    if not go:
                        break
                for trial in plan_repeat(self.stack, p, repeat):
                    self._run_trial(trial)
            else:
                self.stopped_because = (f"the {p.repeat} repeat(s) asked for" if p.repeat else
                                        f"the most repeats auto runs ({MAX_AUTO_REPEATS})")
        finally:
            try:
                self.on.pin(False)
            finally:
                self.on.down()
        self.echo(f"stopped after {1 + max((t['repeat'] for t in self.trials), default=-1)} repeat(s): "
                  f"{self.stopped_because}")
        return self.save()

    def _run_trial(self, trial: Trial) -> None:
        number = len(self.trials) + 1
        trial_id = f"{self.id.lower()}-{number:02d}"
        label = f"[{number}] repeat {trial.repeat + 1}: {trial.label} @ {bench_report.fmt_target_rate(trial.rate)}"
        self.progress(min(1.0, self._done_s / self._total_s), label)
        run = self.native_trial if trial.role == "native" else self.mqlab_trial
        record = run(trial, trial_id)
        record.update({"label": trial.label, "role": trial.role, "phase": trial.phase, "rate": trial.rate,
                       "repeat": trial.repeat, "trial": trial_id, "client_name": trial.client})
        self.trials.append(record)
        self._done_s += trial_seconds(self.params)
        self.echo(f"{label}: {describe(record)}")

    def save(self) -> dict:
        run = {
            "schema": SCHEMA,
            "id": self.id,
            "stack": self.stack.name,
            "broker": self.stack.broker,
            "mode": self.params.mode,
            "unsafe_mode": mode_info(self.stack.broker, self.params.mode).lossy or None,
            "params": asdict(self.params),
            "environment": bench_record.environment(self.config, self.stack, self.on, self.batch, self.prefetch),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "trials": self.trials,
            "repeats": {"asked": self.params.repeat or "auto", "done": 1 + max((t["repeat"] for t in self.trials),
                                                                               default=-1),
                        "stopped": self.stopped_because},
        }
        run["summary"] = bench_report.summarise(self.trials)
        bench_record.save(run, self.config.root / BENCH_DIR)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return run


def default_budget(per_repeat_s: float) -> float:
    """--repeat auto's budget when none is given: the planned time of as many repeats as a
    bootstrap interval needs (spread.BOOTSTRAP_FROM), so the rule can reach one; a stack with
    more trials a repeat (Kafka's two clients) gets a longer budget, not fewer repeats."""
    return per_repeat_s * bench_spread.BOOTSTRAP_FROM


#: The ratios judged against a target, whose intervals --repeat auto narrows.
JUDGED = ("r_send", "o_send", "o_unsafe", "safe_vs_unsafe", "p99_ratio")


def judged_spreads(summary: dict) -> list[bench_spread.Spread | None]:
    """The interval of every judged ratio of every client, so far."""
    by_client = summary.get("by_client") or {"": summary.get("ratios") or {}}
    return [bench_spread.Spread(**r["spreads"][name]) if name in (r.get("spreads") or {}) else None
            for r in by_client.values() for name in JUDGED]


def describe(record: dict) -> str:
    lat = record.get("latency") or {}
    text = f"sent {bench_report.fmt_rate(record['send_rate'])} msg/s"
    if record.get("recv_rate") is not None:
        text += f", received {bench_report.fmt_rate(record['recv_rate'])} msg/s"
    text += (f", {record['latency_kind']} p50 {bench_report.fmt_ns(lat.get('p50'))} "
             f"p99 {bench_report.fmt_ns(lat.get('p99'))}")
    ack = record.get("ack_latency") or {}
    if ack.get("p99") is not None:
        text += f" (ack p99 {bench_report.fmt_ns(ack['p99'])})"
    if record.get("error"):
        text += f"; errors: {record['error']}"
    return text


def bench(config: LabConfig, stack_name: str, params: BenchParams, echo: Echo, progress: Progress,
          run: compose.Runner) -> dict:
    """Run the benchmark of one stack; returns the run (as saved in ``.mqlab/bench/<id>.json``)."""
    stack = get_stack(stack_name)
    if stack.cluster:
        single = [s.name for s in STACKS.values() if s.broker == stack.broker and not s.cluster]
        raise UsageError(f"bench measures single-node stacks: use {' or '.join(single)}; "
                         f"`invoke proof {stack.name}` measures the cluster under faults")
    params = check_params(stack, params)
    return Bench(config, stack, params, echo, progress, run).run()


def load_runs(directory: Path) -> list[dict]:
    """Every saved run, oldest first (files that are not runs are skipped)."""
    runs = []
    for path in sorted(directory.glob("*.json")):
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(run, dict) and run.get("schema") == SCHEMA and "summary" in run:
            runs.append(run)
    return sorted(runs, key=lambda r: r.get("finished", ""))


def compare(config: LabConfig, stacks: list[str] | None = None) -> tuple[str, list[Path]]:
    """The latest run of each stack in one Markdown table and one plot; returns the table and files.
    A run under the profiler (slowed down) or a --quick look (no judgement) is not compared."""
    directory = config.root / BENCH_DIR
    latest: dict[str, dict] = {}
    for run in load_runs(directory):
        params = run.get("params", {})
        if not (params.get("profile") or params.get("quick")):
            latest[run["stack"]] = run
    wanted = stacks or [s for s in STACKS if s in latest]
    missing = [s for s in wanted if s not in latest]
    if missing or not wanted:
        raise UsageError(f"no benchmark run of {', '.join(missing) or 'any stack'} in {BENCH_DIR} "
                         f"(runs under --profile or --quick are not compared): "
                         f"run `invoke bench {(missing or ['rabbitmq'])[0]}` first")
    runs = [latest[s] for s in wanted]
    table = bench_report.compare_markdown(runs)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    md = directory / f"compare-{stamp}.md"
    md.write_text("# mqlab benchmark: latest run per stack\n\n" + table)
    png = bench_report.plot_compare(runs, directory / f"compare-{stamp}.png")
    return table, [md, png]
