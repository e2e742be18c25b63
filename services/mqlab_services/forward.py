"""A TCP forwarder: the lab's door into a stack on Docker Swarm.

On Swarm nothing is published (a ``127.0.0.1:`` binding cannot be kept there), so the lab
runs this in a container of its own on the manager, attached to the stack's overlay network,
with each port published on the manager's loopback only. Each ``LISTEN=NAME:PORT`` forwards
connections to the loopback port ``LISTEN`` (inside the container) to ``NAME:PORT`` on the
overlay, looked up afresh for every connection, so a broker node that moved or restarted is
found where it is now. The host side of the lab then reaches a swarm stack on the same
ports as a stack on one engine (``mqlab.hosts.gateway``).

    forward 9092=kafka-1:9092 9093=kafka-2:9092
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

BUFFER = 64 * 1024


def parse(spec: str) -> tuple[int, str, int]:
    """``9092=kafka-1:9092`` -> (9092, "kafka-1", 9092)."""
    listen, _, target = spec.partition("=")
    host, _, port = target.rpartition(":")
    if not (listen.isdigit() and host and port.isdigit()):
        raise argparse.ArgumentTypeError(f"expected LISTEN=NAME:PORT, got {spec!r}")
    return int(listen), host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


def _handler(host: str, port: int):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, asyncio.TimeoutError) as exc:
            print(f"forward: {host}:{port} unreachable: {exc}", file=sys.stderr, flush=True)
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return handle


async def serve(routes: list[tuple[int, str, int]]) -> None:
    servers = [await asyncio.start_server(_handler(host, port), "0.0.0.0", listen) for listen, host, port in routes]
    for listen, host, port in routes:
        print(f"forward: :{listen} -> {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="forward", description=__doc__.split("\n\n")[0])
    parser.add_argument("routes", nargs="+", type=parse, metavar="LISTEN=NAME:PORT",
                        help="a port of this container, and the name and port it forwards to")
    asyncio.run(serve(parser.parse_args(argv).routes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
