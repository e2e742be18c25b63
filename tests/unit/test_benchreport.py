"""Benchmark results: merging the bench containers' files, medians, ratios, reports, plans."""

import json
from types import SimpleNamespace

import pytest
from hdrh.histogram import HdrHistogram
from invoke import Exit, MockContext

import tasks
from mqlab.bench import plan as bench_plan
from mqlab.bench import record as bench_record
from mqlab.bench import report as bench_report
from mqlab.bench import stack as bench_stack
from mqlab.errors import UsageError
from mqlab.stacks import STACKS


def hdr(values):
    h = HdrHistogram(*bench_report.HDR_RANGE)
    for v in values:
        h.record_value(v)
    encoded = h.encode()
    return encoded.decode() if isinstance(encoded, bytes) else encoded


def part(role, name, series, window, values, duration=2.0, size=1024, failed=0, error=None):
    return {"schema": 1, "role": role, "name": name, "broker": "redis", "mode": "stream", "client": "redis-py 5",
            "trial": "t1", "start": 1000.0, "warmup": 1.0, "duration": duration, "rate": None, "size": size,
            "bytes_per_message": size, "series": series, "window_count": window, "window_bytes": window * size,
            "total": sum(series), ("failed" if role == "producer" else "other"): failed,
            "latency": {"kind": "ack" if role == "producer" else "e2e", "unit": "ns", "hdr": hdr(values)},
            "error": error}


def test_merge_adds_producers_and_consumers_and_their_histograms():
    producers = [part("producer", "p0", [10, 20, 20], 40, [1_000_000] * 40),
                 part("producer", "p1", [5, 10], 10, [3_000_000] * 10)]
    consumers = [part("consumer", "c0", [5, 15, 20, 5], 30, [2_000_000] * 30),
                 part("consumer", "c1", [0, 10, 10], 20, [50_000_000] * 20)]
    trial = bench_report.merge_mqlab(producers, consumers)
    assert trial["send_rate"] == 25.0  # 50 in the window / 2 s
    assert trial["recv_rate"] == 25.0
    assert trial["mb_per_s"] == pytest.approx(50 * 1024 / 2 / 1e6)
    assert trial["series"]["sent"] == [15, 30, 20]
    assert trial["series"]["received"] == [5, 25, 30, 5]
    assert trial["series"]["backlog"] == [10, 15, 5, 0]
    assert trial["latency"]["count"] == 50
    # 30 of 50 at 2 ms, 20 at 50 ms: the median is 2 ms, p99 50 ms (3 significant digits).
    assert trial["latency"]["p50"] == pytest.approx(2_000_000, rel=1e-3)
    assert trial["latency"]["p99"] == pytest.approx(50_000_000, rel=1e-3)
    assert trial["ack_latency"]["count"] == 50
    assert trial["ack_latency"]["max"] == pytest.approx(3_000_000, rel=1e-3)
    assert trial["curve"][0][0] == 0.0 and trial["curve"][-1][0] == 100.0
    assert trial["error"] is None


def test_merge_needs_both_sides_and_keeps_errors():
    with pytest.raises(bench_report.ResultError, match="expected producer and consumer"):
        bench_report.merge_mqlab([part("producer", "p0", [1], 1, [1000])], [])
    trial = bench_report.merge_mqlab([part("producer", "p0", [1], 1, [5000], error="lost the broker")],
                                    [part("consumer", "c0", [1], 1, [5000])])
    assert trial["error"] == "producer p0: lost the broker"


def test_empty_histogram_has_no_quantiles():
    q = bench_report.quantiles(bench_report.merge_histograms([]))
    assert q["count"] == 0 and q["p99"] is None


def test_read_parts_reports_a_broken_file(tmp_path):
    (tmp_path / "producer-a.json").write_text(json.dumps(part("producer", "a", [1], 1, [1000])))
    (tmp_path / "consumer-b.json").write_text("{not json")
    with pytest.raises(bench_report.ResultError, match="consumer-b.json"):
        bench_report.read_parts(tmp_path)


def native_result(send, recv, p99, kind="e2e"):
    return SimpleNamespace(tool="PerfTest", send_rate=send, recv_rate=recv, mb_per_s=send * 1024 / 1e6,
                           latency_kind=kind, p50_ns=p99 // 2, p99_ns=p99, p999_ns=None, max_ns=p99 * 2,
                           raw_summary=["line"])


def trial(record, label, role, phase, rate, repeat):
    return {**record, "label": label, "role": role, "phase": phase, "rate": rate, "repeat": repeat}


def mqlab_record(send, p99_e2e, p99_ack):
    return {"kind": "mqlab", "send_rate": send, "recv_rate": send, "mb_per_s": 1.0, "latency_kind": "e2e",
            "latency": {"p50": 1, "p90": 1, "p99": p99_e2e, "p999": 1, "max": 1},
            "ack_latency": {"p50": 1, "p90": 1, "p99": p99_ack, "p999": 1, "max": 1}, "error": None}


def sample_trials(native_kind="e2e"):
    trials = []
    for repeat, (safe, unsafe, nat) in enumerate([(1000, 1500, 10000), (3000, 4000, 12000), (2000, 5000, 8000)]):
        trials.append(trial(mqlab_record(safe, 4_000_000, 2_000_000), "mqlab work", "safe", "throughput", None, repeat))
        trials.append(trial(mqlab_record(unsafe, 1, 1), "mqlab autoack", "unsafe", "throughput", None, repeat))
        trials.append(trial(bench_report.native_trial(native_result(nat, nat, 1)), "PerfTest", "native",
                            "throughput", None, repeat))
        trials.append(trial(mqlab_record(1000, 3_000_000 + repeat, 1_500_000), "mqlab work", "safe", "latency", 1000, repeat))
        trials.append(trial(bench_report.native_trial(native_result(1000, 1000, 1_000_000, native_kind)), "PerfTest",
                            "native", "latency", 1000, repeat))
    return trials


def test_summary_takes_medians_and_computes_the_ratios():
    summary = bench_report.summarise(sample_trials())
    safe = summary["groups"]["mqlab work@throughput"]
    assert safe["send_rate"] == 2000 and safe["repeats"] == 3
    r = summary["ratios"]
    # Each ratio is the median of the repeats' own ratios: 0.1, 0.25, 0.25 (not 2,000 / 10,000).
    assert r["r_send"] == pytest.approx(0.25)
    assert r["spreads"]["r_send"] == {"median": pytest.approx(0.25), "low": pytest.approx(0.1),
                                      "high": pytest.approx(0.25), "pairs": 3, "method": "min-max"}
    assert r["safe_vs_unsafe"] == pytest.approx(1000 / 1500)  # of 0.667, 0.75 and 0.4
    assert r["p99_kind"] == "e2e"
    assert r["p99_ratio"] == pytest.approx(3_000_001 / 1_000_000)


def test_p99_ratio_compares_ack_latency_with_a_tool_that_measures_acks():
    r = bench_report.summarise(sample_trials(native_kind="ack"))["ratios"]
    assert r["p99_kind"] == "ack"
    assert r["p99_ratio"] == pytest.approx(1.5)


def test_one_rate_serves_both_phases():
    trials = [t for t in sample_trials() if t["phase"] == "throughput"]
    r = bench_report.summarise(trials)["ratios"]
    assert r["p99_ratio"] == pytest.approx(4_000_000 / 1)


def sample_run(tmp_path=None):
    trials = sample_trials()
    for t in trials:
        if t["kind"] == "mqlab":
            t.update(series={"sent": [5, 10, 10], "received": [4, 10, 11], "backlog": [1, 1, 0]},
                     curve=[[0.0, 1000], [50.0, 2000], [99.0, 5000], [100.0, 9000]], ack_curve=[[50.0, 1000]])
    params = {"size": 1024, "rate": None, "duration": 10.0, "warmup": 3.0, "producers": 1, "consumers": 1,
              "mode": "work", "repeat": 3, "latency_rate": 1000.0, "native": True}
    return {"schema": 1, "id": "rabbitmq-20260101T000000Z", "stack": "rabbitmq", "mode": "work", "unsafe_mode": "autoack",
            "params": params, "environment": {"pinning": "broker on CPU 0, clients on CPU 1"},
            "finished": "2026-01-01T00:00:00+00:00", "trials": trials, "summary": bench_report.summarise(trials)}


def test_markdown_shows_every_group_and_the_ratios_against_targets():
    text = bench_report.markdown(sample_run())
    assert "| mqlab work | max | 2,000 |" in text
    assert "| PerfTest | 1,000/s |" in text
    assert "| R = mqlab sent ÷ native sent (at max) | 0.250 [0.100–0.250] ✓ |" in text  # all of it ≥ 0.1
    assert "| safe mode ÷ lossy mode (mqlab sent) | 0.667 [0.400–0.750] ≈ |" in text  # 0.5 inside it
    assert "more repeats would tell" in text
    assert "3.000 [3.000–3.000] ✗" in text  # p99 ratio above 2, all of it
    assert "PerfTest: end-to-end latency" in text and "redis-benchmark:" not in text


def test_plots_and_compare_write_files(tmp_path):
    run = sample_run()
    paths = bench_report.plot_run(run, tmp_path)
    assert [p.name for p in paths] == [f"{run['id']}-throughput.png", f"{run['id']}-latency.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = {**run, "stack": "redis", "id": "redis-x"}
    assert "| redis | 1024 B | work | 2,000 |" in bench_report.compare_markdown([run, other])
    png = bench_report.plot_compare([run, other], tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_fmt_ns():
    assert bench_report.fmt_ns(None) == "-"
    assert bench_report.fmt_ns(532_000) == "532 µs"
    assert bench_report.fmt_ns(2_345_000) == "2.35 ms"
    assert bench_report.fmt_ns(1_410_000_000) == "1.41 s"
    assert bench_report.fmt_ns(12_000_000_000) == "12 s"


# --- planning and flags -------------------------------------------------------------------

def test_plan_interleaves_repeats_and_skips_the_lossy_twin_of_a_lossy_mode():
    params = bench_plan.check_params(STACKS["rabbitmq"], bench_plan.BenchParams(repeat=2))
    trials = bench_plan.plan(STACKS["rabbitmq"], params)
    assert [(t.role, t.phase, t.repeat) for t in trials[:7]] == [
        ("safe", "throughput", 0), ("unsafe", "throughput", 0), ("bare", "throughput", 0),
        ("bare-unsafe", "throughput", 0), ("native", "throughput", 0), ("safe", "latency", 0), ("native", "latency", 0)]
    assert len(trials) == 14 and trials[1].mode == "autoack" and trials[5].rate == 1000
    assert [(t.label, t.mode, t.rate) for t in trials[2:4]] == [("bare work", "work", None),
                                                                ("bare autoack", "autoack", None)]
    lossy = bench_plan.plan(STACKS["redis"], bench_plan.check_params(STACKS["redis"], bench_plan.BenchParams(mode="pubsub", repeat=1)))
    assert [(t.role, t.mode) for t in lossy] == [("safe", "pubsub"), ("bare", "pubsub"), ("native", None),
                                                 ("safe", "pubsub"), ("bare", "pubsub"), ("native", None)]
    same_rate = bench_plan.plan(STACKS["kafka"], bench_plan.check_params(
        STACKS["kafka"], bench_plan.BenchParams(rate=1000, latency_rate=1000, repeat=1, native=False,
                                           clients=("kafka-python",))))
    assert [(t.role, t.phase, t.label) for t in same_rate] == [("safe", "throughput", "mqlab group"),
                                                              ("unsafe", "throughput", "mqlab autocommit")]


def test_the_bare_client_runs_at_max_rate_in_the_modes_it_knows_unless_skipped():
    def roles(stack, **kw):
        params = bench_plan.check_params(STACKS[stack], bench_plan.BenchParams(repeat=1, latency_rate=None, native=False, **kw))
        return [(t.role, t.mode) for t in bench_plan.plan(STACKS[stack], params)]

    assert roles("rabbitmq", bare=False) == [("safe", "work"), ("unsafe", "autoack")]
    assert roles("rabbitmq", rate=500) == [("safe", "work"), ("unsafe", "autoack")]
    # The bare client imitates the safe and the lossy mode of each broker, not the others.
    assert roles("rabbitmq", mode="fanout") == [("safe", "fanout"), ("unsafe", "autoack"), ("bare-unsafe", "autoack")]
    assert roles("redis") == [("safe", "stream"), ("unsafe", "pubsub"), ("bare", "stream"), ("bare-unsafe", "pubsub")]


def test_kafka_measures_both_clients_side_by_side_by_default():
    params = bench_plan.check_params(STACKS["kafka"], bench_plan.BenchParams(repeat=1))
    trials = bench_plan.plan(STACKS["kafka"], params)
    assert [(t.label, t.phase) for t in trials] == [
        ("mqlab group (kafka-python)", "throughput"), ("mqlab autocommit (kafka-python)", "throughput"),
        ("bare group (kafka-python)", "throughput"), ("bare autocommit (kafka-python)", "throughput"),
        ("mqlab group (confluent-kafka)", "throughput"), ("mqlab autocommit (confluent-kafka)", "throughput"),
        ("bare group (confluent-kafka)", "throughput"), ("bare autocommit (confluent-kafka)", "throughput"),
        ("kafka-perf-test", "throughput"),
        ("mqlab group (kafka-python)", "latency"), ("bare group (kafka-python)", "latency"),
        ("mqlab group (confluent-kafka)", "latency"), ("bare group (confluent-kafka)", "latency"),
        ("kafka-perf-test", "latency")]
    # The bare client's ack latency at the same rate, one message per round trip: the p99's floor.
    assert {t.rate for t in trials if t.role == "bare" and t.phase == "latency"} == {1000.0}
    with pytest.raises(UsageError, match="unknown client 'pika' for kafka: choose kafka-python, confluent-kafka or all"):
        bench_plan.check_params(STACKS["kafka"], bench_plan.BenchParams(clients=("pika",)))


def test_ratios_per_client():
    trials = []
    for client, rate in (("kafka-python", 1000), ("confluent-kafka", 4000)):
        for role, phase, send in (("safe", "throughput", rate), ("unsafe", "throughput", rate * 1.25),
                                  ("safe", "latency", 100)):
            record = mqlab_record(send, 2_000_000, 1_000_000 if client == "kafka-python" else 500_000)
            trials.append({**trial(record, f"mqlab {role} ({client})", role, phase, None, 0), "client_name": client})
    for phase in ("throughput", "latency"):
        trials.append(trial(bench_report.native_trial(native_result(10000, 10000, 1_000_000, "ack")), "kafka-perf-test",
                            "native", phase, None, 0))
    summary = bench_report.summarise(trials)
    assert list(summary["by_client"]) == ["kafka-python", "confluent-kafka"]
    assert summary["by_client"]["confluent-kafka"]["r_send"] == pytest.approx(0.4)
    assert summary["by_client"]["confluent-kafka"]["p99_ratio"] == pytest.approx(0.5)
    assert summary["ratios"] == summary["by_client"]["kafka-python"]
    assert summary["ratios"]["r_send"] == pytest.approx(0.1) and summary["ratios"]["safe_vs_unsafe"] == pytest.approx(0.8)


@pytest.mark.parametrize("field,value,message", [
    ("size", 0, "--size must be from 1"), ("duration", 601, "--duration must be"),
    ("producers", 9, "--producers must be"), ("repeat", 0, "--repeat must be"),
    ("mode", "fanoutt", "unknown mode 'fanoutt'"),
])
def test_bad_params_are_one_line(field, value, message):
    with pytest.raises(UsageError, match=message):
        bench_plan.check_params(STACKS["rabbitmq"], bench_plan.BenchParams(**{field: value}))


def test_parse_rate():
    assert bench_plan.parse_rate("max") is None
    assert bench_plan.parse_rate("2500") == 2500
    with pytest.raises(UsageError, match="'max' or from 1"):
        bench_plan.parse_rate("0")
    with pytest.raises(UsageError, match="must be a number"):
        bench_plan.parse_rate("fast")


def test_cpu_split():
    assert bench_stack.client_cpus(1) is None
    assert bench_stack.client_cpus(2) == ("0", "1")
    assert bench_stack.client_cpus(8) == ("0-3", "4-7")


def test_bench_names_keep_trials_apart():
    names = bench_plan.bench_names("rabbitmq-x-01")
    assert "MQLAB_EXCHANGE" not in names and bench_plan.bench_names("x", "topic")["MQLAB_EXCHANGE"] == "bench.x.topic"
    assert names["MQLAB_QUEUE"] == names["MQLAB_TOPIC"] == "bench.rabbitmq-x-01"
    assert names["MQLAB_DLQ"] != names["MQLAB_QUEUE"]


def test_task_without_stack_or_with_bad_rate_is_one_line():
    with pytest.raises(Exit) as err:
        tasks.bench(MockContext(), "")
    assert "name a stack to benchmark" in err.value.message
    with pytest.raises(Exit) as err:
        tasks.bench(MockContext(), "redis", rate="lots")
    assert err.value.message == "mqlab: --rate must be a number, got 'lots'"


def test_compare_without_runs_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    monkeypatch.delenv("MQLAB_OFFLINE", raising=False)  # no images/offline.env in tmp_path
    (tmp_path / ".env").write_text("X=1\n")
    with pytest.raises(Exit) as err:
        tasks.bench(MockContext(), "", compare=True)
    assert "no benchmark run of any stack" in err.value.message and "invoke bench rabbitmq" in err.value.message


def test_compare_uses_the_latest_run_of_each_stack(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    monkeypatch.delenv("MQLAB_OFFLINE", raising=False)  # no images/offline.env in tmp_path
    (tmp_path / ".env").write_text("X=1\n")
    out = tmp_path / bench_plan.BENCH_DIR
    out.mkdir(parents=True)
    old, new, profiled, quick = sample_run(), sample_run(), sample_run(), sample_run()
    old["id"], old["finished"] = "rabbitmq-old", "2025-01-01T00:00:00+00:00"
    new["id"], new["finished"] = "rabbitmq-new", "2025-01-02T00:00:00+00:00"
    # Later, but slowed down by the profiler, or a first look: neither is compared.
    profiled["id"], profiled["finished"] = "rabbitmq-profiled", "2025-01-03T00:00:00+00:00"
    profiled["params"] = {**profiled["params"], "profile": True}
    quick["id"], quick["finished"] = "rabbitmq-quick", "2025-01-04T00:00:00+00:00"
    quick["params"] = {**quick["params"], "quick": True}
    for run in (old, new, profiled, quick):
        bench_record.write_json(out / f"{run['id']}.json", run)
    (out / "notes.json").write_text("[]")
    tasks.bench(MockContext(), "", compare=True)
    written = sorted(p.suffix for p in out.glob("compare-*"))
    assert written == [".md", ".png"]
    table = next(out.glob("compare-*.md")).read_text()
    assert "`rabbitmq-new`" in table and "rabbitmq-old" not in table
    assert "rabbitmq-profiled" not in table and "rabbitmq-quick" not in table


def test_a_profile_is_summed_by_function_and_by_the_labs_own_code_on_the_stack():
    collapsed = "\n".join([
        "<module> (bench.py:1);run (mqlab_services/bench.py:10);publish (mqlab_services/adapters/redis.py:5);"
        "send (redis/connection.py:7) 6",
        "<module> (bench.py:1);run (mqlab_services/bench.py:12);encode (mqlab_services/envelope.py:3) 3",
        "<module> (bench.py:1);run (mqlab_services/bench.py:10);publish (mqlab_services/adapters/redis.py:9) 1",
        "garbage line without a count",
    ])
    summary = bench_report.profile_summary(collapsed, top=3)
    assert summary["samples"] == 10
    assert summary["self"] == [["send (redis/connection.py)", 60.0], ["encode (mqlab_services/envelope.py)", 30.0],
                               ["publish (mqlab_services/adapters/redis.py)", 10.0]]
    assert summary["lab"] == [["run (mqlab_services/bench.py)", 100.0],
                              ["publish (mqlab_services/adapters/redis.py)", 70.0],
                              ["encode (mqlab_services/envelope.py)", 30.0]]
    run = {"id": "redis-1", "trials": [{"label": "mqlab stream", "rate": None, "phase": "throughput", "repeat": 0,
                                         "profile": {"producer p0": summary}}]}
    text = bench_report.profile_markdown(run)
    assert "## mqlab stream @ max, throughput: producer p0 (10 samples)" in text
    assert "| `send (redis/connection.py)` | 60.0 | `run (mqlab_services/bench.py)` | 100.0 |" in text
    assert bench_report.profile_summary("") == {"samples": 0, "self": [], "lab": []}


def test_o_is_mqlab_over_the_bare_client_in_each_mode_per_client_and_shows_in_the_tables():
    trials = []
    for client, lab, bare in (("kafka-python", 900, 1000), ("confluent-kafka", 2000, 8000)):
        for role, label, send in (("safe", "mqlab group", lab), ("unsafe", "mqlab autocommit", lab * 1.5),
                                  ("bare", "bare group", bare), ("bare-unsafe", "bare autocommit", bare * 2)):
            record = {**mqlab_record(send, 1, 1), "kind": "bare" if role.startswith("bare") else "mqlab"}
            trials.append({**trial(record, f"{label} ({client})", role, "throughput", None, 0), "client_name": client})
    trials.append(trial(bench_report.native_trial(native_result(10000, 10000, 1_000_000, "ack")), "kafka-perf-test",
                        "native", "throughput", None, 0))
    summary = bench_report.summarise(trials)
    assert summary["by_client"]["kafka-python"]["o_send"] == pytest.approx(0.9)
    assert summary["by_client"]["kafka-python"]["o_unsafe"] == pytest.approx(0.675)
    assert summary["by_client"]["confluent-kafka"]["o_send"] == pytest.approx(0.25)
    assert summary["by_client"]["confluent-kafka"]["r_send"] == pytest.approx(0.2)
    run = {"id": "kafka-1", "stack": "kafka", "mode": "group", "unsafe_mode": "autocommit", "trials": trials,
           "summary": summary, "environment": {}, "params": {"size": 1024, "producers": 1, "consumers": 1,
                                                          "warmup": 3, "duration": 10, "repeat": 1, "rate": None,
                                                          "latency_rate": None}}
    text = bench_report.markdown(run)
    assert "| O = mqlab (kafka-python) sent ÷ bare client sent, safe mode (at max) | 0.900 ✓ | ≥ 0.8 |" in text
    assert "| O = mqlab (confluent-kafka) sent ÷ bare client sent, lossy mode (at max) | 0.188 ✗ | ≥ 0.8 |" in text
    row = [line for line in bench_report.compare_markdown([run]).splitlines() if "confluent-kafka" in line][0]
    assert "| 8,000 | 0.250 ✗ | 0.188 ✗ |" in row


def test_a_trials_profiles_are_summed_per_container_next_to_its_numbers(tmp_path):
    for p in (part("producer", "lab-bench-t1-p0", [5], 5, [1000]), part("consumer", "lab-bench-t1-c0", [5], 5, [2000])):
        (tmp_path / f"{p['role']}-{p['name']}.json").write_text(json.dumps(p))
    (tmp_path / "lab-bench-t1-p0.pyspy").write_text("run (mqlab_services/bench.py:1);encode (mqlab_services/envelope.py:2) 4\n")
    (tmp_path / "lab-bench-t1-c0.pyspy").write_text("run (mqlab_services/bench.py:1) 2\n")
    trial = bench_plan.Trial("mqlab work", "safe", "throughput", None, "work", 0)
    record = bench_plan.Bench._mqlab_results(trial, tmp_path, [0, 0])
    assert record["send_rate"] == 2.5
    assert sorted(record["profile"]) == ["consumer c0", "producer p0"]
    assert record["profile"]["producer p0"]["self"] == [["encode (mqlab_services/envelope.py)", 100.0]]


def test_a_trial_whose_consumers_received_nothing_is_invalid_and_stays_out_of_o():
    dropped = bench_report.merge_mqlab([part("producer", "p0", [60000], 60000, [1000])],
                                       [part("consumer", "c0", [0], 0, [])])
    assert dropped["invalid"] == ("its consumers received none of the 60,000 messages sent (dropped by the "
                                  "broker, or dead)")
    kept = bench_report.merge_mqlab([part("producer", "p0", [9000], 9000, [1000])],
                                    [part("consumer", "c0", [9000], 9000, [2000])])
    assert kept["invalid"] is None
    cut = bench_report.merge_mqlab([part("producer", "p0", [60000], 60000, [1000])],
                                   [part("consumer", "c0", [3000], 3000, [2000],
                                         error="lost the broker: ConnectionError: Connection closed by server.")])
    assert cut["invalid"] == ("a consumer stopped after 3,000 of the 60,000 messages sent (lost the broker: "
                              "ConnectionError: Connection closed by server.)")
    trials = [trial({**dropped, "kind": "mqlab"}, "mqlab pubsub", "unsafe", "throughput", None, 0),
              trial({**kept, "kind": "mqlab"}, "mqlab pubsub", "unsafe", "throughput", None, 1),
              trial({**kept, "kind": "mqlab"}, "mqlab stream", "safe", "throughput", None, 0),
              trial({**kept, "kind": "bare", "send_rate": 10000.0}, "bare pubsub", "bare-unsafe", "throughput", None, 0)]
    summary = bench_report.summarise(trials)
    group = summary["groups"]["mqlab pubsub@throughput"]
    assert group["send_rate"] == kept["send_rate"] and group["invalid"] == [dropped["invalid"]]
    assert summary["ratios"]["o_unsafe"] == pytest.approx(kept["send_rate"] / 10000)  # the dropped one left out
    only_dropped = bench_report.summarise([trials[0], trials[3]])
    assert only_dropped["groups"]["mqlab pubsub@throughput"]["send_rate"] is None
    assert only_dropped["ratios"]["o_unsafe"] is None
    run = {"id": "redis-1", "stack": "redis", "mode": "stream", "unsafe_mode": "pubsub", "trials": trials,
           "summary": summary, "environment": {}, "params": {"size": 1024, "producers": 1, "consumers": 1,
                                                          "warmup": 1, "duration": 2, "repeat": 2, "rate": None,
                                                          "latency_rate": None}}
    assert ("Invalid trials, kept out of every median and ratio: mqlab pubsub: 1 of 2 (its consumers received none "
            "of the 60,000 messages sent") in bench_report.markdown(run)


@pytest.mark.parametrize("bare_safe, lab_safe, mark, target", [
    (2900, 3200, "✓", "≥ 0.290, the bare client's own safe ÷ lossy (below 0.5)"),  # Redis: XADD against PUBLISH
    (2900, 2500, "✗", "≥ 0.290, the bare client's own safe ÷ lossy (below 0.5)"),
    (8000, 3200, "✗", "≥ 0.5"),  # the bare client's own is 0.8: the target stays 0.5
])
def test_safe_over_lossy_is_judged_against_the_bare_clients_own_where_that_is_lower(bare_safe, lab_safe, mark, target):
    trials = []
    for role, label, send in (("safe", "mqlab stream", lab_safe), ("unsafe", "mqlab pubsub", 10000),
                              ("bare", "bare stream", bare_safe), ("bare-unsafe", "bare pubsub", 10000)):
        record = {**mqlab_record(send, 1, 1), "kind": "bare" if role.startswith("bare") else "mqlab"}
        trials.append(trial(record, label, role, "throughput", None, 0))
    summary = bench_report.summarise(trials)
    assert summary["ratios"]["bare_safe_vs_unsafe"] == pytest.approx(bare_safe / 10000)
    run = {"id": "redis-1", "stack": "redis", "mode": "stream", "unsafe_mode": "pubsub", "trials": trials,
           "summary": summary, "environment": {}, "params": {"size": 256, "producers": 1, "consumers": 1,
                                                          "warmup": 3, "duration": 10, "repeat": 1, "rate": None,
                                                          "latency_rate": None}}
    text = bench_report.markdown(run)
    assert f"| safe mode ÷ lossy mode (mqlab sent) | {lab_safe / 10000:.3f} {mark} | {target} |" in text
    (row,) = [line for line in bench_report.compare_markdown([run]).splitlines() if "`redis-1`" in line]
    assert f"| {lab_safe / 10000:.3f} {mark} |" in row


@pytest.mark.parametrize("bare_p99, ratio_text", [
    (300_000, "5.000 ✗"),  # the bare client at 1.5x native: the lab is held to 2
    (1_200_000, "5.000 ✓"),  # the bare client itself at 6x native: the lab is held to that
])
def test_the_p99_ratio_is_held_to_2_or_the_bare_clients_own_ratio_where_that_is_higher(bare_p99, ratio_text):
    trials = [trial(mqlab_record(1000, 9, 1_000_000), "mqlab stream", "safe", "latency", 1000, 0),
              trial(mqlab_record(1000, 0, bare_p99), "bare stream", "bare", "latency", 1000, 0),
              trial(bench_report.native_trial(native_result(1000, 1000, 200_000, "request")), "redis-benchmark",
                    "native", "latency", 1000, 0)]
    r = bench_report.summarise(trials)["ratios"]
    assert r["p99_ratio"] == pytest.approx(5.0)  # the lab's ack p99 against the tool's request p99
    assert r["bare_p99_ratio"] == pytest.approx(bare_p99 / 200_000)
    assert bench_report.fmt_ratio(r["p99_ratio"], bench_report.p99_target(r)[0], above=False) == ratio_text
    assert ("the bare client's own" in bench_report.p99_target(r)[1]) == (bare_p99 > 400_000)


def test_the_intervals_survive_the_runs_json_and_show_in_the_compare_table():
    import json
    run = json.loads(json.dumps(sample_run()))  # as `--compare` reads a saved run
    (row,) = [line for line in bench_report.compare_markdown([run]).splitlines() if "`rabbitmq-" in line]
    assert "| 0.250 [0.100–0.250] ✓ |" in row and "| 0.667 [0.400–0.750] ≈ |" in row
    assert run["summary"]["groups"]["mqlab work@throughput"]["by_repeat"]["1"]["send_rate"] == 3000


def test_a_ratio_is_judged_on_its_whole_interval():
    r = {"o_send": 0.81, "spreads": {"o_send": {"median": 0.81, "low": 0.78, "high": 0.84, "pairs": 3,
                                                "method": "min-max"}}}
    assert bench_report.fmt_judged(r, "o_send", 0.8) == "0.810 [0.780–0.840] ≈"
    r["spreads"]["o_send"]["low"] = 0.80
    assert bench_report.fmt_judged(r, "o_send", 0.8) == "0.810 [0.800–0.840] ✓"
    r["spreads"]["o_send"]["high"] = 0.79
    assert bench_report.fmt_judged(r, "o_send", 0.85).endswith("✗")


def test_the_compare_plots_error_bars_span_the_repeats():
    group = bench_report.summarise(sample_trials())["groups"]["mqlab work@throughput"]
    assert bench_report.repeat_range(group, "send_rate", group["send_rate"]) == (1000.0, 1000.0)  # 1,000..3,000
    assert bench_report.repeat_range(None, "send_rate", 5.0) == (0.0, 0.0)


def test_o_lossy_compares_producer_with_producer_where_both_subscribers_were_dropped():
    """Redis drops a pub/sub subscriber that falls behind, the lab's and the bare client's alike:
    with no repeat where both kept theirs, O lossy pairs the repeats where both lost them."""
    trials = []
    for repeat, (lab, bare) in enumerate([(160_000, 200_000), (170_000, 190_000), (150_000, 200_000)]):
        for label, role, send in (("mqlab pubsub", "unsafe", lab), ("bare pubsub", "bare-unsafe", bare)):
            dropped = bench_report.merge_mqlab([part("producer", "p0", [send], send, [1000])],
                                               [part("consumer", "c0", [100], 100, [1000],
                                                     error="lost the broker: ConnectionError")])
            assert dropped["invalid"]
            trials.append(trial({**dropped, "kind": "bare" if role == "bare-unsafe" else "mqlab"}, label, role,
                                "throughput", None, repeat))
    r = bench_report.summarise(trials)["ratios"]
    assert r["o_unsafe_basis"] == "producer only"
    assert r["o_unsafe"] == pytest.approx(0.8)  # of 0.8, 0.895 and 0.75
    rows = bench_report._ratio_rows(r, "", {"rate": None, "latency_rate": None}, bench_report.TARGETS)
    assert ("O = mqlab sent ÷ bare client sent, lossy mode (at max; both producers alone, their subscribers "
            "dropped by the broker)", "0.800 [0.750–0.895] ≈", "≥ 0.8") in rows
    assert rows[4][1] == "- (no valid lossy trial to divide by)"  # safe ÷ lossy: nothing valid to divide by
