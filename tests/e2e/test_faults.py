"""Faults on purpose, judged message by message through the ledger.

Safe modes: every message whose send the broker acked is consumed, with duplicates
only within the mode's bound. Lossy modes: the loss is asserted, not hidden.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime

import pytest

from mqlab.ledger import timeline
from tests.e2e.conftest import (LEDGER, STREAM_RATE, Case, ack_gap_s, consumer_silence_s, invoke,
                                latency_ms_by_send_time, produce, start_stream, started_at, verify, wait_for_acked)

SAFE = [Case("rabbitmq", "work", consumers=2), Case("redis", "stream", consumers=2), Case("kafka", "group", consumers=2)]
# How long each fault lasts in the tests: long enough to matter, short enough for CI.
FAULTS = {
    "kill-broker": 2,
    "restart-broker": 1,
    "pause-broker": 12,  # longer than the services' 10 s heartbeat
    "partition": 12,
    "kill-consumer": 2,
    "kill-producer": 1,
    "slow-network": 5,
}
# Redelivery after a fault is bounded by what was in flight: each consumer's unacked
# prefetch/poll batch, plus the producer's unconfirmed window that it sends again.
PREFETCH, BATCH = 200, 100
COUNT = 2000  # at 250 msg/s: 8 s of steady traffic around each fault


# Every broker gets the faults that test its clients' recovery; the others, which act the
# same way on every stack, run on one broker each to keep CI short.
FAULT_CASES = [(case, fault) for case in SAFE for fault in ("kill-broker", "pause-broker", "partition", "kill-consumer")]
FAULT_CASES += [(SAFE[0], "restart-broker"), (SAFE[1], "kill-producer"), (SAFE[2], "slow-network")]
# The RabbitMQ stream: its consumer reads over the stream protocol and stores its offset on the broker.
FAULT_CASES += [(Case("rabbitmq", "stream", consumers=1), "kill-broker")]


def _evidence(case: Case, fault: str, run_id: str, before: dict, chaos_out: str) -> None:
    """Assert that the fault took effect: a no-op fault must fail this."""
    seconds = FAULTS[fault]
    if fault in ("kill-broker", "restart-broker"):
        assert started_at(case.stack, case.stack) != before["broker"], "the broker was not restarted"
    if fault in ("kill-broker", "pause-broker"):
        assert ack_gap_s(run_id) >= 0.8 * seconds, f"no gap in producer acks: {ack_gap_s(run_id):.1f} s"
    if fault == "partition":
        # Silence counts only between the disconnect and the reconnect, and only while the
        # stream went on: a consumer that fell silent because the run had ended proves nothing.
        (cut,), (healed,) = _stamps_ns(chaos_out, "disconnect "), _stamps_ns(chaos_out, "reconnect ")
        silence = timeline.silence_within_s(LEDGER / run_id, cut, healed)
        assert silence >= 0.8 * seconds, f"no consumer went silent while it was cut off: {silence:.1f} s"
        late = timeline.acks_within(LEDGER / run_id, cut + (healed - cut) // 2, healed)
        assert late > 0, "the stream had stopped before the cut ended: the silence proves nothing"
    if fault == "kill-consumer":
        silence = consumer_silence_s(run_id)
        assert silence >= 0.8 * seconds, f"no consumer went silent: {silence:.1f} s"
    if fault == "kill-consumer":
        assert started_at(case.stack, "consumer") != before["consumer"], "no consumer was restarted"
    if fault == "slow-network":
        before_ms, during_ms = _latency_around(run_id, chaos_out)
        assert during_ms >= 2 * before_ms + 50, f"latency did not rise: {before_ms:.1f} -> {during_ms:.1f} ms"


def _stamps_ns(chaos_out: str, *starts: str) -> list[int]:
    """The wall-clock times (ns) of the chaos steps whose message starts with one of ``starts``
    (a step line is ``mqlab: HH:MM:SS.mmm message``; the fault's own description is not a step)."""
    day = datetime.now().strftime("%Y-%m-%d")
    steps = [line.split(None, 2) for line in chaos_out.splitlines() if line.startswith("mqlab: ")]
    return [int(datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S.%f").timestamp() * 1e9)
            for _, clock, message in (s for s in steps if len(s) == 3) if message.startswith(starts)]


def _latency_around(run_id: str, chaos_out: str) -> tuple[float, float]:
    """Median end-to-end latency (ms) of messages sent before the slowdown, and while it lasted
    (its start and end are the chaos steps' wall-clock stamps)."""
    stamps = _stamps_ns(chaos_out, "added ", "this kernel has no netem", "remove the slowdown")
    assert len(stamps) == 2, chaos_out
    start, end = stamps
    samples = latency_ms_by_send_time(run_id)
    before = [ms for sent, ms in samples if sent < start]
    during = [ms for sent, ms in samples if start <= sent <= end]
    assert before and during, (len(before), len(during))
    return statistics.median(before), statistics.median(during)


@pytest.mark.parametrize("case,fault", [
    pytest.param(case, fault, marks=getattr(pytest.mark, case.stack), id=f"{case.stack}-{case.mode}-{fault}")
    for case, fault in FAULT_CASES])
def test_no_acked_message_is_lost_under_a_fault(stacks, case, fault):
    stacks.up(case.stack, consumers=case.consumers, mode=case.mode)
    run_id = f"{fault}-{case.stack}-{int(time.time())}"
    before = {"broker": started_at(case.stack, case.stack), "consumer": started_at(case.stack, "consumer")}
    # A partition's evidence is a consumer silent while the stream goes on: the stream outlasts the cut.
    count = COUNT + (STREAM_RATE * FAULTS[fault] if fault == "partition" else 0)
    producer = start_stream(case.stack, run_id, count=count)
    try:
        assert wait_for_acked(run_id, 500) >= 500  # mid-stream
        broke = invoke("chaos", case.stack, fault, "--duration", str(FAULTS[fault]))
        assert broke.ok, broke.out
        out, _ = producer.communicate(timeout=300)
    finally:
        if producer.poll() is None:
            producer.kill()
    if fault == "kill-producer":
        assert producer.returncode != 0  # killed before its confirms arrived: not reported as sent
    else:
        assert producer.returncode == 0, out
    done, report = verify(case.stack, run_id, settle=20, timeout=240)
    assert done.ok, done.out
    assert report.lost == 0
    assert report.extra_deliveries <= case.consumers * PREFETCH + BATCH, report.extra_deliveries
    if fault == "kill-producer":
        assert 500 <= report.sent < count
    else:
        assert report.sent == count and report.unacked_received == 0, done.out
    _evidence(case, fault, run_id, before, broke.out)


@pytest.mark.redis
@pytest.mark.mode("pubsub")
def test_pubsub_loses_what_is_published_while_its_subscriber_is_down(stacks):
    stacks.up("redis", consumers=1, mode="pubsub")
    run_id = f"pubsub-kill-{int(time.time())}"
    producer = start_stream("redis", run_id, count=2000, rate=250)
    try:
        assert wait_for_acked(run_id, 400) >= 400
        broke = invoke("chaos", "redis", "kill-consumer", "--duration", "3")
        assert broke.ok, broke.out
        out, _ = producer.communicate(timeout=120)
        assert producer.returncode == 0, out
    finally:
        if producer.poll() is None:
            producer.kill()
    done, report = verify("redis", run_id, settle=10, timeout=60)
    assert not done.ok
    assert report.sent == 2000
    # 3 s down at 250 msg/s: hundreds published to nobody, and gone.
    assert report.lost >= 250, report.lost


@pytest.mark.parametrize("case", [Case("rabbitmq", "work", 1).param(), Case("redis", "stream", 1).param(),
                                  Case("kafka", "group", 1).param()])
def test_down_then_up_keeps_data_and_down_volumes_is_a_clean_slate(stacks, case):
    stacks.up(case.stack, consumers=0, mode=case.mode)
    kept = produce(case.stack, 1000)
    assert invoke("down", case.stack).ok
    assert started_at(case.stack, case.stack) == [], "`down` left the broker's container"
    stacks.current = None
    stacks.up(case.stack, consumers=1, mode=case.mode)
    done, report = verify(case.stack, kept)
    assert done.ok, done.out
    assert report.lost == 0 and report.unique_received == 1000

    stacks.up(case.stack, consumers=0, mode=case.mode)
    wiped = produce(case.stack, 500)
    assert invoke("down", case.stack, "--volumes").ok
    stacks.current = None
    stacks.up(case.stack, consumers=1, mode=case.mode)
    done, report = verify(case.stack, wiped, settle=10, timeout=60)
    assert not done.ok
    assert report.sent == 500 and report.lost == 500
