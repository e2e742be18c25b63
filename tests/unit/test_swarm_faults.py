"""Which node faults run where: on one engine, on Swarm, and the refusals in one line."""

import pytest

from mqlab.config import LabConfig
from mqlab.errors import UsageError
from mqlab.faults import nodes, proof
from mqlab.faults.common import on_swarm, service_of
from mqlab.stacks import get_stack


class SwarmLike:
    """What the faults take for a client of a swarm: one that reaches every node's containers."""

    def containers_of(self, stack, service, running=True):
        raise AssertionError("a refused fault must not look for containers")


class Labelled:
    def __init__(self, labels, name="c"):
        self.labels, self.name = labels, name


def test_proof_faults_on_one_engine_and_on_swarm():
    assert "isolate-host" not in proof.FAULTS and "partition-node" in proof.FAULTS
    assert "isolate-host" in proof.SWARM_FAULTS
    assert "partition-node" not in proof.SWARM_FAULTS and "rolling-restart" in proof.SWARM_FAULTS
    stack = get_stack("kafka-cluster")
    proof.check_plan(stack, ["isolate-host"], ["leader"], 1, 200, swarm=True)
    with pytest.raises(UsageError, match="unknown fault isolate-host: choose from"):
        proof.check_plan(stack, ["isolate-host"], ["leader"], 1, 200)
    with pytest.raises(UsageError, match="unknown fault partition-node on Swarm"):
        proof.check_plan(stack, ["partition-node"], ["leader"], 1, 200, swarm=True)


@pytest.mark.parametrize("fault", ["partition-node"])
def test_what_swarm_cannot_do_is_refused_in_one_line(tmp_path, fault):
    cfg = LabConfig(root=tmp_path, offline=False, values={})
    with pytest.raises(UsageError) as refused:
        nodes.run_node_fault(cfg, get_stack("kafka-cluster"), fault, 1, None, "group", SwarmLike(), print, "")
    assert str(refused.value).startswith(f"{fault} does not run on Swarm: ") and "\n" not in str(refused.value)


def test_isolate_host_needs_a_swarm(tmp_path):
    cfg = LabConfig(root=tmp_path, offline=False, values={})
    with pytest.raises(UsageError, match="isolate-host cuts off a machine of a swarm: `invoke hosts up 3`"):
        nodes.run_node_fault(cfg, get_stack("kafka-cluster"), "isolate-host", 1, None, "group", object(), print, "")


def test_a_containers_service_on_one_engine_and_on_swarm():
    assert on_swarm(SwarmLike()) and not on_swarm(object())
    assert service_of(Labelled({"com.docker.compose.service": "kafka-2"})) == "kafka-2"
    assert service_of(Labelled({"com.docker.swarm.service.name": "mqlab-kafka-cluster_kafka-2"})) == "kafka-2"
    assert service_of(Labelled({}, name="lonely")) == "lonely"



def test_expose_on_swarm_is_refused_with_the_default_credentials_before_anything_starts(tmp_path, monkeypatch):
    from mqlab import hosts
    from mqlab.stack import preflight

    monkeypatch.setattr(preflight, "docker_client", lambda: pytest.fail("the engine was asked first"))
    cfg = LabConfig(root=tmp_path, offline=False, values={})
    with pytest.raises(UsageError, match="default"):
        hosts.swarm_up(cfg, "rabbitmq-cluster", 1, print, expose=True)
