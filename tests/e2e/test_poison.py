"""Poison and oversized messages: bounded retries, a dead-letter destination with reasons,
later messages keep flowing, and the producer's connection stays usable."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Case, invoke, produce, verify

SAFE = [Case("rabbitmq", "work", 2), Case("redis", "stream", 2), Case("kafka", "group", 2)]


@pytest.mark.parametrize("case", [c.param() for c in SAFE])
def test_poison_messages_are_dead_lettered_and_the_rest_flow(stacks, case):
    stacks.up(case.stack, consumers=case.consumers, mode=case.mode)
    before = invoke("dlq", case.stack, "--limit", "1")
    assert before.ok, before.out
    count_before = int(before.out.split(": ", 1)[1].split(" ")[0].replace(",", ""))
    run = produce(case.stack, 500, "--poison-every", "50")
    done, report = verify(case.stack, run)
    assert done.ok, done.out
    assert report.dead_lettered == 10 and report.lost == 0
    assert report.unique_received == 490
    assert all("poison" in reason for reason in report.dead_reasons), report.dead_reasons
    shown = invoke("dlq", case.stack, "--limit", "50")
    assert shown.ok, shown.out
    count_after = int(shown.out.split(": ", 1)[1].split(" ")[0].replace(",", ""))
    assert count_after - count_before == 10, shown.out
    assert "poison message" in shown.out and "ATTEMPTS" in shown.out


OVERSIZED = [(Case("kafka", "group", 1), 2_000_000), (Case("rabbitmq", "work", 1), 5_000_000),
             (Case("redis", "stream", 1), 5_000_000)]


@pytest.mark.parametrize("case,size", [pytest.param(c, s, marks=getattr(pytest.mark, c.stack), id=c.stack)
                                       for c, s in OVERSIZED])
def test_oversized_message_is_a_clear_error_and_the_connection_stays_usable(stacks, case, size):
    stacks.up(case.stack, consumers=case.consumers, mode=case.mode)
    big = invoke("produce", case.stack, "--count", "3", "--size", str(size))
    assert not big.ok
    assert "producer failed" in big.out and "above the" in big.out and "limit" in big.out, big.out
    assert "Traceback" not in big.out
    after = produce(case.stack, 200)  # the same stack keeps working
    done, report = verify(case.stack, after)
    assert done.ok and report.lost == 0 and report.sent == 200


@pytest.mark.parametrize("case", [Case("rabbitmq", "fanout", 2).param(), Case("redis", "stream-fanout", 2).param()])
def test_fanout_subscribers_dead_letter_poison_and_lose_nothing(stacks, case):
    """Each subscriber gets the poison messages too, and dead-letters its own copy: accounted for."""
    stacks.up(case.stack, consumers=case.consumers, mode=case.mode)
    run = produce(case.stack, 400, "--poison-every", "40")
    done, report = verify(case.stack, run)
    assert done.ok, done.out
    assert report.sent == 400 and report.lost == 0 and report.unacked_received == 0
    assert report.dead_lettered == 10 and len(report.per_consumer) == 2
    assert all(n == 390 for n in report.per_consumer.values()), report.per_consumer
    assert all("poison" in reason for reason in report.dead_reasons), report.dead_reasons


@pytest.mark.rabbitmq
@pytest.mark.mode("autoack")
def test_autoack_drops_a_message_whose_processing_fails(stacks):
    """The lossy contrast: auto-ack has nothing to retry and nowhere to dead-letter."""
    stacks.up("rabbitmq", consumers=1, mode="autoack")
    run = produce("rabbitmq", 500, "--poison-every", "50")
    done, report = verify("rabbitmq", run, settle=10, timeout=90)
    assert not done.ok
    assert report.sent == 500 and report.unique_received == 490
    assert report.dropped == 10 and report.lost == 10
