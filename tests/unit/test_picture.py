"""The picture's inputs, from a recorded run: rates per second, latency points, and the lost or
gone messages at their send time; and a PNG drawn from them."""

from mqlab import events
from mqlab.ledger import picture

S = 1_000_000_000
T0 = 1_700_000_000 * S


def recorded_run(directory):
    directory.mkdir()
    # a: sent at 0 s, acked at 0.1 s, received at 0.2 s; b: acked at 1.5 s, received twice;
    # c: acked at 3.2 s, never received (lost); a torn last line is not read.
    (directory / "sent-p1.tsv").write_text(
        f"a\t0\t{T0}\t{T0 + S // 10}\t\tp0:0\n"
        f"b\t1\t{T0 + S}\t{T0 + 3 * S // 2}\t\tp0:1\n"
        f"c\t2\t{T0 + 3 * S}\t{T0 + 32 * S // 10}\t\tp0:2\n"
        f"d\t3\t{T0 + 4 * S}")
    (directory / "recv-c1.tsv").write_text(
        f"a\tp1\t0\t{T0}\t{T0 + 2 * S // 10}\t\tp0\n"
        f"b\tp1\t1\t{T0 + S}\t{T0 + 2 * S}\t\tp0\n"
        f"b\tp1\t1\t{T0 + S}\t{T0 + 5 * S}\t\tredelivered\n")


def test_the_series_counts_per_second_from_the_first_ack_and_marks_the_missing_at_their_send_time(tmp_path):
    recorded_run(tmp_path / "r")
    s = picture.series(tmp_path / "r", missing={"c"})
    # the first ack (0.1 s after T0) is time 0
    assert s.sends == [(-1, 1), (0, 1), (1, 0), (2, 1)]  # a at -0.1 s, b at 0.9 s, c at 2.9 s; d's line is torn
    assert s.acks == [(0, 1), (1, 1), (2, 0), (3, 1)]
    assert s.deliveries == [(0, 1), (1, 1), (2, 0), (3, 0), (4, 1)]
    assert s.latency == [(-0.1, 200.0), (0.9, 1000.0)]  # first deliveries only
    assert s.missing == [2.9]
    assert s.duplicated == [0.9]  # b, delivered twice, at its send time
    assert s.windows == []


def test_duplicates_count_per_subscriber_where_each_gets_its_own_copy(tmp_path):
    recorded_run(tmp_path / "r")
    (tmp_path / "r" / "recv-c2.tsv").write_text(f"a\tp1\t0\t{T0}\t{T0 + 3 * S // 10}\t\tp0\n")
    # competing consumers: a reached c1 and c2, so it was delivered twice; fan-out: once to each
    assert picture.series(tmp_path / "r").duplicated == [-0.1, 0.9]
    assert picture.series(tmp_path / "r", per_subscriber=True).duplicated == [0.9]


def test_the_fault_windows_come_from_the_event_file_and_only_those_that_overlap_the_run(tmp_path):
    recorded_run(tmp_path / "r")
    log = tmp_path / "events.jsonl"
    first_ack = T0 + S // 10
    events.append(log, "kafka", "fault", "kill-broker: ...", fault="kill-broker", id="x", ns=first_ack + S)
    events.append(log, "kafka", "healed", "undone", fault="kill-broker", id="x", ns=first_ack + 3 * S)
    events.append(log, "kafka", "fault", "pause-broker: ...", fault="pause-broker", id="y", ns=first_ack + 4 * S)
    events.append(log, "kafka", "fault", "long before", fault="kill-consumer", id="z", ns=T0 - 100 * S)
    events.append(log, "kafka", "healed", "undone", fault="kill-consumer", id="z", ns=T0 - 90 * S)
    s = picture.series(tmp_path / "r", faults=events.read(log, "kafka")[0])
    # pause-broker was never healed (interrupted): its window runs to the run's last receipt (5 s after T0)
    assert s.windows == [(1.0, 3.0, "kill-broker"), (4.0, 4.9, "pause-broker")]


def test_a_picture_is_drawn_with_a_panel_per_round(tmp_path):
    recorded_run(tmp_path / "r")
    s = picture.series(tmp_path / "r", missing={"c"})
    s.windows = [(1.0, 2.0, "kill-node")]
    path = picture.draw(tmp_path / "p.png", "kafka-cluster: isolate-node",
                        [picture.Panel("leader, round 1", s), picture.Panel("leader, round 2", picture.Series())])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_a_run_without_acks_has_an_empty_series(tmp_path):
    (tmp_path / "r").mkdir()
    assert picture.series(tmp_path / "r") == picture.Series()


def test_silence_counts_only_inside_the_fault_window_and_acks_show_the_stream_went_on(tmp_path):
    from mqlab.ledger import timeline

    recorded_run(tmp_path / "r")
    # c1 received at 0.2 s, 2 s and 5 s: inside a window from 2.5 s to 4.5 s it was silent 2 s;
    # from 0.5 s to 1.5 s, 1 s; silence after the run's end is not counted.
    assert timeline.silence_within_s(tmp_path / "r", T0 + 5 * S // 2, T0 + 9 * S // 2) == 2.0
    assert timeline.silence_within_s(tmp_path / "r", T0 + S // 2, T0 + 3 * S // 2) == 1.0
    assert timeline.acks_within(tmp_path / "r", T0 + 3 * S, T0 + 4 * S) == 1  # c's ack at 3.2 s
    assert timeline.acks_within(tmp_path / "r", T0 + 4 * S, T0 + 9 * S) == 0
