"""A picture of a run, in the manner of Jepsen's rate and latency plots.

For each run: the producer's acks and the consumers' deliveries per second, the end-to-end
latency of each first delivery as a point, the fault's window shaded, and every acked message
that was lost or is gone from the broker's log marked at the time it was sent. The inputs
(:func:`series`) come from the receipts through :mod:`.receipts`; :func:`draw` only draws them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import receipts, timeline

MAX_POINTS = 4000  # latency points per panel; more are thinned evenly


@dataclass
class Series:
    """One run's timeline, in seconds since its first ack."""

    acks: list[tuple[int, int]] = field(default_factory=list)  # (second, acks in it)
    deliveries: list[tuple[int, int]] = field(default_factory=list)  # (second, deliveries in it)
    latency: list[tuple[float, float]] = field(default_factory=list)  # (sent at s, end-to-end ms)
    missing: list[float] = field(default_factory=list)  # sent at s: acked, then lost or gone


@dataclass
class Panel:
    title: str
    series: Series
    window: tuple[float, float]  # the fault: from its start until it was undone, s since the first ack


def _per_second(times_ns: list[int], t0: int) -> list[tuple[int, int]]:
    counts = Counter((t - t0) // 1_000_000_000 for t in times_ns)
    return [(second, counts.get(second, 0)) for second in range(min(counts, default=0), max(counts, default=-1) + 1)]


def _latencies(directory: Path, t0: int) -> list[tuple[float, float]]:
    seen, points = set(), []
    for _name, path in receipts.files(directory, receipts.RECV):
        for parts in receipts.lines(path):
            times = receipts.delivery_times(parts)
            if times and parts[receipts.ID] not in seen:
                seen.add(parts[receipts.ID])
                points.append(((times[1] - t0) / 1e9, (times[2] - times[1]) / 1e6))
    points.sort()
    step = max(1, -(-len(points) // MAX_POINTS))
    return points[::step]


def _sent_at(directory: Path, ids: set[str], t0: int) -> list[float]:
    found = []
    for _name, path in receipts.files(directory, receipts.SENT):
        for parts in receipts.lines(path):
            sent_ns = receipts.number(parts, receipts.SENT_SEND_NS, signed=False)
            if parts[receipts.ID] in ids and sent_ns is not None:
                found.append((sent_ns - t0) / 1e9)
    return sorted(found)


def series(directory: Path, missing: set[str] = frozenset(), t0_ns: int | None = None) -> Series:
    """The timeline of the run in ``directory``; ``missing`` are the acked ids lost or gone."""
    t0 = t0_ns or timeline.first_ack_ns(directory)
    if t0 is None:
        return Series()
    acks = [t for values in receipts.column(directory, *timeline.ACK_NS).values() for t in values]
    deliveries = [t for values in receipts.column(directory, *timeline.RECV_NS).values() for t in values]
    return Series(_per_second(acks, t0), _per_second(deliveries, t0), _latencies(directory, t0),
                  _sent_at(directory, missing, t0))


def draw(path: Path, title: str, panels: list[Panel]) -> Path:
    """One PNG, a row per panel: rates (left axis), latency points (right axis, log scale), the
    fault shaded, lost or gone messages marked with a red x on the time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.8 * max(1, len(panels))), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        _draw_panel(ax, panel)
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=4)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _draw_panel(ax, panel: Panel) -> None:
    s = panel.series
    ax.axvspan(*panel.window, color="orange", alpha=0.25, label="fault")
    if s.acks:
        ax.step(*zip(*s.acks), where="post", color="tab:blue", label="acks/s")
    if s.deliveries:
        ax.step(*zip(*s.deliveries), where="post", color="tab:green", label="deliveries/s")
    if s.missing:
        ax.plot(s.missing, [0] * len(s.missing), "x", color="red", markersize=6, label=f"lost or gone ({len(s.missing):,})")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("msg/s")
    ax.set_xlabel("seconds since the first ack")
    ax.set_title(panel.title, fontsize=9)
    if s.latency:
        right = ax.twinx()
        right.scatter(*zip(*s.latency), s=2, color="grey", alpha=0.5, label="latency")
        right.set_yscale("log")
        right.set_ylabel("end-to-end ms")
