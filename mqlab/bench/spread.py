"""How far a bench ratio can be trusted: paired ratios per repeat, their interval, the judgement.

Repeats are interleaved (see :mod:`mqlab.bench.plan`), so repeat *r* of the lab's trial and
repeat *r* of the bare client's (or the native tool's) ran minutes apart at most, on the same
machine in the same state. A ratio is therefore taken per repeat, as a pair, and the run's
figure is the median of those ratios with an interval around it:

- up to ``BOOTSTRAP_FROM - 1`` pairs: the **min–max** of the pairs (with so few, any
  interval that claims more is a guess);
- from ``BOOTSTRAP_FROM`` pairs: a **95 % percentile bootstrap** of the median (resample the
  pairs with replacement, take each resample's median, keep the 2.5th to 97.5th percentile),
  with a fixed seed, so the same figures always give the same interval.

A ratio is judged against its target on the whole interval: ✓ when all of it meets the
target, ✗ when none of it does, ≈ when the target falls inside (more repeats would tell).

Adaptive repeats (``--repeat auto``) go on while some judged ratio's interval is wider than
±``HALF_WIDTH``, and stop at the time budget, saying which of the two it reached. Like hyperfine, which
runs until its minimum count and time are met and then reports mean ± σ with min…max, the
rule has a floor (``MIN_REPEATS``) and reports the spread it reached; unlike JMH's Student-t
interval, it assumes no distribution, because a 2-core machine's trials are not normal
(one slow neighbour makes a long tail).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BOOTSTRAP_FROM = 6
RESAMPLES = 2000
SEED = 20261205
HALF_WIDTH = 0.05  # an interval narrower than ±0.05 around the median needs no more repeats
MIN_REPEATS = 3

MET, MISSED, UNSURE = "✓", "✗", "≈"


@dataclass(frozen=True)
class Spread:
    """A ratio's median over its pairs, and the interval around it."""

    median: float
    low: float
    high: float
    pairs: int
    method: str  # "min-max" or "bootstrap 95%"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def text(self) -> str:
        """``0.812 [0.780–0.845]``, or the value alone for one pair."""
        if self.pairs == 1:
            return _num(self.median)
        return f"{_num(self.median)} [{_num(self.low)}–{_num(self.high)}]"


def _num(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def paired(numerator: Mapping[int, float | None], denominator: Mapping[int, float | None]) -> list[float]:
    """The ratio of each repeat that both sides have (a repeat missing or zero on either side is left out)."""
    return [numerator[r] / denominator[r] for r in sorted(numerator)
            if numerator[r] is not None and denominator.get(r)]


def spread(ratios: Iterable[float]) -> Spread | None:
    """The median of ``ratios`` with its interval; None without any."""
    values = sorted(ratios)
    if not values:
        return None
    middle = statistics.median(values)
    if len(values) < BOOTSTRAP_FROM:
        return Spread(middle, values[0], values[-1], len(values), "min-max")
    rng = random.Random(SEED)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(RESAMPLES))
    low, high = medians[int(0.025 * RESAMPLES)], medians[int(0.975 * RESAMPLES) - 1]
    return Spread(middle, low, high, len(values), "bootstrap 95%")


def judge(value: Spread | None, target: float, above: bool = True) -> str:
    """✓ when the whole interval meets ``target`` (at or above it; at or below with ``above=False``),
    ✗ when none of it does, ≈ when it straddles; "" without a value."""
    if value is None:
        return ""
    best, worst = (value.high, value.low) if above else (value.low, value.high)
    meets = (lambda x: x >= target) if above else (lambda x: x <= target)
    if meets(worst):
        return MET
    if not meets(best):
        return MISSED
    return UNSURE


def more_repeats(judged: Iterable[Spread | None], done: int, elapsed_s: float, budget_s: float,
                 per_repeat_s: float) -> tuple[bool, str]:
    """Whether ``--repeat auto`` runs another repeat, and which end it reached when it stops.

    ``judged``: the spread of each judged ratio so far; ``per_repeat_s``: what one repeat took,
    so that the next one does not overrun the budget. The first repeat always runs."""
    wide = [s for s in judged if s is not None and s.half_width > HALF_WIDTH]
    fits = elapsed_s + per_repeat_s <= budget_s
    if done == 0:
        return True, "the first repeat"
    if done < MIN_REPEATS:
        if fits:
            return True, f"at least {MIN_REPEATS} repeats"
        return False, f"the time budget ran out after {done} repeat(s), before the {MIN_REPEATS} an interval needs"
    if not wide:
        return False, f"every judged ratio within ±{HALF_WIDTH} after {done} repeats"
    if not fits:
        return False, (f"the time budget ran out after {done} repeats, {len(wide)} ratio(s) wider than "
                       f"±{HALF_WIDTH}: more repeats would tell")
    return True, f"{len(wide)} ratio(s) wider than ±{HALF_WIDTH}"
