"""producer and consumer end to end against an in-memory broker: receipts, retries, exits."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mqlab_services import adapters, consumer, envelope, producer
from mqlab_services.adapters import Adapter


class MemoryBroker:
    """One shared queue plus knobs for failures; reset by the fixture."""

    queue: list[bytes] = []
    acked: list[bytes] = []
    connect_failures = 0
    nack_once: set[int] = set()  # seq numbers the broker refuses the first time
    drop_after_publishes = -1  # raise ConnectionError on this publish call (0-based), once
    publishes = 0
    receipts_before_ack = True
    ledger_dir = ""
    attempts: dict[bytes, int] = {}
    dead: list = []

    @classmethod
    def reset(cls, ledger_dir):
        cls.queue, cls.acked, cls.nack_once = [], [], set()
        cls.connect_failures, cls.drop_after_publishes, cls.publishes = 0, -1, 0
        cls.receipts_before_ack, cls.ledger_dir = True, str(ledger_dir)
        cls.attempts, cls.dead = {}, []


class MemoryAdapter(Adapter):
    name = "memory"
    errors = (ConnectionError,)

    def connect(self):
        if MemoryBroker.connect_failures > 0:
            MemoryBroker.connect_failures -= 1
            raise ConnectionError("connection refused")

    def ping(self):
        return 0.001

    def key_for(self, seq):
        return f"k{seq % 3}"

    def publish(self, batch):
        call = MemoryBroker.publishes
        MemoryBroker.publishes += 1
        if call == MemoryBroker.drop_after_publishes:
            MemoryBroker.queue.extend(body for body, _ in batch[: len(batch) // 2])  # half got through
            raise ConnectionError("connection reset")
        acks = []
        for body, _key in batch:
            seq = envelope.decode(body).seq
            if seq in MemoryBroker.nack_once:
                MemoryBroker.nack_once.discard(seq)
                acks.append(None)
            else:
                MemoryBroker.queue.append(body)
                acks.append(12345)
        return acks

    def consume(self, handler, running, dead=None):
        while running():
            batch = MemoryBroker.queue[: self.settings.batch]
            self.subscribed, self.assignment = True, ["memory"]
            results = adapters.base.outcomes(handler(
                [(body, f"k{envelope.decode(body).seq % 3}" if envelope.decode(body) else "")
                 for body in batch]), len(batch))
            requeued = set()
            for body, reason in zip(batch, results):
                if reason is None:
                    continue
                attempts = MemoryBroker.attempts.get(body, 0) + 1
                MemoryBroker.attempts[body] = attempts
                if adapters.base.exhausted(attempts, self.settings.max_deliveries):
                    MemoryBroker.dead.append((body, reason, attempts))
                    dead([(body, "", attempts, reason)])
                else:
                    MemoryBroker.queue.append(body)  # tried again after the rest
                    requeued.add(body)
            recorded = _recorded_ids(MemoryBroker.ledger_dir)  # recv and dead receipts
            for body in batch:
                env = envelope.decode(body)
                if body in requeued:  # not acked: no receipt due yet
                    continue
                if env is not None and env.id not in recorded:
                    MemoryBroker.receipts_before_ack = False
            MemoryBroker.acked.extend(batch)
            del MemoryBroker.queue[: len(batch)]
            if not MemoryBroker.queue:
                os.kill(os.getpid(), signal.SIGTERM)  # drained: stop the way docker stop does

    def close(self):
        pass


def _recorded_ids(ledger_dir) -> set[str]:
    ids = set()
    for root, _dirs, files in os.walk(ledger_dir):
        for name in files:
            with open(os.path.join(root, name)) as f:
                ids.update(line.split("\t")[0] for line in f)
    return ids


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setitem(adapters.ADAPTERS, "rabbitmq", f"{__name__}:MemoryAdapter")
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    ledger_dir = tmp_path / "ledger"
    MemoryBroker.reset(ledger_dir)
    env = {"MQLAB_BROKER": "rabbitmq", "MQLAB_LEDGER_DIR": str(ledger_dir), "MQLAB_BATCH": "40",
           "MQLAB_CONNECT_ATTEMPTS": "3"}
    yield env, ledger_dir
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def sent_rows(ledger_dir, run, name="p1"):
    with open(ledger_dir / run / f"sent-{name}.tsv") as f:
        return [line.rstrip("\n").split("\t") for line in f]


def test_one_shot_producer_records_every_confirmed_message_once(lab, capsys):
    env, ledger_dir = lab
    MemoryBroker.nack_once = {0, 77}
    code = producer.main(["--count", "100", "--size", "300", "--run-id", "r1"], {**env, "MQLAB_NAME": "p1"})
    assert code == 0
    rows = sent_rows(ledger_dir, "r1")
    assert sorted(int(r[1]) for r in rows) == list(range(100))
    assert len({r[0] for r in rows}) == 100
    assert all(r[3] == "12345" for r in rows)
    assert len(MemoryBroker.queue) == 100 and all(len(b) == 300 for b in MemoryBroker.queue)
    out = capsys.readouterr().out
    assert "producer[p1] done: 100 confirmed" in out and "2 resent" in out


def test_producer_resends_unconfirmed_messages_after_losing_the_broker(lab, capsys):
    env, ledger_dir = lab
    MemoryBroker.drop_after_publishes = 1
    code = producer.main(["--count", "100", "--run-id", "r2"], {**env, "MQLAB_NAME": "p1"})
    assert code == 0
    rows = sent_rows(ledger_dir, "r2")
    assert sorted(int(r[1]) for r in rows) == list(range(100))
    # The half of the dropped batch that got through is on the queue twice: a duplicate, not a loss.
    assert len(MemoryBroker.queue) == 120
    assert "lost the broker while publishing" in capsys.readouterr().out


def test_a_rerun_with_the_same_run_id_continues_the_sequence(lab):
    env, ledger_dir = lab
    assert producer.main(["--count", "5", "--run-id", "r3"], {**env, "MQLAB_NAME": "p1"}) == 0
    assert producer.main(["--count", "5", "--run-id", "r3"], {**env, "MQLAB_NAME": "p1"}) == 0
    assert [int(r[1]) for r in sent_rows(ledger_dir, "r3")] == list(range(10))


def test_producer_retries_the_first_connection_then_gives_up_with_one_line(lab, capsys):
    env, ledger_dir = lab
    MemoryBroker.connect_failures = 10
    code = producer.main(["--count", "5", "--run-id", "r4"], {**env, "MQLAB_CONNECT_ATTEMPTS": "2"})
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    assert sum("connect attempt 1 failed: ConnectionError: connection refused" in line for line in out) == 1
    assert "giving up: could not connect to rabbitmq" in out[-1] and "after 2 attempts" in out[-1]
    assert not (ledger_dir / "r4" / "sent-p1.tsv").exists()


def test_producer_connects_after_a_few_failures(lab):
    env, ledger_dir = lab
    MemoryBroker.connect_failures = 1
    assert producer.main(["--count", "3", "--run-id", "r5"], {**env, "MQLAB_NAME": "p1"}) == 0
    assert len(sent_rows(ledger_dir, "r5")) == 3


def test_consumer_records_before_acking_prints_foreign_messages_and_stops_on_sigterm(lab, capsys):
    env, ledger_dir = lab
    MemoryBroker.queue = [envelope.make("r1", "p1", i).encode() for i in range(100)]
    MemoryBroker.queue[50:50] = [b"hello from redis-cli", b"\xff\x00" * 300]
    code = consumer.main([], {**env, "MQLAB_NAME": "c1"})
    assert code == 0
    assert len(MemoryBroker.acked) == 102
    assert MemoryBroker.receipts_before_ack
    with open(ledger_dir / "r1" / "recv-c1.tsv") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    assert [int(r[2]) for r in rows] == list(range(100))
    assert all(r[1] == "p1" and int(r[4]) >= int(r[3]) for r in rows)
    out = capsys.readouterr().out
    assert "consumer[c1] foreign message: b'hello from redis-cli'" in out
    assert "... (600 bytes)" in out
    assert "received 100" in out and "foreign 2" in out and "stopped on SIGTERM" in out


def test_consumer_does_not_ack_when_receipts_cannot_be_written(lab, capsys):
    env, ledger_dir = lab
    ledger_dir.parent.mkdir(exist_ok=True)
    ledger_dir.write_text("a file where the directory should be")
    MemoryBroker.queue = [envelope.make("r1", "p1", 1).encode()]
    assert consumer.main([], {**env, "MQLAB_NAME": "c1"}) == 1
    assert MemoryBroker.acked == []
    assert "giving up: cannot write receipts" in capsys.readouterr().out


def test_settings_errors_exit_2_with_one_line(lab, capsys):
    env, _ = lab
    assert producer.main(["--count", "1"], {**env, "MQLAB_RATE": "fast"}) == 2
    assert consumer.main([], {**env, "MQLAB_BATCH": "-4"}) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["producer: MQLAB_RATE must be a number, got 'fast'",
                   "consumer: MQLAB_BATCH must be at least 1, got '-4'"]


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as info:
        producer.main(["--help"], {})
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--count", "--size", "--run-id", "--rate"):
        assert flag in text
    assert text.count("(default:") >= 4


@pytest.mark.parametrize("argv", [["--count", "0"], ["--size", "-1"], ["--run-id", "../x"], ["--rate", "0"]])
def test_bad_flags_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        producer.main(argv, {})
    assert info.value.code == 2
    assert "producer: error: argument" in capsys.readouterr().err


def test_receipts_carry_the_key_the_mode_chose_and_status_files_tell_what_each_service_did(lab):
    env, ledger_dir = lab
    assert producer.main(["--count", "30", "--run-id", "r6"], {**env, "MQLAB_NAME": "p1"}) == 0
    rows = sent_rows(ledger_dir, "r6")
    assert all(len(r) == 6 and r[4] == f"k{int(r[1]) % 3}" and r[5] == "" for r in rows)  # a queue: no position
    assert consumer.main([], {**env, "MQLAB_NAME": "c1"}) == 0
    with open(ledger_dir / "r6" / "recv-c1.tsv") as f:
        recv = [line.rstrip("\n").split("\t") for line in f]
    assert len(recv) == 30 and all(len(r) == 7 and r[5] == f"k{int(r[2]) % 3}" for r in recv)

    produced = json.loads((ledger_dir / "_status" / "p1.json").read_text())
    assert {k: produced[k] for k in ("name", "role", "broker", "mode", "sent", "acked")} == {
        "name": "p1", "role": "producer", "broker": "rabbitmq", "mode": "work", "sent": 30, "acked": 30}
    consumed = json.loads((ledger_dir / "_status" / "c1.json").read_text())
    assert {k: consumed[k] for k in ("name", "role", "broker", "mode", "received", "foreign")} == {
        "name": "c1", "role": "consumer", "broker": "rabbitmq", "mode": "work", "received": 30, "foreign": 0}
    assert consumed["subscribed"] is False  # stopped: the last write says so
    assert consumed["assignment"] == ["memory"]
    assert set(consumed) >= {"rate", "updated_ns"} and set(produced) >= {"rate", "updated_ns"}


def test_a_one_shot_run_can_have_a_fixed_rate(lab):
    env, ledger_dir = lab
    started = time.monotonic()
    assert producer.main(["--count", "12", "--rate", "40", "--run-id", "r7"], {**env, "MQLAB_NAME": "p1"}) == 0
    elapsed = time.monotonic() - started
    assert len(sent_rows(ledger_dir, "r7")) == 12
    assert 0.25 <= elapsed < 3  # 12 messages at 40/s take about 0.3 s, not 0 and not forever


def test_poison_every_k_marks_every_kth_message_of_the_run(lab):
    env, ledger_dir = lab
    assert producer.main(["--count", "20", "--run-id", "rp", "--poison-every", "5"],
                         {**env, "MQLAB_NAME": "p1"}) == 0
    poisoned = [e.seq for e in map(envelope.decode, MemoryBroker.queue) if e.fail]
    assert poisoned == [4, 9, 14, 19]
    assert len(sent_rows(ledger_dir, "rp")) == 20  # poison is sent and confirmed like the rest


def test_consumer_retries_failed_messages_then_dead_letters_them_with_a_receipt_and_no_recv_line(lab, capsys):
    env, ledger_dir = lab
    MemoryBroker.queue = [envelope.make("rd", "p1", i, fail=envelope.poison(i, 10)).encode() for i in range(30)]
    poison_ids = {envelope.decode(b).id for b in MemoryBroker.queue if envelope.decode(b).fail}
    assert consumer.main([], {**env, "MQLAB_NAME": "c1", "MQLAB_MAX_DELIVERIES": "4"}) == 0
    assert MemoryBroker.receipts_before_ack
    with open(ledger_dir / "rd" / "recv-c1.tsv") as f:
        recv = [line.split("\t") for line in f]
    assert sorted(int(r[2]) for r in recv) == [i for i in range(30) if i % 10 != 9]
    with open(ledger_dir / "rd" / "dead-c1.tsv") as f:
        dead = [line.rstrip("\n").split("\t") for line in f]
    assert {r[0] for r in dead} == poison_ids and len(dead) == 3
    assert all(r[1] == "p1" and r[3] == "4" and r[4] == consumer.POISON_REASON for r in dead)
    assert sorted(int(r[2]) for r in dead) == [9, 19, 29] and all(int(r[5]) > 0 for r in dead)
    assert sorted(a for _b, _r, a in MemoryBroker.dead) == [4, 4, 4]
    assert "dead-lettered" in capsys.readouterr().out


def test_a_message_whose_processing_raises_fails_and_is_not_recorded(lab, monkeypatch):
    env, ledger_dir = lab

    def broken(env_):
        if env_.seq == 1:
            raise KeyError("no\tsuch\nthing")

    monkeypatch.setattr(consumer, "process", broken)
    c = consumer.Consumer(consumer.Settings.from_env({**env, "MQLAB_NAME": "c1"}),
                          consumer.ReceiptWriter(str(ledger_dir), "recv", "c1"))
    results = c.handle([(envelope.make("rx", "p1", i).encode(), "") for i in range(3)] + [(b"plain", "")])
    assert results[0] is None and results[2] is None and results[3] is None
    assert results[1].startswith("KeyError")
    with open(ledger_dir / "rx" / "recv-c1.tsv") as f:
        assert [line.split("\t")[2] for line in f] == ["0", "2"]


def test_an_oversized_message_is_rejected_in_one_line_and_the_others_go_through(lab, capsys):
    env, ledger_dir = lab
    code = producer.main(["--count", "5", "--run-id", "rs", "--size", "2000"],
                         {**env, "MQLAB_NAME": "p1", "MQLAB_MAX_MESSAGE_BYTES": "1000"})
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("rejected: message of 2000 bytes is above the client limit (1000 bytes)") == 5
    assert "5 of 5 message(s) rejected as too large" in out
    assert not (ledger_dir / "rs" / "sent-p1.tsv").exists() and MemoryBroker.queue == []


def test_messages_the_broker_refuses_as_too_large_are_not_resent_and_the_run_goes_on(lab, capsys, monkeypatch):
    env, ledger_dir = lab
    publish = MemoryAdapter.publish

    def refuse_seq_2(self, batch):
        acks = publish(self, batch)
        return [adapters.Rejected("message of 9 bytes is above the broker limit (8 bytes)")
                if envelope.decode(body).seq == 2 else ack for (body, _k), ack in zip(batch, acks)]

    monkeypatch.setattr(MemoryAdapter, "publish", refuse_seq_2)
    assert producer.main(["--count", "4", "--run-id", "rb"], {**env, "MQLAB_NAME": "p1"}) == 1
    assert [int(r[1]) for r in sent_rows(ledger_dir, "rb")] == [0, 1, 3]
    out = capsys.readouterr().out
    assert out.count("rejected: message of 9 bytes is above the broker limit (8 bytes)") == 1
    assert "1 of 4 message(s) rejected" in out
