"""The native tools (mqlab.brokers.native and each broker's module in mqlab.brokers): command lines, and parsers fed with output the tools printed
against the lab's stacks (trimmed: fewer progress lines; the Redis payload is rebuilt)."""

import pytest

from mqlab import brokers
from mqlab.brokers import kafka as kafka_host
from mqlab.brokers import native
from mqlab.brokers import rabbitmq as rabbitmq_host
from mqlab.brokers import redis as redis_host
from mqlab.errors import LabError
from mqlab.stacks import STACKS
from tests.conftest import ROOT

# PerfTest 2.22.1 against the rabbitmq stack: -x 1 -y 1 -s 1024 -z 13 -f persistent -c 100 -q 200 -r 1000
# (the first six of thirteen intervals, and the end of the run).
PERFTEST_1000 = """\
id: test-000357-712, starting consumer #0
id: test-000357-712, starting consumer #0, channel #0
id: test-000357-712, starting producer #0
id: test-000357-712, starting producer #0, channel #0
id: test-000357-712, time 1.001 s, sent: 1001 msg/s, confirmed: 1001 msg/s, nacked: 0 msg/s, received: 1001 msg/s, min/median/75th/95th/99th consumer latency: 232/3494/6122/19046/24331 µs, confirm latency: 515/2554/4877/7814/9173 µs
id: test-000357-712, time 2.000 s, sent: 1001 msg/s, confirmed: 1001 msg/s, nacked: 0 msg/s, received: 1001 msg/s, min/median/75th/95th/99th consumer latency: 220/790/1816/9474/38990 µs, confirm latency: 388/1157/2602/14447/41013 µs
id: test-000357-712, time 3.001 s, sent: 1001 msg/s, confirmed: 999 msg/s, nacked: 0 msg/s, received: 1001 msg/s, min/median/75th/95th/99th consumer latency: 168/319/510/3362/9131 µs, confirm latency: 458/716/1014/7001/16224 µs
id: test-000357-712, time 4.000 s, sent: 1001 msg/s, confirmed: 1003 msg/s, nacked: 0 msg/s, received: 1001 msg/s, min/median/75th/95th/99th consumer latency: 163/584/1977/13802/53491 µs, confirm latency: 371/1189/3462/26376/63936 µs
id: test-000357-712, time 5.000 s, sent: 1001 msg/s, confirmed: 998 msg/s, nacked: 0 msg/s, received: 1001 msg/s, min/median/75th/95th/99th consumer latency: 175/357/656/2818/4378 µs, confirm latency: 375/751/1272/4123/6015 µs
id: test-000357-712, time 6.000 s, sent: 1000 msg/s, confirmed: 1001 msg/s, nacked: 0 msg/s, received: 1000 msg/s, min/median/75th/95th/99th consumer latency: 167/341/645/2653/4296 µs, confirm latency: 384/703/966/4357/7121 µs
test stopped (Reached time limit)
id: test-000357-712, sending rate avg: 1027 msg/s
id: test-000357-712, receiving rate avg: 1027 msg/s
id: test-000357-712, consumer latency min/median/75th/95th/99th 146/370/904/5527/26184 µs
id: test-000357-712, confirm latency min/median/75th/95th/99th 407/770/1452/5810/15143 µs
"""

# PerfTest with a wrong password (exit 1).
PERFTEST_ACCESS_REFUSED = """\
00:04:32.011 [main] ERROR com.rabbitmq.perf.PerfTest - Main thread caught exception
com.rabbitmq.client.AuthenticationFailureException: ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.
\tat com.rabbitmq.client.impl.AMQConnection.start(AMQConnection.java:395)
\tat com.rabbitmq.perf.PerfTest.main(PerfTest.java:842)
test stopped
"""

# kafka-producer-perf-test 4.3.1: --num-records 13000 --warmup-records 3000 --throughput 1000 (progress lines trimmed).
KAFKA4_PRODUCER_1000 = """\
Warmup first 3000 records. Steady state results will print after the complete test summary.
1001 records sent, 995.0 records/sec (0.97 MB/sec), 17.7 ms avg latency, 423.0 ms max latency.
In steady state.
1009 records sent, 1002.0 records/sec (0.98 MB/sec), 4.0 ms avg latency, 10.0 ms max latency.
13000 records sent, 998.310551 records/sec (0.97 MB/sec), 7.18 ms avg latency, 423.00 ms max latency, 5 ms 50th, 29 ms 95th, 55 ms 99th, 99 ms 99.9th.
10000 steady state records sent, 996.810207 records/sec (0.97 MB/sec), 6.71 ms avg latency, 108.00 ms max latency, 5 ms 50th, 20 ms 95th, 63 ms 99th, 99 ms 99.9th.
"""

# kafka-producer-perf-test 3.9.0 (bitnami-kafka): --num-records 1300000 --throughput -1, no warm-up option.
KAFKA3_PRODUCER_MAX = """\
58986 records sent, 11794.8 records/sec (11.52 MB/sec), 1512.5 ms avg latency, 2094.0 ms max latency.
482220 records sent, 96444.0 records/sec (94.18 MB/sec), 305.9 ms avg latency, 803.0 ms max latency.
1300000 records sent, 71827.172772 records/sec (70.14 MB/sec), 375.88 ms avg latency, 2094.00 ms max latency, 204 ms 50th, 1119 ms 95th, 1881 ms 99th, 2064 ms 99.9th.
"""

# kafka-producer-perf-test 4.3.1 given the deprecated --producer-props, stopped before its summary.
KAFKA4_PRODUCER_CUT = """\
Option --producer-props has been deprecated and will be removed in a future version. Use --command-property instead.
110716 records sent, 22143.2 records/sec (21.62 MB/sec), 1032.1 ms avg latency, 1736.0 ms max latency.
"""

KAFKA_CONSUMER_HEADER = ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                         "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
# kafka-consumer-perf-test 4.3.1: --num-records 1500000 --timeout 10000.
KAFKA4_CONSUMER = f"""\
{KAFKA_CONSUMER_HEADER}
2026-11-27 00:08:16:205, 2026-11-27 00:08:19:655, 1464.8438, 424.5924, 1500000, 434782.6087, 288, 3162, 463.2649, 474383.3017
"""
# kafka-consumer-perf-test 3.9.0: --messages 13000 --timeout 10000.
KAFKA3_CONSUMER = f"""\
{KAFKA_CONSUMER_HEADER}
2026-11-27 00:09:59:410, 2026-11-27 00:09:59:838, 12.6953, 29.6619, 13000, 30373.8318, 288, 140, 90.6808, 92857.1429
"""
# 4.3.1 asked for 20000 of a topic holding 13000, --timeout 3000.
KAFKA4_CONSUMER_SHORT = f"""\
{KAFKA_CONSUMER_HEADER}
WARNING: Exiting before consuming the expected number of records: timeout (3000 ms) exceeded. You can use the --timeout option to increase the timeout.
2026-11-27 00:08:27:975, 2026-11-27 00:08:31:566, 12.6953, 3.5353, 13000, 3620.1615, 413, 3178, 3.9947, 4090.6230
"""
# 4.3.1 on a topic that does not exist.
KAFKA4_CONSUMER_NOTHING = f"""\
{KAFKA_CONSUMER_HEADER}
WARNING: Exiting before consuming the expected number of records: timeout (3000 ms) exceeded. You can use the --timeout option to increase the timeout.
2026-11-27 00:08:34:109, 2026-11-27 00:08:37:203, 0.0000, 0.0000, 0, 0.0000, 438, 2656, 0.0000, 0.0000
"""

REDIS_HEADER = '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"'
PAYLOAD = "x" * 1024
# redis-benchmark 7.0.15 (mqlab-offline/redis:8.2): -n 900000 -c 1 -P 100 --csv XADD mqlab.bench * d <1 KiB>.
REDIS_P100 = f'{REDIS_HEADER}\n"XADD mqlab.bench * d {PAYLOAD}","112345.53","0.286","0.048","0.087","0.751","4.407","100.671"\n'
# The same with -n 300000 -c 1 -P 1.
REDIS_P1 = f'{REDIS_HEADER}\n"XADD mqlab.bench * d {PAYLOAD}","25301.51","0.037","0.008","0.023","0.095","0.159","17.935"\n'


# --------------------------------------------------------------------------- PerfTest


def test_perftest_argv_is_the_labs_safe_mode_by_default():
    argv = rabbitmq_host.perftest_argv(uri="amqp://guest:guest@rabbitmq:5672/%2F", size=1024, seconds=13)
    assert argv == ["--uri", "amqp://guest:guest@rabbitmq:5672/%2F", "--producers", "1", "--consumers", "1",
                    "--size", "1024", "--time", "13", "--queue", "mqlab.bench", "--qos", "200",
                    "--flag", "persistent", "--confirm", "100"]


def test_perftest_argv_splits_the_rate_over_the_producers():
    argv = rabbitmq_host.perftest_argv(uri="amqp://u:p@rabbitmq:5672/%2F", size=64, seconds=5, rate=1000, producers=2,
                                consumers=3, queue="bench.t1", confirm=None, persistent=False, prefetch=50,
                                multi_ack=100, test_id="run-01")
    assert argv[argv.index("--rate") + 1] == "500"
    assert argv[argv.index("--consumers") + 1] == "3"
    assert argv[argv.index("--queue") + 1] == "bench.t1"
    assert argv[argv.index("--multi-ack-every") + 1] == "100"
    assert argv[argv.index("--id") + 1] == "run-01"
    assert "--confirm" not in argv and "--flag" not in argv
    third = rabbitmq_host.perftest_argv(uri="amqp://rabbitmq", size=64, seconds=5, rate=1000, producers=3)
    assert third[third.index("--rate") + 1] == "333.333333"


@pytest.mark.parametrize("kwargs", [
    {"uri": "http://rabbitmq"},
    {"size": 0},
    {"seconds": 0},
    {"rate": 0},
    {"rate": -5},
    {"producers": 0},
    {"confirm": 0},
])
def test_perftest_argv_refuses_bad_parameters(kwargs):
    base = {"uri": "amqp://rabbitmq", "size": 1024, "seconds": 10}
    with pytest.raises(native.NativeError):
        rabbitmq_host.perftest_argv(**{**base, **kwargs})


def test_parse_perftest_averages_the_intervals_after_the_warmup():
    result = rabbitmq_host.parse_perftest(PERFTEST_1000, warmup_s=3, size=1024)
    # Intervals 3.001-4.000, 4.000-5.000, 5.000-6.000.
    spans = [0.999, 1.0, 1.0]
    sent = [1001, 1001, 1000]
    medians, p99s = [584, 357, 341], [53491, 4378, 4296]
    weights = [s * r for s, r in zip(spans, sent)]  # received = sent in each
    assert result.tool == "PerfTest"
    assert result.latency_kind == "e2e"
    assert result.send_rate == pytest.approx(sum(s * r for s, r in zip(spans, sent)) / sum(spans))
    assert result.recv_rate == pytest.approx(result.send_rate)
    assert result.p50_ns == pytest.approx(1000 * sum(w * m for w, m in zip(weights, medians)) / sum(weights), abs=1)
    assert result.p99_ns == pytest.approx(1000 * sum(w * m for w, m in zip(weights, p99s)) / sum(weights), abs=1)
    assert result.p999_ns is None and result.max_ns is None
    assert result.mb_per_s == pytest.approx(result.send_rate * 1024 / 2**20)
    assert len(result.raw_summary) == 3 + 3  # the intervals, then the rates and consumer latency of the run
    assert result.raw_summary[0].startswith("id: test-000357-712, time 4.000 s")
    assert "sending rate avg: 1027 msg/s" in result.raw_summary[3]


def test_parse_perftest_without_warmup_uses_every_interval():
    result = rabbitmq_host.parse_perftest(PERFTEST_1000)
    assert len([line for line in result.raw_summary if ", time " in line]) == 6
    assert result.mb_per_s is None


def test_parse_perftest_falls_back_to_the_run_summary():
    result = rabbitmq_host.parse_perftest(PERFTEST_1000, warmup_s=60)
    assert result.send_rate == 1027 and result.recv_rate == 1027
    assert (result.p50_ns, result.p99_ns) == (370_000, 26_184_000)
    assert all("avg" in line or "latency min" in line for line in result.raw_summary)


def test_parse_perftest_reads_a_mangled_micro_sign():
    result = rabbitmq_host.parse_perftest(PERFTEST_1000.replace("µs", "Âµs"), warmup_s=3)
    assert result.p50_ns == rabbitmq_host.parse_perftest(PERFTEST_1000, warmup_s=3).p50_ns


def test_parse_perftest_failure_is_one_line_naming_the_cause():
    with pytest.raises(native.NativeError) as err:
        rabbitmq_host.parse_perftest(PERFTEST_ACCESS_REFUSED)
    message = str(err.value)
    assert "\n" not in message and "ACCESS_REFUSED" in message and message.startswith("PerfTest printed no rates")
    assert isinstance(err.value, LabError)
    with pytest.raises(native.NativeError, match="no output"):
        rabbitmq_host.parse_perftest("")


# --------------------------------------------------------------------------- Kafka


def test_kafka_producer_argv_for_kafka_4():
    argv = kafka_host.kafka_producer_argv(topic="bench.t1", size=1024, num_records=13000, rate=1000,
                                      warmup_records=3000, major=kafka_host.TOOLS_MAJOR["kafka"])
    assert argv == ["kafka-producer-perf-test.sh", "--bootstrap-server", "kafka:19092", "--topic", "bench.t1",
                    "--num-records", "13000", "--record-size", "1024", "--throughput", "1000",
                    "--warmup-records", "3000", "--command-property", "acks=all", "linger.ms=5"]


def test_kafka_producer_argv_for_kafka_3_at_full_speed():
    argv = kafka_host.kafka_producer_argv(topic="bench.t1", size=512, num_records=100, warmup_records=10,
                                      major=kafka_host.TOOLS_MAJOR["kafka-zookeeper"])
    assert argv == ["kafka-producer-perf-test.sh", "--topic", "bench.t1", "--num-records", "100",
                    "--record-size", "512", "--throughput", "-1",
                    "--producer-props", "bootstrap.servers=kafka:19092", "acks=all", "linger.ms=5"]


@pytest.mark.parametrize("kwargs", [
    {"warmup_records": 100},
    {"num_records": 0},
    {"size": 0},
    {"major": 2},
    {"rate": 0},
])
def test_kafka_producer_argv_refuses_bad_parameters(kwargs):
    base = {"topic": "t", "size": 1024, "num_records": 100}
    with pytest.raises(native.NativeError):
        kafka_host.kafka_producer_argv(**{**base, **kwargs})


def test_kafka_consumer_argv_per_major_version():
    assert kafka_host.kafka_consumer_argv(topic="bench.t1", num_records=13000) == [
        "kafka-consumer-perf-test.sh", "--bootstrap-server", "kafka:19092", "--topic", "bench.t1",
        "--num-records", "13000", "--timeout", "10000"]
    legacy = kafka_host.kafka_consumer_argv(topic="bench.t1", num_records=5, major=3, timeout_ms=3000, group="g")
    assert legacy == ["kafka-consumer-perf-test.sh", "--bootstrap-server", "kafka:19092", "--topic", "bench.t1",
                      "--messages", "5", "--timeout", "3000", "--group", "g"]


def test_parse_kafka_producer_prefers_the_steady_state_line():
    result = kafka_host.parse_kafka_producer(KAFKA4_PRODUCER_1000)
    assert result.send_rate == pytest.approx(996.810207)
    assert result.mb_per_s == pytest.approx(0.97)
    assert (result.p50_ns, result.p99_ns, result.p999_ns, result.max_ns) == (5_000_000, 63_000_000, 99_000_000,
                                                                             108_000_000)
    assert result.latency_kind == "ack" and result.recv_rate is None
    assert len(result.raw_summary) == 2 and result.raw_summary[1].startswith("10000 steady state")


def test_parse_kafka_producer_of_kafka_3():
    result = kafka_host.parse_kafka_producer(KAFKA3_PRODUCER_MAX)
    assert result.send_rate == pytest.approx(71827.172772)
    assert result.mb_per_s == pytest.approx(70.14)
    assert (result.p50_ns, result.p99_ns, result.p999_ns, result.max_ns) == (204_000_000, 1_881_000_000,
                                                                             2_064_000_000, 2_094_000_000)
    assert result.raw_summary == (KAFKA3_PRODUCER_MAX.splitlines()[-1],)


def test_parse_kafka_producer_without_summary_fails():
    with pytest.raises(native.NativeError, match="no summary line: 110716 records sent"):
        kafka_host.parse_kafka_producer(KAFKA4_PRODUCER_CUT)


@pytest.mark.parametrize("stdout, records, rate, overall", [
    (KAFKA4_CONSUMER, 1_500_000, 474383.3017, 434782.6087),
    (KAFKA3_CONSUMER, 13_000, 92857.1429, 30373.8318),
])
def test_parse_kafka_consumer(stdout, records, rate, overall):
    stats = kafka_host.parse_kafka_consumer(stdout, expected=records)
    assert stats.records == records
    assert stats.recv_rate == pytest.approx(rate)
    assert stats.overall_rate == pytest.approx(overall)
    assert stats.rebalance_ms == 288
    assert stats.raw_summary == tuple(stdout.splitlines())


def test_parse_kafka_consumer_short_read_is_an_error():
    with pytest.raises(native.NativeError, match="read 13,000 of 20,000 records"):
        kafka_host.parse_kafka_consumer(KAFKA4_CONSUMER_SHORT, expected=20_000)
    assert kafka_host.parse_kafka_consumer(KAFKA4_CONSUMER_SHORT).records == 13_000  # no expectation, no error
    with pytest.raises(native.NativeError, match="read no records"):
        kafka_host.parse_kafka_consumer(KAFKA4_CONSUMER_NOTHING)
    with pytest.raises(native.NativeError, match="no CSV header"):
        kafka_host.parse_kafka_consumer("Exception in thread main: org.apache.kafka.common.errors.TimeoutException\n")
    with pytest.raises(native.NativeError, match="no summary row"):
        kafka_host.parse_kafka_consumer(KAFKA_CONSUMER_HEADER + "\n")


def test_kafka_result_joins_producer_and_consumer():
    producer = kafka_host.parse_kafka_producer(KAFKA4_PRODUCER_1000)
    consumer = kafka_host.parse_kafka_consumer(KAFKA4_CONSUMER)
    result = kafka_host.kafka_result(producer, consumer)
    assert result.tool == "kafka-producer-perf-test + kafka-consumer-perf-test"
    assert result.send_rate == producer.send_rate and result.recv_rate == consumer.recv_rate
    assert result.p99_ns == producer.p99_ns and result.latency_kind == "ack"
    assert result.raw_summary == producer.raw_summary + consumer.raw_summary
    assert kafka_host.kafka_result(producer) is producer


# --------------------------------------------------------------------------- redis-benchmark


def test_redis_benchmark_argv():
    argv = redis_host.redis_benchmark_argv(size=16, requests=900_000)
    assert argv == ["-h", "redis", "-p", "6379", "-n", "900000", "-c", "1", "-P", "100", "--csv",
                    "XADD", "mqlab.bench", "*", "d", "x" * 16]
    secured = redis_host.redis_benchmark_argv(size=4, requests=10, pipeline=1, clients=1, password="s3cret",
                                          stream="bench.t1", maxlen=1000)
    assert secured[:6] == ["-h", "redis", "-p", "6379", "-a", "s3cret"]
    assert secured[-8:] == ["XADD", "bench.t1", "MAXLEN", "~", "1000", "*", "d", "xxxx"]
    assert secured[secured.index("-P") + 1] == "1"


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"size": 200_000}, {"requests": 0}, {"pipeline": 0}])
def test_redis_benchmark_argv_refuses_bad_parameters(kwargs):
    with pytest.raises(native.NativeError):
        redis_host.redis_benchmark_argv(**{"size": 1024, "requests": 10, **kwargs})


@pytest.mark.parametrize("stdout, rps, p50, p99, max_ns", [
    (REDIS_P100, 112345.53, 87_000, 4_407_000, 100_671_000),
    (REDIS_P1, 25301.51, 23_000, 159_000, 17_935_000),
])
def test_parse_redis_benchmark(stdout, rps, p50, p99, max_ns):
    result = redis_host.parse_redis_benchmark(stdout, size=1024)
    assert result.tool == "redis-benchmark" and result.latency_kind == "request"
    assert result.send_rate == pytest.approx(rps) and result.recv_rate is None
    assert (result.p50_ns, result.p99_ns, result.p999_ns, result.max_ns) == (p50, p99, None, max_ns)
    assert result.mb_per_s == pytest.approx(rps * 1024 / 2**20)
    assert result.raw_summary[0] == REDIS_HEADER
    assert len(result.raw_summary[1]) < 200 and "(1045 chars)" in result.raw_summary[1]


def test_parse_redis_benchmark_failures():
    # With a wrong password redis-benchmark prints its error on stderr and nothing on stdout.
    with pytest.raises(native.NativeError, match="no CSV result: no output"):
        redis_host.parse_redis_benchmark("")
    with pytest.raises(native.NativeError, match="2 result rows"):
        redis_host.parse_redis_benchmark(REDIS_P100 + REDIS_P1.splitlines()[1] + "\n")
    with pytest.raises(native.NativeError, match="not understood"):
        redis_host.parse_redis_benchmark(f'{REDIS_HEADER}\n"XADD s * d x","n/a","","","","","",""\n')


# --------------------------------------------------------------------------- the lab's wiring


def test_records_for():
    assert native.records_for(1000, 13) == 13_000
    assert native.records_for(33.3, 1) == 34
    with pytest.raises(native.NativeError):
        native.records_for(0, 10)


def test_every_broker_has_a_tool_and_its_compose_service():
    for stack in (s for s in STACKS.values() if not s.cluster):  # bench refuses clusters
        broker = brokers.get(stack.broker)
        assert broker.tool_label
        text = (ROOT / "compose" / f"{stack.name}.yml").read_text()
        block = text.split(f"\n  {broker.tool_service}:\n", 1)
        assert len(block) == 2, f"{stack.name}.yml has no service {broker.tool_service}"
        service = block[1].split("\n\n", 1)[0]
        assert 'profiles: ["bench"]' in service
        assert "cpuset: ${MQLAB_CLIENT_CPUS:-}" in service
        assert "ports:" not in service
