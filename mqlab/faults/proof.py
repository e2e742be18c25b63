"""`invoke proof <cluster>`: rounds of node faults under a steady produce, each round judged.

In the manner of the brokers' own replication tests (Kafka's ``replication_test.py``, the
Jepsen tests of Kafka and RabbitMQ): for each fault and target node, R rounds of

1. a one-shot producer at a fixed rate (its own run id, so each round is judged alone);
2. once it has acks on record, the fault (:mod:`.nodes`), which ends only when the cluster is
   whole again, and says what the broker or Docker showed of it (its evidence);
3. produce until the producer has 100 more acks (it recovered; at most 120 s), then 5 s
   more, then the producer is stopped (SIGTERM: what it had acked is on record), and the
   run is verified once consumers are done;
4. the final read: every acked message looked up in the broker's log where the broker put it
   (:mod:`mqlab.ledger.final_read`), independently of the consumers.

Each round gives: acked, received, lost (acked, never received), gone from the log (acked,
not in the log now), duplicated, the longest time without a producer ack (writers saw the
cluster unavailable) and without a delivery (consumers stalled). A round whose fault showed
no evidence proves nothing: it is counted as invalid, never as a pass.

A checker that never reported a loss has not shown that it can see one. So ``--control``
runs the same rounds again in the cluster's unsafe control mode (``Stack.control_mode``: the
configuration users run by mistake) and prints its tables beside the safe ones, saying for
each fault whether the control lost anything there.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .. import events, ledger, tables
from ..config import LabConfig
from ..errors import LabError, UsageError
from ..ledger import picture, timeline
from ..modes import mode_info
from ..stack import compose, lifecycle, preflight
from ..stack.containers import running_stack
from ..stack.lifecycle import current_mode
from ..stack.runs import LineCounter, final_read, output_read, producer_argv, start_run, swarm_gatherer, timeline_panel
from ..stacks import Stack, get_stack
from ..wait import poll_until
from . import chaos
from .common import client_for, containers, on_swarm
from .nodes import SWARM_REFUSED

Echo = Callable[[str], None]

FAULTS = tuple(f for f in chaos.NODE_FAULTS if f != "isolate-host")  # on one engine
SWARM_FAULTS = tuple(f for f in chaos.NODE_FAULTS if f not in SWARM_REFUSED)  # on Swarm: isolate-host too
TARGETS = ("leader", "follower")
PROOF_DIR = Path(".mqlab") / "proof"
LEAD_ACKS = 200  # acks on record before the fault starts
RECOVERY_ACKS = 100  # new acks after the fault: the producer has recovered
RECOVERY_S = 120.0  # at most this long to recover; the wait counts as unavailable
TAIL_S = 5.0  # produce this long after it recovered
MAX_ROUND_S = 600.0  # a round that takes longer is stopped and reported as failed
MAX_ROUNDS = 50
PAUSE_GAP_S = 2.0  # a pause shows in the broker's acks when none came for this long


@dataclass
class Round:
    fault: str
    target: str  # leader, follower, or "all" (rolling-restart)
    number: int
    run_id: str
    acked: int
    received: int  # unique acked messages received
    lost: int
    duplicated: int
    unavailable_s: float  # longest time without a producer ack
    stalled_s: float  # longest time without a delivery to any consumer
    fault_s: float  # the fault, from its start until the cluster was whole again
    gone: int | None = None  # acked, not in the broker's log now (None: a queue, nothing to read)
    gone_received: int = 0  # ... of which a consumer had received
    evidence: str = ""  # what the broker or Docker showed of the fault; "" makes the round invalid
    mode: str = ""
    fault_start_s: float = 0.0  # the fault's window, in seconds since the run's first ack
    fault_healed_s: float = 0.0
    # txn: the run's ids in the output topic, read read_committed (None: not a transactional mode)
    output_missing: int | None = None
    output_extra: int | None = None  # ids in the output more than once

    @property
    def valid(self) -> bool:
        return bool(self.evidence)


@dataclass
class Row:
    """One fault and target over its rounds."""

    fault: str
    target: str
    rounds: int
    invalid: int
    acked: int
    received: int
    lost: int
    gone: int | None
    duplicated: int
    unavailable_max_s: float
    unavailable_median_s: float
    stalled_max_s: float
    output: tuple[int, int] | None = None  # txn: (missing, more than once) in the output topic


def _output(rs: list[Round]) -> tuple[int, int] | None:
    if any(r.output_missing is None or r.output_extra is None for r in rs):
        return None
    return sum(r.output_missing for r in rs), sum(r.output_extra for r in rs)


def summarize(rounds: list[Round]) -> list[Row]:
    """Rows per (fault, target), in the order they first ran."""
    groups: dict[tuple[str, str], list[Round]] = {}
    for r in rounds:
        groups.setdefault((r.fault, r.target), []).append(r)
    return [Row(fault, target, len(rs), sum(not r.valid for r in rs), sum(r.acked for r in rs),
                sum(r.received for r in rs), sum(r.lost for r in rs),
                None if any(r.gone is None for r in rs) else sum(r.gone for r in rs),
                sum(r.duplicated for r in rs), max(r.unavailable_s for r in rs),
                statistics.median(r.unavailable_s for r in rs), max(r.stalled_s for r in rs), _output(rs))
            for (fault, target), rs in groups.items()]


HEADERS = ("target", "rounds", "acked", "received", "lost", "acked but gone from the log", "duplicated",
           "unavailable s, max (median)", "consumers resumed after s, max", "rounds without evidence")


# A transactional mode is judged on its output topic: its receipts are outside the transaction.
OUTPUT_HEADERS = ("output topic: missing", "output topic: more than once")


def _cells(r: Row) -> tuple[str, ...]:
    gone = "not read (a queue)" if r.gone is None else f"{r.gone:,}"
    cells = (r.target, str(r.rounds), f"{r.acked:,}", f"{r.received:,}", f"{r.lost:,}", gone, f"{r.duplicated:,}",
             f"{r.unavailable_max_s:.1f} ({r.unavailable_median_s:.1f})", f"{r.stalled_max_s:.1f}",
             f"{r.invalid} (invalid)" if r.invalid else "0")
    return cells + ((f"{r.output[0]:,}", f"{r.output[1]:,}") if r.output else ())


def render(stack: str, mode: str, rows: list[Row], markdown: bool = False, control: bool = False) -> str:
    """One table per fault; for a control, a line per fault on whether it showed a loss."""
    out = []
    for fault in dict.fromkeys(r.fault for r in rows):
        cells = [_cells(r) for r in rows if r.fault == fault]
        headers = HEADERS + (OUTPUT_HEADERS if all(r.output for r in rows if r.fault == fault) else ())
        title = f"{stack} (mode {mode}{', the unsafe control' if control else ''}): {fault}"
        table = tables.markdown(headers, cells) if markdown else tables.render(headers, cells, indent=2)
        out.append((f"**{title}**\n\n" if markdown else f"{title}\n") + table)
        if control:
            out[-1] += "\n" + "\n".join(control_verdict(r) for r in rows if r.fault == fault)
    return "\n\n".join(out)


def control_verdict(row: Row) -> str:
    """Whether the control lost acked messages under this fault: only then has the checker shown
    that it can see a loss here. Never "safe": a control that lost nothing proved nothing."""
    seen = row.lost + (row.gone or 0)
    if seen:
        return (f"  {row.target}: the control lost {row.lost:,} and {row.gone or 0:,} acked messages are gone from "
                "the log: the checker can see a loss under this fault")
    return f"  {row.target}: this fault did not show that the checker can see a loss here (the control lost nothing)"


def check_plan(stack: Stack, faults: list[str], targets: list[str], rounds: int, rate: float,
               swarm: bool = False) -> None:
    if not stack.cluster:
        raise UsageError(f"proof runs node faults on a cluster: {stack.name} has one node "
                         "(kafka-cluster, rabbitmq-cluster or redis-sentinel)")
    allowed = SWARM_FAULTS if swarm else FAULTS
    unknown = [f for f in faults if f not in allowed]
    if unknown or not faults:
        raise UsageError(f"unknown fault {', '.join(unknown) or '(none)'}{' on Swarm' if swarm else ''}: "
                         f"choose from {', '.join(allowed)}")
    wrong = [t for t in targets if t not in TARGETS]
    if wrong or not targets:
        raise UsageError(f"unknown node {', '.join(wrong) or '(none)'}: choose from {', '.join(TARGETS)}")
    if not 1 <= rounds <= MAX_ROUNDS:
        raise UsageError(f"--rounds must be from 1 to {MAX_ROUNDS}, got {rounds!r}")
    if not 10 <= rate <= 5000:
        raise UsageError(f"--rate must be from 10 to 5,000 messages per second, got {rate!r}")


def _stop_producer(client, stack: Stack, run_id: str) -> None:
    """SIGTERM the one-shot producer of ``run_id``: it stops sending and keeps what was acked."""
    for c in chaos.oneshot_producers(client, stack):
        if run_id in " ".join(c.attrs["Config"]["Cmd"] or []):
            c.kill(signal="SIGTERM")


def evidence_of(fault: str, shown: str, unavailable_s: float) -> str:
    """The round's evidence: what the broker or Docker showed; for a pause, a gap in the
    broker's acks counts too (a paused follower is not always noticed by its peers in time)."""
    if shown:
        return shown
    if fault == "pause-node" and unavailable_s >= PAUSE_GAP_S:
        return f"no producer ack for {unavailable_s:.1f} s (the broker's acks on record)"
    return ""


@dataclass(frozen=True)
class Plan:
    """What every round of a proof shares."""

    config: LabConfig
    stack: Stack
    mode: str
    rate: float
    size: int
    run: compose.Runner
    client: object
    echo: Echo


def _produce_through_fault(plan: Plan, fault: str, target: str, run_id: str, directory: Path, job):
    """Wait for the lead acks, run the fault, wait for the producer to recover."""
    acked = LineCounter(directory, "sent-*.tsv")
    started = time.monotonic()
    while acked() < LEAD_ACKS:
        if not job.running() or time.monotonic() - started > 60:
            raise LabError(f"the producer of {run_id} did not get {LEAD_ACKS} acks within 60 s "
                           f"(see {directory / 'producer-output.log'})")
        time.sleep(0.2)
    node = None if fault == "rolling-restart" else target
    result = chaos.inject(plan.config, plan.stack, fault, None, lambda line: plan.echo(f"    {line}"),
                          client=plan.client, node=node, mode=plan.mode)
    after = acked()
    if not poll_until(lambda: acked() >= after + RECOVERY_ACKS or not job.running(), RECOVERY_S, interval=0.2):
        plan.echo(f"    the producer got fewer than {RECOVERY_ACKS} acks in {RECOVERY_S:.0f} s after the fault")
    time.sleep(TAIL_S)
    return result


def one_round(plan: Plan, fault: str, target: str, number: int) -> Round:
    run_id = f"proof-{plan.stack.name}-{plan.mode}-{fault}-{target}-{number}-{time.strftime('%H%M%S')}"
    count = int(plan.rate * MAX_ROUND_S)
    events.append(plan.config.events_file, plan.stack.name, "round",
                  f"proof round {number}: {fault} on {target}, mode {plan.mode}, run {run_id}", fault=fault)
    directory, settings = start_run(plan.config, plan.stack, count, plan.size, run_id, plan.rate, 0, plan.client)
    job = plan.run.start(producer_argv(plan.config, plan.stack, plan.client, settings, count, plan.size, run_id,
                                       plan.rate),
                         env={**compose.compose_env(plan.config), **settings}, log=directory / "producer-output.log")
    try:
        result = _produce_through_fault(plan, fault, target, run_id, directory, job)
    finally:
        stopped_ns = time.time_ns()
        _stop_producer(plan.client, plan.stack, run_id)
        job.wait()
    report = ledger.wait_for_run(plan.config.ledger_dir, run_id, settle=5.0, timeout=120.0,
                                 gather=swarm_gatherer(plan.config, plan.stack, run_id))
    read = final_read(plan.config, plan.stack, plan.mode, run_id)
    output = (output_read(plan.config, plan.stack, plan.mode, run_id)
              if mode_info(plan.stack.broker, plan.mode).transactional else None)
    unavailable = timeline.ack_gap_s(directory, stopped_ns)
    first_ack = timeline.first_ack_ns(directory) or result.started_ns
    return Round(fault, target if fault != "rolling-restart" else "all", number, run_id, report.sent,
                 report.unique_received - report.unacked_received, report.lost, report.duplicated, unavailable,
                 timeline.delivery_gap_s(directory, stopped_ns), result.seconds,
                 read.gone if read.read else None, read.gone_received if read.read else 0,
                 evidence_of(fault, result.evidence, unavailable), plan.mode,
                 (result.started_ns - first_ack) / 1e9, (result.healed_ns - first_ack) / 1e9,
                 *((output.missing, output.more_than_once) if output and output.read else (None, None)))


def _say_round(r: Round, echo: Echo) -> None:
    gone = "not read (a queue)" if r.gone is None else f"{r.gone:,}"
    echo(f"    acked {r.acked:,}, lost {r.lost:,}, gone from the log {gone}, duplicated {r.duplicated:,}, "
         f"no ack for {r.unavailable_s:.1f} s, no delivery for {r.stalled_s:.1f} s "
         f"(the fault took {r.fault_s:.1f} s)")
    if r.output_missing is not None:
        echo(f"    output topic: {r.output_missing:,} missing, {r.output_extra:,} more than once")
    if not r.valid:
        echo("    INVALID: the fault showed no evidence (neither the broker nor Docker saw it): this round proves nothing")


def run_rounds(plan: Plan, faults: list[str], targets: list[str], rounds: int) -> list[Round]:
    steps = [(f, t) for f in faults for t in (["all"] if f == "rolling-restart" else targets)]
    plan.echo(f"proof of {plan.stack.name} in mode {plan.mode}: {len(steps)} fault(s) x {rounds} round(s) "
              f"at {plan.rate:g} msg/s")
    done: list[Round] = []
    for fault, target in steps:
        for number in range(1, rounds + 1):
            on = "every node" if target == "all" else f"the {target}"
            plan.echo(f"[{len(done) + 1}/{len(steps) * rounds}] {fault} on {on}, round {number} of {rounds} "
                      f"(mode {plan.mode})")
            done.append(one_round(plan, fault, target, number))
            _say_round(done[-1], plan.echo)
    return done


def _switch_mode(plan: Plan, mode: str) -> Plan:
    """Restart the stack's services in ``mode`` (the brokers keep running), as `invoke up --mode` does."""
    consumers = len(containers(plan.client, plan.stack, "consumer"))
    plan.echo(f"switching {plan.stack.name} to mode {mode} ({consumers} consumer(s))")
    if on_swarm(plan.client):
        from ..hosts import swarm_up  # the hosts layer builds on this one

        swarm_up(plan.config, plan.stack.name, consumers, lambda line: plan.echo(f"    {line}"), mode=mode)
        return Plan(plan.config, plan.stack, mode, plan.rate, plan.size, plan.run, plan.client, plan.echo)
    lifecycle.up(plan.config, plan.stack.name, consumers, plan.run, lambda line: plan.echo(f"    {line}"), mode=mode)
    return Plan(plan.config, plan.stack, mode, plan.rate, plan.size, plan.run, plan.client, plan.echo)


def prove(config: LabConfig, stack_name: str, faults: list[str], targets: list[str], rounds: int, rate: float,
          size: int, run: compose.Runner, echo: Echo, control: bool = False,
          swarm: bool = False) -> tuple[str, Path, str]:
    """Run every round (and with ``control`` every round again in the control mode); the tables,
    where the results were saved, and why the proof failed ("": it held). ``faults`` empty: every
    node fault that runs where the stack is; ``swarm``: the stack must be on the swarm."""
    stack = get_stack(stack_name)
    check_plan(stack, faults or ["kill-node"], targets, rounds, rate, swarm)
    preflight.check_size(size)
    client = client_for(config, stack, preflight.docker_client())
    running_stack(stack.name, client)
    if swarm and not on_swarm(client):
        raise UsageError(f"{stack.name} is not on the swarm: `invoke up {stack.name} --swarm` first")
    faults = faults or list(SWARM_FAULTS if on_swarm(client) else FAULTS)
    check_plan(stack, faults, targets, rounds, rate, on_swarm(client))
    plan = Plan(config, stack, current_mode(client, stack), rate, size, run, client, echo)
    if control and plan.mode == stack.control_mode:
        raise UsageError(f"{stack.name} runs its control mode ({plan.mode}) already: start it in a safe mode "
                         f"(`invoke up {stack.name}`), and --control runs the control after it")
    done = run_rounds(plan, faults, targets, rounds)
    if control:
        controlled = _switch_mode(plan, stack.control_mode)
        try:
            done += run_rounds(controlled, faults, targets, rounds)
        finally:
            _switch_mode(controlled, plan.mode)
    saved = save(config, stack, done)
    return tables_of(stack, done), saved, failed(stack, done)


def tables_of(stack: Stack, done: list[Round], markdown: bool = False) -> str:
    """The tables of every mode that ran, the safe one first, the control beside it."""
    return "\n\n".join(render(stack.name, mode, summarize([r for r in done if r.mode == mode]), markdown,
                              control=mode == stack.control_mode)
                       for mode in dict.fromkeys(r.mode for r in done))


def save(config: LabConfig, stack: Stack, done: list[Round]) -> Path:
    """``.mqlab/proof/<stack>-<time>.json`` (every round), ``.md`` (the tables) and one picture per
    mode and fault (``-<mode>-<fault>.png``)."""
    directory = config.root / PROOF_DIR
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"{stack.name}-{time.strftime('%Y%m%dT%H%M%S')}"
    modes = list(dict.fromkeys(r.mode for r in done))
    stem.with_suffix(".json").write_text(json.dumps(
        {"stack": stack.name, "mode": modes[0] if modes else "", "modes": modes, "rounds": [asdict(r) for r in done]},
        indent=1) + "\n")
    pictures = draw(config, stack, done, stem)
    text = tables_of(stack, done, markdown=True)
    text += "".join(f"\n\n![{p.stem}]({p.name})" for p in pictures)
    stem.with_suffix(".md").write_text(text + "\n")
    return stem.with_suffix(".md")


def draw(config: LabConfig, stack: Stack, done: list[Round], stem: Path) -> list[Path]:
    """One picture per mode and fault, a panel per round (:func:`mqlab.stack.runs.timeline_panel`,
    as `invoke verify --plot` draws a run)."""
    drawn = []
    for mode, fault in dict.fromkeys((r.mode, r.fault) for r in done):
        rounds = [r for r in done if r.mode == mode and r.fault == fault]
        panels = [timeline_panel(config, stack, r.run_id,
                                 f"{r.target}, round {r.number}" + ("" if r.valid else " (INVALID: no evidence)"),
                                 r.lost, final_read(config, stack, r.mode, r.run_id) if r.gone else None)
                  for r in rounds]
        path = stem.parent / f"{stem.name}-{mode}-{fault}.png"
        picture.draw(path, f"{stack.name}, mode {mode}: {fault}", panels)
        drawn.append(path)
    return drawn


def failed(stack: Stack, done: list[Round]) -> str:
    """Why the proof failed, or "": a safe mode lost an acked message or one is gone from the
    log, or a round showed no evidence of its fault (it proves nothing)."""
    safe = [r for r in done if mode_info(stack.broker, r.mode).safe and r.mode != stack.control_mode]
    lost, gone = sum(r.lost for r in safe), sum(r.gone or 0 for r in safe)
    why = []
    transactional = [r for r in done if mode_info(stack.broker, r.mode).transactional]
    if any(r.output_missing is None for r in transactional):
        why.append("the output topic of a transactional round could not be read")
    extra = sum(r.output_extra or 0 for r in transactional) + sum(r.output_missing or 0 for r in transactional)
    if extra:
        why.append(f"{extra:,} input ids missing from the output topic or in it more than once (txn)")
    if lost:
        why.append(f"{lost:,} acked messages lost in a safe mode")
    if gone:
        why.append(f"{gone:,} acked messages gone from the broker's log in a safe mode")
    invalid = [r for r in done if not r.valid]
    if invalid:
        why.append(f"{len(invalid)} round(s) without evidence of their fault ({', '.join(sorted({r.fault for r in invalid}))})")
    return "; ".join(why)
