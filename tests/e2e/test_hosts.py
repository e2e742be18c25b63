"""The local multi-node rig, for real: ``invoke hosts up 2`` makes two worker engines in network
namespaces, joined to a swarm whose manager is the local engine, with the lab's images in each;
a container on node 2 reaches one on node 1 over an attachable overlay network (VXLAN over the
bridge, with the host forwarding nothing); ``invoke hosts down`` leaves nothing behind and the
local engine in the swarm state it had.

Needs root (namespaces, a bridge, engines). Costs about a minute: the image load is most of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from mqlab import images as lab_images
from mqlab.hosts import plan
from tests.conftest import ROOT, engine_or_skip
from tests.e2e.conftest import invoke

pytestmark = [pytest.mark.e2e, pytest.mark.hosts, pytest.mark.timeout(600)]

NODES = ["mqlab-node-1", "mqlab-node-2"]


def docker(*args: str, host: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    argv = ["docker", *(["-H", host] if host else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


def sock(node: str) -> str:
    return f"unix://{plan.RUN_DIR / node / 'docker.sock'}"


@pytest.fixture
def machine():
    """Root and a free machine: no rig up already (this test would take it down)."""
    engine_or_skip()
    if os.geteuid() != 0:
        # The hosted runner of the online path runs the tests as a user; `.ci/run` runs them as root.
        pytest.skip("the rig needs root (network namespaces, a bridge, engines): .ci/run runs this test")
    if plan.STATE_FILE.exists():
        pytest.fail("a rig is up already: run `invoke hosts down` first", pytrace=False)
    return swarm_state()


def test_two_nodes_up_reach_each_other_over_an_overlay_then_everything_goes(machine):
    swarm_before = machine
    started = invoke("hosts", "up", "2", timeout=500)
    assert started.ok, started.out
    rig = json.loads(plan.STATE_FILE.read_text())
    pids = [n["pid"] for n in rig["nodes"]]
    network, server = f"mqlab-rig-{uuid.uuid4().hex[:8]}", f"mqlab-rig-srv-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex
    try:
        # Two workers Ready beside the local engine, which is the manager.
        rows = [line.split("\t") for line in docker("node", "ls", "--format",
                "{{.Hostname}}\t{{.Status}}\t{{.ManagerStatus}}\t{{.Self}}").stdout.splitlines()]
        workers = sorted(r[0] for r in rows if r[2] == "")
        assert workers == NODES, rows
        assert all(r[1] == "Ready" for r in rows), rows
        assert [r[2] for r in rows if r[3] == "true"] == ["Leader"], rows

        # The lab's images (those on the local engine) are on each node.
        here = [t for t in lab_images.image_tags(ROOT).values() if docker("image", "inspect", t).returncode == 0]
        assert here, "no lab image on the local engine: run `invoke images`"
        for node in NODES:
            loaded = set(docker("images", "--format", "{{.Repository}}:{{.Tag}}", host=sock(node)).stdout.split())
            assert set(here) <= loaded, (node, sorted(set(here) - loaded))

        # Node 2 reaches node 1 over an attachable overlay network, by container name.
        base = lab_images.image_tags(ROOT)["base"]
        assert docker("network", "create", "--driver", "overlay", "--attachable", network).returncode == 0
        served = docker("run", "-d", "--name", server, "--network", network, base, "sh", "-c",
                        f'mkdir -p /srv && echo {token} > /srv/token && exec python3 -m http.server -d /srv 8000',
                        host=sock(NODES[0]))
        assert served.returncode == 0, served.stderr
        fetch = ("import time, urllib.request\n"
                 "for _ in range(40):\n"
                 "    try:\n"
                 f"        print(urllib.request.urlopen('http://{server}:8000/token', timeout=2).read().decode()); break\n"
                 "    except OSError as exc:\n"
                 "        err = exc; time.sleep(0.25)\n"
                 "else:\n"
                 "    raise SystemExit(f'no answer: {err}')\n")
        reached = docker("run", "--rm", "--network", network, base, "python3", "-c", fetch, host=sock(NODES[1]))
        assert reached.returncode == 0 and reached.stdout.strip() == token, reached.stdout + reached.stderr
        assert server not in docker("ps", "--format", "{{.Names}}", host=sock(NODES[1])).stdout  # another engine
        assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"  # the bridge alone carried it

        # Again with the same N: it says the rig is up; another N is refused in one line.
        again = invoke("hosts", "up", "2")
        assert again.ok and "the rig is up with 2 node(s)" in again.out, again.out
        other = invoke("hosts", "up", "3")
        assert other.code == 1 and other.out.strip() == \
            "mqlab: the rig is up with 2 node(s): run `invoke hosts down` first", other.out
        shown = invoke("hosts", "status")
        assert shown.ok, shown.out
        assert all(f"{n['name']}  {n['address']}  running" in shown.out for n in rig["nodes"]), shown.out
    finally:
        docker("rm", "--force", server, host=sock(NODES[0]))
        docker("network", "rm", network)
        stopped = invoke("hosts", "down", timeout=300)
    assert stopped.ok, stopped.out

    # Nothing is left: namespaces, bridge, veths, engines, mounts, directories; the manager as it was.
    assert not [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if n.startswith("mqlab-node-")]
    links = os.listdir("/sys/class/net")
    assert plan.BRIDGE not in links and not [link for link in links if link.startswith("mqlab-veth")], links
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], pids
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(plan.RUN_DIR) not in mounts and str(plan.DATA_DIR) not in mounts
    assert not plan.RUN_DIR.exists() and not plan.DATA_DIR.exists()
    assert swarm_state() == swarm_before
    nothing = invoke("hosts", "down")
    assert nothing.ok and nothing.out.strip() == "mqlab: no rig is up: nothing to take down", nothing.out
