"""Paired ratios, their intervals, the ✓/≈/✗ judgement and the adaptive rule, on synthetic trials."""

import random

import pytest

from mqlab.bench import spread


def test_ratios_are_paired_by_repeat_and_a_repeat_missing_on_either_side_is_left_out():
    lab = {0: 800.0, 1: 900.0, 2: 700.0, 3: 500.0}
    bare = {0: 1000.0, 1: 1000.0, 2: 1000.0, 3: 0.0}  # repeat 3: the bare trial sent nothing
    assert spread.paired(lab, bare) == [0.8, 0.9, 0.7]
    assert spread.paired({0: None, 1: 900.0}, {0: 1000.0}) == []


def test_a_few_pairs_give_their_min_and_max():
    s = spread.spread([0.82, 0.75, 0.91])
    assert (s.median, s.low, s.high, s.pairs, s.method) == (0.82, 0.75, 0.91, 3, "min-max")
    assert s.text() == "0.820 [0.750–0.910]"
    assert spread.spread([0.8]).text() == "0.800"
    assert spread.spread([]) is None


def test_many_pairs_give_a_bootstrap_interval_of_the_median_inside_their_range_and_the_same_each_time():
    values = [0.80, 0.82, 0.79, 0.81, 0.83, 0.78, 0.80, 0.95, 0.81, 0.80]
    s = spread.spread(values)
    assert s.method == "bootstrap 95%" and s.pairs == 10
    assert min(values) <= s.low <= s.median <= s.high <= max(values)
    assert s.high < 0.95  # one outlier does not stretch the median's interval to itself
    assert spread.spread(list(reversed(values))) == s


@pytest.mark.parametrize("low, high, target, above, mark", [
    (0.80, 0.90, 0.8, True, "✓"),  # the whole interval at or above the target
    (0.79, 0.90, 0.8, True, "≈"),  # straddles
    (0.60, 0.79, 0.8, True, "✗"),
    (0.60, 0.80, 0.8, True, "≈"),  # touches it from below: part meets it
    (1.50, 2.00, 2.0, False, "✓"),  # p99 ratio: at or below
    (1.50, 2.01, 2.0, False, "≈"),
    (2.01, 3.00, 2.0, False, "✗"),
])
def test_a_ratio_is_judged_on_its_whole_interval(low, high, target, above, mark):
    s = spread.Spread((low + high) / 2, low, high, 3, "min-max")
    assert spread.judge(s, target, above) == mark
    assert spread.judge(None, target, above) == ""


def _run_adaptive(noise: float, budget_s: float, per_repeat_s: float = 60.0) -> tuple[int, str]:
    """Repeat a synthetic pair (lab 800 ± noise, bare 1000 ± noise) until the rule stops."""
    rng = random.Random(7)
    lab, bare = {}, {}
    done, elapsed = 0, 0.0
    while True:
        judged = [spread.spread(spread.paired(lab, bare))]
        go, why = spread.more_repeats(judged, done, elapsed, budget_s, per_repeat_s)
        if not go:
            return done, why
        lab[done], bare[done] = 800 * rng.gauss(1, noise), 1000 * rng.gauss(1, noise)
        done += 1
        elapsed += per_repeat_s


def test_the_adaptive_rule_stops_early_on_low_noise():
    done, why = _run_adaptive(noise=0.005, budget_s=3600)
    assert done == spread.MIN_REPEATS and why.startswith("every judged ratio within ±0.05")


def test_the_adaptive_rule_goes_on_under_high_noise_and_stops_at_its_budget():
    done, why = _run_adaptive(noise=0.25, budget_s=600)
    assert done == 10 and "the time budget ran out after 10 repeats" in why and "more repeats would tell" in why


def test_the_adaptive_rule_runs_once_even_on_a_tiny_budget_and_says_it_had_too_few():
    done, why = _run_adaptive(noise=0.0, budget_s=30)
    assert done == 1 and "before the 3 an interval needs" in why


# --------------------------------------------------------------------------- the run loop

def _auto_run(tmp_path, monkeypatch, rates_of_repeat, budget=720.0):
    """A --repeat auto run of Redis whose trials take 22 s of a fake clock and give the lab's
    sent rate ``rates_of_repeat(repeat)`` against a bare client at 10,000 msg/s."""
    from types import SimpleNamespace

    from mqlab.bench import plan as bench_plan
    from mqlab.bench import record as bench_record
    from mqlab.config import LabConfig
    from mqlab.stack import preflight
    from mqlab.stacks import STACKS

    clock = [0.0]
    monkeypatch.setattr(bench_plan.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(bench_record, "environment", lambda *args: {})
    monkeypatch.setattr(preflight, "docker_client", lambda: None)  # no engine in a unit test
    params = bench_plan.check_params(STACKS["redis"], bench_plan.BenchParams(native=False, latency_rate=None,
                                                                             budget=budget))
    said = []
    bench = bench_plan.Bench(LabConfig(root=tmp_path, offline=False, values={}), STACKS["redis"], params,
                             said.append, lambda *args: None, None)
    bench.on = SimpleNamespace(ensure_up=lambda: None, pin=lambda pinned: None, down=lambda: None)

    def trial(t, _trial_id):
        clock[0] += 22.0
        send = 10_000.0 if t.role.startswith("bare") else rates_of_repeat(t.repeat)
        return {"kind": "bare" if t.role.startswith("bare") else "mqlab", "send_rate": send, "recv_rate": send,
                "mb_per_s": 1.0, "latency_kind": "e2e", "latency": {}, "ack_latency": {}, "error": None,
                "series": {"sent": [send], "received": [send], "backlog": [0]}, "curve": [], "ack_curve": []}
    bench.mqlab_trial = trial
    run = bench.run()
    return run, said


def test_auto_repeats_stop_at_three_when_the_pairs_agree(tmp_path, monkeypatch):
    run, said = _auto_run(tmp_path, monkeypatch, lambda repeat: 9_000.0 + 10 * repeat)
    assert run["repeats"]["done"] == 3 and run["repeats"]["asked"] == "auto"
    assert "every judged ratio within ±0.05 after 3 repeats" in run["repeats"]["stopped"]
    assert said[-1].startswith("stopped after 3 repeat(s): every judged ratio within")


def test_auto_repeats_go_on_while_the_pairs_disagree_until_the_budget(tmp_path, monkeypatch):
    # 4 trials a repeat at 22 s: 88 s a repeat; 600 s fit 6 repeats, and the 7th would not.
    run, _said = _auto_run(tmp_path, monkeypatch, lambda repeat: (6_000.0, 9_500.0)[repeat % 2], budget=600)
    assert run["repeats"]["done"] == 6
    assert "the time budget ran out after 6 repeats" in run["repeats"]["stopped"]
    o = run["summary"]["ratios"]["spreads"]["o_send"]
    assert o["pairs"] == 6 and o["method"] == "bootstrap 95%" and o["high"] - o["low"] > 0.1


def test_the_default_budget_fits_the_repeats_a_bootstrap_needs_for_each_stacks_own_plan():
    from mqlab.bench import plan as bench_plan
    from mqlab.stacks import STACKS

    def planned_repeat(name):
        params = bench_plan.check_params(STACKS[name], bench_plan.BenchParams())
        return len(bench_plan.plan_repeat(STACKS[name], params, 0)) * bench_plan.trial_seconds(params)

    # Kafka runs both clients, so a repeat holds more trials: its budget is longer, not its repeats fewer.
    assert planned_repeat("kafka") > planned_repeat("redis")
    for name in ("rabbitmq", "redis", "kafka"):
        budget = bench_plan.default_budget(planned_repeat(name))
        assert budget // planned_repeat(name) == spread.BOOTSTRAP_FROM
