"""Status files: content, throttling, atomic replacement and the rate window."""

from __future__ import annotations

import json
import os

import pytest

from mqlab_services import status
from mqlab_services.status import RateWindow, StatusFile


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_file_holds_the_fields_a_name_a_rate_and_a_time(tmp_path):
    clock = Clock()
    sf = StatusFile(str(tmp_path), "c1", {"role": "consumer", "received": 0}, counter="received", clock=clock)
    assert sf.update(subscribed=True, assignment=[0, 2]) is True
    data = json.loads((tmp_path / "_status" / "c1.json").read_text())
    assert data["name"] == "c1" and data["role"] == "consumer"
    assert data["subscribed"] is True and data["assignment"] == [0, 2]
    assert data["rate"] == 0.0 and isinstance(data["updated_ns"], int) and data["updated_ns"] > 1.6e18


def test_writes_are_throttled_to_the_interval_unless_forced(tmp_path):
    clock = Clock()
    sf = StatusFile(str(tmp_path), "p1", {"acked": 0}, counter="acked", clock=clock)
    assert sf.update(acked=1)
    clock.now += 0.3
    assert not sf.update(acked=2)
    assert json.loads(open(sf.path).read())["acked"] == 1
    assert sf.update(force=True, acked=3)
    clock.now += 1.0
    assert sf.update(acked=4)
    assert sf.writes == 3 and json.loads(open(sf.path).read())["acked"] == 4


def test_the_file_is_replaced_atomically_and_no_temporary_file_is_left(tmp_path, monkeypatch):
    sf = StatusFile(str(tmp_path), "c1", {"received": 0}, counter="received")
    sf.update()
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        # The new content is complete in the temporary file before it takes the name.
        replaced.append((os.path.basename(src), json.loads(open(src).read())["received"]))
        real_replace(src, dst)

    monkeypatch.setattr(status.os, "replace", spy)
    sf.update(force=True, received=7)
    assert replaced == [(f".c1.json.{os.getpid()}.tmp", 7)]
    assert sorted(os.listdir(tmp_path / "_status")) == ["c1.json"]


def test_a_failed_write_is_remembered_not_raised(tmp_path):
    (tmp_path / "_status").write_text("a file where the directory should be")
    sf = StatusFile(str(tmp_path), "c1", {"received": 0}, counter="received")
    assert sf.update() is False
    assert isinstance(sf.error, OSError)


def test_the_rate_is_over_the_last_five_seconds():
    window = RateWindow(5.0)
    assert window.rate(0.0, 0) == 0.0
    for t in range(1, 11):  # 100 per second for 10 s
        rate = window.rate(float(t), 100 * t)
    assert rate == 100.0
    for t in range(11, 14):  # then nothing for 3 s: 2 of the last 5 s had traffic
        rate = window.rate(float(t), 1000)
    assert rate == pytest.approx(40.0)
    for t in range(14, 20):
        rate = window.rate(float(t), 1000)
    assert rate == 0.0
