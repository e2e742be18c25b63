"""The lab's clusters on Docker Swarm, for real: one local rig of three worker nodes
(``invoke hosts up 3``) for the whole module, each cluster deployed with ``invoke up <stack>
--swarm``, one broker node per swarm node.

- produce and verify: 0 lost, with the receipts gathered from the swarm nodes' engines;
- the proof on Swarm: kill-node of the leader on each cluster, isolate-host of the machine
  that holds the Kafka leader (its link down: brokers, clients and engine cut off), a rolling
  restart of RabbitMQ (each task replaced by Swarm in turn) and pause-node of the Redis
  primary, each round proven from the broker's side or by Docker on the node's engine;
- ``invoke scale``: three consumers spread over the swarm nodes, each given a share;
- a swarm node whose engine does not answer makes ``verify`` fail in one line naming it.

Needs root (the rig). Costs about ten minutes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from mqlab.hosts import plan
from tests.conftest import engine_or_skip
from tests.e2e.conftest import invoke

pytestmark = [pytest.mark.e2e, pytest.mark.hosts, pytest.mark.timeout(1200)]

NODES = ["mqlab-node-1", "mqlab-node-2", "mqlab-node-3"]


def placement(stack: str) -> dict[str, set[str]]:
    """Each service of the stack and the swarm nodes its running tasks are on."""
    out = subprocess.run(["docker", "stack", "ps", f"mqlab-{stack}", "--filter", "desired-state=running",
                          "--format", "{{.Name}}\t{{.Node}}\t{{.CurrentState}}"], capture_output=True, text=True,
                         timeout=60).stdout
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        name, node, state = line.split("\t")
        if state.startswith("Running"):
            found.setdefault(name.split(".")[0].removeprefix(f"mqlab-{stack}_"), set()).add(node)
    return found


@pytest.fixture(scope="module")
def rig():
    engine_or_skip()
    if os.geteuid() != 0:
        pytest.skip("the rig needs root (network namespaces, a bridge, engines): .ci/run runs this test")
    if plan.STATE_FILE.exists():
        pytest.fail("a rig is up already: run `invoke hosts down` first", pytrace=False)
    invoke("down", "all")  # nothing of one engine in the way of the swarm's gateway ports
    started = invoke("hosts", "up", "3", timeout=600)
    assert started.ok, started.out
    try:
        yield
    finally:
        invoke("down", "all")
        stopped = invoke("hosts", "down", timeout=300)
        assert stopped.ok, stopped.out


CLUSTERS = ("kafka-cluster", "rabbitmq-cluster", "redis-sentinel")


def deploy(stack: str, *extra: str) -> None:
    """The cluster on the swarm, alone there (two cores do not carry two clusters well)."""
    on_swarm = subprocess.run(["docker", "stack", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                              timeout=60).stdout.split()
    for other in CLUSTERS:
        if other != stack and f"mqlab-{other}" in on_swarm:
            assert invoke("down", other, "--volumes", timeout=300).ok
    done = invoke("up", stack, "--swarm", *extra, timeout=600)
    assert done.ok, done.out
    where = placement(stack)
    brokers = {s: n for s, n in where.items() if re.fullmatch(r"(kafka|rabbitmq|redis)-\d", s)}
    # one broker node per swarm node, and none on the manager
    assert sorted(n for nodes in brokers.values() for n in nodes) == NODES, where


def produce_and_verify(stack: str, count: int = 2000) -> str:
    sent = invoke("produce", stack, "--count", str(count), "--rate", "1000", timeout=300)
    assert sent.ok, sent.out
    checked = invoke("verify", stack, timeout=300)
    assert checked.ok, checked.out
    assert re.search(rf"sent and acked by the broker\s+{count:,}\n", checked.out), checked.out
    assert re.search(r"lost \(acked, never received\)\s+0\n", checked.out), checked.out
    gathered = re.search(r"receipts gathered from every swarm node's engine \(files\): (.*)", checked.out)
    assert gathered, checked.out
    files = dict(item.rsplit(" ", 1) for item in gathered.group(1).split(", "))
    assert set(NODES) <= set(files), files  # every worker was read
    assert sum(int(files[n]) for n in NODES) >= 1, files  # the consumer's receipts came from a node
    return checked.out


def proof_rounds(stack: str, faults: str) -> str:
    done = invoke("proof", stack, "--swarm", "--faults", faults, "--nodes", "leader", "--rounds", "1",
                  "--rate", "200", timeout=1200)
    assert done.ok, done.out
    assert "INVALID" not in done.out, done.out
    for fault in faults.split(","):
        on = "every node" if fault == "rolling-restart" else "the leader"
        assert f"{fault} on {on}, round 1 of 1" in done.out, done.out
    lost = [int(n.replace(",", "")) for n in re.findall(r"acked [\d,]+, lost ([\d,]+),", done.out)]
    assert lost and not any(lost), done.out
    return done.out


def test_kafka_cluster_on_three_machines_loses_nothing_acked_when_its_leader_is_killed_or_cut_off(rig):
    deploy("kafka-cluster")
    produce_and_verify("kafka-cluster")
    out = proof_rounds("kafka-cluster", "kill-node,isolate-host")
    # the kill, proven by Docker on the node's engine; the cut, by the other machines' brokers
    assert re.search(r"evidence: Docker: kafka-\d started again", out), out
    cut = re.search(r"isolate swarm node (mqlab-node-\d) \(it runs (kafka-\d)\)", out)
    assert cut, out
    assert re.search(r"evidence: .*\S", out[cut.end():]), out
    assert "evidence: none" not in out, out


def test_three_consumers_spread_over_the_machines_share_the_work(rig):
    deploy("kafka-cluster")
    scaled = invoke("scale", "kafka-cluster", "3", timeout=300)
    assert scaled.ok, scaled.out
    nodes = placement("kafka-cluster")["consumer"]
    assert len(nodes) >= 2, nodes
    out = produce_and_verify("kafka-cluster", 3000)
    shares = re.findall(r"by consumer \S+\s+([\d,]+) \(", out)
    assert len(shares) == 3 and all(int(s.replace(",", "")) > 0 for s in shares), out


def test_a_swarm_node_that_cannot_be_read_fails_verify_in_one_line(rig):
    deploy("kafka-cluster")
    sent = invoke("produce", "kafka-cluster", "--count", "200", timeout=300)
    assert sent.ok, sent.out
    node = json.loads(plan.STATE_FILE.read_text())["nodes"][1]
    os.kill(node["pid"], signal.SIGSTOP)  # its engine hangs: the machine is there, its files out of reach
    try:
        started = time.monotonic()
        checked = invoke("verify", "kafka-cluster", timeout=300)
    finally:
        os.kill(node["pid"], signal.SIGCONT)
    assert checked.code == 1, checked.out
    lines = checked.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mqlab: swarm node {node['name']}"), checked.out
    assert "OK" not in checked.out and time.monotonic() - started < 120


def test_rabbitmq_cluster_on_three_machines_loses_nothing_when_its_quorum_leader_is_killed_or_all_restart(rig):
    deploy("rabbitmq-cluster")
    produce_and_verify("rabbitmq-cluster")
    out = proof_rounds("rabbitmq-cluster", "kill-node,rolling-restart")
    assert re.search(r"evidence: Docker: rabbitmq-\d started again", out), out
    # the rolling restart: each node's task replaced by Swarm in turn, the cluster in sync between
    assert len(re.findall(r"docker service update --force mqlab-rabbitmq-cluster_rabbitmq-\d", out)) == 3, out
    assert "evidence: Docker: rabbitmq-1, rabbitmq-2, rabbitmq-3 started again" in out, out


def test_redis_sentinel_on_three_machines_fails_over_when_its_primary_is_killed_or_frozen(rig):
    deploy("redis-sentinel")
    produce_and_verify("redis-sentinel")
    out = proof_rounds("redis-sentinel", "kill-node,pause-node")
    assert re.search(r"evidence: Docker: redis-\d started again", out), out
    assert re.search(r"evidence: sentinel-\d logged: \+sdown master mymaster redis-\d", out), out
