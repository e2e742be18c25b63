"""Benchmark results: merge what the bench containers wrote, summarise, and report.

Pure functions over plain data, so that every number in a report can be tested:

- :func:`merge_mqlab` turns the JSON files of one mqlab trial (``producer-*.json``,
  ``consumer-*.json``, written by ``bench`` in the services image) into one trial record:
  rates after warm-up, merged HdrHistograms and their quantiles, per-second series and
  the backlog (acked so far minus received so far, per second);
- :func:`native_trial` does the same for a native tool's parsed output;
- :func:`summarise` takes the median over repeats and works out the ratios the
  benchmark is about (R = mqlab's rate / the native rate, O = mqlab's rate / the bare
  client's rate in the safe and the lossy mode, the p99 ratio at a fixed rate, the safe
  mode's rate / the lossy mode's rate);
- :func:`markdown` and :func:`compare_markdown` render tables (through
  :func:`mqlab.tables.markdown`); :func:`plot_run` and :func:`plot_compare` draw PNGs
  (matplotlib, no display needed).

Latencies are nanoseconds everywhere; rates are messages per second.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import matplotlib.pyplot as plt
from hdrh.histogram import HdrHistogram
from matplotlib.ticker import FuncFormatter

from .. import tables
from . import spread as spreads

#: Quantiles reported for every trial, as (key, percentile).
QUANTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
#: Percentiles of the plotted latency curve (log-percentile axis).
CURVE = (0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0)
HDR_RANGE = (1_000, 3_600_000_000_000, 3)  # 1 µs .. 1 h, 3 significant digits (as the services)

#: What the targets of the benchmark are (shown next to the measured ratios).
TARGETS = {"r": 0.10, "r_aim": 0.25, "o": 0.8, "p99_ratio": 2.0, "safe_vs_unsafe": 0.5}


def _histogram():
    return HdrHistogram(*HDR_RANGE)


def merge_histograms(encoded: Iterable[str]):
    """One HdrHistogram holding every encoded histogram given (empty ones are skipped)."""
    total = _histogram()
    for text in encoded:
        if text:
            total.add(HdrHistogram.decode(text))
    return total


def quantiles(histogram) -> dict:
    """count, min, mean, p50/p90/p99/p999 and max of a histogram, in ns (None when empty)."""
    count = histogram.get_total_count()
    if not count:
        return {"count": 0, "min": None, "mean": None, "max": None, **{k: None for k, _ in QUANTILES}}
    out = {"count": count, "min": histogram.get_min_value(), "mean": round(histogram.get_mean_value(), 1)}
    for key, percentile in QUANTILES:
        out[key] = histogram.get_value_at_percentile(percentile)
    out["max"] = histogram.get_max_value()
    return out


def curve(histogram) -> list[list[float]]:
    """[[percentile, ns], ...] for the latency plot."""
    if not histogram.get_total_count():
        return []
    return [[p, histogram.get_value_at_percentile(p)] for p in CURVE]


def add_series(series: Iterable[list[int]]) -> list[int]:
    """Element-wise sum of per-second count series of different lengths."""
    total: list[int] = []
    for s in series:
        if len(s) > len(total):
            total += [0] * (len(s) - len(total))
        for i, v in enumerate(s):
            total[i] += v
    return total


def backlog(sent: list[int], received: list[int]) -> list[int]:
    """Per second: messages acked so far minus messages received so far (never below 0)."""
    out, acked, got = [], 0, 0
    for i in range(max(len(sent), len(received))):
        acked += sent[i] if i < len(sent) else 0
        got += received[i] if i < len(received) else 0
        out.append(max(0, acked - got))
    return out


class ResultError(Exception):
    """A trial's result files are missing or malformed."""


def read_parts(directory: Path) -> tuple[list[dict], list[dict]]:
    """The producer and consumer JSON files of one mqlab trial."""
    producers, consumers = [], []
    for path in sorted(directory.glob("*.json")):
        try:
            part = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ResultError(f"{path.name}: not a bench result ({exc})") from None
        (producers if part.get("role") == "producer" else consumers).append(part)
    return producers, consumers


def merge_mqlab(producers: list[dict], consumers: list[dict]) -> dict:
    """One mqlab trial's numbers from its producers' and consumers' result files."""
    if not producers or not consumers:
        raise ResultError(f"expected producer and consumer results, got {len(producers)} and {len(consumers)}")
    first = producers[0]
    duration = float(first["duration"])
    e2e = merge_histograms(c["latency"]["hdr"] for c in consumers)
    ack = merge_histograms(p["latency"]["hdr"] for p in producers)
    sent = add_series(p["series"] for p in producers)
    received = add_series(c["series"] for c in consumers)
    sent_window = sum(p["window_count"] for p in producers)
    received_window = sum(c["window_count"] for c in consumers)
    errors = [f"{part['role']} {part['name']}: {part['error']}" for part in producers + consumers if part.get("error")]
    return {
        "kind": "bare" if first.get("bare") else "mqlab",
        "client": first.get("client", ""),
        "mode": first.get("mode", ""),
        "producers": len(producers),
        "consumers": len(consumers),
        "bytes_per_message": first.get("bytes_per_message"),
        "send_rate": sent_window / duration,
        "recv_rate": received_window / duration,
        "mb_per_s": sum(p["window_bytes"] for p in producers) / duration / 1e6,
        "recv_mb_per_s": sum(c["window_bytes"] for c in consumers) / duration / 1e6,
        "sent_total": sum(p["total"] for p in producers),
        "received_total": sum(c["total"] for c in consumers),
        "failed": sum(p.get("failed", 0) for p in producers),
        "latency_kind": "e2e",
        "latency": quantiles(e2e),
        "ack_latency": quantiles(ack),
        "curve": curve(e2e),
        "ack_curve": curve(ack),
        "series": {"sent": sent, "received": received, "backlog": backlog(sent, received)},
        "error": "; ".join(errors) or None,
        "invalid": invalid_reason(sum(p["total"] for p in producers), sum(c["total"] for c in consumers),
                                  [c["error"] for c in consumers if c.get("error")]),
    }


def invalid_reason(sent: int, received: int, consumer_errors: list[str] = ()) -> str | None:
    """Why a trial did not do the work it stands for, or None. A trial whose consumers received
    nothing of what was sent, or lost the broker on the way, measured a producer with no one (or
    no longer anyone) reading: Redis drops a pub/sub subscriber that falls behind (its output
    buffer limit), and a dead consumer reads nothing. Such a trial is shown, and kept out of
    every median and ratio."""
    if sent and not received:
        return f"its consumers received none of the {sent:,} messages sent (dropped by the broker, or dead)"
    if consumer_errors:
        return (f"a consumer stopped after {received:,} of the {sent:,} messages sent "
                f"({consumer_errors[0][:80]})")
    return None


def native_trial(result) -> dict:
    """A trial record from a native tool's parsed result (a ``native.NativeResult``)."""
    latency = {"count": None, "min": None, "mean": None, "p50": result.p50_ns, "p90": None,
               "p99": result.p99_ns, "p999": result.p999_ns, "max": result.max_ns}
    points = [[p, latency[k]] for k, p in (("p50", 50.0), ("p99", 99.0), ("p999", 99.9), ("max", 100.0))
              if latency[k] is not None]
    return {
        "kind": "native",
        "client": result.tool,
        "send_rate": result.send_rate,
        "recv_rate": result.recv_rate,
        "mb_per_s": None if result.mb_per_s is None else result.mb_per_s * 2**20 / 1e6,  # MiB/s -> MB/s
        "latency_kind": result.latency_kind,
        "latency": latency,
        "curve": points,
        "raw": list(result.raw_summary),
        "error": None,
    }


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def median_of(trials: list[dict]) -> dict:
    """Median over repeats of a group's rates and latency quantiles; invalid trials are left out
    (a group with none valid has no figures)."""
    valid = [t for t in trials if not t.get("invalid")]
    ok = [t for t in valid if not t.get("error")] or valid
    out = {key: _median([t.get(key) for t in ok]) for key in ("send_rate", "recv_rate", "mb_per_s")}
    for field in ("latency", "ack_latency"):
        if any(field in t for t in ok):
            out[field] = {k: _median([t[field].get(k) for t in ok if field in t])
                          for k in ("p50", "p90", "p99", "p999", "max")}
    out["latency_kind"] = (ok or trials)[0]["latency_kind"]
    # Each valid repeat's own figures, by repeat number: the pairs that ratios are taken from.
    out["by_repeat"] = {str(t.get("repeat", i)): {"send_rate": t.get("send_rate"), "recv_rate": t.get("recv_rate"),
                                                  "latency_p99": (t.get("latency") or {}).get("p99"),
                                                  "ack_latency_p99": (t.get("ack_latency") or {}).get("p99")}
                        for i, t in enumerate(ok)}
    # The invalid repeats' producers alone: comparable only with another producer whose readers went too.
    out["producer_only"] = {str(t.get("repeat", i)): {"send_rate": t.get("send_rate")}
                            for i, t in enumerate(trials) if t.get("invalid")}
    out["repeats"] = len(trials)
    out["invalid"] = [t["invalid"] for t in trials if t.get("invalid")]
    out["errors"] = [t["error"] for t in trials if t.get("error")]
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def comparable_p99(mqlab: dict, native_kind: str) -> float | None:
    """mqlab's p99 of the same kind as the native tool's: end-to-end against end-to-end,
    the broker's ack against the tool's ack (or request) latency."""
    field = "latency" if native_kind == "e2e" else "ack_latency"
    return (mqlab.get(field) or {}).get("p99")


def pick(groups: Iterable[dict], role: str, phase: str, client: str | None = None,
         other_phase: bool = True) -> dict | None:
    """The group of ``role`` in ``phase`` (of mqlab ``client``, default: the first one seen);
    a run with one rate has only one phase, used for both (unless ``other_phase`` is False)."""
    groups = list(groups)
    for wanted in (phase, "latency" if phase == "throughput" else "throughput")[:2 if other_phase else 1]:
        found = next((g for g in groups if g["role"] == role and g["phase"] == wanted
                      and (client is None or role == "native" or g.get("client") == client)), None)
        if found:
            return found
    return None


def _p99_field(kind: str) -> str:
    """The per-repeat field of mqlab's p99 that compares with a tool measuring ``kind``."""
    return "latency_p99" if kind == "e2e" else "ack_latency_p99"


def _pair(name: str, numerator: dict | None, num_field: str, denominator: dict | None, den_field: str,
          ratios: dict, spread_of: dict) -> None:
    """One ratio: the median of its per-repeat pairs with their interval where the groups have
    repeats in common, else the ratio of the two medians (a run saved before repeats were kept)."""
    num = {r: v.get(num_field) for r, v in (numerator or {}).get("by_repeat", {}).items()}
    den = {r: v.get(den_field) for r, v in (denominator or {}).get("by_repeat", {}).items()}
    found = spreads.spread(spreads.paired(num, den))
    if found is not None:
        ratios[name], spread_of[name] = found.median, asdict(found)
        return
    field = {"latency_p99": ("latency", "p99"), "ack_latency_p99": ("ack_latency", "p99")}
    def median(group, key):
        if group is None:
            return None
        if key in field:
            return (group.get(field[key][0]) or {}).get(field[key][1])
        return group.get(key)
    ratios[name] = _ratio(median(numerator, num_field), median(denominator, den_field))


def ratios_of(groups: list[dict], client: str | None = None) -> dict:
    """R, O, the safe/lossy ratio and the p99 ratio of one mqlab client, each the median of its
    per-repeat pairs, with the interval of each in ``spreads`` (see :mod:`mqlab.bench.spread`)."""
    safe, unsafe, native, bare, bare_unsafe = (pick(groups, role, "throughput", client) for role in
                                               ("safe", "unsafe", "native", "bare", "bare-unsafe"))
    safe_lat, native_lat = pick(groups, "safe", "latency", client), pick(groups, "native", "latency")
    ratios: dict = {"p99_ratio": None, "p99_kind": None, "bare_p99_ratio": None}
    spread_of: dict = {}
    _pair("r_send", safe, "send_rate", native, "send_rate", ratios, spread_of)
    _pair("r_recv", safe, "recv_rate", native, "recv_rate", ratios, spread_of)
    _pair("o_send", safe, "send_rate", bare, "send_rate", ratios, spread_of)
    _pair("o_unsafe", unsafe, "send_rate", bare_unsafe, "send_rate", ratios, spread_of)
    if "o_unsafe" not in spread_of and unsafe and bare_unsafe:
        # No repeat where both kept their subscribers (Redis drops a pub/sub subscriber that falls
        # behind): compare the repeats where both lost them, producer against producer.
        both = spreads.spread(spreads.paired(
            {r: v["send_rate"] for r, v in unsafe.get("producer_only", {}).items()},
            {r: v["send_rate"] for r, v in bare_unsafe.get("producer_only", {}).items()}))
        if both is not None:
            ratios["o_unsafe"], spread_of["o_unsafe"] = both.median, asdict(both)
            ratios["o_unsafe_basis"] = "producer only"
    _pair("safe_vs_unsafe", safe, "send_rate", unsafe, "send_rate", ratios, spread_of)
    _pair("bare_safe_vs_unsafe", bare, "send_rate", bare_unsafe, "send_rate", ratios, spread_of)
    if safe_lat and native_lat:
        kind = ratios["p99_kind"] = native_lat["latency_kind"]
        _pair("p99_ratio", safe_lat, _p99_field(kind), native_lat, "latency_p99", ratios, spread_of)
        # The bare client at the same rate (its own phase only: its max-rate trial says nothing of latency).
        bare_lat = pick(groups, "bare", "latency", client, other_phase=False)
        if bare_lat:
            _pair("bare_p99_ratio", bare_lat, _p99_field(kind), native_lat, "latency_p99", ratios, spread_of)
    ratios["spreads"] = spread_of
    return ratios


def summarise(trials: list[dict]) -> dict:
    """Group trials by (label, rate), take medians, and compute the benchmark's ratios: for
    the first mqlab client (``ratios``) and for each client (``by_client``)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for t in trials:
        groups.setdefault((t["label"], t["phase"]), []).append(t)
    medians = {f"{label}@{phase}": {"label": label, "phase": phase, "role": items[0]["role"],
                                    "client": items[0].get("client_name"), "rate": items[0]["rate"],
                                    **median_of(items)}
               for (label, phase), items in groups.items()}
    listed = list(medians.values())
    clients = list(dict.fromkeys(g["client"] for g in listed if g["role"] != "native" and g["client"]))
    return {"groups": medians, "ratios": ratios_of(listed, clients[0] if clients else None),
            "by_client": {c: ratios_of(listed, c) for c in clients}, "targets": TARGETS}


# --- profiles (`invoke bench --profile`) -----------------------------------------------

PROFILE_TOP = 12
_LINE_NUMBER = re.compile(r":\d+\)$")


def profile_summary(collapsed: str, top: int = PROFILE_TOP) -> dict:
    """The top entries of a py-spy ``--format raw`` profile (one ``frame;frame;... count`` per line):
    by own samples (``self``), and by samples with the function anywhere on the stack for the lab's
    own code (``lab``, functions of mqlab_services). Percentages of all samples."""
    own: dict[str, int] = {}
    anywhere: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_LINE_NUMBER.sub(")", f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            if "mqlab_services" in frame:
                anywhere[frame] = anywhere.get(frame, 0) + n

    def ranked(counts: dict[str, int]) -> list[list]:
        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return [[name, round(100 * n / total, 1)] for name, n in best] if total else []

    return {"samples": total, "self": ranked(own), "lab": ranked(anywhere)}


def profile_markdown(run: dict) -> str:
    """The profiles of a run's mqlab and bare-client trials (first repeat of each), as tables."""
    lines = [f"# Profiles of `{run['id']}`", "",
             "py-spy, sampling each bench process 250 times a second while it holds the GIL (Python at work, "
             "not waiting). \"self\": samples in the function itself; \"lab code\": samples with the lab's "
             "function anywhere on the stack.", ""]
    for t in run["trials"]:
        if not t.get("profile") or t["repeat"] != 0:
            continue
        for name, prof in sorted(t["profile"].items()):
            lines += [f"## {t['label']} @ {fmt_target_rate(t['rate'])}, {t['phase']}: {name} "
                      f"({prof['samples']:,} samples)", "", _profile_table(prof), ""]
    return "\n".join(lines) + "\n"


def _profile_table(prof: dict) -> str:
    """The top functions by own samples beside the top lab functions, a pair of columns each."""
    def cells(entries: list, i: int) -> list:
        name, share = entries[i] if i < len(entries) else ["", ""]
        return [f"`{name}`".replace("``", ""), share]  # an empty name stays an empty cell

    rows = [cells(prof["self"], i) + cells(prof["lab"], i) for i in range(max(len(prof["self"]), len(prof["lab"])))]
    return tables.markdown(("self", "%", "lab code", "%"), rows)


# --- rendering -------------------------------------------------------------------------

def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_ns(value: float | None) -> str:
    """A latency for people: µs below 1 ms, ms below 10 s."""
    if value is None:
        return "-"
    if value < 1_000_000:
        return f"{value / 1e3:.0f} µs"
    if value < 999_500_000:
        return f"{value / 1e6:.3g} ms"
    return f"{value / 1e9:.3g} s"


def fmt_ratio(value: float | None, target: float | None = None, above: bool = True) -> str:
    if value is None:
        return "-"
    text = f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if target is not None:
        met = value >= target if above else value <= target
        text += " ✓" if met else " ✗"
    return text


def fmt_judged(r: dict, name: str, target: float | None = None, above: bool = True) -> str:
    """A ratio with its interval (``0.812 [0.780–0.845]``) and its judgement on the whole
    interval: ✓ all of it meets ``target``, ✗ none of it, ≈ it straddles (see spread.judge)."""
    value = r.get(name)
    found = (r.get("spreads") or {}).get(name)
    if value is None or found is None:
        return fmt_ratio(value, target, above)
    interval = spreads.Spread(**found)
    mark = spreads.judge(interval, target, above) if target is not None else ""
    return interval.text() + (f" {mark}" if mark else "")


UNSURE_NOTE = (f"{spreads.UNSURE}: the interval straddles the target, so this run cannot tell which side it is on: "
               "more repeats would tell (`--repeat`).")


def _target_or_bare(fixed: float, bare: float | None, above: bool, what: str,
                    show_bare: bool = False) -> tuple[float, str]:
    """A ratio's target: ``fixed``, or the bare client's own ratio where that is harder to reach
    than the lab can be asked to (below it for an at-least target, above it for an at-most one):
    what the client library itself costs is no fault of the lab."""
    sign, side = ("≥", "below") if above else ("≤", "above")
    if bare is not None and (bare < fixed if above else bare > fixed):
        return bare, f"{sign} {bare:.3f}, the bare client's own {what} ({side} {fixed})"
    return fixed, f"{sign} {fixed}" + (f" (the bare client's: {bare:.3f})" if show_bare and bare is not None else "")


def safe_vs_unsafe_target(r: dict) -> tuple[float, str]:
    """0.5, or the bare client's own safe ÷ lossy where lower (Redis's XADD against PUBLISH)."""
    return _target_or_bare(TARGETS["safe_vs_unsafe"], r.get("bare_safe_vs_unsafe"), True, "safe ÷ lossy")


def p99_target(r: dict) -> tuple[float, str]:
    """2, or the bare client's own p99 ratio at the same rate where higher (its round trip)."""
    return _target_or_bare(TARGETS["p99_ratio"], r.get("bare_p99_ratio"), False, "p99 ÷ native", show_bare=True)


def fmt_target_rate(rate: float | None) -> str:
    return "max" if rate is None else f"{rate:,.0f}/s"


#: What each native tool measures, printed under every table it appears in.
TOOL_NOTES = {
    "PerfTest": "PerfTest: end-to-end latency from the send time PerfTest writes into each message "
                "(its actual send time, not a schedule); p50 and p99 are its per-second figures after the "
                "warm-up, weighted by messages; it reports no p99.9 and no max.",
    "kafka-perf-test": "kafka-producer-perf-test: latency is send → broker ack (acks=all, linger.ms=5), so it is "
                       "compared with mqlab's ack latency; the received rate is kafka-consumer-perf-test reading "
                       "the same records afterwards.",
    "redis-benchmark": "redis-benchmark: XADD pipelined like mqlab's batches (-P 100) at max rate. It cannot "
                       "pace itself: at the fixed rate it sends as many requests from one connection without "
                       "pipelining, as fast as they go. Its latency is per request, so it is compared with "
                       "mqlab's ack latency.",
}


def _latencies(lat: dict) -> list[str]:
    return [fmt_ns(lat.get(key)) for key in ("p50", "p99", "p999", "max")]


def _groups_table(summary: dict) -> str:
    """A row per group of trials (a client or tool at a rate), with a row of its broker-ack
    latency beneath where it has one."""
    rows = []
    for g in summary["groups"].values():
        mb = "-" if g["mb_per_s"] is None else f"{g['mb_per_s']:.1f}"
        rows.append([g["label"], fmt_target_rate(g["rate"]), fmt_rate(g["send_rate"]), fmt_rate(g["recv_rate"]), mb,
                     g["latency_kind"], *_latencies(g.get("latency") or {})])
        ack = g.get("ack_latency")
        if ack and ack.get("p99") is not None:
            rows.append(["↳ same, broker ack", None, None, None, None, "ack", *_latencies(ack)])
    return tables.markdown(("client", "rate asked", "sent msg/s", "received msg/s", "MB/s", "latency", "p50", "p99",
                            "p99.9", "max"), rows)


def _ratio_rows(r: dict, of: str, p: dict, t: dict) -> list[tuple[str, str, str]]:
    """R, O, safe ÷ lossy and the p99 ratio of one client (``of`` names it, where there are several),
    each with its interval over the repeats."""
    return [
        (f"R = mqlab{of} sent ÷ native sent (at {fmt_target_rate(p['rate'])})", fmt_judged(r, "r_send", t["r"]),
         f"≥ {t['r']} (aim {t['r_aim']})"),
        (f"mqlab{of} received ÷ native received", fmt_judged(r, "r_recv"), "-"),
        (f"O = mqlab{of} sent ÷ bare client sent, safe mode (at max)", fmt_judged(r, "o_send", t.get("o")),
         f"≥ {t.get('o')}"),
        (f"O = mqlab{of} sent ÷ bare client sent, lossy mode (at max"
         + ("; both producers alone, their subscribers dropped by the broker)" if r.get("o_unsafe_basis") else ")"),
         fmt_judged(r, "o_unsafe", t.get("o")), f"≥ {t.get('o')}"),
        (f"safe mode ÷ lossy mode (mqlab{of} sent)",
         "- (no valid lossy trial to divide by)" if r.get("o_unsafe_basis") and r.get("safe_vs_unsafe") is None
         else fmt_judged(r, "safe_vs_unsafe", safe_vs_unsafe_target(r)[0]), safe_vs_unsafe_target(r)[1]),
        (f"p99 mqlab{of} ÷ native at {fmt_target_rate(p['latency_rate'])} ({r['p99_kind'] or '-'} latency)",
         fmt_judged(r, "p99_ratio", p99_target(r)[0], above=False), p99_target(r)[1]),
    ]


def _ratios_table(summary: dict, p: dict) -> str:
    by_client = summary.get("by_client") or {"": summary["ratios"]}
    rows = [row for client, r in by_client.items()
            for row in _ratio_rows(r, f" ({client})" if len(by_client) > 1 else "", p, summary["targets"])]
    if p.get("quick"):  # a first look is judged by nothing
        rows = [(name, re.sub(r" [✓✗≈]$", "", measured), "-") for name, measured, _target in rows]
    return tables.markdown(("ratio", "measured", "target"), rows)


def repeats_line(run: dict) -> str:
    """How many repeats ran and why it stopped there."""
    p, repeats = run["params"], run.get("repeats") or {}
    if p.get("quick"):
        return ("a preliminary look (--quick): one short repeat of the safe mode and its bare loop, one client, "
                "no tool; no ratio is judged (run without --quick for that)")
    done = repeats.get("done", p.get("repeat"))
    why = f" ({repeats['stopped']})" if repeats.get("stopped") else ""
    return f"median of {done} repeat(s){why}"


def markdown(run: dict) -> str:
    """The Markdown report of one run."""
    p = run["params"]
    summary = run["summary"]
    lines = [
        f"## {run['stack']}: {p['size']}-byte messages, {p['producers']} producer(s), {p['consumers']} consumer(s)",
        "",
        f"Run `{run['id']}`, mode {run['mode']} (lossy comparison: {run['unsafe_mode'] or '-'}), "
        f"{p['warmup']:g} s warm-up + {p['duration']:g} s measured, {repeats_line(run)}; "
        f"{run['environment'].get('pinning', 'no pinning')}.",
        "",
        _groups_table(summary),
        "",
        _ratios_table(summary, p),
    ]
    if not p.get("quick"):
        lines += ["", "Each ratio is the median of the repeats' own ratios (the lab's trial and its counterpart of "
                  "the same repeat), with its interval in brackets: the range of the pairs below "
                  f"{spreads.BOOTSTRAP_FROM} repeats, a 95% bootstrap interval of the median from there. "
                  "✓ and ✗ judge the whole interval."]
    if spreads.UNSURE in _ratios_table(summary, p) and not p.get("quick"):
        lines += ["", UNSURE_NOTE]
    notes = {TOOL_NOTES[g["label"]] for g in summary["groups"].values() if g["label"] in TOOL_NOTES}
    lines += ["", "mqlab's latency is end to end, from each message's scheduled send time to its receipt, so a "
              "producer that falls behind counts the wait (no coordinated omission); its ack latency ends at "
              "the broker's confirm."] + [""] * bool(notes) + sorted(notes)
    errors = [e for g in summary["groups"].values() for e in g.get("errors", [])]
    if errors:
        lines += ["", "Errors: " + "; ".join(errors)]
    invalid = [f"{g['label']}: {len(g['invalid'])} of {g['repeats']} ({g['invalid'][0]})"
               for g in summary["groups"].values() if g.get("invalid")]
    if invalid:
        lines += ["", "Invalid trials, kept out of every median and ratio: " + "; ".join(invalid)]
    return "\n".join(lines) + "\n"


COMPARE_HEADERS = ("stack", "size", "mqlab mode", "mqlab sent msg/s", "native", "native sent msg/s", "R",
                   "bare client sent msg/s", "O", "O lossy", "safe ÷ lossy", "p99 mqlab", "p99 native", "p99 ratio",
                   "run")


def _compare_rows(run: dict) -> list[list[str]]:
    """A row per mqlab client of one run."""
    groups = list(run["summary"]["groups"].values())
    by_client = run["summary"].get("by_client") or {None: run["summary"]["ratios"]}
    native, native_lat = pick(groups, "native", "throughput") or {}, pick(groups, "native", "latency") or {}
    kind = native_lat.get("latency_kind", "e2e")
    rows = []
    for client, r in by_client.items():
        safe = pick(groups, "safe", "throughput", client) or {}
        bare = pick(groups, "bare", "throughput", client) or {}
        safe_lat = pick(groups, "safe", "latency", client) or {}
        mode = run["mode"] + (f" ({client})" if client and len(by_client) > 1 else "")
        rows.append([
            run["stack"], f"{run['params']['size']} B", mode, fmt_rate(safe.get("send_rate")),
            native.get("label", "-"), fmt_rate(native.get("send_rate")), fmt_judged(r, "r_send", TARGETS["r"]),
            fmt_rate(bare.get("send_rate")), fmt_judged(r, "o_send", TARGETS["o"]),
            fmt_judged(r, "o_unsafe", TARGETS["o"]), fmt_judged(r, "safe_vs_unsafe", safe_vs_unsafe_target(r)[0]),
            fmt_ns(comparable_p99(safe_lat, kind) if safe_lat else None),
            f"{fmt_ns((native_lat.get('latency') or {}).get('p99'))} ({kind})",
            fmt_judged(r, "p99_ratio", p99_target(r)[0], above=False), f"`{run['id']}`"])
    return rows


def compare_markdown(runs: list[dict]) -> str:
    """One table over the latest run of each stack."""
    return tables.markdown(COMPARE_HEADERS, [row for run in runs for row in _compare_rows(run)]) + "\n"


# --- plots -------------------------------------------------------------------------------

def _pyplot():
    plt.switch_backend("Agg")  # files only, no display
    return plt


def representative(trials: list[dict]) -> dict:
    """The repeat whose p99 is the median one (what the plots show)."""
    ranked = sorted(trials, key=lambda t: (t.get("latency") or {}).get("p99") or 0)
    return ranked[len(ranked) // 2]


def _percentile_axis(ax) -> None:
    ticks = [0.0, 50.0, 90.0, 99.0, 99.9, 99.99]
    ax.set_xscale("log")
    ax.set_xticks([1 / (1 - p / 100) for p in ticks])
    ax.set_xticklabels([f"{p:g}%" for p in ticks])
    ax.set_xlabel("percentile")


def _curve_xy(points: list[list[float]]) -> tuple[list[float], list[float]]:
    # 100% (the max) sits just right of 99.99% on the 1/(1-p) axis.
    xs = [1 / (1 - min(p, 99.995) / 100) for p, _ in points]
    return xs, [v / 1e6 for _, v in points]


def plot_run(run: dict, directory: Path) -> list[Path]:
    """Throughput over time and latency quantiles of one run; returns the PNG paths."""
    by_group: dict[tuple[str, str], list[dict]] = {}
    for t in run["trials"]:
        by_group.setdefault((t["label"], t["phase"]), []).append(t)
    return [_plot_throughput(run, by_group, directory / f"{run['id']}-throughput.png"),
            _plot_latency(run, by_group, directory / f"{run['id']}-latency.png")]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def _plot_throughput(run: dict, by_group: dict, path: Path) -> Path:
    fig, (ax, ax_backlog) = _pyplot().subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for (label, phase), trials in by_group.items():
        t = representative(trials)
        if t["kind"] != "mqlab" or phase != "throughput":
            continue
        series = t["series"]
        ax.plot(range(len(series["received"])), series["received"], label=f"{label} received")
        ax.plot(range(len(series["sent"])), series["sent"], linestyle="--", label=f"{label} acked")
        ax_backlog.plot(range(len(series["backlog"])), series["backlog"], label=label)
    for (label, phase), trials in by_group.items():
        if trials[0]["kind"] == "native" and phase == "throughput":
            rate = median_of(trials)["send_rate"]
            if rate:
                ax.axhline(rate, color="grey", linestyle=":", label=f"{label} sent (average)")
    for a in (ax, ax_backlog):
        a.axvline(run["params"]["warmup"], color="black", linewidth=0.8, alpha=0.5)
        a.grid(alpha=0.3)
    ax.set_ylabel("messages/s")
    ax.set_title(f"{run['stack']}: throughput over time ({run['params']['size']} B, rate "
                 f"{fmt_target_rate(run['params']['rate'])}; warm-up ends at the vertical line)")
    ax.legend(fontsize=8)
    ax_backlog.set_ylabel("backlog (messages)")
    ax_backlog.set_xlabel("seconds since start")
    return _save(fig, path)


def _plot_latency(run: dict, by_group: dict, path: Path) -> Path:
    fig, ax = _pyplot().subplots(figsize=(9, 5))
    for (label, _phase), trials in by_group.items():
        t = representative(trials)
        rate = fmt_target_rate(t["rate"])
        if t["curve"]:
            xs, ys = _curve_xy(t["curve"])
            style = "-o" if t["kind"] == "mqlab" else "--s"
            ax.plot(xs, ys, style, markersize=3, label=f"{label} @ {rate} ({t['latency_kind']})")
        if t.get("ack_curve"):
            xs, ys = _curve_xy(t["ack_curve"])
            ax.plot(xs, ys, ":", label=f"{label} @ {rate} (ack)")
    _percentile_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{run['stack']}: latency by percentile ({run['params']['size']} B)")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:  # a run without latency trials (--quick) has no curve
        ax.legend(fontsize=7)
    return _save(fig, path)


def repeat_range(group: dict | None, field: str, middle: float) -> tuple[float, float]:
    """How far below and above ``middle`` the group's repeats went in ``field`` (the error bar)."""
    values = [v[field] for v in (group or {}).get("by_repeat", {}).values() if v.get(field) is not None]
    if not values or not middle:
        return 0.0, 0.0
    return max(0.0, middle - min(values)), max(0.0, max(values) - middle)


def plot_compare(runs: list[dict], path: Path) -> Path:
    """Rates and p99 latencies of several stacks' runs side by side, each bar with the range
    of its repeats."""
    plt = _pyplot()
    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(12, 4.8))
    stacks = []  # one entry per stack and mqlab client, as in compare_markdown
    width = 0.2
    bars = {"safe": ("mqlab safe", [], []), "unsafe": ("mqlab lossy", [], []),
            "bare": ("bare client, safe", [], []), "native": ("native tool", [], [])}
    lat = {"safe": ("mqlab", [], []), "native": ("native tool", [], [])}
    for run in runs:
        groups = list(run["summary"]["groups"].values())
        clients = list(run["summary"].get("by_client") or [None])
        native_lat = pick(groups, "native", "latency")
        kind = (native_lat or {}).get("latency_kind", "e2e")
        for client in clients:
            stacks.append(run["stack"] + (f"\n{client}" if client and len(clients) > 1 else ""))
            for role, (_name, values, spans) in bars.items():
                group = pick(groups, role, "throughput", client)
                values.append((group or {}).get("send_rate") or 0)
                spans.append(repeat_range(group, "send_rate", values[-1]))
            safe_lat = pick(groups, "safe", "latency", client)
            lat["safe"][1].append((comparable_p99(safe_lat, kind) if safe_lat else 0) or 0)
            lat["safe"][2].append(repeat_range(safe_lat, _p99_field(kind), lat["safe"][1][-1]))
            lat["native"][1].append(((native_lat or {}).get("latency") or {}).get("p99") or 0)
            lat["native"][2].append(repeat_range(native_lat, "latency_p99", lat["native"][1][-1]))
    for i, (name, values, spans) in enumerate(bars.values()):
        ax_rate.bar([x + (i - 1.5) * width for x in range(len(stacks))], values, width, label=name,
                    yerr=list(zip(*spans)) if spans else None, capsize=2, error_kw={"linewidth": 0.8})
    ax_rate.set_xticks(range(len(stacks)))
    ax_rate.set_xticklabels(stacks)
    ax_rate.set_yscale("log")
    ax_rate.set_ylabel("messages/s sent (max rate)")
    ax_rate.legend(fontsize=8)
    ax_rate.grid(alpha=0.3, axis="y")
    for i, (name, values, spans) in enumerate(lat.values()):
        ax_lat.bar([x + (i - 0.5) * width for x in range(len(stacks))], [v / 1e6 for v in values], width, label=name,
                   yerr=[[d / 1e6 for d in side] for side in zip(*spans)] if spans else None, capsize=2,
                   error_kw={"linewidth": 0.8})
    ax_lat.set_xticks(range(len(stacks)))
    ax_lat.set_xticklabels(stacks)
    ax_lat.set_yscale("log")
    ax_lat.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax_lat.set_ylabel("p99 latency at the fixed rate (ms)")
    ax_lat.legend(fontsize=8)
    ax_lat.grid(alpha=0.3, axis="y")
    fig.suptitle("mqlab against each broker's own tool")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
