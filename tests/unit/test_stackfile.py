"""The compose-to-stack rewrite, from the lab's own compose files: every key Swarm rejects or
ignores is gone or rewritten, and the result passes `docker stack config`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from mqlab import config as lab_config
from mqlab.hosts import stackfile
from mqlab.stack import profiles
from mqlab.stacks import STACKS, get_stack
from tests.conftest import ROOT

#: Service keys that `docker stack deploy` rejects, or accepts and ignores.
NOT_ON_SWARM = {"build", "container_name", "depends_on", "cpuset", "profiles", "ports", "restart", "pull_policy"}


CASES = [pytest.param(name, chosen, id=name + "".join(f"-{p}" for p in chosen))
         for name in STACKS for chosen in ((), ("metrics",))]


@pytest.fixture(scope="module")
def cfg():
    return lab_config.load(ROOT, True)


@pytest.mark.parametrize("name, chosen", CASES)
def test_the_rewrite_leaves_nothing_swarm_rejects_and_passes_docker_stack_config(cfg, tmp_path, name, chosen):
    flat = stackfile.flatten(cfg, get_stack(name), chosen)
    done = stackfile.rewrite(flat)
    doc = done.document
    assert set(doc["services"]) == set(flat["services"])  # nothing lost on the way
    own = set(doc["services"])
    for service_name, service in doc["services"].items():
        assert not NOT_ON_SWARM & set(service), (service_name, NOT_ON_SWARM & set(service))
        assert service["deploy"]["endpoint_mode"] == "dnsrr"  # no virtual IPs: no IPVS here
        assert service["deploy"]["restart_policy"]["condition"] in ("any", "none", "on-failure")
        assert all(isinstance(n, str) for n in service.get("networks", []))  # no pinned address
        assert not [h for h in service.get("extra_hosts", []) if re.split("[:=]", h)[0] in own], service_name
        for volume in service.get("volumes", []):
            assert set(volume) <= {"type", "source", "target", "read_only"}
        for config in service.get("configs", []):
            assert config["source"] in doc["configs"] and isinstance(config.get("mode", 0), int)
    assert all(n == {"driver": "overlay", "attachable": True} for n in doc["networks"].values())
    assert all("content" not in c for c in doc.get("configs", {}).values())
    path = stackfile.write(done, tmp_path / f"{name}.yml")
    for config in doc.get("configs", {}).values():
        assert (tmp_path / config["file"]).is_file() if config["file"].startswith("./") else True
    if not shutil.which("docker"):
        pytest.fail("the docker CLI is needed to check a stack file (`docker stack config`)")
    checked = subprocess.run(["docker", "stack", "config", "-c", str(path)], cwd=tmp_path, text=True,
                             capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_what_was_changed_is_said_in_the_file(cfg, tmp_path):
    done = stackfile.rewrite(stackfile.flatten(cfg, get_stack("redis-sentinel")))
    text = stackfile.write(done, tmp_path / "s.yml").read_text()
    assert "# dropped: redis-1: networks ipv4_address (Swarm cannot pin an address)\n" in text
    assert "# dropped: sentinel-1: extra_hosts of the stack's own services (found by name on Swarm)\n" in text
    assert "# dropped: redis-1: ports (nothing is published on Swarm" in text
    assert json.loads(text[text.index("{"):])["version"] == stackfile.VERSION


def test_a_config_given_as_content_is_written_to_a_file_beside_the_stack(cfg, tmp_path):
    done = stackfile.rewrite(stackfile.flatten(cfg, get_stack("rabbitmq-cluster")))
    stackfile.write(done, tmp_path / "s.yml")
    cookie = done.document["configs"]["erlang-cookie"]
    assert cookie == {"file": "./erlang-cookie.config"}
    assert (tmp_path / "erlang-cookie.config").read_text() == "mqlab-lab-cookie-not-a-secret"
    rabbit = done.document["services"]["rabbitmq-1"]
    # owned by rabbitmq (999 in the official image and the offline one): the entry point's chown
    # of a read-only Swarm config would fail, and RabbitMQ never start
    assert {"source": "erlang-cookie", "target": "/var/lib/rabbitmq/.erlang.cookie", "uid": "999", "gid": "999",
            "mode": 0o400} in rabbit["configs"]


def test_receipts_go_to_a_volume_of_the_node_and_nothing_else_of_the_host(cfg):
    doc = stackfile.rewrite(stackfile.flatten(cfg, get_stack("kafka-cluster"))).document
    for service in ("producer", "consumer"):
        mounts = doc["services"][service]["volumes"]
        assert {"type": "volume", "source": "ledger", "target": "/ledger"} in mounts
        assert not [m for m in mounts if m["type"] == "bind" and m["target"] == "/ledger"]
    assert "ledger" in doc["volumes"]
    # the brokers' own files stay binds (the checkout is at the same path on each node)
    assert any(m["type"] == "bind" for m in doc["services"]["kafka-1"]["volumes"])


def test_published_ports_become_the_gateways_routes(cfg):
    done = stackfile.rewrite(stackfile.flatten(cfg, get_stack("kafka-cluster")))
    assert not any("ports" in s for s in done.document["services"].values())
    assert sorted(done.ports, key=lambda p: p.published) == [stackfile.Port("kafka-1", "127.0.0.1", 9092, 9092),
                                  stackfile.Port("kafka-2", "127.0.0.1", 9093, 9092),
                                  stackfile.Port("kafka-3", "127.0.0.1", 9094, 9092)]


def test_restart_becomes_a_restart_policy():
    flat = {"services": {"a": {"image": "x", "restart": "unless-stopped"}, "b": {"image": "x", "restart": "no"},
                         "c": {"image": "x"}}}
    services = stackfile.rewrite(flat).document["services"]
    # c has none: on Swarm nobody else would start it again (the lab starts a broker itself on one engine)
    assert [services[s]["deploy"]["restart_policy"]["condition"] for s in "abc"] == ["any", "none", "any"]


def test_every_profile_service_is_rewritten_too(cfg):
    chosen = profiles.select(get_stack("redis"), metrics=True, ui=True, offline=True)
    doc = stackfile.rewrite(stackfile.flatten(cfg, get_stack("redis"), chosen.names)).document
    assert {"prometheus", "redis-exporter", "redis-commander"} <= set(doc["services"])
    assert any(v["target"] == "/etc/prometheus/prometheus.yml" for v in doc["services"]["prometheus"]["volumes"])


def _placed(cfg, name: str, consumers: int, workers: int, labelled: int) -> dict:
    from mqlab.hosts import swarm

    done = stackfile.rewrite(stackfile.flatten(cfg, get_stack(name)))
    swarm.place(done, get_stack(name), consumers, workers, labelled)
    return done.document["services"]


def test_each_broker_node_of_a_cluster_gets_a_swarm_node_of_its_own(cfg):
    services = _placed(cfg, "redis-sentinel", 3, workers=3, labelled=3)
    assert services["redis-2"]["deploy"]["placement"]["constraints"] == ["node.role==worker", "node.labels.mqlab.node==2"]
    assert services["sentinel-3"]["deploy"]["placement"]["constraints"][-1] == "node.labels.mqlab.node==3"
    assert services["consumer"]["deploy"]["replicas"] == 3
    assert services["consumer"]["deploy"]["placement"]["constraints"] == ["node.role==worker"]
    # two labelled workers for three Kafka nodes: kafka-3 shares the first one
    services = _placed(cfg, "kafka-cluster", 1, workers=2, labelled=2)
    assert [services[f"kafka-{k}"]["deploy"]["placement"]["constraints"][-1] for k in (1, 2, 3)] == [
        "node.labels.mqlab.node==1", "node.labels.mqlab.node==2", "node.labels.mqlab.node==1"]


def test_a_one_node_swarm_places_nothing(cfg):
    services = _placed(cfg, "kafka-cluster", 2, workers=0, labelled=0)
    assert all("placement" not in s["deploy"] for s in services.values())
    assert services["consumer"]["deploy"]["replicas"] == 2


def test_expose_moves_the_gateways_ports_off_loopback(cfg):
    # `invoke up <stack> --swarm --expose`: the same variable as on one engine (MQLAB_BIND)
    shown = stackfile.rewrite(stackfile.flatten(cfg, get_stack("rabbitmq"), env={"MQLAB_BIND": "0.0.0.0"}))
    assert shown.ports and {p.host_ip for p in shown.ports} == {"0.0.0.0"}
    kept = stackfile.rewrite(stackfile.flatten(cfg, get_stack("rabbitmq")))
    assert {p.host_ip for p in kept.ports} == {"127.0.0.1"}
