"""Faults on purpose, judged message by message through the ledger.

Safe modes: every message whose send the broker acked is consumed, with duplicates
only within the mode's bound. Lossy modes: the loss is asserted, not hidden.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Case, invoke, produce, start_stream, verify

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


# Every broker gets the faults that test its clients' recovery; the others, which act the
# same way on every stack, run on one broker each to keep CI short.
FAULT_CASES = [(case, fault) for case in SAFE for fault in ("kill-broker", "pause-broker", "partition", "kill-consumer")]
FAULT_CASES += [(SAFE[0], "restart-broker"), (SAFE[1], "kill-producer"), (SAFE[2], "slow-network")]


@pytest.mark.parametrize("case,fault", [
    pytest.param(case, fault, marks=getattr(pytest.mark, case.stack), id=f"{case.stack}-{fault}")
    for case, fault in FAULT_CASES])
def test_no_acked_message_is_lost_under_a_fault(stacks, case, fault):
    stacks.up(case.stack, consumers=case.consumers, mode=case.mode)
    run_id = f"{fault}-{case.stack}-{int(time.time())}"
    producer = start_stream(case.stack, run_id)
    try:
        time.sleep(3)  # mid-stream
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
    assert report.sent > 0 and report.lost == 0
    assert report.extra_deliveries <= case.consumers * PREFETCH + BATCH, report.extra_deliveries
    if fault == "kill-producer":
        assert report.sent < 2500


@pytest.mark.redis
def test_pubsub_loses_what_is_published_while_its_subscriber_is_down(stacks):
    stacks.up("redis", consumers=1, mode="pubsub")
    run_id = f"pubsub-kill-{int(time.time())}"
    producer = start_stream("redis", run_id, count=2000, rate=250)
    try:
        time.sleep(2)
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
