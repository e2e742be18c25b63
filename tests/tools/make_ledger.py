"""Write a large, realistic run directory of receipt files, to measure `invoke verify` with.

One producer (``sent-producer-1.tsv``), two competing consumers (``recv-consumer-1.tsv`` and
``recv-consumer-2.tsv``) and a ``run.json`` of a Redis ``stream`` run, in the receipt format of
``mqlab_services.ledger``: uuid4-style ids, nanosecond timestamps, a few messages lost and a
few delivered again (marked ``redelivered``, at the end of a consumer's file).

The lines are built with numpy: every line of a block has the same width (the timestamps all
have 19 digits, and a block holds the sequence numbers of one digit count), so a block is one
byte matrix. Ten million messages take a few seconds.

    python tests/tools/make_ledger.py /tmp/ledger big --count 10000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
PRODUCER = "producer-1"
CONSUMERS = ("consumer-1", "consumer-2")
CHUNK = 1_000_000


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as ASCII digits, ``width`` of them each (no leading zeros if wide enough)."""
    out = np.empty((len(values), width), dtype=np.uint8)
    v = values.astype(np.int64)
    for j in range(width - 1, -1, -1):
        out[:, j] = v % 10 + 48
        v = v // 10
    return out


def hex_ids(raw: np.ndarray) -> np.ndarray:
    """16 random bytes a row as 32 lowercase hex characters."""
    out = np.empty((len(raw), 32), dtype=np.uint8)
    out[:, 0::2] = HEX[raw >> 4]
    out[:, 1::2] = HEX[raw & 15]
    return out


def block(columns: list[np.ndarray | bytes]) -> bytes:
    """One byte matrix from fixed-width columns (arrays) and constant separators (bytes)."""
    n = next(len(c) for c in columns if isinstance(c, np.ndarray))
    parts = [c if isinstance(c, np.ndarray) else np.tile(np.frombuffer(c, dtype=np.uint8), (n, 1))
             for c in columns]
    return np.hstack(parts).tobytes()


def digit_blocks(lo: int, hi: int):
    """[lo, hi) split into ranges whose numbers have the same count of digits."""
    while lo < hi:
        width = len(str(lo))
        end = min(hi, 10 ** width, lo + CHUNK)
        yield lo, end, width
        lo = end


def write_run(directory: Path, count: int, lost: float, redelivered: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    start_ns = time.time_ns() - 3_600 * 10**9
    sent = (directory / f"sent-{PRODUCER}.tsv").open("wb")
    recv = [(directory / f"recv-{name}.tsv").open("wb") for name in CONSUMERS]
    again: list[list[bytes]] = [[] for _ in CONSUMERS]
    src = PRODUCER.encode()
    with sent, recv[0], recv[1]:
        for lo, hi, width in digit_blocks(0, count):
            n = hi - lo
            seq = np.arange(lo, hi, dtype=np.int64)
            ids = hex_ids(rng.integers(0, 256, size=(n, 16), dtype=np.uint8))
            send_ns = start_ns + seq * 10_000 + rng.integers(0, 5_000, n)  # 100,000 a second
            ack_ns = send_ns + rng.integers(200_000, 3_000_000, n)
            recv_ns = send_ns + rng.lognormal(14.5, 0.6, n).astype(np.int64)  # about 2 ms
            seq_digits, send_digits = digits(seq, width), digits(send_ns, 19)
            sent.write(block([ids, b"\t", seq_digits, b"\t", send_digits, b"\t", digits(ack_ns, 19), b"\t\n"]))
            consumer = rng.integers(0, len(CONSUMERS), n)
            delivered = rng.random(n) >= lost
            recv_digits = digits(recv_ns, 19)
            for c, fh in enumerate(recv):
                rows = (consumer == c) & delivered
                fh.write(block([ids[rows], b"\t" + src + b"\t", seq_digits[rows], b"\t", send_digits[rows], b"\t",
                                recv_digits[rows], b"\t\t\n"]))
            # A few are delivered again later, to the other consumer, after a reclaim.
            for i in np.flatnonzero(delivered & (rng.random(n) < redelivered)):
                line = b"\t".join([ids[i].tobytes(), src, str(seq[i]).encode(), send_digits[i].tobytes(),
                                   str(int(recv_ns[i]) + 30 * 10**9).encode(), b"", b"redelivered"]) + b"\n"
                again[1 - consumer[i]].append(line)
        for fh, lines in zip(recv, again):
            fh.write(b"".join(lines))
    info = {"stack": "redis", "mode": "stream", "count": count}
    (directory / "run.json").write_text(json.dumps(info, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ledger", type=Path, help="the ledger directory (the run goes into LEDGER/RUN)")
    parser.add_argument("run", help="the run id")
    parser.add_argument("--count", type=int, default=1_000_000, help="messages sent (default 1,000,000)")
    parser.add_argument("--lost", type=float, default=0.0001, help="share of the messages never received")
    parser.add_argument("--redelivered", type=float, default=0.0005, help="share delivered a second time")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    began = time.monotonic()
    write_run(args.ledger / args.run, args.count, args.lost, args.redelivered, args.seed)
    print(f"wrote {args.count:,} messages to {args.ledger / args.run} in {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
