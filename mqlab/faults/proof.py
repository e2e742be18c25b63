"""`invoke proof <stack>`: rounds of node faults under a steady produce, each round verified.

In the manner of the brokers' own replication tests (Kafka's ``replication_test.py``, the
Jepsen tests of Kafka and RabbitMQ): for each fault and target node, R rounds of

1. a one-shot producer at a fixed rate (its own run id, so each round is judged alone);
2. once it has acks on record, the fault (:mod:`.chaos`), which ends only when the
   cluster is whole again;
3. produce until the producer has 100 more acks (it recovered; at most 120 s), then 5 s
   more, then the producer is stopped (SIGTERM: what it had acked is on record), and the
   run is verified once consumers are done.

Each round gives: acked, lost (acked, never received), duplicated, the longest time
without a producer ack (writers saw the cluster unavailable) and without a delivery
(consumers stalled), and whether every acked message is accounted for (received or lost).
One table per fault, a row per target, summed or at their worst over the rounds.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .. import ledger, tables
from ..config import LabConfig
from ..errors import LabError, UsageError
from ..ledger import timeline
from ..modes import mode_info
from ..stack import compose, preflight
from ..stack.containers import running_stack
from ..stack.lifecycle import current_mode
from ..stack.runs import LineCounter, start_run
from ..stacks import Stack, get_stack
from ..wait import poll_until
from . import chaos

Echo = Callable[[str], None]

FAULTS = tuple(chaos.NODE_FAULTS)
TARGETS = ("leader", "follower")
PROOF_DIR = Path(".mqlab") / "proof"
LEAD_ACKS = 200  # acks on record before the fault starts
RECOVERY_ACKS = 100  # new acks after the fault: the producer has recovered
RECOVERY_S = 120.0  # at most this long to recover; the wait counts as unavailable
TAIL_S = 5.0  # produce this long after it recovered
MAX_ROUND_S = 600.0  # a round that takes longer is stopped and reported as failed
MAX_ROUNDS = 50


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

    @property
    def accounted(self) -> bool:
        """Every acked message is either received or counted lost."""
        return self.received + self.lost == self.acked


@dataclass
class Row:
    """One fault and target over its rounds."""

    fault: str
    target: str
    rounds: int
    acked: int
    lost: int
    duplicated: int
    unavailable_max_s: float
    unavailable_median_s: float
    stalled_max_s: float
    accounted: bool


def summarize(rounds: list[Round]) -> list[Row]:
    """Rows per (fault, target), in the order they first ran."""
    groups: dict[tuple[str, str], list[Round]] = {}
    for r in rounds:
        groups.setdefault((r.fault, r.target), []).append(r)
    return [Row(fault, target, len(rs), sum(r.acked for r in rs), sum(r.lost for r in rs),
                sum(r.duplicated for r in rs), max(r.unavailable_s for r in rs),
                statistics.median(r.unavailable_s for r in rs), max(r.stalled_s for r in rs),
                all(r.accounted for r in rs))
            for (fault, target), rs in groups.items()]


HEADERS = ("target", "rounds", "acked", "lost", "duplicated", "unavailable s, max (median)",
           "consumers resumed after s, max", "acked = received + lost")


def render(stack: str, mode: str, rows: list[Row], markdown: bool = False) -> str:
    """One table per fault."""
    out = []
    for fault in dict.fromkeys(r.fault for r in rows):
        cells = [(r.target, str(r.rounds), f"{r.acked:,}", f"{r.lost:,}", f"{r.duplicated:,}",
                  f"{r.unavailable_max_s:.1f} ({r.unavailable_median_s:.1f})", f"{r.stalled_max_s:.1f}",
                  "yes" if r.accounted else "NO") for r in rows if r.fault == fault]
        title = f"{stack} (mode {mode}): {fault}"
        if markdown:
            out.append(f"**{title}**\n\n" + tables.markdown(HEADERS, cells))
        else:
            out.append(f"{title}\n" + tables.render(HEADERS, cells, indent=2))
    return "\n\n".join(out)


def check_plan(stack: Stack, faults: list[str], targets: list[str], rounds: int, rate: float) -> None:
    if not stack.cluster:
        raise UsageError(f"proof runs node faults on a cluster: {stack.name} has one node "
                         "(kafka-cluster, rabbitmq-cluster or redis-sentinel)")
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or not faults:
        raise UsageError(f"unknown fault {', '.join(unknown) or '(none)'}: choose from {', '.join(FAULTS)}")
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


def one_round(config: LabConfig, stack: Stack, mode: str, fault: str, target: str, number: int, rate: float,
              size: int, run: compose.Runner, client, echo: Echo) -> Round:
    run_id = f"proof-{stack.name}-{fault}-{target}-{number}-{time.strftime('%H%M%S')}"
    count = int(rate * MAX_ROUND_S)
    directory, settings = start_run(config, stack, count, size, run_id, rate, 0, client)
    acked = LineCounter(directory, "sent-*.tsv")
    job = run.start(compose.produce_argv(config, stack, count, size, run_id, rate),
                    env={**compose.compose_env(config), **settings}, log=directory / "producer-output.log")
    started = time.monotonic()
    try:
        while acked() < LEAD_ACKS:
            if not job.running() or time.monotonic() - started > 60:
                raise LabError(f"the producer of {run_id} did not get {LEAD_ACKS} acks within 60 s "
                               f"(see {directory / 'producer-output.log'})")
            time.sleep(0.2)
        node = None if fault == "rolling-restart" else target
        seconds = chaos.inject(config, stack, fault, None, lambda line: echo(f"    {line}"), client=client,
                               node=node, mode=mode)
        after = acked()
        if not poll_until(lambda: acked() >= after + RECOVERY_ACKS or not job.running(), RECOVERY_S, interval=0.2):
            echo(f"    the producer got fewer than {RECOVERY_ACKS} acks in {RECOVERY_S:.0f} s after the fault")
        time.sleep(TAIL_S)
    finally:
        stopped_ns = time.time_ns()
        _stop_producer(client, stack, run_id)
        job.wait()
    report = ledger.wait_for_run(config.ledger_dir, run_id, settle=5.0, timeout=120.0)
    return Round(fault, target if node else "all", number, run_id, report.sent,
                 report.unique_received - report.unacked_received, report.lost, report.duplicated,
                 timeline.ack_gap_s(directory, stopped_ns), timeline.delivery_gap_s(directory, stopped_ns), seconds)


def prove(config: LabConfig, stack_name: str, faults: list[str], targets: list[str], rounds: int, rate: float,
          size: int, run: compose.Runner, echo: Echo) -> tuple[str, Path, str]:
    """Run every round; the tables, where the results were saved, and why the proof failed ("": it held)."""
    stack = get_stack(stack_name)
    check_plan(stack, faults, targets, rounds, rate)
    preflight.check_size(size)
    client = preflight.docker_client()
    running_stack(stack.name, client)
    mode = current_mode(client, stack)
    plan = [(f, t) for f in faults for t in (["all"] if f == "rolling-restart" else targets)]
    echo(f"proof of {stack.name} in mode {mode}: {len(plan)} fault(s) x {rounds} round(s) at {rate:g} msg/s")
    done: list[Round] = []
    for fault, target in plan:
        for number in range(1, rounds + 1):
            on = "every node" if target == "all" else f"the {target}"
            echo(f"[{len(done) + 1}/{len(plan) * rounds}] {fault} on {on}, round {number} of {rounds}")
            r = one_round(config, stack, mode, fault, target, number, rate, size, run, client, echo)
            done.append(r)
            echo(f"    acked {r.acked:,}, lost {r.lost:,}, duplicated {r.duplicated:,}, "
                 f"no ack for {r.unavailable_s:.1f} s, no delivery for {r.stalled_s:.1f} s "
                 f"(the fault took {r.fault_s:.1f} s)")
    text = render(stack.name, mode, summarize(done))
    saved = save(config, stack, mode, done)
    return text, saved, failed(stack, mode, done)


def save(config: LabConfig, stack: Stack, mode: str, done: list[Round]) -> Path:
    """``.mqlab/proof/<stack>-<time>.json`` (every round) and ``.md`` (the tables)."""
    directory = config.root / PROOF_DIR
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"{stack.name}-{time.strftime('%Y%m%dT%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(
        {"stack": stack.name, "mode": mode, "rounds": [asdict(r) for r in done]}, indent=1) + "\n")
    stem.with_suffix(".md").write_text(render(stack.name, mode, summarize(done), markdown=True) + "\n")
    return stem.with_suffix(".md")


def failed(stack: Stack, mode: str, done: list[Round]) -> str:
    """Why the proof failed, or "": a safe mode lost an acked message, or a message is unaccounted."""
    if any(not r.accounted for r in done):
        return "some acked messages are neither received nor counted lost"
    lost = sum(r.lost for r in done)
    if lost and mode_info(stack.broker, mode).safe:
        return f"{lost:,} acked messages lost in a safe mode"
    return ""
