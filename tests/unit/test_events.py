"""The event file: appended one line at a time, read from an offset, torn lines skipped, and
the fault windows paired by id."""

import json
import multiprocessing

import pytest

from mqlab import events

S = 1_000_000_000


def test_an_event_is_one_json_line_and_reads_back_as_written(tmp_path):
    log = tmp_path / "state" / "events.jsonl"  # the directory is made on the first append
    written = events.append(log, "rabbitmq", "fault", "kill-consumer: SIGKILL a consumer", fault="kill-consumer",
                            id="f1", ns=5 * S)
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {"ns": 5 * S, "stack": "rabbitmq", "kind": "fault",
                                    "text": "kill-consumer: SIGKILL a consumer", "fault": "kill-consumer", "id": "f1"}
    assert events.read(log) == ([written], len(lines[0]) + 1)


def test_reading_goes_on_from_the_offset_and_filters_by_stack_and_time(tmp_path):
    log = tmp_path / "events.jsonl"
    events.append(log, "redis", "step", "one", ns=1 * S)
    events.append(log, "kafka", "step", "two", ns=2 * S)
    first, offset = events.read(log)
    assert [e.text for e in first] == ["one", "two"]
    events.append(log, "redis", "step", "three", ns=3 * S)
    later, end = events.read(log, offset=offset)
    assert [e.text for e in later] == ["three"] and end == log.stat().st_size
    assert [e.text for e in events.read(log, stack="redis")[0]] == ["one", "three"]
    assert [e.text for e in events.read(log, since_ns=2 * S)[0]] == ["two", "three"]


def test_a_torn_line_is_skipped_and_an_unfinished_last_line_waits_for_its_newline(tmp_path):
    log = tmp_path / "events.jsonl"
    events.append(log, "redis", "step", "before", ns=1 * S)
    with open(log, "a") as f:
        f.write('{"ns": 2, "stack": "redis", "ki\n')  # a writer died part-way through its line
        f.write("not json at all\n")
    events.append(log, "redis", "step", "after", ns=3 * S)
    with open(log, "a") as f:
        f.write('{"ns": 4000000000, "stack": "redis", "kind": "step", "text": "half')  # still being written
    found, offset = events.read(log)
    assert [e.text for e in found] == ["before", "after"]
    with open(log, "a") as f:
        f.write(' done"}\n')
    assert [e.text for e in events.read(log, offset=offset)[0]] == ["half done"]


def test_a_missing_file_has_no_events(tmp_path):
    assert events.read(tmp_path / "nothing.jsonl") == ([], 0)


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown event kind"):
        events.append(tmp_path / "e.jsonl", "redis", "party", "no")


def _append_many(path, name):
    for i in range(300):
        events.append(path, "redis", "step", f"{name}-{i}-" + "x" * 200)


def test_writers_in_several_processes_never_interleave_inside_a_line(tmp_path):
    log = tmp_path / "events.jsonl"
    procs = [multiprocessing.Process(target=_append_many, args=(log, f"w{n}")) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    found, _ = events.read(log)
    assert len(found) == 1200 and len(log.read_text().splitlines()) == 1200


def test_fault_windows_pair_each_fault_with_its_healed_event():
    found = [events.Event(10 * S, "kafka", "fault", "kill-broker: ...", "kill-broker", "a"),
             events.Event(11 * S, "kafka", "step", "SIGKILL kafka", "kill-broker", "a"),
             events.Event(20 * S, "kafka", "fault", "pause-broker: ...", "pause-broker", "b"),
             events.Event(15 * S, "kafka", "healed", "undone", "kill-broker", "a", 10 * S),
             events.Event(90 * S, "kafka", "fault", "kill-consumer: ...", "kill-consumer", "c"),
             events.Event(95 * S, "kafka", "healed", "undone", "kill-consumer", "c", 90 * S)]
    # b was never healed: open until the end asked about; c began after it: left out
    assert events.windows(found, 0, 60 * S) == [events.Window(10 * S, 15 * S, "kill-broker"),
                                                events.Window(20 * S, 60 * S, "pause-broker")]
    assert events.windows(found, 16 * S, 60 * S) == [events.Window(20 * S, 60 * S, "pause-broker")]
