"""Smoke tests of the images built from packages (``mqlab.images``).

Each broker image is started with ``docker run`` (through the Docker SDK), configured
the way the compose files configure the official image, and must answer at protocol
level from the host: an AMQP connection, a Redis PING, Kafka metadata through
kafka-python, ZooKeeper's ``srvr``. PerfTest must run a short benchmark against the
RabbitMQ image, with the arguments the lab passes (``mqlab.brokers.rabbitmq``). The services image
must run ``producer --help`` and ``consumer --help``.

Containers get unique names and the label ``org.mqlab.test=images``; they are removed
after each test whether it passed or failed, and leftovers of an earlier run are
removed first. Published ports bind to 127.0.0.1 on free ports, so these tests do not
collide with a running lab stack.
"""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from tests.conftest import ROOT, engine_or_skip

from mqlab.config import offline_default

# The images built from packages are what an offline lab runs (MQLAB_OFFLINE=1, as in
# .ci/run); a lab that pulls the official images has nothing of theirs to test.
pytestmark = [pytest.mark.e2e, pytest.mark.images, pytest.mark.timeout(300),
              pytest.mark.skipif(not offline_default(), reason="tests the images built from packages: "
                                 "set MQLAB_OFFLINE=1 (the official images are used otherwise)")]

TEST_LABEL = "org.mqlab.test"
READY_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def docker_client():
    engine_or_skip()
    import docker

    client = docker.from_env()
    _remove_leftovers(client)
    yield client
    _remove_leftovers(client)
    client.close()


@pytest.fixture(scope="module")
def tags(docker_client) -> dict[str, str]:
    """Build what is missing or stale (a no-op when `invoke images` ran), then name the tags."""
    from mqlab.images import build_all

    results = build_all(ROOT, progress=print)
    return {r.name: r.tag for r in results}


@pytest.fixture
def lab(docker_client):
    """Start containers and networks for one test; remove them all afterwards."""
    started = _Started(docker_client)
    yield started
    started.cleanup()


class _Started:
    def __init__(self, client):
        self.client = client
        self.suffix = uuid.uuid4().hex[:8]
        self.containers = []
        self.networks = []

    def name(self, role: str) -> str:
        return f"mqlab-imgtest-{role}-{self.suffix}"

    def network(self):
        net = self.client.networks.create(self.name("net"), labels={TEST_LABEL: "images"})
        self.networks.append(net)
        return net

    def run(self, image: str, role: str, **kwargs):
        container = self.client.containers.run(image, name=self.name(role), detach=True,
                                               labels={TEST_LABEL: "images"}, **kwargs)
        self.containers.append(container)
        return container

    def cleanup(self) -> None:
        for container in reversed(self.containers):
            try:
                container.remove(force=True, v=True)
            except Exception as exc:  # already gone is fine; anything else is reported
                if "No such container" not in str(exc):
                    print(f"cleanup: {container.name}: {exc}")
        for net in self.networks:
            net.remove()


def _remove_leftovers(client) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}=images"}):
        container.remove(force=True, v=True)
    for net in client.networks.list(filters={"label": f"{TEST_LABEL}=images"}):
        net.remove()


def _host_port(container, port: str) -> int:
    container.reload()
    return int(container.ports[port][0]["HostPort"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(check, container, what: str, timeout: float = READY_TIMEOUT):
    """Retry ``check()`` until it returns a value; fail with the container's log tail."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            break
        try:
            return check()
        except Exception as exc:  # not ready yet: connection refused, reset, timeouts...
            last = exc
            time.sleep(1)
    logs = container.logs(tail=40).decode(errors="replace")
    pytest.fail(f"{what} did not answer within {timeout:.0f}s (status {container.status}, last error: {last!r})\n{logs}")


def _zookeeper_srvr(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"srvr")
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    reply = b"".join(chunks).decode()
    if "Mode:" not in reply:
        raise ConnectionError(f"unexpected srvr reply {reply!r}")
    return reply


def _rabbitmq(lab, tags, role: str = "rabbitmq", **kwargs):
    """A RabbitMQ container with AMQP published on a free loopback port, and a connect()."""
    import pika

    broker = lab.run(tags["rabbitmq"], role, hostname="rabbitmq", ports={"5672/tcp": ("127.0.0.1", None)}, **kwargs)
    port = _host_port(broker, "5672/tcp")

    def connect():
        return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, connection_attempts=1))

    return broker, lambda: _until(connect, broker, "RabbitMQ (AMQP)")


def test_rabbitmq_accepts_amqp_with_default_credentials(lab, tags):
    broker, connect = _rabbitmq(lab, tags)
    connection = connect()
    try:
        channel = connection.channel()
        queue = f"imgtest-{lab.suffix}"
        channel.queue_declare(queue=queue, durable=True)
        channel.basic_publish("", queue, b"ping")
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        assert body == b"ping"
    finally:
        connection.close()
    # As the broker's user, as the compose health check runs: root would make its own cookie.
    node = broker.exec_run(["rabbitmq-diagnostics", "-q", "check_port_connectivity"], user="rabbitmq")
    assert node.exit_code == 0, node.output.decode()
    version = broker.exec_run(["rabbitmqctl", "-q", "version"], user="rabbitmq").output.decode().strip()
    assert version.startswith("4.0."), version
    assert tags["rabbitmq"].endswith(":" + version)


def test_rabbitmq_refuses_what_4_3_denies_unless_the_config_permits_it(lab, tags):
    """RabbitMQ 4.3 refuses a transient non-exclusive queue by default; so must the imitation."""
    import pika

    stock, connect_stock = _rabbitmq(lab, tags, "stock")
    conf = ROOT / "compose" / "config" / "rabbitmq" / "rabbitmq.conf"
    labconf, connect_lab = _rabbitmq(lab, tags, "labconf",
                                     volumes={str(conf): {"bind": "/etc/rabbitmq/rabbitmq.conf", "mode": "ro"}})

    connection = connect_stock()
    channel = connection.channel()
    channel.queue_declare(queue="", exclusive=True)  # transient but exclusive: still allowed
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as refused:
        channel.queue_declare(queue="mailbox")  # the tutorial's declare
    assert refused.value.reply_code == 541
    assert "Feature `transient_nonexcl_queues` is deprecated" in refused.value.reply_text
    defaults = stock.exec_run(["cat", "/etc/rabbitmq/conf.d/00-deprecated-features.conf"]).output.decode()
    for feature in ("transient_nonexcl_queues", "global_qos", "queue_master_locator", "amqp_address_v1"):
        assert f"deprecated_features.permit.{feature} = false" in defaults

    # The lab's rabbitmq.conf permits the tutorial's queue, and only that.
    connection = connect_lab()
    try:
        declared = connection.channel().queue_declare(queue="mailbox")
        assert declared.method.queue == "mailbox"
    finally:
        connection.close()
    defaults = labconf.exec_run(["cat", "/etc/rabbitmq/conf.d/00-deprecated-features.conf"]).output.decode()
    assert "transient_nonexcl_queues" not in defaults
    assert "deprecated_features.permit.global_qos = false" in defaults


def test_redis_answers_ping_from_the_host(lab, tags):
    import redis

    server = lab.run(tags["redis"], "redis", ports={"6379/tcp": ("127.0.0.1", None)})
    client = redis.Redis(port=_host_port(server, "6379/tcp"), socket_timeout=5)
    assert _until(client.ping, server, "Redis (PING)") is True
    # The official image's defaults: /data as working directory, running as the redis user.
    assert client.config_get("dir") == {"dir": "/data"}
    assert server.exec_run(["redis-cli", "ping"]).output.strip() == b"PONG"
    version = server.exec_run(["redis-server", "--version"]).output.decode()
    assert "v=8.0." in version, version
    assert tags["redis"].endswith(":" + version.split("v=")[1].split()[0])
    client.close()


def test_redis_server_loads_the_bundled_modules_as_the_official_entry_point_does(lab, tags):
    """The official redis 8.x entry point adds `--loadmodule` for each module it bundles when
    it starts a server (a sentinel loads none). The offline image has one stand-in module and
    the same rule, so a config file that names the module already (as CONFIG REWRITE saves
    it) fails here as it does there: the module is loaded twice and the server aborts."""
    import redis

    server = lab.run(tags["redis"], "redis-mod", ports={"6379/tcp": ("127.0.0.1", None)})
    client = redis.Redis(port=_host_port(server, "6379/tcp"), socket_timeout=5)
    _until(client.ping, server, "Redis (PING)")
    modules = [m[b"name"] if b"name" in m else m["name"] for m in client.module_list()]
    assert [m for m in modules if m in (b"mqlabstub", "mqlabstub")], modules
    client.close()
    assert b"Module 'mqlabstub' loaded" in server.logs()
    twice = lab.run(tags["redis"], "redis-twice", command=[
        "sh", "-c", "echo 'loadmodule /usr/local/lib/redis/modules/mqlabstub.so' > /data/r.conf && "
                    "exec docker-entrypoint.sh redis-server /data/r.conf"])
    assert twice.wait(timeout=60)["StatusCode"] != 0
    assert b"Can't load module" in twice.logs(), twice.logs()[-2000:]


def test_kafka_kraft_serves_metadata_with_official_env(lab, tags):
    from kafka import KafkaAdminClient

    port = _free_port()
    env = {  # the apache/kafka convention: KAFKA_FOO_BAR -> foo.bar
        "CLUSTER_ID": "bXFsYWIta3JhZnQtbGFiMQ",
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://localhost:{port}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_NUM_PARTITIONS": "3",
        "KAFKA_HEAP_OPTS": "-Xmx256m -Xms256m",
    }
    broker = lab.run(tags["kafka"], "kafka", environment=env, ports={"9092/tcp": ("127.0.0.1", port)})

    def cluster():
        admin = KafkaAdminClient(bootstrap_servers=f"localhost:{port}", request_timeout_ms=5000)
        try:
            return admin.describe_cluster()
        finally:
            admin.close()

    described = _until(cluster, broker, "Kafka 4.3 (metadata)")
    assert described["cluster_id"] == env["CLUSTER_ID"]
    assert [b["port"] for b in described["brokers"]] == [port]
    rendered = broker.exec_run(["cat", "/opt/kafka/config/server.properties"]).output.decode()
    assert "num.partitions=3" in rendered
    assert "log.dirs=/var/lib/kafka/data" in rendered


def test_zookeeper_and_bitnami_kafka_in_zookeeper_mode(lab, tags):
    from kafka import KafkaAdminClient

    net = lab.network()
    zookeeper = lab.run(tags["bitnami-zookeeper"], "zookeeper", network=net.name,
                        environment={"ALLOW_ANONYMOUS_LOGIN": "yes", "ZOO_HEAP_SIZE": "128",
                                     "ZOO_4LW_COMMANDS_WHITELIST": "srvr,ruok"},
                        ports={"2181/tcp": ("127.0.0.1", None)})
    zk_port = _host_port(zookeeper, "2181/tcp")
    reply = _until(lambda: _zookeeper_srvr("127.0.0.1", zk_port), zookeeper, "ZooKeeper (srvr)")
    assert "Zookeeper version: 3.9.3" in reply
    assert "Mode: standalone" in reply

    port = _free_port()
    env = {  # the Bitnami convention: KAFKA_CFG_FOO_BAR -> foo.bar; zookeeper.connect selects ZK mode
        "KAFKA_CFG_ZOOKEEPER_CONNECT": f"{zookeeper.name}:2181",
        "KAFKA_CFG_BROKER_ID": "1",
        "ALLOW_PLAINTEXT_LISTENER": "yes",
        # Two listeners, as in compose: the controller reaches the broker on the network's name.
        "KAFKA_CFG_LISTENERS": "INTERNAL://:19092,EXTERNAL://:9092",
        "KAFKA_CFG_ADVERTISED_LISTENERS": f"INTERNAL://{lab.name('bitnami-kafka')}:19092,EXTERNAL://localhost:{port}",
        "KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "KAFKA_CFG_INTER_BROKER_LISTENER_NAME": "INTERNAL",
        "KAFKA_CFG_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_HEAP_OPTS": "-Xmx256m -Xms256m",
    }
    broker = lab.run(tags["bitnami-kafka"], "bitnami-kafka", network=net.name, environment=env,
                     ports={"9092/tcp": ("127.0.0.1", port)})

    def cluster():
        admin = KafkaAdminClient(bootstrap_servers=f"localhost:{port}", request_timeout_ms=5000)
        try:
            return admin.describe_cluster()
        finally:
            admin.close()

    described = _until(cluster, broker, "Kafka 3.9 in ZooKeeper mode (metadata)")
    assert [b["broker_id"] for b in described["brokers"]] == [1]
    # The broker registered itself in ZooKeeper: ZooKeeper mode, not KRaft.
    ids = broker.exec_run(["zookeeper-shell.sh", f"{zookeeper.name}:2181", "ls", "/brokers/ids"])
    assert ids.output.decode().strip().splitlines()[-1] == "[1]"


def test_perftest_image_takes_perftest_arguments_like_the_official_one(docker_client, tags):
    name = f"mqlab-imgtest-perftest-help-{uuid.uuid4().hex[:8]}"
    container = docker_client.containers.run(tags["perf-test"], ["--help"], name=name, detach=True,
                                             labels={TEST_LABEL: "images"})
    try:
        status = container.wait(timeout=60)
        output = container.logs().decode(errors="replace")
        config = docker_client.images.get(tags["perf-test"]).attrs["Config"]
    finally:
        container.remove(force=True)
    assert status["StatusCode"] == 0, output
    assert "usage: <program>" in output and "--confirm" in output
    assert config["User"].startswith("perf-test") and config["WorkingDir"] == "/perf_test"


def test_perftest_benchmarks_the_rabbitmq_image(lab, tags):
    from mqlab.brokers import rabbitmq as rabbitmq_host

    net = lab.network()
    broker = lab.run(tags["rabbitmq"], "rabbitmq", hostname="rabbitmq", network=net.name)

    def ready():
        # As the broker's user: a CLI tool run as root before the broker has made its Erlang
        # cookie would make one that the broker cannot read.
        result = broker.exec_run(["rabbitmq-diagnostics", "-q", "check_port_connectivity"], user="rabbitmq")
        if result.exit_code != 0:
            raise ConnectionError(result.output.decode(errors="replace")[-200:])
        return True

    _until(ready, broker, "RabbitMQ (port connectivity)")
    argv = rabbitmq_host.perftest_argv(uri=f"amqp://guest:guest@{broker.name}:5672/%2F", size=1024, seconds=4,
                                rate=500, queue=f"imgtest-{lab.suffix}")
    perftest = lab.run(tags["perf-test"], "perftest", command=argv, network=net.name)
    status = perftest.wait(timeout=120)
    output = perftest.logs(stdout=True, stderr=False).decode(errors="replace")
    assert status["StatusCode"] == 0, perftest.logs().decode(errors="replace")[-2000:]
    result = rabbitmq_host.parse_perftest(output, warmup_s=1, size=1024)
    assert 300 <= result.send_rate <= 700, output
    assert result.recv_rate and result.recv_rate > 300, output
    assert result.p50_ns and 0 < result.p50_ns <= result.p99_ns, output


@pytest.mark.parametrize("command", ["producer", "consumer"])
def test_services_image_runs_the_entry_points(docker_client, tags, command):
    name = f"mqlab-imgtest-{command}-{uuid.uuid4().hex[:8]}"
    container = docker_client.containers.run(tags["services"], [command, "--help"], name=name,
                                             detach=True, labels={TEST_LABEL: "images"})
    try:
        status = container.wait(timeout=60)
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert status["StatusCode"] == 0, output
    assert f"usage: {command}" in output
