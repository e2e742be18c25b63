"""Service settings: one frozen object, built once at start-up from ``MQLAB_*`` variables.

Nothing here reads the environment at import time; call :meth:`Settings.from_env`
with a mapping (``os.environ`` in the services, a plain dict in tests).

=========================  ==========================================  =====================================
variable                   meaning                                     default
=========================  ==========================================  =====================================
MQLAB_BROKER               rabbitmq, redis or kafka                    (required)
MQLAB_URL                  broker address: RabbitMQ amqp:// URLs and   per broker, on localhost
                           Kafka host:port, comma-separated for a
                           cluster; Redis redis:// or, through
                           Sentinel, redis+sentinel://host:port,
                           host:port/<primary name>
MQLAB_KAFKA_CLIENT         Kafka client library: kafka-python or       kafka-python
                           confluent-kafka (librdkafka); ignored for
                           the other brokers
MQLAB_MODE                 delivery mode (see ``MODES``; empty means   the broker's first mode
                           the default)
MQLAB_LEDGER_DIR           where receipt files go                      /ledger
MQLAB_NAME                 this service's name in receipts and logs    the container hostname
MQLAB_RATE                 steady producer rate, messages/s            2
MQLAB_QUEUE                RabbitMQ queue (work, quorum, transient,    mailbox.durable;
                           autoack)                                    mailbox.quorum (quorum);
                                                                       mailbox.transient (transient)
MQLAB_QUEUE_TYPE           RabbitMQ durable shared queues: classic     classic (quorum in mode
                           or quorum (work, topic, autoack)            quorum)
MQLAB_EXCHANGE             RabbitMQ exchange (fanout, topic)           mailbox.fanout / mailbox.topic
MQLAB_ROUTING_KEYS         RabbitMQ topic: producer routing keys,      orders.eu,orders.us,audit.eu
                           comma-separated, used in turn by seq
MQLAB_BINDING              RabbitMQ topic: consumer binding pattern    #
MQLAB_STREAM               Redis stream                                chatroom.stream
MQLAB_CHANNEL              Redis pub/sub channel                       chatroom
MQLAB_STREAM_PORT          RabbitMQ stream mode: the stream protocol   5552
MQLAB_TOPIC                Kafka topic                                 datascience
MQLAB_OUTPUT               Kafka txn: the stage's output topic         datascience.out
MQLAB_PARTITIONS           partitions when the topic is created        3
MQLAB_REPLICATION          replication factor when it is created       1
MQLAB_GROUP                Redis and Kafka consumer group (fan-out     mqlab
                           modes: <group>.<name> per subscriber)
MQLAB_KEYS                 Kafka keyed: number of record keys          8
                           (key-0 ... key-<N-1>, by seq)
MQLAB_PREFETCH             RabbitMQ unacked deliveries per consumer    200
MQLAB_BATCH                messages per confirm wait / ack / commit    100
MQLAB_PROCESS_MS           consumers: time a batch's processing takes  0
                           after its receipts are written, before the
                           ack or commit: a crash in it redelivers
MQLAB_WAIT_TIMEOUT         Redis stream-wait: how long WAIT waits for  2
                           a replica, s (then the batch is unacked
                           and sent again)
MQLAB_CLAIM_IDLE           Redis: reclaim entries idle this long, s    30
                           (from consumers that died)
MQLAB_MAX_DELIVERIES       attempts at a message whose processing      3
                           fails (the first included), then it is
                           dead-lettered (see consumer.py)
MQLAB_RETRY_IDLE           Redis: retry a failed entry after this, s   1
MQLAB_DLQ                  dead-letter queue, stream or topic          mailbox.dead; chatroom.stream.dead;
                                                                       datascience.dlq
MQLAB_DLX                  RabbitMQ dead-letter exchange (fanout)      mailbox.dlx
MQLAB_MAX_MESSAGE_BYTES    largest message the producer sends; larger  4194304 (rabbitmq, redis);
                           ones are rejected (Kafka: max_request_size, 1048576 (kafka)
                           confluent-kafka: message.max.bytes)
MQLAB_HEARTBEAT            RabbitMQ heartbeat, s (unless in the URL;   10
                           0 turns heartbeats off)
MQLAB_CONNECT_ATTEMPTS     start-up connection attempts                30
MQLAB_CONNECT_TIMEOUT      start-up connection time budget, s          120
MQLAB_BACKOFF_MAX          longest wait between reconnects, s          10
MQLAB_LOG_EVERY            progress log interval, s                    5
MQLAB_METRICS_PORT         serve Prometheus metrics on this port       (none: not served)
                           (``invoke up --metrics`` sets 9100; see
                           metrics.py)
=========================  ==========================================  =====================================
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from .modes import BROKERS, Mode, default_mode, mode_info, names_of

PREFIX = "MQLAB_"

#: Delivery modes per broker; the first one is the default (the table: ``modes.MODES``).
MODES: dict[str, tuple[str, ...]] = {broker: names_of(broker) for broker in BROKERS}

#: The Python client libraries per broker; the first one is the default. Only Kafka has a
#: choice (MQLAB_KAFKA_CLIENT). Each is (name, distribution it is installed from).
CLIENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "rabbitmq": (("pika", "pika"),),
    "redis": (("redis-py", "redis"),),
    "kafka": (("kafka-python", "kafka-python"), ("confluent-kafka", "confluent-kafka")),
}
KAFKA_CLIENTS = tuple(name for name, _dist in CLIENTS["kafka"])
#: Brokers whose shared queues can be classic or quorum (MQLAB_QUEUE_TYPE). A quorum queue
#: keeps every message: it fits only the durable modes, not a per-subscriber or transient one.
QUEUE_TYPE_BROKERS = ("rabbitmq",)
#: The largest message the producer sends, per broker (MQLAB_MAX_MESSAGE_BYTES): the lab's
#: rabbitmq.conf max_message_size, a lab limit for Redis, and kafka-python's max_request_size.
DEFAULT_MAX_MESSAGE_BYTES = {"rabbitmq": 4 * 1024 * 1024, "redis": 4 * 1024 * 1024, "kafka": 1024 * 1024}

#: RabbitMQ queues of the modes that do not use ``mailbox.durable``.
DEFAULT_QUEUES = {"quorum": "mailbox.quorum", "transient": "mailbox.transient", "stream": "mailbox.stream"}

DEFAULT_URLS = {
    "rabbitmq": "amqp://guest:guest@localhost:5672/%2F",
    "redis": "redis://localhost:6379/0",
    "kafka": "localhost:9092",
}

# Names end up in file names and TSV columns: no separators, no whitespace, no leading dot.
# Used with fullmatch: "$" would also accept a trailing newline.
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class SettingsError(ValueError):
    """A bad ``MQLAB_*`` value; the message is one line and names the variable."""


@dataclass(frozen=True)
class Settings:
    broker: str
    url: str
    mode: str
    kafka_client: str = KAFKA_CLIENTS[0]
    ledger_dir: str = "/ledger"
    name: str = "mqlab"
    rate: float = 2.0
    queue: str = "mailbox.durable"
    queue_type: str = "classic"
    exchange: str = ""
    routing_keys: tuple[str, ...] = ("orders.eu", "orders.us", "audit.eu")
    binding: str = "#"
    stream: str = "chatroom.stream"
    stream_port: int = 5552
    channel: str = "chatroom"
    topic: str = "datascience"
    output: str = "datascience.out"
    partitions: int = 3
    replication: int = 1
    group: str = "mqlab"
    keys: int = 8
    prefetch: int = 200
    batch: int = 100
    process_ms: int = 0
    wait_timeout: float = 2.0
    claim_idle: float = 30.0
    max_deliveries: int = 3
    retry_idle: float = 1.0
    dlq: str = "mailbox.dead"
    dlx: str = "mailbox.dlx"
    max_message_bytes: int = 4 * 1024 * 1024
    heartbeat: int = 10
    connect_attempts: int = 30
    connect_timeout: float = 120.0
    backoff_max: float = 10.0
    log_every: float = 5.0
    metrics_port: int = 0  # 0: no /metrics endpoint

    @functools.cached_property  # read per message: worked out once
    def info(self) -> Mode:
        """This mode's row of the mode table."""
        return mode_info(self.broker, self.mode)

    @functools.cached_property
    def safe(self) -> bool:
        """False for the lossy modes; in the others nothing the broker confirmed is lost."""
        return self.info.safe

    @functools.cached_property
    def consumer_safe(self) -> bool:
        """True where the consumer acks or commits only after processing: in the safe modes, and
        in a mode whose loss is the producer's alone (``leader-ack``)."""
        return self.info.safe or self.info.lossy_at == "producer"

    @functools.cached_property
    def fanout(self) -> bool:
        """True when every subscriber gets every message (its own queue, group or subscription)."""
        return self.info.fanout

    @functools.cached_property
    def subscriber_group(self) -> str:
        """The consumer group of this service: shared, or its own in the fan-out modes."""
        return f"{self.group}.{self.name}" if self.fanout else self.group

    @classmethod
    def from_env(cls, environ: Mapping[str, str], hostname: str | None = None) -> "Settings":
        """Build the settings from ``MQLAB_*`` entries of ``environ``; raise SettingsError on bad values."""
        env = _Reader(environ)
        broker = env.choice("BROKER", tuple(MODES), default=None)
        mode = env.choice("MODE", MODES[broker], default=default_mode(broker).name)
        fields = {
            "broker": broker,
            "url": env.text("URL", DEFAULT_URLS[broker]),
            "mode": mode,
            # Only a broker with a choice of client reads the variable (Kafka).
            "kafka_client": (env.choice("KAFKA_CLIENT", KAFKA_CLIENTS, default=KAFKA_CLIENTS[0])
                             if len(CLIENTS[broker]) > 1 else KAFKA_CLIENTS[0]),
            "ledger_dir": env.text("LEDGER_DIR", cls.ledger_dir),
            "name": env.name("NAME", hostname if hostname is not None else socket.gethostname()),
            "rate": env.number("RATE", cls.rate, positive=True),
            "queue": env.text("QUEUE", DEFAULT_QUEUES.get(mode, cls.queue)),
            "queue_type": ("quorum" if mode == "quorum"
                           else env.choice("QUEUE_TYPE", ("classic", "quorum"), default=cls.queue_type)),
            "exchange": env.text("EXCHANGE", f"mailbox.{mode}" if mode in ("fanout", "topic") else ""),
            "routing_keys": env.words("ROUTING_KEYS", cls.routing_keys),
            "binding": env.text("BINDING", cls.binding),
            "stream": env.text("STREAM", cls.stream),
            "stream_port": env.integer("STREAM_PORT", cls.stream_port, minimum=1),
            "channel": env.text("CHANNEL", cls.channel),
            "topic": env.text("TOPIC", cls.topic),
            "output": env.text("OUTPUT", cls.output),
            "partitions": env.integer("PARTITIONS", cls.partitions, minimum=1),
            "replication": env.integer("REPLICATION", cls.replication, minimum=1),
            "group": env.text("GROUP", cls.group),
            "keys": env.integer("KEYS", cls.keys, minimum=1),
            "prefetch": env.integer("PREFETCH", cls.prefetch, minimum=1),
            "batch": env.integer("BATCH", cls.batch, minimum=1),
            "process_ms": env.integer("PROCESS_MS", cls.process_ms, minimum=0),
            "wait_timeout": env.number("WAIT_TIMEOUT", cls.wait_timeout, positive=True),
            "claim_idle": env.number("CLAIM_IDLE", cls.claim_idle, positive=True),
            "max_deliveries": env.integer("MAX_DELIVERIES", cls.max_deliveries, minimum=1),
            "retry_idle": env.number("RETRY_IDLE", cls.retry_idle, positive=True),
            "dlq": env.text("DLQ", default_mode(broker).dead_letter),
            "dlx": env.text("DLX", cls.dlx),
            "max_message_bytes": env.integer("MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES[broker], minimum=1),
            "heartbeat": env.integer("HEARTBEAT", cls.heartbeat, minimum=0),
            "connect_attempts": env.integer("CONNECT_ATTEMPTS", cls.connect_attempts, minimum=1),
            "connect_timeout": env.number("CONNECT_TIMEOUT", cls.connect_timeout, positive=True),
            "backoff_max": env.number("BACKOFF_MAX", cls.backoff_max, positive=True),
            "log_every": env.number("LOG_EVERY", cls.log_every, positive=True),
            "metrics_port": env.integer("METRICS_PORT", cls.metrics_port, minimum=0),
        }
        if fields["queue_type"] == "quorum" and broker in QUEUE_TYPE_BROKERS and not mode_info(broker, mode).durable:
            raise SettingsError(f"{PREFIX}QUEUE_TYPE=quorum does not fit mode {mode}: it uses per-subscriber "
                                "queues, or transient messages that a quorum queue would keep (use classic)")
        return cls(**fields)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


class _Reader:
    """Typed access to ``MQLAB_*`` values; every error names the variable."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ

    def _raw(self, key: str) -> str | None:
        value = self._environ.get(PREFIX + key)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, key: str, default: str) -> str:
        value = self._raw(key)
        return default if value is None else value

    def words(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A comma-separated list of non-empty words without whitespace."""
        value = self._raw(key)
        if value is None:
            return default
        words = tuple(word.strip() for word in value.split(","))
        if not all(words) or any(len(word.split()) != 1 for word in words):
            raise SettingsError(f"{PREFIX}{key} must be comma-separated words without spaces, got {value!r}")
        return words

    def name(self, key: str, default: str) -> str:
        value = self.text(key, default)
        if not NAME_RE.fullmatch(value):
            raise SettingsError(
                f"{PREFIX}{key} must be letters, digits, '.', '_' or '-' (at most 128), got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None) -> str:
        value = self._raw(key)
        if value is None:
            if default is None:
                raise SettingsError(f"{PREFIX}{key} is not set; use one of: {', '.join(choices)}")
            return default
        value = value.lower()
        if value not in choices:
            raise SettingsError(f"{PREFIX}{key} must be one of: {', '.join(choices)}; got {value!r}")
        return value

    def number(self, key: str, default: float, positive: bool = False) -> float:
        value = self._raw(key)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{PREFIX}{key} must be a number, got {value!r}") from None
        if not math.isfinite(number) or (positive and number <= 0):
            raise SettingsError(f"{PREFIX}{key} must be a positive number, got {value!r}")
        return number

    def integer(self, key: str, default: int, minimum: int) -> int:
        value = self._raw(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{PREFIX}{key} must be a whole number, got {value!r}") from None
        if number < minimum:
            raise SettingsError(f"{PREFIX}{key} must be at least {minimum}, got {value!r}")
        return number
