"""A picture of a run, in the manner of Jepsen's rate and latency plots.

For each run: the producer's sends and acks and the consumers' deliveries per second, the
end-to-end latency of each first delivery as a point, every fault window shaded and labelled
(from the event file, :mod:`mqlab.events`), every acked message that was lost or is gone from
the broker's log marked at the time it was sent, and every message delivered more than once
marked at its send time too. The inputs (:func:`series`) come from the receipts through
:mod:`.receipts` and from the events; :func:`draw` only draws them. `invoke verify --plot` and
`invoke proof` both draw through here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import events as lab_events
from . import receipts, timeline

MAX_POINTS = 4000  # latency points per panel; more are thinned evenly


@dataclass
class Series:
    """One run's timeline, in seconds since its first ack."""

    sends: list[tuple[int, int]] = field(default_factory=list)  # (second, messages sent in it)
    acks: list[tuple[int, int]] = field(default_factory=list)  # (second, acks in it)
    deliveries: list[tuple[int, int]] = field(default_factory=list)  # (second, deliveries in it)
    latency: list[tuple[float, float]] = field(default_factory=list)  # (sent at s, end-to-end ms)
    missing: list[float] = field(default_factory=list)  # sent at s: acked, then lost or gone
    duplicated: list[float] = field(default_factory=list)  # sent at s: delivered more than once
    windows: list[tuple[float, float, str]] = field(default_factory=list)  # faults: (from s, to s, which)


@dataclass
class Panel:
    title: str
    series: Series


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


def _duplicated_ids(directory: Path, per_subscriber: bool) -> set[str]:
    """Ids delivered more than once: to the group (competing consumers share one count) or,
    where every subscriber gets its own copy (fan-out, routed), to the same subscriber."""
    counts: Counter = Counter()
    for name, path in receipts.files(directory, receipts.RECV):
        counts.update((name if per_subscriber else "", parts[receipts.ID]) for parts in receipts.lines(path))
    return {key[1] for key, n in counts.items() if n > 1}


def _windows(faults: list[lab_events.Event], t0: int, end_ns: int) -> list[tuple[float, float, str]]:
    return [((w.start_ns - t0) / 1e9, (w.end_ns - t0) / 1e9, w.label)
            for w in lab_events.windows(faults, t0, end_ns)]


def series(directory: Path, missing: set[str] = frozenset(), t0_ns: int | None = None,
           faults: list[lab_events.Event] = (), per_subscriber: bool = False) -> Series:
    """The timeline of the run in ``directory``; ``missing`` are the acked ids lost or gone;
    ``faults`` are the stack's events (the windows that overlap the run are kept)."""
    t0 = t0_ns or timeline.first_ack_ns(directory)
    if t0 is None:
        return Series()
    sends = [t for values in receipts.column(directory, receipts.SENT, receipts.SENT_SEND_NS).values() for t in values]
    acks = [t for values in receipts.column(directory, *timeline.ACK_NS).values() for t in values]
    deliveries = [t for values in receipts.column(directory, *timeline.RECV_NS).values() for t in values]
    end_ns = max([*sends, *acks, *deliveries, t0])
    return Series(_per_second(sends, t0), _per_second(acks, t0), _per_second(deliveries, t0), _latencies(directory, t0),
                  _sent_at(directory, set(missing), t0),
                  _sent_at(directory, _duplicated_ids(directory, per_subscriber), t0), _windows(list(faults), t0, end_ns))


def draw(path: Path, title: str, panels: list[Panel]) -> Path:
    """One PNG, a row per panel: rates (left axis), latency points (right axis, log scale), the
    fault shaded, lost or gone messages marked with a red x on the time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.8 * max(1, len(panels))), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        _draw_panel(ax, panel)
    axes[0, 0].legend(loc="lower left", bbox_to_anchor=(0, 1.02), fontsize=7, ncol=6, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _draw_panel(ax, panel: Panel) -> None:
    s = panel.series
    for number, (start, end, label) in enumerate(s.windows):
        ax.axvspan(start, end, color="orange", alpha=0.25, label="fault" if number == 0 else None)
        ax.annotate(label, (start, 1), xycoords=("data", "axes fraction"), xytext=(2, -10), textcoords="offset points",
                    fontsize=8, color="darkorange", fontweight="bold")
    if s.sends:
        ax.step(*zip(*s.sends), where="post", color="tab:purple", alpha=0.7, linestyle=":", label="sent/s")
    if s.acks:
        ax.step(*zip(*s.acks), where="post", color="tab:blue", label="acks/s")
    if s.deliveries:
        ax.step(*zip(*s.deliveries), where="post", color="tab:green", label="deliveries/s")
    if s.missing:
        ax.plot(s.missing, [0] * len(s.missing), "x", color="red", markersize=6, label=f"lost or gone ({len(s.missing):,})")
    if s.duplicated:
        ax.plot(s.duplicated, [0] * len(s.duplicated), "|", color="purple", markersize=9,
                label=f"duplicated ({len(s.duplicated):,})")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("msg/s")
    ax.set_xlabel("seconds since the first ack")
    ax.set_title(panel.title, fontsize=9, loc="right")
    if s.latency:
        right = ax.twinx()
        right.scatter(*zip(*s.latency), s=2, color="grey", alpha=0.5, label="latency")
        right.set_yscale("log")
        right.set_ylabel("end-to-end ms")
        ax.set_zorder(right.get_zorder() + 1)  # the rates over the latency points, not under them
        ax.patch.set_visible(False)
