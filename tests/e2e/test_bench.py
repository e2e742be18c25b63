"""A short benchmark of every stack: real brokers, the lab's bench containers and each broker's
own tool. It checks that the result files are complete and the numbers plausible; it sets no
speed threshold (speed belongs to `invoke bench` itself, not to tests)."""

from __future__ import annotations

import json
import re

import pytest

from mqlab import brokers
from mqlab.stacks import get_stack
from tests.conftest import ROOT
from tests.e2e.conftest import STACK_PARAMS, invoke

BENCH_DIR = ROOT / ".mqlab" / "bench"
SMOKE = ("--duration", "3", "--warmup", "1", "--repeat", "1", "--latency-rate", "200", "--size", "512")


def latest_run(stack: str) -> dict:
    runs = sorted(BENCH_DIR.glob(f"{stack}-2*.json"), key=lambda p: p.stat().st_mtime)
    assert runs, f"no result file for {stack} in {BENCH_DIR}"
    return json.loads(runs[-1].read_text())


#: Kafka's two clients are measured side by side.
CLIENTS = {"kafka": ["kafka-python", "confluent-kafka"]}


# The legacy stack (kafka-zookeeper) is left out: its bench is the Kafka bench on another image,
# and it cost two minutes of every CI run; its tool's output is parsed in the unit tests.
@pytest.mark.parametrize("stack_name", [p for p in STACK_PARAMS if p.values[0] != "kafka-zookeeper"],
                         indirect=False)
def test_short_bench_writes_complete_results(stacks, stack_name):
    stacks.up(stack_name)
    clients = CLIENTS.get(stack_name)
    extra = ("--client", ",".join(clients)) if clients else ()
    done = invoke("bench", stack_name, *SMOKE, *extra, timeout=900)
    assert done.ok, done.out
    run = latest_run(stack_name)
    assert run["stack"] == stack_name and run["params"]["size"] == 512
    assert run["environment"]["host"]["cpus"] >= 1 and run["environment"]["images"]
    roles = sorted((t["role"], t["phase"], t["client_name"]) for t in run["trials"])
    # Beside a tool that measures acks or requests (not end to end), the bare client's own ack
    # latency at the fixed rate is measured too.
    bare_latency = brokers.of(get_stack(stack_name)).tool_latency != "e2e"
    for client in clients or [None]:
        if client is None:
            client = next(t["client_name"] for t in run["trials"] if t["kind"] == "mqlab")
        assert [r for r in roles if r[2] in (client, None)] == sorted([
            ("bare", "throughput", client), ("bare-unsafe", "throughput", client),
            ("native", "latency", None), ("native", "throughput", None), ("safe", "latency", client),
            ("safe", "throughput", client), ("unsafe", "throughput", client)]
            + [("bare", "latency", client)] * bare_latency)
    assert len(roles) == 2 + (5 + bare_latency) * len(clients or [None])
    for t in run["trials"]:
        assert t["send_rate"] > 0, t
        if t["kind"] == "bare":
            # The bare client: the same library without the lab's bookkeeping, so no end-to-end
            # latencies; at the fixed rate, its acks' latency from each message's due time.
            assert t["latency"]["count"] == 0 and t["failed"] == 0 and t["bytes_per_message"] == 512, t
            assert (t["ack_latency"]["p99"] or 0) > 0 if t["phase"] == "latency" else True, t
            assert t["error"] is None or (t["role"] == "bare-unsafe" and "lost the broker" in t["error"]), t
            assert t["recv_rate"] > 0 or t["role"] == "bare-unsafe", t
            continue
        assert t["latency"]["p99"] is not None and t["latency"]["p99"] > 0, t
        assert t["latency"]["p50"] <= t["latency"]["p99"], t
        if t["kind"] == "mqlab":
            assert t["failed"] == 0, t
            # A lossy mode may lose its consumer: Redis disconnects a pub/sub subscriber that
            # falls too far behind (its output buffer limit). The safe modes may not.
            assert t["error"] is None or (t["role"] == "unsafe" and "lost the broker" in t["error"]), t
            assert t["recv_rate"] > 0 and t["latency"]["count"] > 0
            assert sum(t["series"]["received"]) == t["received_total"] >= 1
            assert t["bytes_per_message"] == 512
            assert t["latency"]["max"] >= t["latency"]["p999"] >= t["latency"]["p99"]
    fixed = [t for t in run["trials"] if t["phase"] == "latency" and t["kind"] == "mqlab"][0]
    # 200 msg/s for 3 s: the window holds about 600 messages; everything sent was received.
    assert 450 <= fixed["latency"]["count"] <= 700, fixed["latency"]
    assert fixed["received_total"] >= fixed["sent_total"] - fixed["failed"]
    r = run["summary"]["ratios"]
    assert r["r_send"] > 0 and r["p99_ratio"] > 0
    for client, ratios in run["summary"]["by_client"].items():
        # Lossy ratios only from valid trials: a pub/sub subscriber that Redis dropped makes its trial invalid.
        lab_lossy_invalid = any(t.get("invalid") for t in run["trials"]
                                if t["role"] == "unsafe" and t["client_name"] == client)
        lossy_invalid = lab_lossy_invalid or any(t.get("invalid") for t in run["trials"]
                                                 if t["role"] == "bare-unsafe" and t["client_name"] == client)
        assert ratios["o_send"] > 0 and ((ratios["o_unsafe"] or 0) > 0 or lossy_invalid), (client, ratios)
        assert (ratios["safe_vs_unsafe"] or 0) > 0 or lab_lossy_invalid, (client, ratios)
    for suffix in ("-throughput.png", "-latency.png"):
        assert (BENCH_DIR / f"{run['id']}{suffix}").read_bytes()[:4] == b"\x89PNG"
    table = (BENCH_DIR / f"{run['id']}.md").read_text()
    assert f"## {stack_name}: 512-byte messages" in table and "| R = mqlab" in table and "| O = mqlab" in table
    # Nothing of the benchmark is left running.
    assert "bench-" not in invoke("ps").out

    compared = invoke("bench", "--compare")
    assert compared.ok, compared.out
    assert f"| {stack_name} | 512 B |" in compared.out


@pytest.mark.redis
def test_a_quick_bench_is_a_preliminary_look_with_no_judgement(stacks):
    stacks.up("redis")
    done = invoke("bench", "redis", "--quick", timeout=600)  # a bound on a hang, not a speed claim
    assert done.ok, done.out
    run = latest_run("redis")
    assert run["params"]["quick"] and run["repeats"]["done"] == 1
    assert sorted(t["role"] for t in run["trials"]) == ["bare", "safe"]  # the safe mode and its bare loop
    table = (BENCH_DIR / f"{run['id']}.md").read_text()
    ratios = table[table.index("| ratio |"):].split("\n\n")[0]
    assert "a preliminary look (--quick)" in table and "| O = mqlab sent ÷ bare client sent, safe mode" in ratios
    assert not re.search("[✓✗≈]", table), table


def test_the_ledger_bench_finds_exactly_what_it_planted():
    done = invoke("bench", "ledger", "--count", "100000", timeout=600)
    assert done.ok, done.out
    assert ("planted: 10 lost, 50 duplicated, 20 out of order; verify found: 10 lost, 50 duplicated, "
            "20 out of order, 100,000 sent") in done.out
    assert "\nOK: verify found exactly what was planted\n" in done.out
    assert re.search(r"verify ÷ floor: \d+\.\d\d", done.out), done.out
