"""Delivery semantics per mode, each behaviour written once and applied to every mode that claims it.

The README's mode table names these tests; mqlab.modes says what each mode promises.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from mqlab import config
from mqlab.ledger import receipts
from mqlab.stack import compose
from mqlab.stacks import get_stack
from tests.conftest import ROOT
from tests.e2e.conftest import Case, invoke, produce, start_stream, started_at, verify, wait_for_acked

COMPETING = [Case("rabbitmq", "work"), Case("redis", "stream"), Case("kafka", "group"), Case("kafka", "keyed")]
FANOUT = [Case("rabbitmq", "fanout"), Case("redis", "stream-fanout"), Case("redis", "pubsub"), Case("kafka", "fanout")]
ORDERED = [Case("rabbitmq", "work", consumers=1), Case("kafka", "keyed", consumers=3)]
DURABLE = [Case("rabbitmq", "work"), Case("redis", "stream"), Case("kafka", "group")]
LOSSY_ON_RESTART = [Case("rabbitmq", "transient"), Case("redis", "pubsub")]
SCALABLE = [Case("rabbitmq", "work"), Case("redis", "stream"), Case("kafka", "group")]


@pytest.mark.parametrize("case", [c.param() for c in COMPETING])
def test_competing_consumers_get_each_message_once(stacks, case):
    stacks.up(case.stack, consumers=case.consumers, mode=case.mode)
    run = produce(case.stack, 3000)
    done, report = verify(case.stack, run)
    assert done.ok, done.out
    assert report.kind == "competing"
    assert (report.sent, report.lost, report.duplicated, report.unique_received) == (3000, 0, 0, 3000)
    assert len(report.per_consumer) == case.consumers
    assert all(n > 0 for n in report.per_consumer.values()), report.per_consumer


@pytest.mark.parametrize("case", [c.param() for c in FANOUT])
def test_fanout_every_subscriber_gets_every_message(stacks, case):
    stacks.up(case.stack, consumers=case.consumers, mode=case.mode)
    run = produce(case.stack, 2000)
    done, report = verify(case.stack, run)
    assert done.ok, done.out
    assert report.kind == "fanout"
    assert len(report.per_consumer) == case.consumers
    assert report.missing_per_consumer == {name: 0 for name in report.per_consumer}
    assert all(n == 2000 for n in report.per_consumer.values()), report.per_consumer


@pytest.mark.rabbitmq
@pytest.mark.mode("topic")
def test_topic_routing_keys_select_consumers(stacks):
    stacks.up("rabbitmq", consumers=2, mode="topic", binding="orders.*")
    run = produce("rabbitmq", 3000)
    done, report = verify("rabbitmq", run)
    assert done.ok, done.out
    assert report.kind == "routed"
    # The producer cycles orders.eu, orders.us, audit.eu: a third match no binding.
    assert report.unrouted == 1000 and report.lost == 0 and report.unique_received == 2000
    keys = set()
    for _consumer, path in receipts.files(ROOT / ".mqlab" / "ledger" / run, receipts.RECV):
        keys |= {receipts.field(parts, receipts.RECV_KEY) for parts in receipts.lines(path)}
    assert keys == {"orders.eu", "orders.us"}


@pytest.mark.parametrize("case", [c.param() for c in ORDERED])
def test_order_is_kept_where_promised(stacks, case):
    stacks.up(case.stack, consumers=case.consumers, mode=case.mode)
    run = produce(case.stack, 3000)
    done, report = verify(case.stack, run)
    assert done.ok, done.out
    assert report.lost == 0 and report.out_of_order == 0


def _backlog(stacks, case: Case, count: int):
    """Produce with no consumer attached, then start one: what reaches it?"""
    stacks.up(case.stack, consumers=0, mode=case.mode)
    run = produce(case.stack, count)
    scaled = invoke("scale", case.stack, "--consumers", "1")
    assert scaled.ok, scaled.out
    return run


@pytest.mark.parametrize("case", [c.param() for c in DURABLE])
def test_backlog_reaches_consumers_started_later(stacks, case):
    run = _backlog(stacks, case, 2000)
    done, report = verify(case.stack, run)
    assert done.ok, done.out
    assert report.lost == 0 and report.unique_received == 2000 - report.unrouted


@pytest.mark.redis
@pytest.mark.mode("pubsub")
def test_pubsub_keeps_no_backlog(stacks):
    run = _backlog(stacks, Case("redis", "pubsub"), 1000)
    done, report = verify("redis", run, settle=5, timeout=20)
    assert not done.ok
    assert report.sent == 1000 and report.received == 0 and report.lost == 1000


def _restart_between_produce_and_consume(stacks, case: Case, count: int):
    stacks.up(case.stack, consumers=0, mode=case.mode)
    run = produce(case.stack, count)
    stack = get_stack(case.stack)
    before = started_at(case.stack, stack.brokers[-1])
    argv = compose.compose_argv(config.load(ROOT, config.offline_default()), stack, "restart", stack.brokers[-1])
    restart = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr
    assert started_at(case.stack, stack.brokers[-1]) != before, "the broker was not restarted"
    scaled = invoke("scale", case.stack, "--consumers", "1")
    assert scaled.ok, scaled.out
    return run


@pytest.mark.parametrize("case", [c.param() for c in DURABLE])
def test_durable_modes_keep_everything_across_a_broker_restart(stacks, case):
    run = _restart_between_produce_and_consume(stacks, case, 2000)
    done, report = verify(case.stack, run)
    assert done.ok, done.out
    assert report.lost == 0 and report.unique_received == 2000 - report.unrouted


@pytest.mark.parametrize("case", [c.param() for c in LOSSY_ON_RESTART])
def test_lossy_modes_lose_everything_across_a_broker_restart(stacks, case):
    run = _restart_between_produce_and_consume(stacks, case, 1000)
    done, report = verify(case.stack, run, settle=5, timeout=30)
    assert not done.ok
    assert report.sent == 1000 and report.lost == 1000 and report.received == 0


@pytest.mark.parametrize("case", [c.param() for c in SCALABLE])
def test_scaling_1_4_1_mid_stream_loses_nothing(stacks, case):
    stacks.up(case.stack, consumers=1, mode=case.mode)
    run_id = f"scale-{case.stack}-{int(time.time())}"
    producer = start_stream(case.stack, run_id, count=6000, rate=300)
    try:
        assert wait_for_acked(run_id, 1200) >= 1200  # the point is to scale while it flows
        up4 = invoke("scale", case.stack, "--consumers", "4")
        assert up4.ok, up4.out
        assert wait_for_acked(run_id, 2400) >= 2400
        down1 = invoke("scale", case.stack, "--consumers", "1")
        assert down1.ok, down1.out
        out, _ = producer.communicate(timeout=240)
        assert producer.returncode == 0, out
    finally:
        if producer.poll() is None:
            producer.kill()
    done, report = verify(case.stack, run_id)
    assert done.ok, done.out
    assert report.sent == 6000 and report.lost == 0
    # The extra consumers took part (Kafka's 3 partitions keep a fourth consumer idle).
    assert len(report.per_consumer) >= 3, report.per_consumer
    print(f"duplicates while scaling {case.stack}: {report.extra_deliveries}")
