"""Clusters without Docker: the stack table, leader lookups from the brokers' own answers,
node choice, and the proof's round table."""

import pytest

from mqlab import bench, brokers, config
from mqlab.brokers import rabbitmq as rabbitmq_broker
from mqlab.brokers.kafka import PartitionState, partition_states
from mqlab.brokers.rabbitmq import node_name, queue_topology
from mqlab.errors import UsageError
from mqlab.faults import chaos, proof
from mqlab.stack import lifecycle
from mqlab.stacks import STACKS, get_stack
from tests.conftest import ROOT

CLUSTERS = ("kafka-cluster", "rabbitmq-cluster", "redis-sentinel")


@pytest.mark.parametrize("name", CLUSTERS)
def test_every_node_is_a_service_of_its_compose_file_with_its_own_host_port(name):
    stack = get_stack(name)
    text = (ROOT / stack.compose_file).read_text()
    assert stack.cluster and len(stack.nodes) == 3
    for node in (*stack.nodes, *stack.sentinels):
        assert f"\n  {node.service}:\n" in text
        assert f"${{{node.port_key}:-{node.port}}}:" in text
    assert len({n.port for n in (*stack.nodes, *stack.sentinels)}) == len(stack.nodes) + len(stack.sentinels)


def test_the_clusters_default_to_their_replicated_modes():
    assert lifecycle.check_mode(get_stack("rabbitmq-cluster"), None) == "quorum"
    assert lifecycle.check_mode(get_stack("redis-sentinel"), None) == "stream-wait"
    assert lifecycle.check_mode(get_stack("kafka-cluster"), None) == "group"
    assert lifecycle.check_mode(get_stack("rabbitmq"), None) == "work"


def test_a_mode_that_waits_for_replicas_is_refused_on_a_single_node():
    with pytest.raises(UsageError, match="stream-wait waits for replicas.*use redis-sentinel"):
        lifecycle.check_mode(get_stack("redis"), "stream-wait")


def test_kafka_partition_states_from_describe_topics():
    described = [{"name": "other", "partitions": []},
                 {"name": "datascience", "error_code": 0, "partitions": [
                     {"partition_index": 1, "leader_id": 3, "replica_nodes": [3, 1, 2], "isr_nodes": [3, 1]},
                     {"partition_index": 0, "leader_id": -1, "replica_nodes": [1, 2, 3], "isr_nodes": []}]}]
    assert partition_states(described, "datascience") == [
        PartitionState(0, -1, (1, 2, 3), ()), PartitionState(1, 3, (3, 1, 2), (3, 1))]
    assert partition_states(described, "missing") == []


def test_kafka_node_ids_name_the_services_of_the_cluster():
    assert brokers.of(get_stack("kafka-cluster")).service_of(2) == "kafka-2"
    assert brokers.of(get_stack("kafka")).service_of(1) == "kafka"
    assert brokers.of(get_stack("kafka-zookeeper")).service_of(1001) == "kafka"


def test_rabbitmq_quorum_queue_leader_and_members_from_the_management_api():
    quorum = {"type": "quorum", "leader": "rabbit@rabbitmq-2", "members": ["rabbit@rabbitmq-1", "rabbit@rabbitmq-2",
              "rabbit@rabbitmq-3"], "online": ["rabbit@rabbitmq-2", "rabbit@rabbitmq-3"]}
    assert queue_topology(quorum) == ("rabbitmq-2", ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"],
                                      ["rabbitmq-2", "rabbitmq-3"])
    classic = {"type": "classic", "node": "rabbit@rabbitmq", "state": "running"}
    assert queue_topology(classic) == ("rabbitmq", ["rabbitmq"], ["rabbitmq"])
    assert node_name("rabbit@rabbitmq-3") == "rabbitmq-3"


def test_a_recorded_rabbitmq_partition_is_named_when_the_cluster_is_not_in_sync(tmp_path, monkeypatch):
    """The management API's answer after a cut that healed before the cut-off node paused (4.0, Mnesia)."""
    answers = {"nodes?columns=name,running,partitions": [
        {"name": "rabbit@rabbitmq-1", "running": True, "partitions": ["rabbit@rabbitmq-3"]},
        {"name": "rabbit@rabbitmq-2", "running": True, "partitions": ["rabbit@rabbitmq-3"]},
        {"name": "rabbit@rabbitmq-3", "running": False, "partitions": ["rabbit@rabbitmq-1", "rabbit@rabbitmq-2"]}]}
    monkeypatch.setattr(rabbitmq_broker, "management_get", lambda cfg, path, ports: answers.get(path))
    broker = brokers.of(get_stack("rabbitmq-cluster"))
    (tmp_path / ".env").write_text("")
    ok, said = broker.in_sync(config.load(tmp_path, False, {}), "quorum")
    assert not ok
    assert said == ("2 of 3 nodes running; RabbitMQ (Mnesia) recorded a network partition (rabbitmq-1 cannot "
                    "reach rabbitmq-3; rabbitmq-2 cannot reach rabbitmq-3); it stays until a node on one side "
                    "restarts (`invoke chaos <stack> kill-node --node N`)")
    for row in answers["nodes?columns=name,running,partitions"]:
        row.update(running=True, partitions=[])
    assert broker.in_sync(config.load(tmp_path, False, {}), "quorum") == (True, "3 of 3 nodes running")


def test_cluster_ports_come_from_the_env(tmp_path):
    (tmp_path / ".env").write_text("RABBITMQ_2_PORT=6673\n")
    cfg = config.load(tmp_path, False, {})
    assert brokers.of(get_stack("rabbitmq-cluster")).node_ports(cfg) == [
        ("rabbitmq-1", 5672), ("rabbitmq-2", 6673), ("rabbitmq-3", 5674)]
    assert brokers.of(get_stack("rabbitmq")).node_ports(cfg) == [("rabbitmq", 5672)]


@pytest.mark.parametrize("number, service", [(1, "redis-1"), (3, "redis-3")])
def test_node_numbers_pick_services(number, service):
    assert brokers.of(get_stack("redis-sentinel")).node_service(number) == service


def test_a_node_number_out_of_range_is_refused():
    with pytest.raises(UsageError, match="--node must be from 1 to 3 or leader"):
        brokers.of(get_stack("kafka-cluster")).node_service(4)


def test_node_only_goes_with_node_faults():
    with pytest.raises(UsageError, match="--node goes with the node faults"):
        chaos.check_node("kill-broker", "leader")
    with pytest.raises(UsageError, match="rolling-restart restarts every node"):
        chaos.check_node("rolling-restart", "2")
    chaos.check_node("kill-node", "leader")


def _round(fault, target, acked, lost=0, dup=0, gap=1.0, stall=2.0, gone=0, evidence="seen", mode="group"):
    return proof.Round(fault, target, 1, "r", acked, acked - lost, lost, dup, gap, stall, 10.0, gone, 0, evidence,
                       mode)


def test_the_round_table_sums_counts_keeps_the_worst_times_and_shows_invalid_rounds():
    rounds = [_round("kill-node", "leader", 1000, gap=2.0, stall=3.0), _round("kill-node", "leader", 900, dup=2, gap=4.0),
              _round("kill-node", "leader", 1100, gap=9.0, stall=1.0, evidence=""),
              _round("kill-node", "follower", 1000, lost=3, gone=4), _round("rolling-restart", "all", 500)]
    rows = proof.summarize(rounds)
    assert [(r.fault, r.target, r.rounds, r.invalid) for r in rows] == [
        ("kill-node", "leader", 3, 1), ("kill-node", "follower", 1, 0), ("rolling-restart", "all", 1, 0)]
    leader = rows[0]
    assert (leader.acked, leader.received, leader.lost, leader.gone, leader.duplicated) == (3000, 3000, 0, 0, 2)
    assert (leader.unavailable_max_s, leader.unavailable_median_s, leader.stalled_max_s) == (9.0, 4.0, 3.0)
    text = proof.render("kafka-cluster", "group", rows)
    assert text.count("kafka-cluster (mode group): ") == 2  # one table per fault
    assert "9.0 (4.0)" in text
    markdown = proof.render("kafka-cluster", "group", rows, markdown=True)
    assert "| leader | 3 | 3,000 | 3,000 | 0 | 0 | 2 | 9.0 (4.0) | 3.0 | 1 (invalid) |" in markdown
    assert "| follower | 1 | 1,000 | 997 | 3 | 4 | 0 | 1.0 (1.0) | 2.0 | 0 |" in markdown
    assert markdown.startswith("**kafka-cluster (mode group): kill-node**\n\n| target | rounds | acked | received |")


def test_a_queue_has_no_log_to_read_and_the_table_says_so():
    rows = proof.summarize([_round("kill-node", "leader", 100, gone=None, mode="quorum")])
    assert rows[0].gone is None and "not read (a queue)" in proof.render("rabbitmq-cluster", "quorum", rows)


def test_a_control_says_whether_it_showed_a_loss_and_never_calls_itself_safe():
    rows = proof.summarize([_round("isolate-node", "leader", 1000, lost=0, gone=120, mode="leader-ack"),
                            _round("isolate-node", "follower", 1000, mode="leader-ack")])
    text = proof.render("kafka-cluster", "leader-ack", rows, control=True)
    assert "kafka-cluster (mode leader-ack, the unsafe control): isolate-node" in text
    assert "leader: the control lost 0 and 120 acked messages are gone from the log: the checker can see a loss" in text
    assert "follower: this fault did not show that the checker can see a loss here" in text
    assert "safe" not in text.replace("unsafe", "")


def test_the_proof_fails_on_a_loss_or_a_gone_message_in_a_safe_mode_and_on_a_round_without_evidence():
    kafka, redis = get_stack("kafka-cluster"), get_stack("redis-sentinel")
    assert "5 acked messages lost in a safe mode" in proof.failed(kafka, [_round("kill-node", "leader", 1000, lost=5)])
    assert "7 acked messages gone from the broker's log" in proof.failed(kafka, [_round("kill-node", "leader", 9, gone=7)])
    # the controls and the lossy modes may lose: that is what they are run for
    assert proof.failed(kafka, [_round("isolate-node", "leader", 1000, lost=5, gone=9, mode="leader-ack")]) == ""
    assert proof.failed(redis, [_round("isolate-node", "leader", 1000, gone=9, mode="stream")]) == ""
    assert proof.failed(redis, [_round("kill-node", "leader", 1000, lost=2, mode="stream-wait")]) == ""
    invalid = [_round("pause-node", "follower", 1000, evidence="")]
    assert "1 round(s) without evidence of their fault (pause-node)" in proof.failed(kafka, invalid)


def test_a_round_is_proven_by_what_the_broker_showed_or_for_a_pause_by_a_gap_in_its_acks():
    assert proof.evidence_of("isolate-node", "sentinel-2 logged: +sdown master mymaster redis-1 6379", 0.1) \
        .startswith("sentinel-2 logged")
    assert proof.evidence_of("isolate-node", "", 30.0) == ""  # a gap alone does not prove a cut
    assert proof.evidence_of("pause-node", "", 12.5) == "no producer ack for 12.5 s (the broker's acks on record)"
    assert proof.evidence_of("pause-node", "", 0.4) == ""


@pytest.mark.parametrize("stack, faults, targets, rounds, rate, message", [
    ("kafka", ["kill-node"], ["leader"], 5, 200, "kafka has one node"),
    ("kafka-cluster", ["kill-broker"], ["leader"], 5, 200, "unknown fault kill-broker"),
    ("kafka-cluster", ["kill-node"], ["boss"], 5, 200, "unknown node boss"),
    ("kafka-cluster", ["kill-node"], ["leader"], 0, 200, "--rounds must be from 1 to 50"),
    ("kafka-cluster", ["kill-node"], ["leader"], 5, 1, "--rate must be from 10"),
])
def test_bad_proof_plans_are_refused_in_one_line(stack, faults, targets, rounds, rate, message):
    with pytest.raises(UsageError, match=message):
        proof.check_plan(get_stack(stack), faults, targets, rounds, rate)


def test_bench_refuses_clusters():
    with pytest.raises(UsageError, match="bench measures single-node stacks: use kafka or kafka-zookeeper"):
        bench.bench(config.load(ROOT, True, {}), "kafka-cluster", None, print, None, None)


def test_every_stack_knows_its_images_and_nodes():
    for stack in STACKS.values():
        assert stack.nodes and all(n.service in stack.brokers for n in stack.nodes)


def test_timelines_find_the_longest_silence_up_to_the_producers_stop(tmp_path):
    from mqlab.ledger import timeline
    s = 1_000_000_000
    (tmp_path / "sent-p1.tsv").write_text("".join(f"id{i}\t{i}\t0\t{t}\n" for i, t in enumerate((1 * s, 2 * s, 9 * s))))
    (tmp_path / "sent-p2.tsv").write_text(f"x\t0\t0\t{4 * s}\n" + "torn\t1\t0\t")  # a torn last line is skipped
    (tmp_path / "recv-c1.tsv").write_text("".join(f"id{i}\tp1\t{i}\t0\t{t}\n" for i, t in enumerate((2 * s, 3 * s))))
    assert timeline.ack_gap_s(tmp_path) == 5.0  # 4 s -> 9 s, across both producers
    assert timeline.ack_gap_s(tmp_path, until_ns=20 * s) == 11.0  # no ack from 9 s until the stop at 20 s
    assert timeline.delivery_gap_s(tmp_path) == 1.0
    assert timeline.delivery_gap_s(tmp_path, until_ns=3 * s) == 1.0


def test_a_consumer_is_silent_until_a_fault_that_outlasted_the_run_ends(tmp_path):
    from mqlab.ledger import timeline
    s = 1_000_000_000
    (tmp_path / "recv-a.tsv").write_text("".join(f"a{i}\tp\t{i}\t0\t{t * s}\n" for i, t in enumerate((1, 2, 8))))
    (tmp_path / "recv-b.tsv").write_text("".join(f"b{i}\tp\t{i}\t0\t{t * s}\n" for i, t in enumerate((1, 3))))
    assert timeline.consumer_silence_s(tmp_path) == 6.0  # b: from 3 s to the run's last receipt at 8 s
    assert timeline.consumer_silence_s(tmp_path, until_ns=15 * s) == 12.0  # b: until the fault ended at 15 s
