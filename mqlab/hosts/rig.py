"""Make and unmake the rig: the bridge, the namespaces, the node engines, the swarm, the images.

Every step is recorded in the state file (:mod:`.state`) as soon as it is done, and undone from
that record, by :func:`down` or by a failed :func:`up`. Processes are stopped by their recorded
pid only, after checking that the pid is still the node's dockerd.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from .. import images as lab_images
from ..errors import LabError, UsageError
from ..tables import render
from . import plan as rig_plan
from . import state as rig_state
from .plan import BRIDGE, DATA_DIR, RUN_DIR, STATE_FILE, Node, Plan
from .state import NodeState, RigState

Echo = Callable[[str], None]
TOOLS = ("ip", "nsenter", "unshare", "dockerd", "docker")
GWBRIDGE = "docker_gwbridge"
START_TIMEOUT = 60.0   # a node's engine answers in about 2 s
STOP_TIMEOUT = 30.0    # dockerd stops its containers first (10 s each at most)
READY_TIMEOUT = 30.0   # a joined node shows Ready on the manager within a second or two


class RigError(LabError):
    """A step of the rig failed; the message names the step."""


# --------------------------------------------------------------------------- commands


def _run(argv: list[str], what: str, timeout: float = 60) -> str:
    """Run a command; on failure a RigError naming ``what`` (never the command line: a join
    token would be in it) with the command's last line of error."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RigError(f"{what}: no answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RigError(f"{what} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def _ok(argv: list[str], timeout: float = 60) -> bool:
    """Run a command of the teardown, where a failure is noted, not raised."""
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _docker(host: str | None = None) -> list[str]:
    return ["docker", "-H", host] if host else ["docker"]


def _swarm_info(host: str | None = None) -> dict:
    """The engine's ``docker info`` Swarm section; RigError when the engine does not answer."""
    return json.loads(_run([*_docker(host), "info", "--format", "{{json .Swarm}}"], "docker info", timeout=20))


# --------------------------------------------------------------------------- checks


def _host_addresses() -> list[tuple[str, str]]:
    out = json.loads(_run(["ip", "-j", "addr", "show"], "ip addr") or "[]")
    return [(link.get("ifname", "?"), f"{a['local']}/{a['prefixlen']}")
            for link in out for a in link.get("addr_info", []) if a.get("family") == "inet"]


def _host_routes() -> list[tuple[str, str]]:
    out = json.loads(_run(["ip", "-j", "route", "show"], "ip route") or "[]")
    return [(r.get("dst", ""), r.get("dev", "")) for r in out]


def check(p: Plan) -> None:
    """Refuse in one line where the rig cannot work (:func:`plan.refusal`)."""
    tools = {name: shutil.which(name) is not None for name in TOOLS}
    euid = os.geteuid()
    netns_works = tools["ip"] and euid == 0 and _ok(["ip", "netns", "list"], timeout=10)
    engine_error, swarm = None, ("inactive", "", False)
    conflict = None
    if euid == 0 and all(tools.values()) and netns_works:
        try:
            info = _swarm_info()
            swarm = (info.get("LocalNodeState", ""), info.get("NodeAddr", ""), bool(info.get("ControlAvailable")))
        except RigError:
            engine_error = "the local Docker engine is not running (`docker info` failed): start dockerd first"
        conflict = rig_plan.subnet_in_use(p.subnet, _host_addresses(), _host_routes())
    why = rig_plan.refusal(euid=euid, tools=tools, netns_works=netns_works, engine_error=engine_error,
                           conflict=conflict, swarm=swarm, gateway=p.gateway)
    if why:
        raise UsageError(why)


def image_tags_to_load(root: Path, only: str | None) -> tuple[list[str], list[str]]:
    """(tags to load, tags skipped because they are not on the local engine). ``only``: image names
    (``invoke images``'), comma-separated, or ``none``; default every lab image that is here.
    A named image that is not here is an error."""
    tags = lab_images.image_tags(root)
    if only is not None and only.strip().lower() == "none":
        return [], []
    names = list(tags) if only is None else [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in tags]
    if unknown:
        raise UsageError(f"unknown image {', '.join(map(repr, unknown))}: choose from {', '.join(tags)}, or none")
    present = [tags[n] for n in names if _ok(["docker", "image", "inspect", tags[n]], timeout=20)]
    missing = [tags[n] for n in names if tags[n] not in present]
    if only is not None and missing:
        raise UsageError(f"not on the local engine: {', '.join(missing)}: build them with `invoke images`")
    return present, missing


# --------------------------------------------------------------------------- processes


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _is_node_engine(pid: int, node: Node) -> bool:
    """The pid is still the node's dockerd or its DNS stub (a recorded pid may have been reused by now)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return node.host.encode() in argv or (b"mqlab.hosts.dnsstub" in argv and node.address.encode() in argv)


def _stop(engines: list[tuple[int, Node]]) -> list[int]:
    """Stop the nodes' dockerd by their pids, all at once, and wait for them to exit (SIGKILL
    after STOP_TIMEOUT); the pids still alive after that."""
    left = [pid for pid, node in engines if pid and _is_node_engine(pid, node) and _alive(pid)]
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 10.0)):
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            for pid in left:
                try:  # reap it when it is our own child (a failed `up`)
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            left = [pid for pid in left if _alive(pid)]
            time.sleep(0.2)
        if not left:
            break
    return left


def _clear_leftovers(node: Node) -> list[int]:
    """What a node's engine leaves when it dies without stopping its containers (killed, or
    crashed): the containers, which runc still lists under the node's own runtime root, and the
    containerd shims that watched them. The containers go through runc, from that record; the
    shims (and the node's containerd, should it outlive its engine) are the containerd processes
    given the node's own containerd socket or config, paths no other process uses. Returns the
    pids that would not go."""
    root = node.exec_root / "runtime-runc" / "moby"
    if root.is_dir() and shutil.which("runc"):
        ids = subprocess.run(["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True,
                             timeout=30).stdout.split()
        for cid in ids:
            _ok(["runc", "--root", str(root), "delete", "--force", cid], timeout=30)
    ours = {str(node.exec_root / "containerd" / name).encode() for name in ("containerd.sock", "containerd.toml")}
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if Path(argv[0].decode(errors="replace")).name.startswith("containerd") and ours & set(argv) \
                and _alive(int(proc.name)):
            left.append(int(proc.name))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        left = [pid for pid in left if _alive(pid)]
        time.sleep(0.2)
    return left


def _mounts_under(paths: Iterable[Path]) -> list[str]:
    """Mount points at or below ``paths``, deepest first (/proc/self/mountinfo, octal escapes undone)."""
    roots = [str(p) for p in paths]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if any(point == r or point.startswith(r + "/") for r in roots):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def _unmount(paths: Iterable[Path]) -> list[str]:
    """Unmount what is left under ``paths``; the mount points that stay."""
    for point in _mounts_under(paths):
        _ok(["umount", point], timeout=20) or _ok(["umount", "-l", point], timeout=20)
    return _mounts_under(paths)


# --------------------------------------------------------------------------- up


class _Clock:
    def __init__(self, echo: Echo):
        self.echo, self.start = echo, time.monotonic()

    def __call__(self, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.start:5.1f}s] {message}")


def up(root: Path, count_text: str | int, subnet_text: str, only_images: str | None, echo: Echo) -> RigState:
    """Make the rig of N worker nodes (or report that it is up); on any failure undo what was made."""
    count = rig_plan.parse_count(count_text)
    p = Plan(rig_plan.parse_subnet(subnet_text), count)
    existing = rig_state.load(STATE_FILE)
    if existing is not None:
        if not existing.complete:
            raise UsageError("an earlier `hosts up` did not finish: run `invoke hosts down` first")
        if existing.count != count:
            raise UsageError(f"the rig is up with {existing.count} node(s): run `invoke hosts down` first")
        nodes = {n.index: n for n in p.nodes}
        stopped = [n.name for n in existing.nodes if not (_is_node_engine(n.pid, nodes[n.index]) and _alive(n.pid))]
        if stopped:
            raise UsageError(f"the rig is up but the engine of {', '.join(stopped)} is not running: "
                             "run `invoke hosts down`, then `invoke hosts up` again")
        echo(f"the rig is up with {count} node(s)")
        return existing
    check(p)
    tags, skipped = image_tags_to_load(root, only_images)
    clock = _Clock(echo)
    st = RigState(subnet=str(p.subnet), count=count, gateway=p.gateway,
                  gwbridge_existed=_ok(["docker", "network", "inspect", GWBRIDGE], timeout=20))
    rig_state.save(STATE_FILE, st)
    try:
        _make(p, st, tags, skipped, clock)
    except BaseException as exc:  # Ctrl-C too: nothing is left half made
        clock(f"{'interrupted' if isinstance(exc, KeyboardInterrupt) else 'failed'}: undoing what was made")
        try:
            _teardown(st, clock)
        except RigError as undo:  # the first failure is the one to report; this one is shown too
            clock(str(undo))
        raise
    st.complete = True
    rig_state.save(STATE_FILE, st)
    clock(f"the rig is up: {count} worker node(s), manager {p.gateway}")
    return st


def _make(p: Plan, st: RigState, tags: list[str], skipped: list[str], clock: _Clock) -> None:
    save = lambda: rig_state.save(STATE_FILE, st)  # noqa: E731
    prefix = p.subnet.prefixlen
    clock(f"bridge {BRIDGE}, {p.gateway}/{prefix}")
    _run(["ip", "link", "add", BRIDGE, "type", "bridge"], f"making bridge {BRIDGE}")
    st.bridge = BRIDGE
    save()
    _run(["ip", "addr", "add", f"{p.gateway}/{prefix}", "dev", BRIDGE], f"addressing {BRIDGE}")
    _run(["ip", "link", "set", BRIDGE, "up"], f"bringing {BRIDGE} up")

    for node in p.nodes:
        ns = NodeState(node.index, node.name, node.address)
        st.nodes.append(ns)
        clock(f"{node.name}: network namespace, veth {node.veth} on {BRIDGE}, {node.address}/{prefix}")
        _run(["ip", "netns", "add", node.name], f"making namespace {node.name}")
        ns.netns = True
        save()
        _run(["ip", "link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", node.name],
             f"making veth {node.veth}")
        ns.veth = node.veth
        save()
        _run(["ip", "link", "set", node.veth, "master", BRIDGE, "up"], f"putting {node.veth} on {BRIDGE}")
        _run(["ip", "-n", node.name, "addr", "add", f"{node.address}/{prefix}", "dev", "eth0"],
             f"addressing {node.name}")
        _run(["ip", "-n", node.name, "link", "set", "eth0", "up"], f"bringing up eth0 in {node.name}")
        _run(["ip", "-n", node.name, "link", "set", "lo", "up"], f"bringing up lo in {node.name}")

    for node in p.nodes:
        clock(f"{node.name}: starting its DNS stub on {node.address}:53, and dockerd (log {node.log})")
        node.exec_root.mkdir(parents=True, exist_ok=True)
        with node.dns_log.open("ab") as log:
            stub = subprocess.Popen(node.dns_argv(sys.executable), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        st.node(node.index).dns_pid = stub.pid
        save()
        node.data_root.mkdir(parents=True, exist_ok=True)
        (node.run_dir / "daemon.json").write_text("{}\n")
        with node.log.open("ab") as log:
            # A session of its own: Ctrl-C in this terminal reaches `up` (which then stops the
            # node by its pid), not the engine directly.
            proc = subprocess.Popen(node.dockerd_argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        st.node(node.index).pid = proc.pid
        save()
    for node in p.nodes:
        _wait_engine(node, st.node(node.index).pid)
    clock(f"{p.count} engine(s) answering")

    info = _swarm_info()
    if info.get("LocalNodeState") != "active":
        clock(f"manager: docker swarm init --advertise-addr {p.gateway} (the local engine)")
        _run(["docker", "swarm", "init", "--advertise-addr", p.gateway, "--listen-addr", f"{p.gateway}:2377"],
             "docker swarm init")
        st.swarm_created = True
        save()
    else:
        clock(f"manager: the local engine is already a swarm manager on {p.gateway}")
    token = _run(["docker", "swarm", "join-token", "-q", "worker"], "docker swarm join-token").strip()
    for node in p.nodes:
        clock(f"{node.name}: joining the swarm as a worker")
        _run([*_docker(node.host), "swarm", "join", "--token", token, "--advertise-addr", node.address,
              "--listen-addr", f"{node.address}:2377", f"{p.gateway}:2377"], f"{node.name}: docker swarm join")
        st.node(node.index).node_id = _swarm_info(node.host).get("NodeID", "")
        save()
        _run(["docker", "node", "update", "--label-add", f"mqlab.node={node.index}", st.node(node.index).node_id],
             f"labelling {node.name}")
    _wait_ready(st)
    clock("every node Ready on the manager")

    _load_images(p, st, tags, skipped, clock)


def _wait_engine(node: Node, pid: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise RigError(f"{node.name}: dockerd exited: {_last_line(node.log)}")
        if _ok([*_docker(node.host), "version", "--format", "{{.Server.Version}}"], timeout=5):
            return
        time.sleep(0.3)
    raise RigError(f"{node.name}: dockerd did not answer within {START_TIMEOUT:.0f} s (log {node.log})")


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return "no log"
    return lines[-1][-200:] if lines else "empty log"


def _wait_ready(st: RigState) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    ids = [n.node_id for n in st.nodes]
    while True:
        states = _run(["docker", "node", "inspect", "--format", "{{.Status.State}}", *ids], "docker node inspect")
        waiting = [n.name for n, s in zip(st.nodes, states.split()) if s != "ready"]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise RigError(f"not Ready on the manager within {READY_TIMEOUT:.0f} s: {', '.join(waiting)}")
        time.sleep(0.5)


def _load_images(p: Plan, st: RigState, tags: list[str], skipped: list[str], clock: _Clock) -> None:
    if skipped:
        clock(f"images not on the local engine, not loaded: {', '.join(skipped)}")
    if not tags:
        clock("images: none to load")
        return
    archive = DATA_DIR / "images.tar"
    clock(f"images: docker save of {len(tags)} image(s)")
    started = time.monotonic()
    _run(["docker", "save", "-o", str(archive), *tags], "docker save", timeout=900)
    size = archive.stat().st_size
    clock(f"images: {size / 1e6:,.0f} MB saved in {time.monotonic() - started:.1f} s")
    try:
        for i, node in enumerate(p.nodes, 1):
            started = time.monotonic()
            clock(f"{node.name} ({i}/{p.count}): docker load, {size / 1e6:,.0f} MB")
            _run([*_docker(node.host), "load", "-q", "-i", str(archive)], f"{node.name}: docker load", timeout=900)
            st.node(node.index).images = [t for t in tags if _ok([*_docker(node.host), "image", "inspect", t], 20)]
            rig_state.save(STATE_FILE, st)
            clock(f"{node.name}: {len(st.node(node.index).images)} image(s) loaded in "
                  f"{time.monotonic() - started:.1f} s")
    finally:
        archive.unlink(missing_ok=True)


# --------------------------------------------------------------------------- down


def down(echo: Echo) -> bool:
    """Undo everything the rig made; False when there was no rig."""
    st = rig_state.load(STATE_FILE)
    if st is None:
        leftovers = [what for what, there in ((f"bridge {BRIDGE}", Path(f"/sys/class/net/{BRIDGE}").exists()),
                                              (str(RUN_DIR), RUN_DIR.exists()), (str(DATA_DIR), DATA_DIR.exists()))
                     if there]
        if leftovers:
            raise LabError(f"no rig state ({STATE_FILE}) but {', '.join(leftovers)} exist: remove them by hand")
        return False
    if os.geteuid() != 0:
        raise UsageError("hosts down needs root, as hosts up did: run it as root")
    clock = _Clock(echo)
    _teardown(st, clock)
    clock("the rig is down")
    return True


def _teardown(st: RigState, clock: _Clock) -> None:
    """Undo what ``st`` records, each step whatever happened to the others; one RigError at the end
    listing what could not be undone (the state file is then kept, for another `hosts down`)."""
    failed: list[str] = []
    p = Plan(rig_plan.parse_subnet(st.subnet), st.count)
    nodes = {n.index: n for n in p.nodes}
    for ns in reversed(st.nodes):
        node = nodes[ns.index]
        if ns.node_id and ns.pid and _is_node_engine(ns.pid, node) and _alive(ns.pid):
            clock(f"{ns.name}: leaving the swarm")
            if not _ok([*_docker(node.host), "swarm", "leave", "--force"], timeout=30):
                clock(f"{ns.name}: swarm leave failed; removing it from the manager anyway")
    manager = _manager_info()
    if manager.get("LocalNodeState") == "active":
        for ns in st.nodes:
            if ns.node_id and not _ok(["docker", "node", "rm", "--force", ns.node_id], timeout=30):
                # Already gone (a node that never finished joining) is no failure.
                if _ok(["docker", "node", "inspect", ns.node_id], timeout=20):
                    failed.append(f"swarm node {ns.name}")
    engines = [(pid, nodes[ns.index]) for ns in st.nodes for pid in (ns.pid, ns.dns_pid) if pid]
    running = [str(pid) for pid, node in engines if _is_node_engine(pid, node) and _alive(pid)]
    if running:
        clock(f"stopping the nodes' dockerd (pid {', '.join(running)})")
    alive = _stop(engines)
    for ns in reversed(st.nodes):
        node = nodes[ns.index]
        still = [pid for pid in (ns.pid, ns.dns_pid) if pid and pid in alive]
        if still:
            failed.append(f"{ns.name}: pid {', '.join(map(str, still))} still running")
            continue
        lingering = _clear_leftovers(node)
        if lingering:
            failed.append(f"{ns.name}: processes {', '.join(map(str, lingering))} still running")
            continue
        dirs = [node.run_dir, DATA_DIR / node.name]
        stuck = _unmount(dirs)
        if stuck:
            failed.append(f"mounts {', '.join(stuck)}")
            continue
        for path in dirs:
            shutil.rmtree(path, ignore_errors=True)
            if path.exists():
                failed.append(f"directory {path}")
        if Path(node.netns_path).exists() and not _ok(["ip", "netns", "del", node.name]):
            failed.append(f"namespace {node.name}")
        if Path(f"/sys/class/net/{node.veth}").exists() and not _ok(["ip", "link", "del", node.veth]):
            failed.append(f"veth {node.veth}")
    if st.bridge and Path(f"/sys/class/net/{st.bridge}").exists():
        clock(f"bridge {st.bridge}: removing")
        if not _ok(["ip", "link", "del", st.bridge]):
            failed.append(f"bridge {st.bridge}")
    if st.swarm_created and manager.get("LocalNodeState") == "active":
        clock("manager: leaving the swarm the rig made")
        if not _ok(["docker", "swarm", "leave", "--force"], timeout=60):
            failed.append("the manager's swarm")
    if not st.gwbridge_existed:
        _remove_unused_gwbridge()
    if failed:
        rig_state.save(STATE_FILE, st)
        raise RigError(f"could not undo: {'; '.join(failed)}; run `invoke hosts down` again, or undo by hand")
    (DATA_DIR / "images.tar").unlink(missing_ok=True)
    STATE_FILE.unlink(missing_ok=True)
    for path in (RUN_DIR, DATA_DIR):
        try:
            path.rmdir()
        except (FileNotFoundError, OSError):
            pass


def _manager_info() -> dict:
    try:
        return _swarm_info()
    except RigError:
        return {}


def _remove_unused_gwbridge() -> None:
    """docker_gwbridge is made on the local engine by the first container on an overlay network;
    the rig removes it when it was not there before and nothing uses it now."""
    try:
        attached = _run(["docker", "network", "inspect", GWBRIDGE, "--format", "{{len .Containers}}"],
                         "docker network inspect", timeout=20).strip()
    except RigError:
        return
    if attached == "0":
        _ok(["docker", "network", "rm", GWBRIDGE], timeout=30)


# --------------------------------------------------------------------------- status


def status() -> str | None:
    """The nodes, their addresses, engines, swarm state and images; None when there is no rig."""
    st = rig_state.load(STATE_FILE)
    if st is None:
        return None
    p = Plan(rig_plan.parse_subnet(st.subnet), st.count)
    nodes = {n.index: n for n in p.nodes}
    states = {}
    ids = [n.node_id for n in st.nodes if n.node_id]
    if ids:
        try:
            out = _run(["docker", "node", "inspect", "--format", "{{.ID}} {{.Status.State}} {{.Spec.Availability}}",
                        *ids], "docker node inspect", timeout=20)
            states = {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines() if line.strip()}
        except RigError as exc:
            states = {i: str(exc)[:40] for i in ids}
    rows = []
    for ns in st.nodes:
        node = nodes[ns.index]
        engine = "running" if ns.pid and _is_node_engine(ns.pid, node) and _alive(ns.pid) else "not running"
        images = "-"
        if engine == "running":
            try:
                here = set(_run([*_docker(node.host), "images", "--format", "{{.Repository}}:{{.Tag}}"],
                                f"{ns.name}: docker images", timeout=20).split())
                images = f"{len([t for t in ns.images if t in here])}/{len(ns.images)}"
            except RigError:
                images = "?"
        rows.append([ns.name, ns.address, f"{engine} (pid {ns.pid})" if ns.pid else "not started",
                     states.get(ns.node_id, "not joined"), images, node.host])
    head = (f"rig: {st.count} worker node(s) on {st.bridge or BRIDGE} {st.subnet}, manager: the local engine at "
            f"{st.gateway} ({'swarm made by the rig' if st.swarm_created else 'swarm it was already in'})"
            + ("" if st.complete else "; `hosts up` did not finish: run `invoke hosts down`"))
    table = render(["node", "address", "engine", "swarm", "images", "docker -H"], rows)
    try:
        node_ls = _run(["docker", "node", "ls"], "docker node ls", timeout=20).rstrip()
    except RigError as exc:
        node_ls = str(exc)
    return f"{head}\n{table}\n\n{node_ls}"


def set_link(node_name: str, up: bool) -> str:
    """Take the link of one of the rig's nodes down (the whole machine cut off from the others:
    its engine, its brokers and its clients) or up again; the link's name."""
    st = rig_state.load(STATE_FILE)
    node = next((n for n in (st.nodes if st else []) if n.name == node_name and n.veth), None)
    if node is None:
        raise UsageError(f"{node_name} is not a node of the local rig (`invoke hosts status`): isolate-host takes "
                         "a machine's link down, which the lab does only on the rig it made")
    _run(["ip", "link", "set", node.veth, "up" if up else "down"], f"link {node.veth} {'up' if up else 'down'}")
    return node.veth
