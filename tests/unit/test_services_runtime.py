"""Shared service plumbing: back-off, redaction, one-line errors, bounded connects."""

from __future__ import annotations

import itertools

import pytest

from mqlab_services.runtime import Every, GaveUp, Stopper, backoff, connect, one_line, redact
from mqlab_services.settings import Settings


def test_backoff_doubles_up_to_the_cap():
    assert list(itertools.islice(backoff(0.5, 5.0), 6)) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize("url, shown", [
    ("amqp://guest:guest@rabbitmq:5672/%2F", "amqp://guest:***@rabbitmq:5672/%2F"),
    ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
    ("redis://redis:6379/0", "redis://redis:6379/0"),
    ("kafka:19092", "kafka:19092"),
])
def test_redact_hides_passwords(url, shown):
    assert redact(url) == shown


def test_one_line_names_the_error_and_flattens_it():
    assert one_line(ConnectionError("refused\n  twice")) == "ConnectionError: refused twice"
    assert one_line(KeyError()) == "KeyError"

    class Quiet(Exception):
        def __str__(self):
            return ""

    assert one_line(Quiet(OSError(111, "Connection refused"))) == "Quiet: ConnectionRefusedError: [Errno 111] Connection refused"
    assert one_line(Quiet(Quiet(ConnectionRefusedError(111, "refused")))) == \
        "Quiet: ConnectionRefusedError: [Errno 111] refused"  # the name once


class _Flaky:
    errors = (ConnectionError,)

    def __init__(self, failures):
        self.failures, self.attempts, self.closed = failures, 0, 0

    def connect(self):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("refused")

    def ping(self):
        return 0.0

    def close(self):
        self.closed += 1


def _settings(**env):
    return Settings.from_env({"MQLAB_BROKER": "redis", "MQLAB_BACKOFF_MAX": "0.01",
                              **{f"MQLAB_{k.upper()}": v for k, v in env.items()}}, hostname="h")


def test_bounded_connect_gives_up_after_the_attempts(monkeypatch):
    monkeypatch.setattr("mqlab_services.runtime.backoff", lambda maximum: itertools.repeat(0.0))
    adapter = _Flaky(failures=100)
    with pytest.raises(GaveUp, match=r"after 4 attempts .*ConnectionError: refused"):
        connect(adapter, _settings(connect_attempts="4"), Stopper(), bounded=True)
    assert adapter.attempts == 4 and adapter.closed == 4


def test_unbounded_connect_keeps_trying(monkeypatch):
    monkeypatch.setattr("mqlab_services.runtime.backoff", lambda maximum: itertools.repeat(0.0))
    adapter = _Flaky(failures=9)
    assert connect(adapter, _settings(connect_attempts="2"), Stopper(), bounded=False) is True
    assert adapter.attempts == 10


def test_connect_returns_false_when_stopping():
    stopper = Stopper()
    stopper.stopping = True
    adapter = _Flaky(failures=0)
    assert connect(adapter, _settings(), stopper, bounded=True) is False
    assert adapter.attempts == 0


def test_every_fires_once_per_interval():
    now = [0.0]
    every = Every(5, clock=lambda: now[0])
    fired = []
    for t in (1, 4.9, 5.0, 6, 10.1):
        now[0] = t
        fired.append(every.due())
    assert fired == [False, False, True, False, True]
