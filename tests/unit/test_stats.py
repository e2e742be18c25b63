import json

from mqlab.stack import stats


def test_read_status_and_missing(tmp_path):
    (tmp_path / "_status").mkdir()
    (tmp_path / "_status" / "abc.json").write_text(json.dumps({"received": 5}))
    assert stats.read_status(tmp_path, "abc") == {"received": 5}
    assert stats.read_status(tmp_path, "nope") == {}
    (tmp_path / "_status" / "bad.json").write_text("{torn")
    assert stats.read_status(tmp_path, "bad") == {}


def test_render_shows_each_consumer_and_the_backlog():
    result = stats.StackStats("kafka", "group", backlog={"mqlab/0": 3, "mqlab/1": 4})
    result.services = [
        stats.ServiceStats("mqlab-kafka-consumer-1", "consumer", "group", "subscribed", 1200, 33.5, "0,1", "lag 7"),
        stats.ServiceStats("mqlab-kafka-consumer-2", "consumer", "group", "subscribed", 600, 16.0, "2", "lag 0"),
    ]
    text = stats.render(result)
    assert text.splitlines()[0] == "kafka (mode group)"
    assert "mqlab-kafka-consumer-1" in text and "1,200" in text and "33.5" in text and "lag 7" in text
    assert "backlog at the broker: 7 message(s) waiting" in text


def test_assignment_text():
    assert stats._assignment_text([0, 2]) == "0,2"
    assert stats._assignment_text("mailbox.durable") == "mailbox.durable"
    assert stats._assignment_text(None) == ""
