"""The bare client (bare.py): the clients configured as the adapters configure them, through public APIs."""

from __future__ import annotations

import types

import confluent_kafka
import confluent_kafka.admin
import kafka
import kafka.admin
import pika
import pika.exceptions
import pytest

from mqlab_services import bare
from mqlab_services.adapters import kafka as kafka_adapter
from mqlab_services.adapters import kafka_bare, kafka_confluent, kafka_confluent_bare, rabbitmq_bare, redis_bare
from mqlab_services.settings import Settings


def kafka_settings(mode: str, client: str) -> Settings:
    # A URL with a scheme and a space: both loops must read it as the adapters do.
    return Settings.from_env({"MQLAB_BROKER": "kafka", "MQLAB_MODE": mode, "MQLAB_KAFKA_CLIENT": client,
                              "MQLAB_URL": "kafka://k1:9092, k2:9092", "MQLAB_BATCH": "50"}, hostname="svc-1")


class _Client:
    """A client of any kind that records how it was made; every call answers ``{}``."""

    made: list

    def __init__(self, *args, **kwargs):
        self.made.append((type(self).__name__, args, kwargs))

    def __getattr__(self, name):
        return lambda *args, **kwargs: {}


def fake_clients(monkeypatch, *targets) -> list:
    """Replace each (module, class name) by a recording _Client; returns the shared record."""
    made: list = []
    for module, name in targets:
        monkeypatch.setattr(module, name, type(name, (_Client,), {"made": made}))
    return made


def configs(made: list, name: str) -> list:
    return [(args, kwargs) for kind, args, kwargs in made if kind == name]


def without(key: str, config: dict) -> dict:
    return {k: v for k, v in config.items() if k != key}


@pytest.mark.parametrize("mode", bare.MODES["kafka"])
def test_the_bare_kafka_python_loops_configure_their_clients_as_the_adapter_does(monkeypatch, mode):
    s = kafka_settings(mode, "kafka-python")
    made = fake_clients(monkeypatch, (kafka, "KafkaProducer"), (kafka, "KafkaConsumer"), (kafka, "KafkaAdminClient"),
                        (kafka.admin, "KafkaAdminClient"), (kafka_adapter, "KafkaProducer"),
                        (kafka_adapter, "KafkaConsumer"))
    kafka_bare.produce(s, b"x", lambda: False, lambda n: None)
    kafka_bare.consume(s, lambda: False, lambda n: None, lambda: None)
    [(_, bare_producer)], [(topics, bare_consumer)] = configs(made, "KafkaProducer"), configs(made, "KafkaConsumer")
    [(_, admin)] = configs(made, "KafkaAdminClient")
    made.clear()
    adapter = kafka_adapter.KafkaAdapter(s)
    adapter.publish([])
    adapter.consume(lambda batch: None, lambda: False)
    assert [bare_producer] == [kwargs for _args, kwargs in configs(made, "KafkaProducer")]
    assert [bare_consumer] == [kwargs for _args, kwargs in configs(made, "KafkaConsumer")]
    assert bare_producer["acks"] == ("all" if s.safe else 1) and topics == (s.topic,)
    assert bare_producer["bootstrap_servers"] == admin["bootstrap_servers"] == ["k1:9092", "k2:9092"]


@pytest.mark.parametrize("mode", bare.MODES["kafka"])
def test_the_bare_confluent_kafka_loops_configure_their_clients_as_the_adapter_does(monkeypatch, mode):
    s = kafka_settings(mode, "confluent-kafka")
    made = fake_clients(monkeypatch, (confluent_kafka, "Producer"), (confluent_kafka, "Consumer"),
                        (confluent_kafka.admin, "AdminClient"), (kafka_confluent, "Producer"),
                        (kafka_confluent, "Consumer"))
    kafka_confluent_bare.produce(s, b"x", lambda: False, lambda n: None)
    kafka_confluent_bare.consume(s, lambda: False, lambda n: None, lambda: None)
    [((bare_producer,), _)], [((bare_consumer,), _)] = configs(made, "Producer"), configs(made, "Consumer")
    [((admin,), _)] = configs(made, "AdminClient")
    made.clear()
    adapter = kafka_confluent.ConfluentKafkaAdapter(s)
    adapter.publish([])
    adapter.consume(lambda batch: None, lambda: False)
    # The adapter adds only its error callback.
    assert [bare_producer] == [without("error_cb", args[0]) for args, _kw in configs(made, "Producer")]
    assert [bare_consumer] == [without("error_cb", args[0]) for args, _kw in configs(made, "Consumer")]
    assert admin == kafka_confluent.admin_config(s)
    assert bare_producer["acks"] == ("all" if s.safe else 1)
    assert bare_producer["bootstrap.servers"] == admin["bootstrap.servers"] == "k1:9092,k2:9092"


# --------------------------------------------------------------------------- RabbitMQ: public pika API


class _IOLoop:
    def __init__(self):
        self.calls: list = []
        self.running = False

    def later(self, call) -> None:
        self.calls.append(call)

    def start(self) -> None:
        self.running = True
        while self.running and self.calls:
            self.calls.pop(0)()

    def stop(self) -> None:
        self.running = False


class _Broker:
    """pika's SelectConnection as far as a publisher with confirms sees it; ``confirm(tag)``
    answers each publish with None (later, by a multiple ack), "ack", "ack+" (multiple) or "nack"."""

    def __init__(self, confirm=lambda tag: "ack", close_channel=None):
        self.confirm, self.close_channel = confirm, close_channel
        self.declared, self.published, self.closed = [], [], False
        self.confirming = False

    def connection(self, parameters, on_open_callback, on_open_error_callback, on_close_callback):
        self.ioloop = _IOLoop()
        self.on_close, self.is_closing, self.is_closed = on_close_callback, False, False
        self.ioloop.later(lambda: on_open_callback(self))
        return self

    def channel(self, on_open_callback):
        self.ioloop.later(lambda: on_open_callback(self))

    def add_on_close_callback(self, callback):
        self.on_channel_close = callback

    def queue_declare(self, queue, durable=False, callback=None):
        self.declared.append((queue, durable))
        if self.close_channel is not None:
            self.ioloop.later(lambda: self.on_channel_close(self, self.close_channel))
        else:
            self.ioloop.later(lambda: callback(None))

    def confirm_delivery(self, ack_nack_callback, callback=None):
        self.on_confirm = ack_nack_callback
        self.ioloop.later(lambda: (setattr(self, "confirming", True), callback(None)))

    def basic_publish(self, exchange, routing_key, body, properties=None, mandatory=False):
        self.published.append((exchange, routing_key, body, properties.delivery_mode))
        tag, answer = len(self.published), self.confirm(len(self.published))
        if answer is not None:
            method = (pika.spec.Basic.Nack if answer == "nack" else pika.spec.Basic.Ack)(tag, answer == "ack+")
            self.ioloop.later(lambda: self.on_confirm(types.SimpleNamespace(method=method)))

    def close(self):
        self.is_closing = self.closed = True
        self.ioloop.later(lambda: self.on_close(self, pika.exceptions.ConnectionClosedByClient(200, "Normal shutdown")))


def _refuse_blocking(*_args, **_kwargs):
    raise AssertionError("the safe bare producer is pika's asynchronous publisher, not BlockingConnection")


def test_the_bare_rabbitmq_producer_keeps_a_batch_in_flight_with_pikas_public_asynchronous_api(monkeypatch):
    # Tags 1 and 2 are confirmed by the multiple ack of 3; 4 is refused; the second batch one by one.
    broker = _Broker(confirm=lambda tag: {1: None, 2: None, 3: "ack+", 4: "nack"}.get(tag, "ack"))
    monkeypatch.setattr(pika, "SelectConnection", broker.connection)
    monkeypatch.setattr(pika, "BlockingConnection", _refuse_blocking)
    s = Settings.from_env({"MQLAB_BROKER": "rabbitmq", "MQLAB_BATCH": "4"}, hostname="svc-1")
    rounds, acked = iter([True, True, False]), []

    def more() -> bool:
        assert broker.confirming  # connected, with confirms on, before the trial starts
        return next(rounds)

    rabbitmq_bare.produce(s, b"x", more, acked.append)
    assert acked == [3, 4] and broker.closed and broker.declared == [(s.queue, True)]
    assert broker.published == [("", s.queue, b"x", pika.DeliveryMode.Persistent.value)] * 8


def test_the_bare_rabbitmq_producer_raises_what_closed_its_channel(monkeypatch):
    refused = pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED - inequivalent arg")
    broker = _Broker(close_channel=refused)
    monkeypatch.setattr(pika, "SelectConnection", broker.connection)
    monkeypatch.setattr(pika, "BlockingConnection", _refuse_blocking)
    s = Settings.from_env({"MQLAB_BROKER": "rabbitmq"}, hostname="svc-1")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="PRECONDITION_FAILED"):
        rabbitmq_bare.produce(s, b"x", lambda: True, lambda n: None)
    assert broker.closed and broker.published == []


def test_the_bare_client_uses_no_private_client_attribute():
    import inspect

    for module in (bare, rabbitmq_bare, redis_bare, kafka_bare, kafka_confluent_bare):
        assert "._impl" not in inspect.getsource(module)
