"""Logs and exactly-once, as a user runs them: Kafka transactions against the group mode under
the same fault, the RabbitMQ stream resuming at its stored offset, and logs read again."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest

from tests.e2e.conftest import invoke, running, start_stream, started_at, verify, wait_for_acked

# Most of a poll's time is spent after its receipts are written and before its commit, so a
# consumer killed mid-stream has recorded messages that the broker delivers again: the group
# mode's receipts repeat them; the txn mode's output topic must hold each once all the same.
PROCESS_MS = "400"
COUNT = 3000


def up_with(stacks, stack: str, mode: str, consumers: int, **env: str) -> None:
    """`invoke up` with extra settings from the environment, as a user sets them."""
    stacks.down() if stacks.current != stack else None
    started = invoke("up", stack, "--mode", mode, "--consumers", str(consumers), env=env)
    assert started.ok, started.out
    stacks.current, stacks.settings = stack, (mode, tuple(sorted(env.items())))


def _kill_a_consumer_mid_stream(stack: str, run_id: str) -> None:
    before = started_at(stack, "consumer")
    producer = start_stream(stack, run_id, count=COUNT)
    try:
        assert wait_for_acked(run_id, 600) >= 600
        killed = invoke("chaos", stack, "kill-consumer")
        assert killed.ok, killed.out
        out, _ = producer.communicate(timeout=300)
        assert producer.returncode == 0, out
    finally:
        if producer.poll() is None:
            producer.kill()
    assert started_at(stack, "consumer") != before, "no consumer was restarted"  # the fault happened


@pytest.mark.kafka
def test_txn_is_exactly_once_in_the_output_topic_under_a_consumer_kill(stacks):
    up_with(stacks, "kafka", "group", 2, MQLAB_PROCESS_MS=PROCESS_MS)
    run_id = f"group-kill-{int(time.time())}"
    _kill_a_consumer_mid_stream("kafka", run_id)
    done, group = verify("kafka", run_id, settle=20, timeout=240)
    assert done.ok and group.lost == 0 and group.sent == COUNT, done.out
    assert group.duplicated > 0, f"the group mode redelivered nothing: {done.out}"

    up_with(stacks, "kafka", "txn", 2, MQLAB_PROCESS_MS=PROCESS_MS)
    txn = _exactly_once_under_a_consumer_kill(f"txn-kill-{int(time.time())}")
    print(f"kill-consumer: group {group.duplicated} duplicated; txn {txn.output.more_than_once} more than once "
          f"in the output, {txn.duplicated} duplicated receipts (outside the transaction)")


def _exactly_once_under_a_consumer_kill(run_id: str):
    """A consumer killed mid-stream in txn mode: every acked id once in the output topic."""
    _kill_a_consumer_mid_stream("kafka", run_id)
    done, txn = verify("kafka", run_id, settle=20, timeout=240)
    output = txn.output
    assert txn.sent == COUNT and txn.lost == 0, done.out
    assert output.read and (output.once, output.missing, output.more_than_once) == (COUNT, 0, 0), done.out
    assert done.ok and "exactly once in datascience.out" in done.out, done.out
    return txn


@pytest.mark.kafka
def test_txn_with_confluent_kafka_is_exactly_once_in_the_output_topic_under_a_consumer_kill(stacks):
    """The same exactly-once with the other client (librdkafka's transactions)."""
    up_with(stacks, "kafka", "txn", 2, MQLAB_PROCESS_MS=PROCESS_MS, MQLAB_KAFKA_CLIENT="confluent-kafka")
    txn = _exactly_once_under_a_consumer_kill(f"txn-confluent-kill-{int(time.time())}")
    assert all(b"(confluent-kafka)" in c.logs() for c in running("kafka", "consumer"))  # the client it says
    print(f"kill-consumer (confluent-kafka): txn {txn.duplicated} duplicated receipts, none in the output")


@pytest.mark.rabbitmq
def test_a_stream_consumer_resumes_after_its_stored_offset(stacks):
    """The consumer stores its offset on the broker after each processed batch; killed, it
    starts again after the stored offset: nothing lost, and at most the batches it processed
    but had not stored yet come again, not the stream from its start."""
    stacks.up("rabbitmq", consumers=1, mode="stream")
    run_id = f"stream-kill-{int(time.time())}"
    _kill_a_consumer_mid_stream("rabbitmq", run_id)
    done, report = verify("rabbitmq", run_id, settle=20, timeout=240)
    assert done.ok and report.lost == 0 and report.sent == COUNT, done.out
    assert report.duplicated < 600, f"it read the stream again from the start: {done.out}"


LOGS = [pytest.param("kafka", "group", "0", marks=pytest.mark.kafka, id="kafka"),
        pytest.param("redis", "stream", None, marks=pytest.mark.redis, id="redis"),
        pytest.param("rabbitmq", "stream", "0", marks=pytest.mark.rabbitmq, id="rabbitmq-stream")]


@pytest.mark.parametrize("stack, mode, offset", LOGS)
def test_a_log_is_read_again_by_offset_and_by_time_and_matches_the_ledger(stacks, stack, mode, offset):
    stacks.up(stack, consumers=1, mode=mode)
    before = datetime.now(timezone.utc).isoformat(timespec="seconds")
    time.sleep(1.1)  # the time is in whole seconds: what came before it is not this run's
    run_id = f"replay-{stack}-{int(time.time())}"
    sent = invoke("produce", stack, "--count", "300", "--size", "256", "--run-id", run_id)
    assert sent.ok, sent.out
    by_time = invoke("replay", stack, "--from", before, "--count", "100000")
    assert by_time.ok and "OK: the log holds what the ledger says was acked there" in by_time.out, by_time.out
    matched = int(re.search(r"acked at the place their producer recorded: ([\d,]+)", by_time.out).group(1)
                  .replace(",", ""))
    assert matched >= 300, by_time.out
    start = offset if offset is not None else by_time.out.split("\n")[2].split()[0]  # the first entry id read
    by_place = invoke("replay", stack, "--from", start, "--count", "100000")
    assert by_place.ok and "OK: the log holds" in by_place.out, by_place.out


@pytest.mark.rabbitmq
def test_a_queue_cannot_be_read_again_and_says_so_in_one_line(stacks):
    stacks.up("rabbitmq", consumers=1)
    done = invoke("replay", "rabbitmq", "--from", "beginning")
    assert not done.ok and done.out.strip() == ("mqlab: a RabbitMQ classic queue forgets what it delivered, so it "
                                                "cannot be read again: a RabbitMQ stream can (mode stream)"), done.out
