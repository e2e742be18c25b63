"""A DNS server that knows no name: each node of the local rig runs one, on the node's own
address, as its containers' upstream DNS server (``dockerd --dns``).

Docker's DNS answers the names of the swarm's services itself and asks its upstream servers
for any other name. The rig's nodes have no way off the machine, so an upstream server out
there is never answered, and the lookup of a name Docker does not know (a swarm task that was
just killed: its name is gone with it) took 20 s to fail. A Redis Sentinel froze that long
looking up a killed primary and went into TILT mode, so it never failed over. This one answers
every question at once with "refused", and the lookup fails in milliseconds, as on a machine
whose resolver answers.

    python -m mqlab.hosts.dnsstub 10.213.0.11     # in the node's network namespace
"""

from __future__ import annotations

import socket
import sys

REFUSED = 5  # the RCODE


def answer(query: bytes) -> bytes | None:
    """The reply to one DNS query: its id and question, QR set, RCODE refused; None if it is not one."""
    if len(query) < 12 or query[2] & 0x80:  # too short, or itself a response
        return None
    flags = bytes([0x80 | (query[2] & 0x79), (query[3] & 0x10) | REFUSED])  # QR, opcode, RD; RA off; rcode
    return query[:2] + flags + query[4:6] + b"\0\0\0\0\0\0" + query[12:]


def serve(address: str, port: int = 53) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((address, port))
    print(f"dnsstub: refusing every question on {address}:{port}", flush=True)
    while True:
        query, peer = udp.recvfrom(4096)
        reply = answer(query)
        if reply:
            udp.sendto(reply, peer)


if __name__ == "__main__":
    serve(sys.argv[1])
