"""`invoke up --metrics` and `--ui` as a user runs them: Prometheus scrapes every target, its counts
of a run are the ledger's, and redis-commander shows the lab's stream.

The profiles are added to the stack the other tests of the same stack use (`invoke up` again, with
the flags: only the services restart), so no stack is started for these tests alone.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from mqlab import brokers, config
from tests.conftest import ROOT
from tests.e2e.conftest import produce, verify

pytestmark = pytest.mark.timeout(600)

COUNT = 2000
#: The jobs each stack's Prometheus scrapes (compose/config/prometheus/<stack>.yml, services.yml).
JOBS = {"rabbitmq": {"prometheus", "rabbitmq", "rabbitmq-queues", "mqlab"},
        "redis": {"prometheus", "redis", "mqlab"}}
FLAGS = {"rabbitmq": ("--metrics",), "redis": ("--metrics", "--ui")}


def url(port_key: str, default: int, path: str) -> str:
    cfg = config.load(ROOT, config.offline_default())
    return f"http://127.0.0.1:{cfg.integer(port_key, default)}{path}"


def get(port_key: str, default: int, path: str, **params) -> dict:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(url(port_key, default, path) + query, timeout=10) as response:
        return json.load(response)


def targets() -> list[dict]:
    return get("PROMETHEUS_PORT", 9090, "/api/v1/targets", state="active")["data"]["activeTargets"]


def run_total(metric: str, run_id: str) -> float | None:
    """The run's count in Prometheus, summed over its services. A one-shot producer's series end
    with its container, so the last value in the window is taken, not the instant one."""
    result = get("PROMETHEUS_PORT", 9090, "/api/v1/query",
                 query=f'sum(last_over_time({metric}{{run="{run_id}"}}[15m]))')["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def wait_for(check, timeout: float, what):
    """Poll ``check`` until it returns something true; ``what()`` says what was missing."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            assert found, f"after {timeout:.0f} s: {what()}"
            return found
        time.sleep(1)


@pytest.mark.parametrize("stack_name", [pytest.param("rabbitmq", marks=pytest.mark.rabbitmq, id="rabbitmq"),
                                        pytest.param("redis", marks=pytest.mark.redis, id="redis")])
def test_prometheus_scrapes_every_target_and_counts_a_run_as_verify_does(stacks, stack_name):
    stacks.up(stack_name, consumers=2, profiles=FLAGS[stack_name])

    seen_up: set[tuple[str, str]] = set()  # (job, instance) scraped as up at least once

    def all_up():
        # Each target up in some scrape, all of them present at once: one slow scrape of a busy
        # broker on 2 cores is not a broken target.
        found = targets()
        seen_up.update((t["labels"]["job"], t["labels"]["instance"]) for t in found if t["health"] == "up")
        jobs = {t["labels"]["job"] for t in found}
        services = [t["labels"].get("service") for t in found if t["labels"]["job"] == "mqlab"]
        ready = jobs == JOBS[stack_name] and services.count("consumer") == 2 and "producer" in services
        return found if ready and all((t["labels"]["job"], t["labels"]["instance"]) in seen_up for t in found) else None

    wait_for(all_up, 90, lambda: f"every target of {sorted(JOBS[stack_name])} up, the steady producer and both consumers "
                         f"among them; last seen: {[(t['scrapePool'], t['labels'].get('service'), t['health'], t['lastError']) for t in targets()]}")

    run_id = produce(stack_name, COUNT)
    done, report = verify(stack_name, run_id)
    assert done.ok, done.out
    assert report.sent == COUNT and report.lost == 0
    # `invoke produce` returns once its producer has been scraped after its last message.
    assert run_total("mqlab_sent_total", run_id) == report.sent
    assert run_total("mqlab_acked_total", run_id) == report.sent
    wait_for(lambda: run_total("mqlab_received_total", run_id) == report.received, 30,
             lambda: f"mqlab_received_total of {run_id} = {report.received}: {run_total('mqlab_received_total', run_id)}")
    assert run_total("mqlab_latency_seconds_count", run_id) == report.received


@pytest.mark.redis
def test_redis_commander_lists_the_stream_the_producer_writes_to(stacks):
    stacks.up("redis", consumers=2, profiles=FLAGS["redis"])
    (connection,) = get("REDIS_UI_PORT", 8081, "/apiv2/server/info")["data"]
    keys = get("REDIS_UI_PORT", 8081, f"/apiv1/keystree/{urllib.parse.quote(connection['connectionId'])}")["data"]
    stream = brokers.names("redis").stream
    shown = {key["keyName"]: key["rel"] for key in keys}
    assert shown.get(stream) == "stream", shown
