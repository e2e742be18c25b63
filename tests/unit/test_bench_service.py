"""bench producer and consumer against a fake adapter: schedules, windows, series, results, CLI."""

from __future__ import annotations

import json
import signal
import time

import pytest
from hdrh.histogram import HdrHistogram

from mqlab_services import adapters, bare, bench, envelope
from mqlab_services.adapters import Adapter, Rejected
from mqlab_services.runtime import Stopper
from mqlab_services.settings import Settings
from mqlab_services.status import StatusFile

NS = 1_000_000_000
START = 1_700_000_000.0
START_NS = round(START * NS)


class FakeClock:
    """Wall-clock ns that moves only when someone sleeps or a fake broker takes time."""

    def __init__(self, now_ns: int = START_NS - NS // 2):
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def sleep(self, seconds: float) -> None:
        self.now_ns += max(1, round(seconds * NS))


class FakeBroker:
    """Shared by the fake adapters of a test; reset by the fixtures."""

    queue: list[bytes] = []
    publishes: list[int] = []  # batch sizes
    clock: FakeClock | None = None  # None: real time
    publish_ns = 0  # how long a publish takes (fake clock only)
    answers: dict[int, object] = {}  # seq -> publish answer instead of an ack time
    fail_on_publish = -1  # raise ConnectionError on this publish call (0-based)
    deliveries: list[tuple[int, list[bytes]]] = []  # consume: (at ns, batch) on the fake clock
    status_seen: list[dict] = []

    @classmethod
    def reset(cls):
        cls.queue, cls.publishes, cls.clock, cls.publish_ns = [], [], None, 0
        cls.answers, cls.fail_on_publish, cls.deliveries, cls.status_seen = {}, -1, [], []

    @classmethod
    def now(cls) -> int:
        return cls.clock() if cls.clock else time.time_ns()


class FakeAdapter(Adapter):
    name = "fake"
    errors = (ConnectionError,)

    def connect(self):
        pass

    def ping(self):
        return 0.0

    def key_for(self, seq):
        return f"k{seq % 2}"

    def publish(self, batch):
        if not batch:
            return []
        if len(FakeBroker.publishes) == FakeBroker.fail_on_publish:
            raise ConnectionError("connection reset by peer")
        FakeBroker.publishes.append(len(batch))
        if FakeBroker.clock:
            FakeBroker.clock.now_ns += FakeBroker.publish_ns
        now = FakeBroker.now()
        acks = []
        for body, _key in batch:
            seq = envelope.decode(body).seq
            FakeBroker.queue.append(body)
            acks.append(FakeBroker.answers.get(seq, now))
        return acks

    def consume(self, handler, running, dead=None):
        self.subscribed, self.assignment = True, ["fake"]
        while running():
            if FakeBroker.deliveries and FakeBroker.clock:
                at_ns, batch = FakeBroker.deliveries.pop(0)
                FakeBroker.clock.now_ns = max(FakeBroker.clock.now_ns, at_ns)
            elif FakeBroker.queue:
                batch, FakeBroker.queue[:] = FakeBroker.queue[:50], FakeBroker.queue[50:]
            else:
                batch = []
                if FakeBroker.clock:
                    FakeBroker.clock.now_ns += NS // 4
                else:
                    time.sleep(0.05)
            handler([(body, "") for body in batch])
        self.subscribed = False

    def close(self):
        pass


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setitem(adapters.ADAPTERS, "rabbitmq", f"{__name__}:FakeAdapter")
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    FakeBroker.reset()
    env = {"MQLAB_BROKER": "rabbitmq", "MQLAB_LEDGER_DIR": str(tmp_path / "ledger"), "MQLAB_BATCH": "20",
           "MQLAB_CONNECT_ATTEMPTS": "2"}
    yield env, tmp_path
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def settings(batch=20, **extra) -> Settings:
    return Settings.from_env({"MQLAB_BROKER": "rabbitmq", "MQLAB_BATCH": str(batch), "MQLAB_NAME": "p1",
                              **extra})


def producer(clock, rate, batch=20, warmup=1.0, duration=2.0, size=300):
    FakeBroker.clock = clock
    s = settings(batch)
    return bench.BenchProducer(s, FakeAdapter(s), Stopper(), "t1", START, warmup, duration, size, rate,
                               clock=clock, sleep=clock.sleep)


def sent() -> list[envelope.Envelope]:
    return [envelope.decode(body) for body in FakeBroker.queue]


# --------------------------------------------------------------------------- producer


def test_at_a_fixed_rate_each_message_is_stamped_with_its_scheduled_time(fake):
    clock = FakeClock()
    FakeBroker.publish_ns = 200_000  # 0.2 ms per confirm round trip
    p = producer(clock, rate=100.0)
    p.run()
    envs = sent()
    assert [e.seq for e in envs] == list(range(300))  # 3 s at 100 msg/s, nothing after the end
    assert [e.ts_ns for e in envs] == [START_NS + i * 10_000_000 for i in range(300)]
    assert all(e.run == "t1" and e.src == "p1" for e in envs)
    assert all(len(body) == 300 for body in FakeBroker.queue)
    assert set(FakeBroker.publishes) == {1}  # never behind: one message per publish
    assert p.series == [100, 100, 100]
    assert (p.window_count, p.window_bytes, p.total, p.failed) == (200, 200 * 300, 300, 0)
    assert p.latency.count == 200 and p.latency.min == p.latency.max == 200_000
    assert p.error is None and p.bytes_per_message == 300


def test_a_producer_that_falls_behind_keeps_the_schedule_so_latencies_grow(fake):
    clock = FakeClock()
    FakeBroker.publish_ns = 10_000_000  # 10 ms per publish of at most 5: 500 msg/s, half the rate
    p = producer(clock, rate=1000.0, batch=5, warmup=0.0, duration=2.0)
    p.run()
    envs = sent()
    # Nothing skipped, nothing re-planned: every due message, stamped when it was due.
    assert [e.seq for e in envs] == list(range(2000))
    assert [e.ts_ns for e in envs] == [START_NS + i * 1_000_000 for i in range(2000)]
    assert max(FakeBroker.publishes) == 5
    # It needs about 4 s for 2 s of schedule: the last message waits about 2 s.
    assert clock.now_ns - START_NS == pytest.approx(4 * NS, rel=0.02)
    assert p.latency.max == pytest.approx(2 * NS, rel=0.02)
    assert p.latency.percentile(50) == pytest.approx(1 * NS, rel=0.05)
    assert p.latency.min <= 10_000_000
    assert p.series == [1000, 1000]  # counted by scheduled second, not by ack second


def test_at_max_rate_batches_are_stamped_when_made_and_stop_at_the_end(fake):
    clock = FakeClock()
    FakeBroker.publish_ns = 50_000_000  # 50 ms per batch of 20
    p = producer(clock, rate=None, warmup=1.0, duration=1.0)
    p.run()
    envs = sent()
    assert set(FakeBroker.publishes) == {20} and len(envs) == 40 * 20  # 2 s / 50 ms batches
    assert all(START_NS <= e.ts_ns < START_NS + 2 * NS for e in envs)
    assert p.series == [400, 400] and p.window_count == 400
    assert p.latency.min == p.latency.max == 50_000_000


def test_unconfirmed_and_rejected_messages_count_as_failed_and_are_not_sent_again(fake):
    clock = FakeClock()
    FakeBroker.answers = {3: None, 150: Rejected("too large"), 250: None}
    p = producer(clock, rate=100.0)
    p.run()
    assert len(FakeBroker.queue) == 300
    assert (p.failed, p.total, p.window_count) == (3, 297, 198)
    assert p.series == [99, 99, 99]


# --------------------------------------------------------------------------- consumer


def consumer(clock, trial="t1", warmup=1.0, duration=2.0, drain=10.0):
    FakeBroker.clock = clock
    s = settings(MQLAB_NAME="c1")
    return bench.BenchConsumer(s, FakeAdapter(s), Stopper(), trial, START, warmup, duration, drain,
                               clock=clock)


def trial_message(seq, ts_ns, run="t1", size=500) -> bytes:
    return envelope.make(run, "p1", seq, ts_ns=ts_ns).encode(size)


def test_consumer_counts_its_trial_by_window_and_receipt_second_and_ignores_the_rest(fake):
    clock = FakeClock()
    ms = 1_000_000
    FakeBroker.deliveries = [
        (START_NS - 100 * ms, [trial_message(0, START_NS - 200 * ms)]),  # before start: second 0
        (START_NS + 500 * ms, [trial_message(1, START_NS + 400 * ms), b"not json",
                               trial_message(9, START_NS + 400 * ms, run="steady")]),
        (START_NS + 1500 * ms, [trial_message(2, START_NS + 1490 * ms),
                                trial_message(3, START_NS + 1480 * ms)]),
        (START_NS + 3500 * ms, [trial_message(4, START_NS + 2999 * ms)]),  # sent in window, got late
        (START_NS + 3600 * ms, [trial_message(5, START_NS + 3000 * ms)]),  # sent after the end
    ]
    c = consumer(clock)
    c.run()
    assert c.series == [2, 2, 0, 2]  # by receipt second, past the end into the drain
    assert (c.total, c.other, c.window_count, c.window_bytes) == (6, 2, 3, 1500)
    assert c.latency.count == 3
    assert (c.latency.min, c.latency.max) == (10 * ms, 501 * ms)
    # Stops a second after the last message once the end passed.
    assert START_NS + 4600 * ms <= clock.now_ns < START_NS + 5000 * ms
    assert c.error is None and c.bytes_per_message == 500


def test_consumer_stops_at_end_plus_drain_even_while_messages_keep_coming(fake):
    clock = FakeClock()
    FakeBroker.deliveries = [(START_NS + k * NS // 2, [trial_message(k, START_NS + k * NS // 2)])
                             for k in range(100)]
    c = consumer(clock, warmup=0.0, duration=2.0, drain=3.0)
    c.run()
    assert clock.now_ns >= START_NS + 5 * NS
    assert c.total == 11  # receipts at 0, 0.5, ... 5.0 s
    assert c.window_count == 4


def test_consumer_status_file_says_when_it_is_subscribed(fake, tmp_path):
    clock = FakeClock()
    FakeBroker.deliveries = [(START_NS, [trial_message(0, START_NS)])]
    c = consumer(clock)
    status = StatusFile(str(tmp_path / "ledger"), "c1", {"role": "bench-consumer"}, counter="received",
                        clock=lambda: clock() / NS)
    c.status = status
    seen = []
    handle = c.handle

    def spy(batch):
        handle(batch)
        with open(status.path) as f:
            seen.append(json.load(f))
    c.handle = spy
    c.run()
    assert seen[0]["subscribed"] is True and seen[0]["role"] == "bench-consumer"
    with open(status.path) as f:
        final = json.load(f)
    assert final["subscribed"] is False and final["received"] == 1


# --------------------------------------------------------------------------- main, results, CLI

KEYS = {"schema", "role", "name", "broker", "mode", "client", "trial", "start", "warmup", "duration", "rate",
        "size", "bytes_per_message", "series", "window_count", "window_bytes", "total", "latency", "error"}
LATENCY_KEYS = {"kind", "unit", "count", "min", "p50", "p90", "p99", "p999", "max", "mean", "hdr"}


def test_a_short_real_run_writes_both_results(fake):
    env, tmp_path = fake
    out = tmp_path / "results" / "trial-1"
    start = time.time() + 0.3
    common = ["--out", str(out), "--trial", "t1", "--start", f"{start:.6f}", "--warmup", "0.5",
              "--duration", "1"]
    FakeBroker.queue = [trial_message(0, START_NS, run="other-run")]
    code = bench.main(["producer", *common, "--size", "1024", "--rate", "200"], {**env, "MQLAB_NAME": "p1"})
    assert code == 0
    with open(out / "producer-p1.json") as f:
        p = json.load(f)
    assert set(p) == KEYS | {"failed"} and set(p["latency"]) == LATENCY_KEYS
    assert (p["schema"], p["role"], p["name"], p["broker"], p["mode"], p["trial"]) == (
        1, "producer", "p1", "rabbitmq", "work", "t1")
    assert p["client"].startswith("pika ") and p["start"] == pytest.approx(start)
    assert (p["rate"], p["size"], p["bytes_per_message"]) == (200.0, 1024, 1024)
    assert (p["failed"], p["error"]) == (0, None)
    assert p["total"] == 300 and p["series"] == [200, 100]
    assert p["window_count"] == 200 and p["window_bytes"] == 200 * 1024
    lat = p["latency"]
    assert lat["kind"] == "ack" and lat["unit"] == "ns" and lat["count"] == 200
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert HdrHistogram.decode(lat["hdr"]).get_total_count() == 200
    assert not list(out.glob(".*"))  # no temporary file left

    code = bench.main(["consumer", *common, "--drain", "2"], {**env, "MQLAB_NAME": "c1"})
    assert code == 0
    with open(out / "consumer-c1.json") as f:
        c = json.load(f)
    assert set(c) == KEYS | {"other"} and set(c["latency"]) == LATENCY_KEYS
    assert (c["role"], c["rate"], c["size"], c["other"], c["total"], c["window_count"]) == (
        "consumer", None, 1024, 1, 300, 200)
    assert c["latency"]["kind"] == "e2e" and HdrHistogram.decode(c["latency"]["hdr"]).get_total_count() == 200
    assert sum(c["series"]) == 300
    with open(tmp_path / "ledger" / "_status" / "c1.json") as f:
        assert json.load(f)["role"] == "bench-consumer"


def test_losing_the_broker_writes_what_it_has_and_exits_1(fake, capsys):
    env, tmp_path = fake
    FakeBroker.fail_on_publish = 3
    code = bench.main(["producer", "--out", str(tmp_path), "--trial", "t2", "--start", str(time.time()),
                       "--warmup", "0", "--duration", "5", "--size", "0"], {**env, "MQLAB_NAME": "p1"})
    assert code == 1
    with open(tmp_path / "producer-p1.json") as f:
        p = json.load(f)
    assert p["total"] == 60 and p["rate"] is None
    assert p["error"] == "lost the broker: ConnectionError: connection reset by peer"
    out = capsys.readouterr().out
    assert "bench[p1] lost the broker: ConnectionError: connection reset by peer; partial result" in out


def test_an_empty_window_gives_zero_latencies_and_an_empty_histogram(fake):
    result = consumer(FakeClock()).result()
    lat = result["latency"]
    assert (lat["count"], lat["min"], lat["p99"], lat["max"], lat["mean"]) == (0, 0, 0, 0, 0.0)
    assert HdrHistogram.decode(lat["hdr"]).get_total_count() == 0
    assert result["series"] == [0, 0, 0]


def test_latencies_are_clamped_to_the_histogram_range(fake):
    lat = bench.Latency("e2e")
    for ns in (-5, 10, 5_000_000, 10**20):
        lat.record(ns)
    assert (lat.min, lat.max, lat.count) == (bench.LOWEST_NS, bench.HIGHEST_NS, 4)
    assert lat.percentile(100) == bench.HIGHEST_NS


GOOD = ["--out", "/tmp/x", "--trial", "t1", "--start", "1700000000", "--warmup", "1", "--duration", "2"]


@pytest.mark.parametrize("argv", [
    [],
    ["sideways", *GOOD],
    ["producer", *GOOD],  # no --size
    ["producer", *GOOD, "--size", "-1"],
    ["producer", *GOOD, "--size", "1k"],
    ["producer", *GOOD, "--size", "100", "--rate", "0"],
    ["producer", *GOOD, "--size", "100", "--drain", "1"],
    ["consumer", *GOOD[:-2]],  # no --duration
    ["consumer", *GOOD[:-1], "0"],
    ["consumer", *GOOD[:-3], "-1", "--duration", "2"],  # negative warm-up
    ["consumer", *GOOD, "--drain", "nan"],
    ["consumer", *[a if a != "t1" else "../t1" for a in GOOD]],
    ["consumer", *[a if a != "1700000000" else "soon" for a in GOOD]],
])
def test_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv, {"MQLAB_BROKER": "rabbitmq"})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bench") and "error:" in err[-1]


def test_bad_settings_exit_2(fake, capsys):
    env, _tmp = fake
    assert bench.main(["consumer", *GOOD], {**env, "MQLAB_BATCH": "0"}) == 2
    assert capsys.readouterr().err.startswith("bench: MQLAB_BATCH must be at least 1")


def test_every_flag_has_help():
    parser = bench.build_parser()
    roles = next(a for a in parser._actions if a.dest == "role")
    for sub in roles.choices.values():
        assert all(action.help for action in sub._actions)


# --------------------------------------------------------------------------- the bare client


def test_every_client_has_a_bare_loop_in_the_brokers_safe_mode_and_its_lossy_twin():
    from mqlab_services import bare, modes
    from mqlab_services.settings import CLIENTS

    for broker, clients in CLIENTS.items():
        safe, lossy = bare.MODES[broker]
        assert modes.default_mode(broker).name == safe and modes.mode_info(broker, safe).lossy == lossy
        for client, _dist in clients:
            s = Settings.from_env({"MQLAB_BROKER": broker, "MQLAB_KAFKA_CLIENT": client} if broker == "kafka"
                                  else {"MQLAB_BROKER": broker})
            produce, consume = bare.loops(s)
            assert produce is bare.LOOPS[(broker, client)][0] and consume is bare.LOOPS[(broker, client)][1]


def test_the_bare_producer_waits_for_the_start_and_counts_each_acked_batch_by_its_start(monkeypatch):
    clock = FakeClock()
    calls = []

    def loop(s, body, more, acked):
        assert len(body) == 300
        while more():
            calls.append(clock())
            clock.now_ns += NS // 10  # a batch takes 100 ms
            acked(s.batch - 1)  # one of each batch was not confirmed

    monkeypatch.setattr(bare, "loops", lambda s: (loop, None))
    p = bench.BareProducer(settings(batch=20), Stopper(), "t1", START, 1.0, 2.0, 300, clock=clock, sleep=clock.sleep)
    p.run()
    assert calls[0] == START_NS and len(calls) == 30  # 3 s of 100 ms batches, from the start on
    result = p.result()
    assert result["series"] == [190, 190, 190] and result["window_count"] == 380 and result["total"] == 570
    assert result["window_bytes"] == 380 * 300 and result["bare"] is True and result["latency"]["count"] == 0
    assert p.error is None


def test_the_bare_consumer_says_once_that_it_subscribed_and_stops_when_idle_after_the_end(monkeypatch, tmp_path):
    from mqlab_services.status import StatusFile, status_path

    def read_status(directory, name):
        with open(status_path(directory, name)) as f:
            return json.load(f)

    clock = FakeClock(START_NS)

    def loop(s, more, received, ready):
        ready()
        ready()  # a second assignment: still one subscription
        assert read_status(str(tmp_path), "c1")["subscribed"] is True
        while more():
            clock.now_ns += NS // 2
            received(10 if clock() < START_NS + 3 * NS else 0)

    monkeypatch.setattr(bare, "loops", lambda s: (None, loop))
    status = StatusFile(str(tmp_path), "c1", {"role": "bench-consumer", "subscribed": False, "received": 0},
                        counter="received")
    c = bench.BareConsumer(settings(), Stopper(), "t1", START, 1.0, 2.0, drain=10.0, clock=clock, status=status)
    c.run()
    result = c.result()
    assert result["total"] == 50 and result["window_count"] == 40 and result["series"][:3] == [10, 20, 20]
    # Nothing came after the end: it stopped a second later, well before the drain ran out.
    assert clock() <= START_NS + 4 * NS + NS // 2
    assert read_status(str(tmp_path), "c1")["subscribed"] is False


def test_the_bare_producer_at_a_rate_sends_each_batch_when_due_and_measures_its_ack_latency(monkeypatch):
    """At ``--rate`` a batch of MQLAB_BATCH is due every batch/rate seconds; its latency runs
    from the due time, so a loop that falls behind counts its wait (no coordinated omission)."""
    clock = FakeClock()
    calls = []

    def loop(s, body, more, acked):
        while more():
            calls.append(clock())
            clock.now_ns += 2_000_000 if len(calls) != 50 else 30_000_000  # 2 ms a batch; one takes 30 ms
            acked(s.batch)

    monkeypatch.setattr(bare, "loops", lambda s: (loop, None))
    p = bench.BareProducer(settings(batch=1), Stopper(), "t1", START, 0.0, 1.0, 100, rate=100.0, clock=clock,
                           sleep=clock.sleep)
    p.run()
    assert calls[:3] == [START_NS, START_NS + 10_000_000, START_NS + 20_000_000]  # 100/s, one at a time
    assert len(calls) == 100 and p.result()["rate"] == 100.0
    lat = p.latency
    assert lat.count == 100 and lat.min == 2_000_000
    assert lat.max == 30_000_000  # the slow one; the next ones were sent late, and count their wait
    assert sorted(lat.percentile(q) for q in (50,)) == [pytest.approx(2_000_000, rel=0.01)]
    assert lat.percentile(99) >= 20_000_000


def test_the_bare_client_refuses_a_mode_it_does_not_imitate(fake, capsys):
    env, _tmp = fake
    argv = ["consumer", "--out", "/tmp/x", "--trial", "t1", "--start", "1700000000", "--warmup", "1",
            "--duration", "2", "--bare"]
    assert bench.main(argv, {**env, "MQLAB_MODE": "fanout"}) == 2
    assert "runs only in work or autoack mode on rabbitmq, not fanout" in capsys.readouterr().err


def test_binned_latencies_fill_the_same_histogram_buckets_as_recording_each_value():
    import random

    rng = random.Random(7)
    values = [int(10 ** rng.uniform(3, 10)) for _ in range(20_000)] + [1_000, 1_511, 2_047_999, 2_048_000]
    lat = bench.Latency("e2e")
    for start in range(0, len(values), 100):
        lat.record_many(values[start:start + 100])
    direct = HdrHistogram(bench.LOWEST_NS, bench.HIGHEST_NS, bench.DIGITS)
    for v in values:
        direct.record_value(v)
    binned = lat.hist
    for p in (0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100):
        assert binned.get_value_at_percentile(p) == direct.get_value_at_percentile(p), p
    assert binned.get_total_count() == direct.get_total_count() == lat.count
    assert (lat.min, lat.max, lat.total) == (min(values), max(values), sum(values))


def test_consumer_status_says_subscribed_before_any_message_comes(fake, tmp_path):
    """A transactional stage hands the handler only records, and the trial's producer starts
    only once its consumers are subscribed: the status must say so while nothing has come."""
    clock = FakeClock()
    FakeBroker.deliveries = []
    c = consumer(clock, warmup=0.0, duration=1.0, drain=1.0)
    c.status = StatusFile(str(tmp_path / "ledger"), "c1", {"role": "bench-consumer"}, counter="received",
                          clock=lambda: clock() / NS)
    seen = []

    def consume(handler, running, dead=None):
        c.adapter.subscribed = True
        while running():
            with open(c.status.path) as f:
                seen.append(json.load(f)["subscribed"])
            clock.sleep(0.25)
    c.adapter.consume = consume
    c.run()
    assert seen and seen[-1] is True and c.total == 0
