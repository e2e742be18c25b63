"""The services' /metrics: served only when asked, counted per batch, labelled by run and mode."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mqlab_services import metrics, producer
from mqlab_services.settings import Settings
from tests.unit.test_services_cli import MemoryBroker, lab  # noqa: F401  (the fixture)


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a scrape."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(m: metrics.Metrics) -> dict[tuple, float]:
    return samples(generate_latest(m.registry).decode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_is_served_without_a_port():
    assert Settings.from_env({"MQLAB_BROKER": "redis"}).metrics_port == 0
    assert metrics.create(Settings.from_env({"MQLAB_BROKER": "redis"})) is None


def test_a_consumer_batch_counts_received_redelivered_and_latency_per_run_and_mode():
    m = metrics.Metrics("stream")
    now = 10_000_000_000
    m.received(now, [("r1", now - 2_000_000, False), ("r1", now - 40_000_000, True), ("r2", now - 3_000_000_000, False)])
    got = scrape(m)
    r1 = (("mode", "stream"), ("run", "r1"))
    assert got[("mqlab_received_total", r1)] == 2
    assert got[("mqlab_redelivered_total", r1)] == 1
    assert ("mqlab_redelivered_total", (("mode", "stream"), ("run", "r2"))) not in got
    # 2 ms falls in le=0.0025, 40 ms in le=0.05; the buckets are cumulative.
    assert got[("mqlab_latency_seconds_bucket", (("le", "0.001"), *r1))] == 0
    assert got[("mqlab_latency_seconds_bucket", (("le", "0.0025"), *r1))] == 1
    assert got[("mqlab_latency_seconds_bucket", (("le", "0.05"), *r1))] == 2
    assert got[("mqlab_latency_seconds_bucket", (("le", "+Inf"), *r1))] == 2
    assert got[("mqlab_latency_seconds_count", r1)] == 2
    assert got[("mqlab_latency_seconds_sum", r1)] == pytest.approx(0.042)
    assert got[("mqlab_latency_seconds_bucket", (("le", "2.5"), ("mode", "stream"), ("run", "r2")))] == 0
    assert got[("mqlab_latency_seconds_bucket", (("le", "5.0"), ("mode", "stream"), ("run", "r2")))] == 1


def test_dead_letters_count_per_run_and_lag_keeps_only_the_partitions_still_read():
    m = metrics.Metrics("group")
    m.dead_lettered(["r1", "r1", "r2"])
    m.lag({0: 5, 2: 0})
    m.lag({2: 7})
    got = scrape(m)
    assert got[("mqlab_dead_lettered_total", (("mode", "group"), ("run", "r1")))] == 2
    assert got[("mqlab_consumer_lag", (("mode", "group"), ("partition", "2")))] == 7
    assert ("mqlab_consumer_lag", (("mode", "group"), ("partition", "0"))) not in got


def test_linger_gives_up_without_a_scrape_and_stops_at_the_first_one_after_it_began():
    clock = [100.0]
    m = metrics.Metrics("work", clock=lambda: clock[0])

    def sleep(seconds):
        clock[0] += seconds

    assert m.linger(sleep, lambda: True, timeout=2.0) is False and clock[0] >= 102.0

    def sleep_then_scrape(seconds):
        clock[0] += seconds
        if clock[0] > 103.0:
            scrape(m)

    assert m.linger(sleep_then_scrape, lambda: True, timeout=10.0) is True and clock[0] < 104.0


def test_a_one_shot_producer_serves_its_counts_and_waits_for_the_scrape_after_its_last_message(lab):  # noqa: F811
    env, _ledger_dir = lab
    MemoryBroker.nack_once = {0, 77}  # sent again: counted once as sent, once as acked
    port = free_port()
    scrapes: list[str] = []
    done = threading.Event()

    def prometheus():  # scrapes as often as it can until the producer is done
        while not done.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    scrapes.append(response.read().decode())
            except OSError:
                pass
            done.wait(0.05)

    scraper = threading.Thread(target=prometheus, daemon=True)
    scraper.start()
    try:
        code = producer.main(["--count", "100", "--run-id", "r1"],
                             {**env, "MQLAB_NAME": "p1", "MQLAB_METRICS_PORT": str(port)})
    finally:
        done.set()
        scraper.join(5)
    assert code == 0
    last = samples(scrapes[-1])
    labels = (("mode", "work"), ("run", "r1"))
    assert last[("mqlab_sent_total", labels)] == 100
    assert last[("mqlab_acked_total", labels)] == 100
