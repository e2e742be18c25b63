"""The one poll-until-deadline helper."""

from mqlab.wait import poll_until


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_true_as_soon_as_the_condition_holds():
    t, calls = FakeTime(), []

    def condition():
        calls.append(t.now)
        return t.now >= 2.0

    assert poll_until(condition, 10, interval=0.5, clock=t.clock, sleep=t.sleep)
    assert calls[-1] == 2.0 and len(calls) == 5


def test_false_at_the_deadline_after_a_last_look():
    t, calls = FakeTime(), []
    assert not poll_until(lambda: calls.append(t.now) or False, 3, interval=1, clock=t.clock, sleep=t.sleep)
    assert calls == [0.0, 1.0, 2.0, 3.0]
