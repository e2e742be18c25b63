"""The swarm's plumbing that needs no swarm: the gateway's forwarder (a real TCP round trip
on loopback) and the reading of a node's receipts out of a tar stream."""

import asyncio
import io
import socket
import tarfile

import pytest
from mqlab_services import forward

from mqlab.errors import UsageError
from mqlab.hosts import engines


def test_a_route_is_parsed_and_a_bad_one_refused():
    assert forward.parse("9092=kafka-1:19092") == (9092, "kafka-1", 19092)
    for bad in ("9092", "x=kafka:1", "9092=kafka", "9092=:1"):
        with pytest.raises(Exception):
            forward.parse(bad)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_forwarder_carries_bytes_both_ways():
    async def scenario() -> bytes:
        async def echo(reader, writer):
            writer.write(b"echo:" + await reader.read(100))
            await writer.drain()
            writer.close()

        upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
        up_port = upstream.sockets[0].getsockname()[1]
        listen = _free_port()
        task = asyncio.create_task(forward.serve([(listen, "127.0.0.1", up_port)]))
        for _ in range(50):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", listen)
                break
            except OSError:
                await asyncio.sleep(0.05)
        writer.write(b"hello")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(100), 5)
        task.cancel()
        upstream.close()
        return answer

    assert asyncio.run(scenario()) == b"echo:hello"


def _tar(files: dict[str, bytes]) -> list[bytes]:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    raw = data.getvalue()
    return [raw[:700], raw[700:]]  # the engine streams it in chunks


def test_only_the_runs_own_files_are_taken_from_a_node(tmp_path):
    chunks = _tar({"run1/recv-abc.tsv": b"a\tb\n", "run1/status-abc.json": b"{}",
                   "run2/recv-abc.tsv": b"other run", "run1/sub/deeper.tsv": b"no", "../escape": b"no"})
    assert engines._extract(chunks, "run1", tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recv-abc.tsv", "status-abc.json"]
    assert (tmp_path / "recv-abc.tsv").read_bytes() == b"a\tb\n"


def test_engine_addresses_of_a_real_swarm_are_name_address_pairs():
    assert engines.parse_engines(" n2=ssh://lab@n2, n3=tcp://10.0.0.3:2376 ,") == {
        "n2": "ssh://lab@n2", "n3": "tcp://10.0.0.3:2376"}
    for bad in ("n2", "n2=n2-host", "=ssh://x"):
        with pytest.raises(UsageError):
            engines.parse_engines(bad)


def test_a_node_without_an_engine_address_is_named():
    node = engines.SwarmNode("far-away", "ready", "")
    with pytest.raises(Exception, match="swarm node far-away: no address for its engine"):
        engines.connect(node)
