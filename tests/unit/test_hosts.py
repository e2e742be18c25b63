"""The local multi-node rig's pure parts: addresses, the node engine's command, the refusals, the state file."""

import copy
import ipaddress
import subprocess
import sys

import pytest

import tasks
from mqlab.errors import LabError, UsageError
from mqlab.hosts import plan, state
from mqlab.hosts.plan import Plan, parse_count, parse_subnet, refusal, subnet_in_use

SUBNET = ipaddress.ip_network("10.213.0.0/24")
TOOLS = {name: True for name in ("ip", "nsenter", "unshare", "dockerd", "docker")}


def test_addresses_come_from_the_subnet():
    p = Plan(parse_subnet("10.213.0.0/24"), 3)
    assert p.gateway == "10.213.0.1"
    assert [(n.name, n.address) for n in p.nodes] == [
        ("mqlab-node-1", "10.213.0.11"), ("mqlab-node-2", "10.213.0.12"), ("mqlab-node-3", "10.213.0.13")]
    other = Plan(parse_subnet("192.168.77.0/27"), 5)
    assert other.gateway == "192.168.77.1" and other.nodes[-1].address == "192.168.77.15"


def test_each_node_has_its_own_paths_and_short_interface_names():
    nodes = Plan(SUBNET, plan.MAX_NODES).nodes
    for field in ("veth", "socket", "data_root", "exec_root", "log", "netns_path"):
        assert len({getattr(n, field) for n in nodes}) == len(nodes), field
    assert all(len(n.veth) <= 15 for n in nodes)  # the kernel's limit on interface names
    node = nodes[1]
    assert str(node.data_root).startswith("/var/lib/mqlab-nodes/mqlab-node-2/")
    assert str(node.exec_root).startswith("/run/mqlab-nodes/mqlab-node-2/")


def test_the_node_engine_joins_only_the_network_namespace_and_keeps_nothing_of_the_hosts():
    node = Plan(SUBNET, 2).nodes[1]
    argv = node.dockerd_argv()
    assert argv[:2] == ["nsenter", "--net=/run/netns/mqlab-node-2"]  # not `ip netns exec`: it remounts /sys
    assert "exec" not in argv[:3]
    dockerd = argv[argv.index("dockerd"):]

    def flag(name):
        return dockerd[dockerd.index(name) + 1]

    assert flag("--data-root") == str(node.data_root)
    assert flag("--exec-root") == str(node.exec_root)
    assert flag("-H") == f"unix://{node.socket}"
    assert flag("--pidfile").startswith(str(node.run_dir))       # not the host engine's /var/run/docker.pid
    assert flag("--config-file").startswith(str(node.run_dir))   # not the host's daemon.json
    for switch in ("--iptables=false", "--ip-forward=false", "--bridge=none"):
        assert switch in dockerd
    # Its own host name, hence its swarm node name; given as an argument, never formatted into the script.
    assert argv[argv.index("unshare") + 1] == "--uts"
    assert argv[argv.index("-c") + 2] == "mqlab-node-2" and "mqlab-node-2" not in argv[argv.index("-c") + 1]


@pytest.mark.parametrize("text,expected", [
    ("8.8.8.0/24", "must be a private IPv4 network"),
    ("10.213.0.1/24", "is not a network"),
    ("10.213.0.0/29", "is too small"),
    ("fd00:1::/64", "must be a private IPv4 network"),
    ("127.0.0.0/24", "must be a private IPv4 network"),
    ("banana", "is not a network"),
])
def test_a_bad_subnet_setting_is_one_line(text, expected):
    with pytest.raises(UsageError, match=expected) as err:
        parse_subnet(text)
    assert "\n" not in str(err.value) and plan.SUBNET_KEY in str(err.value)


@pytest.mark.parametrize("text", ["0", "6", "-1", "x", "", None, "2.5"])
def test_the_node_count_is_one_to_five(text):
    with pytest.raises(UsageError, match="number of nodes"):
        parse_count(text)


def test_a_good_node_count():
    assert [parse_count(t) for t in ("1", 5, "3")] == [1, 5, 3]


def test_the_subnet_is_in_use_when_an_interface_or_a_route_reaches_into_it():
    assert subnet_in_use(SUBNET, [("eth0", "10.213.0.7/24")], []) == "10.213.0.7/24 is on interface eth0"
    assert "wg0" in subnet_in_use(SUBNET, [("wg0", "10.0.0.1/8")], [])  # a wider network on the host
    assert subnet_in_use(SUBNET, [], [("10.213.0.128/25", "tun0")]) == "a route to 10.213.0.128/25 via tun0"
    assert subnet_in_use(SUBNET, [], [("10.213.0.9", "eth1")]) == "a route to 10.213.0.9 via eth1"


def test_the_subnet_is_free_beside_other_networks_and_the_default_route():
    addresses = [("lo", "127.0.0.1/8"), ("eth0", "192.0.2.2/24"), ("docker0", "172.17.0.1/16"), ("eth0", "fd00::2/64")]
    routes = [("default", "eth0"), ("192.0.2.0/24", "eth0"), ("172.17.0.0/16", "docker0"), ("10.214.0.0/24", "x")]
    assert subnet_in_use(SUBNET, addresses, routes) is None


def _refusal(**changes):
    given = dict(euid=0, tools=TOOLS, netns_works=True, engine_error=None, conflict=None,
                 swarm=("inactive", "", False), gateway="10.213.0.1")
    given.update(changes)
    return refusal(**given)


def test_nothing_refuses_on_a_ready_machine():
    assert _refusal() is None
    assert _refusal(swarm=("active", "10.213.0.1", True)) is None  # a manager the nodes can reach is reused


@pytest.mark.parametrize("changes,expected", [
    (dict(euid=1000), "needs root"),
    (dict(tools={**TOOLS, "ip": False}), "ip not found: install iproute2"),
    (dict(tools={**TOOLS, "nsenter": False, "unshare": False}), "nsenter, unshare not found"),
    (dict(netns_works=False), "`ip netns` does not work here"),
    (dict(engine_error="the local Docker engine is not running"), "the local Docker engine is not running"),
    (dict(conflict="10.213.0.7/24 is on interface eth0"), "the nodes' subnet is already in use on this machine "
                                                          "(10.213.0.7/24 is on interface eth0): set MQLAB_HOSTS_SUBNET"),
    (dict(swarm=("active", "192.0.2.2", True)), "already in a swarm, advertising 192.0.2.2"),
    (dict(swarm=("active", "10.213.0.1", False)), "already in a swarm"),  # a worker of another swarm
    (dict(swarm=("pending", "", False)), "swarm is pending"),
])
def test_each_refusal_is_one_line(changes, expected):
    why = _refusal(**changes)
    assert why is not None and expected in why and "\n" not in why


def test_refusals_come_in_the_order_a_user_fixes_them():
    assert "needs root" in _refusal(euid=1000, tools={**TOOLS, "ip": False}, conflict="x")
    assert "not found" in _refusal(tools={**TOOLS, "ip": False}, netns_works=False, conflict="x")
    assert "in use" in _refusal(conflict="x", swarm=("active", "192.0.2.2", True))


def _a_state():
    st = state.RigState(subnet="10.213.0.0/24", count=2, gateway="10.213.0.1", bridge="mqlab-br0",
                        swarm_created=True, gwbridge_existed=False)
    st.nodes.append(state.NodeState(1, "mqlab-node-1", "10.213.0.11", netns=True, veth="mqlab-veth1", pid=4242,
                                    node_id="abc", images=["mqlab/services:0.1.0"]))
    st.nodes.append(state.NodeState(2, "mqlab-node-2", "10.213.0.12", netns=True))
    return st


def test_the_state_file_reads_back_what_was_written(tmp_path):
    path = tmp_path / "run" / "rig.json"
    assert state.load(path) is None  # no rig
    st = _a_state()
    state.save(path, st)
    back = state.load(path)
    assert back == st and back.node(1).pid == 4242 and back.node(2).veth == ""
    assert [p.name for p in path.parent.iterdir()] == ["rig.json"]  # written through a temporary file, renamed


def test_each_save_replaces_the_whole_record(tmp_path):
    path = tmp_path / "rig.json"
    st = _a_state()
    state.save(path, st)
    st.node(2).pid = 77
    st.complete = True
    state.save(path, st)
    assert state.load(path).node(2).pid == 77 and state.load(path).complete


@pytest.mark.parametrize("text,expected", [("{not json", "cannot be read"),
                                           ('{"version": 99, "nodes": []}', "version 99"),
                                           ('{"version": 1, "nodes": [], "surprise": 1}', "surprise")])
def test_a_state_file_that_cannot_be_read_is_one_line(tmp_path, text, expected):
    path = tmp_path / "rig.json"
    path.write_text(text)
    with pytest.raises(LabError, match=expected) as err:
        state.load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("argv,message", [
    (["hosts", "up", "9"], "mqlab: the number of nodes must be from 1 to 5, got 9"),
    (["hosts", "up", "two"], "mqlab: the number of nodes must be a whole number from 1 to 5, got 'two'"),
    (["hosts", "sideways"], "mqlab: unknown action 'sideways': choose up N, down or status"),
    (["hosts", "status", "--images", "base"], "mqlab: --images is for `hosts up`, not `hosts status`"),
])
def test_bad_input_to_hosts_is_one_line_from_the_command_line(argv, message):
    done = subprocess.run([sys.executable, "-m", "invoke", *argv], cwd=tasks.ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 1
    assert (done.stdout + done.stderr).strip() == message


def test_hosts_down_and_status_need_no_node_count():
    """invoke's positional arguments are required; `down` and `status` stand in for the count."""
    def arguments():  # on a copy: invoke's get_arguments hands each flag's help out once (it pops it)
        return {a.name: a for a in copy.deepcopy(tasks.hosts).get_arguments()}

    for action in ("down", "status"):
        made = arguments()
        made["action"].set_value(action)
        assert made["nodes"].value == ""
    made = arguments()
    made["action"].set_value("up")
    assert made["nodes"].value is None  # `hosts up` without N: invoke asks for it


def test_the_dns_stub_refuses_every_question_at_once():
    from mqlab.hosts import dnsstub

    # a query for "a." (type A, class IN), id 0x1234, recursion desired
    query = bytes.fromhex("1234" "0100" "0001" "0000" "0000" "0000") + b"\x01a\x00" + bytes.fromhex("00010001")
    reply = dnsstub.answer(query)
    assert reply[:2] == b"\x12\x34"  # the same id
    assert reply[2] & 0x80 and reply[2] & 0x01  # a response, recursion desired kept
    assert reply[3] & 0x0F == dnsstub.REFUSED
    assert reply[4:6] == b"\x00\x01" and reply[6:12] == bytes(6)  # the question, no answer
    assert reply[12:] == query[12:]
    assert dnsstub.answer(reply) is None  # never answers an answer
    assert dnsstub.answer(b"\x00" * 5) is None


def test_each_node_asks_its_own_dns_stub():
    node = plan.Plan(plan.parse_subnet("10.213.0.0/24"), 2).nodes[1]
    argv = node.dockerd_argv()
    assert argv[argv.index("--dns") + 1] == node.address == "10.213.0.12"
    stub = node.dns_argv("/usr/bin/python3")
    assert stub[:2] == ["nsenter", "--net=/run/netns/mqlab-node-2"] and stub[-2:] == ["mqlab.hosts.dnsstub", node.address]
