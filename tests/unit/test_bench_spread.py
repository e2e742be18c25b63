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
