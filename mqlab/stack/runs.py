"""Runs of messages: `invoke produce` (a one-shot producer with an acked-progress bar) and
`invoke verify` (the ledger's account of a run, and the final read of the broker's log)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable

from mqlab_services.envelope import valid_run_id

from .. import brokers, events, ledger
from ..config import LabConfig
from ..ledger import picture
from ..errors import LabError, UsageError
from ..modes import mode_info
from ..stacks import Stack, get_stack
from . import compose, preflight
from .containers import consumer_names, running_stack
from .lifecycle import check_mode, running_settings

Echo = Callable[[str], None]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class LineCounter:
    """Counts lines in growing files, reading only what was appended since the last call."""

    def __init__(self, directory: Path, pattern: str):
        self.directory, self.pattern = directory, pattern
        self.seen: dict[Path, tuple[int, int]] = {}  # path -> (bytes read, lines)

    def __call__(self) -> int:
        for path in self.directory.glob(self.pattern):
            offset, lines = self.seen.get(path, (0, 0))
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            self.seen[path] = (offset + len(chunk), lines + chunk.count(b"\n"))
        return sum(lines for _, lines in self.seen.values())


def check_run_id(run_id: str) -> str:
    if not valid_run_id(run_id):
        raise UsageError(f"--run-id must be letters, digits, '.', '_' or '-', got {run_id!r}")
    return run_id


def check_rate(rate: float | None) -> float | None:
    if rate is not None and not 0 < rate <= 1_000_000:
        raise UsageError(f"--rate must be a number of messages per second from 1 to 1,000,000, got {rate!r}")
    return rate


def start_run(config: LabConfig, stack: Stack, count: int, size: int, run_id: str, rate: float | None,
               poison_every: int, client) -> tuple[Path, dict[str, str]]:
    """Record a run's settings in its ledger directory; the settings the producer gets."""
    settings = running_settings(client, stack)
    mode = check_mode(stack, settings.get("MQLAB_MODE"))
    directory = ledger.run_dir(config.ledger_dir, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    ledger.write_run_info(directory, {"stack": stack.name, "mode": mode, "count": count, "size": size,
                                      "rate": rate, "poison_every": poison_every, "settings": settings,
                                      "started_ns": time.time_ns()})
    ledger.record_latest(config.ledger_dir, stack.name, run_id)
    return directory, {**settings, "MQLAB_MODE": mode}


def producer_argv(config: LabConfig, stack: Stack, client, settings: dict[str, str], count: int, size: int,
                  run_id: str, rate: float | None, poison_every: int = 0) -> list[str]:
    """The one-shot producer's command line: `docker compose run` on one engine; on Swarm a
    container on the manager, on the stack's overlay network, with the steady producer's settings."""
    on_swarm = preflight.swarm_services(client, stack)
    if "producer" not in on_swarm:
        return compose.produce_argv(config, stack, count, size, run_id, rate, poison_every)
    spec = on_swarm["producer"].attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    env = {k: v for k, v in preflight.service_env(on_swarm["producer"]).items() if k.startswith("MQLAB_")}
    return compose.swarm_produce_argv(config, stack, spec["Image"].split("@", 1)[0], {**env, **settings},
                                      count, size, run_id, rate, poison_every)


def produce(config: LabConfig, stack_name: str, count: int, size: int, run_id: str | None,
            progress: Callable[[int, int], None], echo: Echo, run: compose.Runner, poll: float = 0.25,
            rate: float | None = None, poison_every: int = 0) -> str:
    """Run a one-shot producer container for ``count`` messages (at ``rate`` msg/s, or as fast as
    confirms allow), reporting acked progress. Returns the run id; raises LabError when it fails."""
    stack = get_stack(stack_name)
    preflight.check_count(count)
    preflight.check_size(size)
    check_rate(rate)
    if not 0 <= poison_every <= count:
        raise UsageError(f"--poison-every must be from 0 (none) to the count, got {poison_every!r}")
    run_id = check_run_id(run_id) if run_id else new_run_id()
    client = preflight.docker_client()
    running_stack(stack.name, client)
    directory, settings = start_run(config, stack, count, size, run_id, rate, poison_every, client)
    output = directory / "producer-output.log"
    acked = LineCounter(directory, "sent-*.tsv")
    job = run.start(producer_argv(config, stack, client, settings, count, size, run_id, rate, poison_every),
                    env={**compose.compose_env(config), **settings}, log=output)
    try:
        while job.running():
            progress(acked(), count)
            time.sleep(poll)
    except KeyboardInterrupt:
        job.interrupt()
        job.wait()
        raise
    exited = job.wait()
    progress(acked(), count)
    if exited != 0:
        tail = output.read_text(errors="replace").strip().splitlines()[-3:]
        raise LabError(f"producer failed (exit {exited}): " + (" | ".join(tail) or "no output")
                       + f" (run {run_id}: `invoke verify {stack.name} --run-id {run_id}` checks what was acked)")
    return run_id


def final_read(config: LabConfig, stack: Stack, mode: str, run_id: str) -> ledger.FinalRead:
    """Read the broker's log back at every position the run's producers recorded."""
    broker = brokers.of(stack)
    if not broker.log_position:
        return ledger.not_read(broker.no_read_back(mode))
    try:
        return ledger.read_back(ledger.run_dir(config.ledger_dir, run_id), broker.log_position,
                                lambda positions: broker.read_log(config, mode, positions))
    except Exception as exc:  # each client raises its own kind when the broker does not answer
        return ledger.not_read(f"{stack.name} did not answer ({type(exc).__name__}: {str(exc)[:120]})")


def output_read(config: LabConfig, stack: Stack, mode: str, run_id: str) -> ledger.OutputRead:
    """txn: the run's ids in the output topic, read read_committed, against its acked ids."""
    directory = ledger.run_dir(config.ledger_dir, run_id)
    broker = brokers.of(stack)
    topic = brokers.names(stack.broker, mode).output
    started = ledger.read_run_info(directory).get("started_ns", 0)
    try:
        return ledger.judge_output(directory, topic, broker.read_output(config, mode, run_id, started))
    except Exception as exc:  # each client raises its own kind when the broker does not answer
        return ledger.output.not_read(f"{stack.name} did not answer ({type(exc).__name__}: {str(exc)[:120]})")


TIMELINE_DIR = "timelines"  # under .mqlab: one PNG per plotted run


def missing_ids(config: LabConfig, run_id: str, lost: int, final: ledger.FinalRead | None) -> set[str]:
    """The acked ids of a run that no consumer received (all ``lost`` of them), or that are
    gone from the broker's log."""
    missing = set(ledger.read_run(config.ledger_dir, run_id, sample_lost=lost).lost_ids) if lost else set()
    if final is not None and final.read:
        missing |= set(final.gone_ids)
    return missing


def timeline_panel(config: LabConfig, stack: Stack, run_id: str, title: str, lost: int,
                   final: ledger.FinalRead | None, kind: str = "competing") -> picture.Panel:
    """One run's timeline: its rates, latency, lost and duplicated messages, and every fault the
    event file holds for its stack in its time (the one path of `verify --plot` and `proof`)."""
    faults, _ = events.read(config.events_file, stack.name)
    return picture.Panel(title, picture.series(ledger.run_dir(config.ledger_dir, run_id),
                                               missing_ids(config, run_id, lost, final), faults=faults,
                                               per_subscriber=kind != "competing"))


def plot(config: LabConfig, stack: Stack, report: ledger.Report) -> Path:
    """``.mqlab/timelines/<run id>.png``: the timeline of a verified run."""
    directory = config.root / ".mqlab" / TIMELINE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    panel = timeline_panel(config, stack, report.run_id, f"run {report.run_id}, mode {report.mode or '?'}",
                           report.lost, report.final, report.kind)
    return picture.draw(directory / f"{report.run_id}.png", f"{stack.name}: {report.sent:,} sent, "
                        f"{report.lost:,} lost, {report.duplicated:,} duplicated", [panel])


class SwarmReceipts:
    """Copies a run's receipts from every swarm node's engine into the local ledger when called
    (LabError naming a node that cannot be read); :attr:`read`: files per node, last time."""

    def __init__(self, config: LabConfig, client, stack: Stack, run_id: str):
        self.config, self.client, self.stack, self.run_id = config, client, stack, run_id
        self.read: dict[str, int] = {}

    def __call__(self) -> None:
        from ..hosts import engines  # the hosts layer builds on this one

        self.read = engines.gather(self.config, self.client, self.stack, self.run_id,
                                   ledger.run_dir(self.config.ledger_dir, self.run_id))


def swarm_gatherer(config: LabConfig, stack: Stack, run_id: str) -> SwarmReceipts | None:
    """For a stack on Swarm, its :class:`SwarmReceipts`; None for one engine."""
    try:
        client = preflight.docker_client()
    except LabError:
        return None
    return SwarmReceipts(config, client, stack, run_id) if preflight.swarm_services(client, stack) else None


def verify(config: LabConfig, stack_name: str, run_id: str | None, settle: float, timeout: float,
           on_poll: Callable[[ledger.Report], None] | None = None) -> tuple[ledger.Report, str]:
    stack = get_stack(stack_name)
    run_id = run_id or ledger.latest_run(config.ledger_dir, stack.name)
    gather = swarm_gatherer(config, stack, run_id)
    report = ledger.wait_for_run(config.ledger_dir, run_id, settle=settle, timeout=timeout, on_poll=on_poll,
                                 gather=gather)
    report.final = final_read(config, stack, report.mode, run_id)
    info = mode_info(stack.broker, report.mode) if report.mode else None
    if info is not None and info.transactional:
        report.output = output_read(config, stack, report.mode, run_id)
    try:
        names = consumer_names(preflight.docker_client(), stack)
    except LabError:
        names = {}
    text = ledger.render(report, names)
    if gather is not None:
        text += ("\nreceipts gathered from every swarm node's engine (files): "
                 + ", ".join(f"{node} {count}" for node, count in sorted(gather.read.items())))
    return report, text

