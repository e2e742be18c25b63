"""The message envelope: a small, documented JSON object that any client can read and write.

One envelope is one UTF-8 JSON object::

    {"mqlab": 1, "id": "<uuid4 hex>", "run": "<run id>", "src": "<producer name>",
     "seq": <int>, "ts_ns": <int>, "body": "<padding text>"}

or, for a message that must fail processing on purpose, with ``"fail": true`` added.

- ``mqlab`` is the format version, always 1.
- ``id`` is unique per message (32 lowercase hex digits); receipts are keyed on it.
- ``run`` groups messages of one produce run (``steady`` for the background trickle).
- ``src`` is the producer's name, ``seq`` its sequence number (0, 1, 2, ... per producer and run).
- ``ts_ns`` is the send time, nanoseconds since the Unix epoch.
- ``body`` is padding so that a message has the size asked for; its content means nothing.
- ``fail`` (optional, boolean, default false): a *poison* message. The lab's consumers fail
  to process it on every attempt, so it is retried ``MQLAB_MAX_DELIVERIES`` times and then
  dead-lettered (``producer --poison-every K`` sets it on every K-th message). Encoders
  leave the key out when it is false; a ``fail`` that is not a boolean makes the message foreign.

Unknown extra keys are ignored, so the format can grow. Anything else that arrives
(plain text, other JSON, binary) is a *foreign* message: :func:`decode` returns None.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass

VERSION = 1
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
# Run ids and producer names become file names and TSV columns on the host.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_PAD = "."


@dataclass(frozen=True)
class Envelope:
    id: str
    run: str
    src: str
    seq: int
    ts_ns: int
    body: str = ""
    fail: bool = False

    def encode(self, size: int = 0) -> bytes:
        """Serialize; pad ``body`` so the result is exactly ``size`` bytes when it can be.

        When ``size`` is smaller than the envelope without padding, the envelope is
        sent as it is (no padding) and is larger than asked.
        """
        data = _dump(self, self.body)
        missing = size - len(data)
        if missing > 0:
            # The padding is ASCII, so one character is one byte inside the JSON string.
            data = _dump(self, self.body + _PAD * missing)
        return data


def _dump(env: Envelope, body: str) -> bytes:
    obj = {"mqlab": VERSION, "id": env.id, "run": env.run, "src": env.src,
           "seq": env.seq, "ts_ns": env.ts_ns, "body": body}
    if env.fail:
        obj["fail"] = True
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


def make(run: str, src: str, seq: int, ts_ns: int | None = None, msg_id: str | None = None,
         fail: bool = False) -> Envelope:
    """A new envelope with a fresh uuid4 id, stamped now unless ``ts_ns`` is given."""
    if not _NAME_RE.match(run):
        raise ValueError(f"run id must be letters, digits, '.', '_' or '-', got {run!r}")
    if not _NAME_RE.match(src):
        raise ValueError(f"producer name must be letters, digits, '.', '_' or '-', got {src!r}")
    return Envelope(
        id=msg_id or uuid.uuid4().hex,
        run=run,
        src=src,
        seq=seq,
        ts_ns=time.time_ns() if ts_ns is None else ts_ns,
        fail=bool(fail),
    )


def valid_run_id(run: str) -> bool:
    return bool(_NAME_RE.match(run))


def decode(data: bytes) -> Envelope | None:
    """The envelope in ``data``, or None for anything that is not one. Never raises."""
    try:
        obj = json.loads(data)
    except (ValueError, TypeError, RecursionError):  # not UTF-8 / not JSON / too deep
        return None
    if not isinstance(obj, dict) or obj.get("mqlab") != VERSION or isinstance(obj.get("mqlab"), bool):
        return None
    msg_id, run, src = obj.get("id"), obj.get("run"), obj.get("src")
    seq, ts_ns, body, fail = obj.get("seq"), obj.get("ts_ns"), obj.get("body", ""), obj.get("fail", False)
    if not (isinstance(msg_id, str) and _ID_RE.match(msg_id)):
        return None
    if not (isinstance(run, str) and _NAME_RE.match(run) and isinstance(src, str) and _NAME_RE.match(src)):
        return None
    if not (_is_int(seq) and _is_int(ts_ns) and seq >= 0 and ts_ns >= 0 and isinstance(body, str)):
        return None
    if not isinstance(fail, bool):
        return None
    return Envelope(id=msg_id, run=run, src=src, seq=seq, ts_ns=ts_ns, body=body, fail=fail)


def poison(seq: int, every: int) -> bool:
    """True for every ``every``-th message (seq ``every-1``, ``2*every-1``, ...); never when 0."""
    return every > 0 and (seq + 1) % every == 0


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
