"""What the host side asks of each broker: the interface of ``mqlab.brokers``.

The host reaches a broker through its published loopback ports (``HOST``), with the
same client library the services use, and by the names the services use (queues,
streams, topics, groups: :func:`names`). Each broker module implements
:class:`Broker`; nothing outside ``mqlab.brokers`` branches on a broker's name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from mqlab_services.envelope import decode
from mqlab_services.settings import Settings

from ..errors import UsageError
from ..stacks import STACKS

if TYPE_CHECKING:  # only for annotations: these modules import mqlab.brokers
    from ..config import LabConfig
    from .native import NativeResult
    from ..stacks import Stack

HOST = "127.0.0.1"
TIMEOUT_S = 5


def names(broker: str, mode: str = "") -> Settings:
    """The services' default settings for ``broker`` (in ``mode``): the names they use on it."""
    return Settings.from_env({"MQLAB_BROKER": broker, "MQLAB_MODE": mode}, hostname="host")


@dataclass(frozen=True)
class Dead:
    """One message in a dead-letter destination."""

    message_id: str
    attempts: str
    reason: str


def logged_id(body: bytes) -> str:
    """The lab's message id of a message read back from a log (the envelope's fast path first)."""
    found = decode(body) if isinstance(body, bytes) else None
    return found.id if found else envelope_id(body)


def envelope_id(body: bytes | str) -> str:
    """The lab's message id in ``body``, or a note that it is not an envelope."""
    try:
        data = json.loads(body)
        return str(data.get("id", "?")) if isinstance(data, dict) else "(not an envelope)"
    except (ValueError, TypeError, UnicodeDecodeError):
        return "(not an envelope)"


def text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


@dataclass(frozen=True)
class ConsumerView:
    """What the host knows of one consumer container."""

    container: str  # compose container name
    name: str  # the service's MQLAB_NAME (its hostname)
    assignment: str  # what its status file says it reads: queue, group or partitions


@dataclass
class Backlog:
    """Messages waiting at the broker: per queue, group or partition, and per consumer (text)."""

    waiting: dict[str, int] = field(default_factory=dict)
    per_consumer: dict[str, str] = field(default_factory=dict)  # container -> "1,234 ready in q"

    def by_assignment(self, consumers: list[ConsumerView], template: str) -> "Backlog":
        """Give each consumer the count of what it is assigned (a queue, a group), as
        ``template.format(count=..., name=...)``; returns itself."""
        for c in consumers:
            if c.assignment in self.waiting:
                self.per_consumer[c.container] = template.format(count=self.waiting[c.assignment], name=c.assignment)
        return self


@dataclass
class Topology:
    """Who leads and who follows in a stack, as the broker says now (``invoke stats``)."""

    rows: list[tuple[str, str]] = field(default_factory=list)  # (what, its state), for a table
    leader: str = ""  # the compose service of the leading node (``--node leader``)
    clients: dict[str, str] = field(default_factory=dict)  # client name (MQLAB_NAME) -> node


@dataclass(frozen=True)
class NativeRun:
    """What one trial of a broker's own benchmark tool needs (see ``mqlab.bench.plan``)."""

    config: "LabConfig"
    stack: "Stack"
    size: int
    seconds: float  # warm-up + duration
    warmup: float
    duration: float
    rate: float | None  # None: as fast as it goes
    producers: int
    consumers: int
    batch: int  # the services' MQLAB_BATCH: confirm window, pipeline
    prefetch: int  # the services' MQLAB_PREFETCH
    trial_id: str
    names: dict[str, str]  # the trial's own queue, stream, topic (``bench.bench_names``)
    tool: Callable[..., str]  # tool(*argv, seconds=S) runs the tool's compose service, returns stdout
    delete: Callable[[dict[str, str]], None]  # removes what a run made on the broker


@dataclass(frozen=True)
class Peer:
    """A node's peer during a node fault (another broker node, or a sentinel), as a broker
    module may question it: its log since the fault began, and a command run in its container
    (``run(argv, user)`` returns what it printed). The faults make these; the brokers read them."""

    service: str
    logs: Callable[[], str]
    run: Callable[..., str]


class Broker:
    """One broker, as the host side sees it. Subclasses set the names and implement the calls.

    ``brokers.of(stack)`` gives one bound to a stack (``stack``): it reaches the broker
    through that stack's nodes; ``brokers.get(name)`` one bound to the single-node stack.
    """

    name = ""
    stack: "Stack | None" = None
    tool_label = ""  # the benchmark tool's name in reports
    tool_latency = "e2e"  # what the tool's latency is: "e2e", "ack" or "request"
    tool_service = ""  # the compose service (profile `bench`) that runs it
    tool_image_key = ""  # its image's key in .env, where it is not the broker's own image

    @property
    def bound(self) -> "Stack":
        return self.stack or STACKS[self.name]

    def node_ports(self, config: "LabConfig") -> list[tuple[str, int]]:
        """(compose service, host port) of each node of the stack, in order."""
        return [(n.service, config.integer(n.port_key, n.port, 1, 65535)) for n in self.bound.nodes]

    def topology(self, config: "LabConfig", mode: str, clients: list[ConsumerView] = ()) -> Topology:
        """Leaders, followers and replicas now, and which node each of ``clients`` (producers
        have no assignment) is connected to, where the broker can tell."""
        raise NotImplementedError

    def in_sync(self, config: "LabConfig", mode: str) -> tuple[bool, str]:
        """Whether every replica is back in step (after a node fault), and what the broker says."""
        return True, "one node"

    #: What the final read goes by, where the broker keeps a log it can be read back from by
    #: position ("" where it keeps none: a queue forgets what it delivered).
    log_position = ""

    def no_read_back(self, mode: str) -> str:
        """Why the final read cannot read ``mode`` back by position (where ``log_position`` is "")."""
        return f"a {self.name} queue forgets what it delivered: no log to read back"

    def read_log(self, config: "LabConfig", mode: str, positions: list[str]) -> dict[str, str]:
        """The final read: for each position a producer recorded (``Acked.pos``), the id of the
        message that is there in the broker's log now; positions with nothing there are left out.
        Read from where the broker serves its log now (the leader, the primary)."""
        raise NotImplementedError(f"{self.name} keeps no log to read back by position")

    def replay(self, config: "LabConfig", mode: str, start: tuple[str, object], count: int) -> list[tuple[str, bytes]]:
        """Read the mode's log again from ``start`` without disturbing any consumer: up to ``count``
        (position, message) pairs, in the log's order. ``start`` is ("beginning", None),
        ("offset", N), ("entry", "<ms>-<seq>") or ("time", ns); a broker refuses the kinds it has
        no use for, and a queue, which forgets what it delivered, refuses all."""
        raise UsageError(f"{self.name} in mode {mode} keeps no log to read again")

    def saw_down(self, config: "LabConfig", node: str, peers: list[Peer]) -> str:
        """What the peers of ``node`` (its compose service) said of it being out of reach since
        the fault began, in the broker's own words; "" while they have said nothing."""
        return ""

    def node_service(self, number: int) -> str:
        """The compose service of node ``number`` (1-based)."""
        nodes = self.bound.nodes
        if not 1 <= number <= len(nodes):
            raise UsageError(f"--node must be from 1 to {len(nodes)} or leader for {self.bound.name}, got {number}")
        return nodes[number - 1].service

    def check_expose(self, config: "LabConfig") -> None:
        """Raise a UsageError when the stack must not be published beyond loopback."""
        raise NotImplementedError

    def consumers_seen(self, config: "LabConfig", mode: str) -> int | None:
        """How many consumers the broker itself sees in ``mode``; None when it is not asked."""
        return None

    def backlog(self, config: "LabConfig", mode: str, consumers: list[ConsumerView]) -> Backlog:
        raise NotImplementedError

    def read_dlq(self, config: "LabConfig", name: str, limit: int) -> tuple[int, list[Dead]]:
        """How many messages ``name`` holds, and up to ``limit`` of them, without consuming any."""
        raise NotImplementedError

    def delete(self, config: "LabConfig", made: dict[str, str]) -> None:
        """Remove the queues, streams, topics and exchanges named in ``made`` (bench cleanup)."""
        raise NotImplementedError

    def native_trial(self, run: NativeRun) -> "NativeResult":
        """Run the broker's own benchmark tool once, with the lab's size and safety settings."""
        raise NotImplementedError
