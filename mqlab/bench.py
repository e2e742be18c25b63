"""`invoke bench <stack>`: the lab's services against the broker's own benchmark tool.

One run is a list of trials, each bounded in time (warm-up + duration, then a short drain):

=============  =====================================================================
trial          what runs
=============  =====================================================================
safe           mqlab's producer(s) and consumer(s) in bench mode, in ``--mode``
               (default: the broker's safe mode), at ``--rate`` (default: max)
lossy          the same at the same rate in the broker's lossy mode (RabbitMQ
               autoack, Redis pubsub, Kafka autocommit): the price of safety
native         the broker's own tool with the same message size and safety
               (PerfTest, redis-benchmark, kafka-producer/consumer-perf-test)
safe, native   again at ``--latency-rate`` (1,000 msg/s): latency at a fixed rate
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
import math
import os
import platform
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from mqlab_services.settings import CLIENTS

from . import benchreport, compose, native, preflight
from .config import LabConfig
from .errors import LabError, UsageError
from .lab import check_mode, ensure_broker_images
from .modes import mode_info
from .stacks import STACKS, Stack, get_stack

Echo = Callable[[str], None]
#: progress(fraction of the run done, what runs now)
Progress = Callable[[float, str], None]

BENCH_DIR = Path(".mqlab") / "bench"
SCHEMA = 1
#: The services' defaults of MQLAB_BATCH and MQLAB_PREFETCH; what the services use is given to
#: the native tools too: PerfTest's confirm window and qos, redis-benchmark's pipeline.
BATCH = 100
PREFETCH = 200
PROBE_RECORDS = 50_000  # a native tool's short run that sizes a max-rate run to --duration
MAX_RECORDS = 20_000_000
DRAIN_S = 10.0  # after the producers' end, consumers stop once idle for 1 s, or after this
START_LEAD_S = 6.0  # seconds from launching a trial's containers to its start time
SUBSCRIBE_TIMEOUT_S = 60.0
RESULT_GRACE_S = 90.0  # beyond the trial's own length, before its containers are removed
LIMITS = {
    "size": (1, 1024 * 1024),
    "duration": (1, 600),
    "warmup": (0, 120),
    "producers": (1, 8),
    "consumers": (1, 8),
    "repeat": (1, 9),
}


@dataclass(frozen=True)
class BenchParams:
    size: int = 1024
    rate: float | None = None  # None: as fast as the client goes
    duration: float = 10.0
    warmup: float = 3.0
    producers: int = 1
    consumers: int = 1
    mode: str | None = None
    repeat: int = 3
    latency_rate: float | None = 1000.0  # None: no fixed-rate latency trials
    native: bool = True
    clients: tuple[str, ...] | None = None  # None: every client the services have for the broker

    @classmethod
    def from_flags(cls, *, size, rate, duration, warmup, producers, consumers, mode, repeat, latency_rate,
                   client, native: bool) -> "BenchParams":
        """The parameters from the task's flags, as text or numbers: ``rate`` may be 'max',
        ``latency_rate`` 0 (no fixed-rate trials), ``client`` 'all' or a comma-separated list."""
        latency = preflight.parse_float(latency_rate, "latency-rate")
        return cls(size=preflight.parse_int(size, "size"), rate=parse_rate(rate),
                   duration=preflight.parse_float(duration, "duration"),
                   warmup=preflight.parse_float(warmup, "warmup"),
                   producers=preflight.parse_int(producers, "producers"),
                   consumers=preflight.parse_int(consumers, "consumers"), mode=mode,
                   repeat=preflight.parse_int(repeat, "repeat"),
                   latency_rate=None if latency == 0 else parse_rate(latency, "latency-rate"), native=native,
                   clients=None if client in ("", "all", None) else tuple(client.split(",")))


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
        if not low <= value <= high:
            raise UsageError(f"--{name} must be from {low:,} to {high:,}, got {value!r}")
    mode = check_mode(stack, params.mode)
    known = clients_of(stack.broker)
    clients = params.clients or known
    unknown = [c for c in clients if c not in known]
    if unknown:
        raise UsageError(f"unknown client {unknown[0]!r} for {stack.name}: choose {', '.join(known)} or all")
    return replace(params, mode=mode, clients=tuple(clients))


@dataclass(frozen=True)
class Trial:
    label: str  # "mqlab work", "PerfTest", ...
    role: str  # safe | unsafe | native
    phase: str  # throughput | latency
    rate: float | None
    mode: str | None  # mqlab trials: the services' mode
    repeat: int
    client: str | None = None  # mqlab trials: the Python client


def plan(stack: Stack, params: BenchParams) -> list[Trial]:
    """The trials of a run, repeats interleaved so that drift spreads over every kind."""
    phases = [("throughput", params.rate)]
    if params.latency_rate is not None and params.latency_rate != params.rate:
        phases.append(("latency", params.latency_rate))
    unsafe = mode_info(stack.broker, params.mode).lossy  # "" when the mode is lossy itself
    clients = params.clients or clients_of(stack.broker)

    def label(mode: str, client: str) -> str:
        return f"mqlab {mode}" + (f" ({client})" if len(clients) > 1 else "")

    trials = []
    for repeat in range(params.repeat):
        for phase, rate in phases:
            for client in clients:
                trials.append(Trial(label(params.mode, client), "safe", phase, rate, params.mode, repeat, client))
                if phase == "throughput" and unsafe:
                    trials.append(Trial(label(unsafe, client), "unsafe", phase, rate, unsafe, repeat, client))
            if params.native:
                trials.append(Trial(native.TOOL_LABEL[stack.broker], "native", phase, rate, None, repeat))
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
             "MQLAB_GROUP": name, "MQLAB_DLQ": f"{name}.dead", "MQLAB_DLX": f"{name}.dlx"}
    if mode in ("fanout", "topic"):
        names["MQLAB_EXCHANGE"] = f"{name}.{mode}"
    return names


def client_cpus(cpus: int) -> tuple[str, str] | None:
    """(broker cpuset, clients cpuset) for pinning, or None on one CPU."""
    if cpus < 2:
        return None
    half = cpus // 2
    broker = "0" if half == 1 else f"0-{half - 1}"
    clients = str(half) if cpus - half == 1 else f"{half}-{cpus - 1}"
    return broker, clients


class Bench:
    """One benchmark run of one stack."""

    def __init__(self, config: LabConfig, stack: Stack, params: BenchParams, echo: Echo, progress: Progress):
        self.config = config
        self.stack = stack
        self.params = params
        self.echo = echo
        self.progress = progress
        self.client = preflight.docker_client()
        self.id = f"{stack.name}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
        self.out = config.root / BENCH_DIR
        self.parts_dir = config.ledger_dir / "_bench" / self.id
        self.pinning = client_cpus(os.cpu_count() or 1)
        self.batch = config.integer("MQLAB_BATCH", BATCH, 1, 100_000)
        self.prefetch = config.integer("MQLAB_PREFETCH", PREFETCH, 1, 65_535)
        self.started_stack = False
        self.trials: list[dict] = []
        self._done_s = 0.0
        self._total_s = 1.0

    # -- compose --------------------------------------------------------------------
    def _env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **compose.compose_env(self.config), **extra}
        env["MQLAB_CLIENT_CPUS"] = self.pinning[1] if self.pinning else ""
        return env

    def _compose(self, *args: str) -> list[str]:
        return compose.compose_argv(self.config, self.stack, *args)

    def _run(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self._compose(*args), env=self._env(), capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"`docker compose {' '.join(args[:3])}` took over {timeout:.0f} s") from None

    def _running(self) -> bool:
        containers = preflight.running_projects(self.client).get(self.stack.project, [])
        services = {c.labels.get("com.docker.compose.service") for c in containers if c.status == "running"}
        return all(b in services for b in self.stack.brokers)

    def ensure_up(self) -> None:
        """Start the broker if it is not running (and remember to stop it at the end)."""
        preflight.check_compose()
        ensure_broker_images(self.config, self.stack, self._compose_runner, self.echo, self.client)
        if not self.config.offline:
            self._check(self._run("build", "producer", timeout=900), "building the services image")
        if self._running():
            self.echo(f"{self.stack.name} is running: benchmarking it as it is")
            return
        preflight.check_ports(self.config, self.stack, self.client)
        self.config.ledger_dir.mkdir(parents=True, exist_ok=True)
        self.echo(f"starting {self.stack.name} (broker only) for the benchmark; it is stopped again at the end")
        self.started_stack = True
        self._check(self._run("up", "--detach", "--wait", "--no-build", *self.stack.brokers, timeout=600),
                    f"starting {self.stack.name}")

    @staticmethod
    def _compose_runner(argv, *, env=None, capture=False, check=True):
        """A compose.Runner for the library calls that take one (pulling images)."""
        result = subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
        return SimpleNamespace(exited=result.returncode, stdout=result.stdout)

    @staticmethod
    def _check(result: subprocess.CompletedProcess, what: str) -> None:
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise LabError(f"{what} failed (exit {result.returncode}): {' | '.join(tail) or 'no output'}")

    def _broker_containers(self) -> list:
        return [c for c in preflight.running_projects(self.client).get(self.stack.project, [])
                if c.labels.get("com.docker.compose.service") in self.stack.brokers and c.status == "running"]

    def pin(self, pinned: bool) -> None:
        if not self.pinning:
            return
        cpus = self.pinning[0] if pinned else f"0-{(os.cpu_count() or 1) - 1}"
        for container in self._broker_containers():
            container.update(cpuset_cpus=cpus)

    def down(self) -> None:
        """Stop a stack the benchmark started; its volumes stay (they may hold older data)."""
        if self.started_stack:
            self.echo(f"stopping {self.stack.name} (it was started for the benchmark)")
            subprocess.run(compose.down_argv(self.config, self.stack, volumes=False), env=self._env(),
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=300)

    # -- trials ---------------------------------------------------------------------
    def _wait(self, procs: list[subprocess.Popen], until: float, label: str, names: list[str]) -> None:
        """Wait for containers to exit, moving the progress bar; remove them at ``until``."""
        started = time.monotonic()
        while any(p.poll() is None for p in procs):
            if time.time() > until:
                self._remove(names)
                for p in procs:
                    p.wait(timeout=60)
                raise LabError(f"{label}: the bench containers did not finish in time; they were removed")
            elapsed = time.monotonic() - started
            self.progress(min(1.0, (self._done_s + min(elapsed, trial_seconds(self.params))) / self._total_s), label)
            time.sleep(0.25)

    def _remove(self, names: list[str]) -> None:
        for name in names:
            try:
                self.client.containers.get(name).remove(force=True)
            except Exception:
                pass

    def _launch(self, service: str, name: str, env: dict[str, str], args: list[str], log: Path) -> subprocess.Popen:
        argv = self._compose("run", "--rm", "--no-deps", "-T", "--name", name,
                             *[a for key, value in env.items() for a in ("-e", f"{key}={value}")],
                             service, "bench", *args)
        with log.open("w") as out:
            return subprocess.Popen(argv, env=self._env(), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)

    def _wait_subscribed(self, names: list[str], procs: list[subprocess.Popen], label: str) -> None:
        from .stats import read_status

        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
        while True:
            ready = sum(bool(read_status(self.config.ledger_dir, n).get("subscribed")) for n in names)
            if ready == len(names):
                return
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                self._remove(names)
                raise LabError(f"{label}: {ready} of {len(names)} bench consumer(s) subscribed; "
                               f"see the logs in {self.parts_dir}")
            time.sleep(0.2)

    def mqlab_trial(self, trial: Trial, trial_id: str) -> dict:
        p = self.params
        parts = self.parts_dir / trial_id
        parts.mkdir(parents=True, exist_ok=True)
        env = {**bench_names(trial_id, trial.mode), "MQLAB_MODE": trial.mode or ""}
        if self.stack.broker == "kafka":
            env["MQLAB_KAFKA_CLIENT"] = trial.client or clients_of("kafka")[0]
        start = time.time() + START_LEAD_S
        common = ["--out", f"/ledger/_bench/{self.id}/{trial_id}", "--trial", trial_id, "--start", f"{start:.3f}",
                  "--warmup", f"{p.warmup:g}", "--duration", f"{p.duration:g}"]
        prefix = f"{self.stack.project}-bench-{trial_id}"
        consumers = [f"{prefix}-c{i}" for i in range(p.consumers)]
        producers = [f"{prefix}-p{i}" for i in range(p.producers)]
        procs = [self._launch("consumer", name, {**env, "MQLAB_NAME": name}, ["consumer", *common],
                              parts / f"{name}.log") for name in consumers]
        try:
            self._wait_subscribed(consumers, procs, trial.label)
            rate = [] if trial.rate is None else ["--rate", f"{trial.rate / p.producers:g}"]
            procs += [self._launch("producer", name, {**env, "MQLAB_NAME": name},
                                   ["producer", *common, "--size", str(p.size), *rate], parts / f"{name}.log")
                      for name in producers]
            self._wait(procs, start + p.warmup + p.duration + DRAIN_S + RESULT_GRACE_S, trial.label,
                       consumers + producers)
        finally:
            self._remove(consumers + producers)
            self._delete_topology(env)
            for name in consumers:
                (self.config.ledger_dir / "_status" / f"{name}.json").unlink(missing_ok=True)
        producers_out, consumers_out = benchreport.read_parts(parts)
        failed = [proc.returncode for proc in procs if proc.returncode]
        if not producers_out or not consumers_out:
            logs = sorted(parts.glob("*.log"))
            tail = logs[-1].read_text(errors="replace").strip().splitlines()[-2:] if logs else []
            raise LabError(f"{trial.label}: no results (exit codes {failed}): {' | '.join(tail)}")
        return benchreport.merge_mqlab(producers_out, consumers_out)

    def _delete_topology(self, names: dict[str, str]) -> None:
        """Remove what a trial made on the broker (see bench_names; missing keys are skipped):
        its data would only fill memory and disk."""
        from . import clients

        def present(*keys: str) -> list[str]:
            return [names[k] for k in keys if names.get(k)]

        try:
            if self.stack.broker == "rabbitmq":
                connection = clients.rabbitmq(self.config)
                try:
                    channel = connection.channel()
                    for queue in present("MQLAB_QUEUE", "MQLAB_DLQ"):
                        channel.queue_delete(queue)
                    for exchange in present("MQLAB_EXCHANGE", "MQLAB_DLX"):
                        channel.exchange_delete(exchange)
                finally:
                    connection.close()
            elif self.stack.broker == "redis":
                client = clients.redis(self.config)
                try:
                    client.delete(*present("MQLAB_STREAM", "MQLAB_DLQ"))
                finally:
                    client.close()
            else:
                from kafka import KafkaAdminClient

                admin = KafkaAdminClient(bootstrap_servers=clients.kafka_bootstrap(self.config),
                                         request_timeout_ms=15_000)
                try:
                    existing = set(admin.list_topics())
                    topics = [t for t in present("MQLAB_TOPIC", "MQLAB_DLQ") if t in existing]
                    if topics:
                        admin.delete_topics(topics)
                finally:
                    admin.close()
        except Exception as exc:  # cleaning up is best effort: say so, go on
            self.echo(f"could not delete the trial's {self.stack.broker} data: {type(exc).__name__}: {exc}")

    def _tool(self, *args: str, seconds: float) -> str:
        """Run the broker's tool (its compose service) and return what it printed."""
        service = native.SERVICE[self.stack.broker]
        result = self._run("run", "--rm", "-T", service, *args, timeout=seconds + 180)
        if result.returncode != 0:
            raise LabError(f"{service} failed (exit {result.returncode}): "
                           f"{native.gist(result.stdout + chr(10) + result.stderr)}")
        return result.stdout

    def native_trial(self, trial: Trial, trial_id: str) -> dict:
        """The broker's own tool with the lab's message size and safety settings."""
        p = self.params
        seconds = p.warmup + p.duration
        names = bench_names(trial_id)
        try:
            if self.stack.broker == "rabbitmq":
                uri = f"amqp://{self.config.get('RABBITMQ_USER', 'guest')}:{self.config.get('RABBITMQ_PASSWORD', 'guest')}@rabbitmq:5672/%2F"
                out = self._tool(*native.perftest_argv(
                    uri=uri, size=p.size, seconds=math.ceil(seconds), rate=trial.rate, producers=p.producers,
                    consumers=p.consumers, queue=names["MQLAB_QUEUE"], confirm=self.batch, prefetch=self.prefetch,
                    test_id=trial_id), seconds=seconds)
                result = native.parse_perftest(out, warmup_s=p.warmup, size=p.size)
            elif self.stack.broker == "redis":
                result = self._redis_benchmark(trial, names["MQLAB_STREAM"])
            else:
                result = self._kafka_perf(trial, names["MQLAB_TOPIC"])
        finally:
            self._delete_topology(names)
        return benchreport.native_trial(result)

    def _redis_benchmark(self, trial: Trial, stream: str):
        """redis-benchmark has no duration and no rate: a short probe sizes a max-rate run to
        --duration; at a fixed rate, one unpipelined connection sends as many requests."""
        p = self.params

        def run(requests: int, pipeline: int) -> native.NativeResult:
            argv = native.redis_benchmark_argv(size=p.size, requests=requests, stream=stream, pipeline=pipeline,
                                               clients=p.producers, password=self.config.get("REDIS_PASSWORD") or None)
            return native.parse_redis_benchmark(self._tool(*argv, seconds=p.duration * 3), size=p.size)

        if trial.rate is not None:
            return run(native.records_for(trial.rate, p.duration), 1)
        probe = run(PROBE_RECORDS, self.batch)
        return run(min(MAX_RECORDS, native.records_for(probe.send_rate, p.duration)), self.batch)

    def _kafka_perf(self, trial: Trial, topic: str):
        """kafka-producer-perf-test (sized by a probe at max rate), then kafka-consumer-perf-test
        reading what it produced."""
        p = self.params
        major = native.KAFKA_TOOLS_MAJOR[self.stack.name]

        def produce(records: int, warmup: int, rate: float | None, to: str) -> native.NativeResult:
            argv = native.kafka_producer_argv(topic=to, size=p.size, num_records=records, rate=rate,
                                              warmup_records=warmup, major=major)
            return native.parse_kafka_producer(self._tool(*argv, seconds=3 * (p.warmup + p.duration)))

        rate = trial.rate
        if rate is None:
            probe_topic = f"{topic}.probe"
            try:
                rate = produce(PROBE_RECORDS, PROBE_RECORDS // 5, None, probe_topic).send_rate
            finally:
                self._delete_topology({"MQLAB_TOPIC": probe_topic})
        records = min(MAX_RECORDS, native.records_for(rate, p.warmup + p.duration))
        warmup = min(records - 1, int(rate * p.warmup))
        producer = produce(records, warmup, trial.rate, topic)
        consumer = native.parse_kafka_consumer(self._tool(*native.kafka_consumer_argv(
            topic=topic, num_records=records, timeout_ms=30_000, major=major), seconds=60 + p.duration),
            expected=records)
        return native.kafka_result(producer, consumer)

    # -- the run --------------------------------------------------------------------
    def run(self) -> dict:
        p = self.params
        trials = plan(self.stack, p)
        self._total_s = len(trials) * trial_seconds(p)
        self.ensure_up()
        try:
            self.pin(True)
            for number, trial in enumerate(trials, 1):
                trial_id = f"{self.id.lower()}-{number:02d}"
                label = f"[{number}/{len(trials)}] {trial.label} @ {benchreport.fmt_target_rate(trial.rate)}"
                self.progress(self._done_s / self._total_s, label)
                if trial.role == "native":
                    record = self.native_trial(trial, trial_id)
                else:
                    record = self.mqlab_trial(trial, trial_id)
                record.update({"label": trial.label, "role": trial.role, "phase": trial.phase, "rate": trial.rate,
                               "repeat": trial.repeat, "trial": trial_id, "client_name": trial.client})
                self.trials.append(record)
                self._done_s += trial_seconds(p)
                self.echo(f"{label}: {describe(record)}")
        finally:
            try:
                self.pin(False)
            finally:
                self.down()
        return self.save()

    def environment(self) -> dict:
        images = {}
        for key in (*self.stack.images, "MQLAB_SERVICES_IMAGE", native.IMAGE_KEY.get(self.stack.broker, "")):
            name = self.config.get(key)
            if name:
                try:
                    images[name] = self.client.images.get(name).short_id
                except Exception:
                    images[name] = None
        info = {}
        try:
            info = self.client.info()
        except Exception:
            pass
        return {
            "host": {"cpus": os.cpu_count(), "cpu_model": _cpu_model(), "memory_gib": info.get("MemTotal", 0) / 2**30,
                     "kernel": platform.release(), "python": platform.python_version()},
            "docker": info.get("ServerVersion"),
            "images": images,
            "offline_images": self.config.offline,
            "knobs": {"MQLAB_BATCH": self.batch, "MQLAB_PREFETCH": self.prefetch},
            "pinning": (f"broker on CPU {self.pinning[0]}, clients on CPU {self.pinning[1]}" if self.pinning
                        else "no pinning (one CPU)"),
        }

    def save(self) -> dict:
        run = {
            "schema": SCHEMA,
            "id": self.id,
            "stack": self.stack.name,
            "broker": self.stack.broker,
            "mode": self.params.mode,
            "unsafe_mode": mode_info(self.stack.broker, self.params.mode).lossy or None,
            "params": asdict(self.params),
            "environment": self.environment(),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "trials": self.trials,
        }
        run["summary"] = benchreport.summarise(self.trials)
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / f"{self.id}.json", run)
        (self.out / f"{self.id}.md").write_text(benchreport.markdown(run))
        benchreport.plot_run(run, self.out)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return run


def describe(record: dict) -> str:
    lat = record.get("latency") or {}
    text = f"sent {benchreport.fmt_rate(record['send_rate'])} msg/s"
    if record.get("recv_rate") is not None:
        text += f", received {benchreport.fmt_rate(record['recv_rate'])} msg/s"
    text += f", {record['latency_kind']} p50 {benchreport.fmt_ns(lat.get('p50'))} p99 {benchreport.fmt_ns(lat.get('p99'))}"
    ack = record.get("ack_latency") or {}
    if ack.get("p99") is not None:
        text += f" (ack p99 {benchreport.fmt_ns(ack['p99'])})"
    if record.get("error"):
        text += f"; errors: {record['error']}"
    return text


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def bench(config: LabConfig, stack_name: str, params: BenchParams, echo: Echo, progress: Progress) -> dict:
    """Run the benchmark of one stack; returns the run (as saved in ``.mqlab/bench/<id>.json``)."""
    stack = get_stack(stack_name)
    params = check_params(stack, params)
    return Bench(config, stack, params, echo, progress).run()


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
    """The latest run of each stack in one Markdown table and one plot; returns the table and files."""
    directory = config.root / BENCH_DIR
    latest: dict[str, dict] = {}
    for run in load_runs(directory):
        latest[run["stack"]] = run
    wanted = stacks or [s for s in STACKS if s in latest]
    missing = [s for s in wanted if s not in latest]
    if missing or not wanted:
        raise UsageError(f"no benchmark run of {', '.join(missing) or 'any stack'} in {BENCH_DIR}: "
                         f"run `invoke bench {(missing or ['rabbitmq'])[0]}` first")
    runs = [latest[s] for s in wanted]
    table = benchreport.compare_markdown(runs)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    md = directory / f"compare-{stamp}.md"
    md.write_text("# mqlab benchmark: latest run per stack\n\n" + table)
    png = benchreport.plot_compare(runs, directory / f"compare-{stamp}.png")
    return table, [md, png]
