"""The benchmark service: a timed producer or consumer that writes its measurements as JSON.

::

    bench producer --out DIR --trial ID --start EPOCH_S --warmup S --duration S --size BYTES [--rate R]
    bench consumer --out DIR --trial ID --start EPOCH_S --warmup S --duration S [--drain S]

Settings (broker, URL, mode, queue/stream/topic, MQLAB_BATCH, ...) come from the ``MQLAB_*``
variables, as for the producer and the consumer. ``--start`` is a wall-clock time
(``time.time()``) shared by every producer and consumer of a trial; the measurement window
is ``[start + warmup, end)`` with ``end = start + warmup + duration``.

Producer: connects, waits for ``start`` and sends mqlab envelopes (run id = the trial id,
padded to ``--size`` like the lab's producer) until ``end``. With ``--rate R`` message ``i``
is due at ``start + i/R`` and its ``ts_ns`` is that scheduled time, not the actual send time:
a producer that falls behind sends every due message (up to MQLAB_BATCH per publish) as fast
as it can, so the time it fell behind shows in the latencies (no coordinated omission).
Without ``--rate`` each publish sends MQLAB_BATCH messages stamped when they were made. The
"ack" latency of a confirmed message is its confirm time minus ``ts_ns``; a message the broker
did not confirm (or refused) counts as ``failed`` and is not sent again.

Consumer: consumes until ``end`` has passed and no message of the trial came for a second,
or until ``end + drain``, or SIGTERM. Its "e2e" latency is the receipt time minus ``ts_ns``.
Anything that is not an envelope of this trial counts as ``other``. It keeps a status file
like the consumer's (role ``bench-consumer``, see status.py), so the host can start the
producers once it is subscribed.

Both write ``<out>/<role>-<name>.json`` at the end (atomically)::

    {"schema": 1, "role", "name", "broker", "mode", "client", "trial", "start", "warmup",
     "duration", "rate", "size", "bytes_per_message", "series", "window_count", "window_bytes",
     "total", "failed" (producer) | "other" (consumer), "latency", "error"}

``series[k]`` counts messages in second ``k`` from ``start``: acked ones by scheduled (or
creation) second on the producer, received ones by receipt second on the consumer (which
may go past ``warmup + duration``, into the drain). ``window_count``/``window_bytes`` and the
latencies count only messages whose ``ts_ns`` is inside the window. ``latency`` holds
count, min, p50, p90, p99, p999, max (ns, integers), mean and ``hdr``, the HdrHistogram
(1 us to 1 h, 3 significant digits) as its base64 ``encode()`` string. The consumer knows
neither the rate (``null``) nor the requested size: its ``size`` is the size it received.
Exit code 0, or 1 with ``"error"`` set (broker lost, could not connect, stopped by a signal
before the end; a consumer stopped during the drain is fine).

The parts: ``trial`` (the harness: the window, start and stop, the status file, running a
trial and writing its result), ``counting`` (per-batch counting and latency histograms),
``producer`` and ``consumer`` (the lab's and the bare client's trials of each role) and
``cli`` (the arguments, and the table of trials that ``main`` picks from).
"""

from .cli import TRIALS, build_parser, main
from .consumer import BareConsumer, BenchConsumer
from .counting import DIGITS, HIGHEST_NS, LOWEST_NS, NS, Latency, Tally
from .producer import BareProducer, BenchProducer
from .trial import SCHEMA, ConsumerTrial, ProducerTrial, Trial, client_name, result_path, write_result

__all__ = ["DIGITS", "HIGHEST_NS", "LOWEST_NS", "NS", "SCHEMA", "TRIALS", "BareConsumer", "BareProducer",
           "BenchConsumer", "BenchProducer", "ConsumerTrial", "Latency", "ProducerTrial", "Tally", "Trial",
           "build_parser", "client_name", "main", "result_path", "write_result"]
