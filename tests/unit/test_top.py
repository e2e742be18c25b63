"""`invoke top`'s parts that need no stack: the sparkline, Docker's events as lines, the
broker's changes as events, and a run's counters read a little at a time."""

from collections import deque

from rich.console import Console

from mqlab.stack import stats, top

S = 1_000_000_000
T0 = 1_700_000_000 * S


def test_a_sparkline_scales_to_its_largest_value_and_is_flat_when_nothing_moves():
    assert top.sparkline([0, 1, 2, 4]) == "▁▃▅█"
    assert top.sparkline([0, 0, 0]) == "▁▁▁"
    assert top.sparkline([]) == ""


def test_docker_events_read_as_lines_and_the_uninteresting_ones_are_dropped():
    def event(action, **attributes):
        return {"Action": action, "Actor": {"Attributes": {"name": "mqlab-redis-consumer-1", **attributes}}}

    assert top.docker_event_text(event("die", exitCode="137")) == "mqlab-redis-consumer-1 died (exit 137)"
    assert top.docker_event_text(event("kill", signal="9")) == "mqlab-redis-consumer-1 was sent signal 9"
    assert top.docker_event_text(event("start")) == "mqlab-redis-consumer-1 started"
    assert top.docker_event_text(event("health_status: unhealthy")) == "mqlab-redis-consumer-1 is unhealthy"
    assert top.docker_event_text(event("exec_start: redis-cli ping")) is None


def test_what_moved_in_the_brokers_view_is_an_event():
    before = [("orders p0", "leader kafka-1; in sync 1,2,3"), ("orders p1", "leader kafka-2; in sync 1,2,3")]
    after = [("orders p0", "leader kafka-2; in sync 2,3"), ("orders p1", "leader kafka-2; in sync 1,2,3"),
             ("orders p2", "new")]
    assert top.changes(before, after) == ["orders p0: leader kafka-1; in sync 1,2,3 → leader kafka-2; in sync 2,3"]


def test_a_runs_counters_are_read_from_what_was_appended_since_the_last_look(tmp_path):
    sent, recv = tmp_path / "sent-p1.tsv", tmp_path / "recv-c1.tsv"
    sent.write_text(f"a\t0\t{T0}\t{T0 + 1}\t\t\nb\t1\t{T0}\t{T0 + 2 * S}\t\t\n")
    recv.write_text(f"a\tp1\t0\t{T0}\t{T0 + S}\t\t\n")
    tail = top.RunTail(tmp_path, per_subscriber=False).poll()
    assert (tail.acked, tail.received, tail.duplicated, tail.last_ack_ns) == (2, 1, 0, T0 + 2 * S)
    with recv.open("a") as f:
        f.write(f"a\tp1\t0\t{T0}\t{T0 + 3 * S}\t\tredelivered\nb\tp1\t1\t{T0}\t{T0 + 3 * S}\t\t\n")
        f.write(f"a\tp1\t0\t{T0}\t{T0 + 4 * S}\t\tredelivered\nc\tp1")  # a a third time; c's line is unfinished
    tail.poll()
    assert (tail.received, tail.duplicated) == (4, 1)  # a counts once as duplicated, however often it came back
    with recv.open("a") as f:
        f.write(f"\t2\t{T0}\t{T0 + 5 * S}\t\t\n")
    assert tail.poll().received == 5


def test_the_steady_run_counts_only_what_came_after_the_stack_was_created(tmp_path):
    (tmp_path / "sent-p1.tsv").write_text(f"old\t0\t{T0}\t{T0 + 1}\t\t\nnew\t1\t{T0}\t{T0 + 9 * S}\t\t\n")
    (tmp_path / "recv-c1.tsv").write_text(f"old\tp1\t0\t{T0}\t{T0 + 2}\t\t\nnew\tp1\t1\t{T0}\t{T0 + 9 * S}\t\t\n")
    tail = top.RunTail(tmp_path, per_subscriber=False, since_ns=T0 + 5 * S).poll()
    assert (tail.acked, tail.received) == (1, 1)


def test_the_screen_shows_every_part_it_was_given():
    state = top.State("redis", "stream", history={"mqlab-redis-consumer-1": deque([1.0, 4.0])})
    state.services = [stats.ServiceStats("mqlab-redis-consumer-1", "consumer", "stream", "subscribed", 120, 4.0,
                                         node="redis")]
    state.broker = stats.StackStats("redis", "stream", services=[stats.ServiceStats(
        "mqlab-redis-consumer-1", "consumer", backlog="3 pending")], backlog={"mqlab:stream": 3},
        topology=[("primary", "redis")])
    state.broker_at_ns = T0
    state.events.append((T0, "docker", "mqlab-redis-consumer-1 died (exit 137)"))
    console = Console(width=160, record=True)
    console.print(top.render(state, now_ns=T0 + 2 * S))
    text = console.export_text()
    assert "redis (mode stream; containers mqlab-redis-…)" in text
    assert "\n consumer-1  consumer  subscribed" in text and "▃█" in text and "3 pending" in text
    assert " redis " in text  # the node from its status file, where the broker did not say
    assert "broker (asked 2 s ago)" in text and "3 message(s) waiting" in text
    assert "docker  mqlab-redis-consumer-1 died (exit 137)" in text
    assert "no run yet" in text
