"""The message envelope: a small, documented JSON object that any client can read and write.

One envelope is one UTF-8 JSON object::

    {"mqlab": 1, "id": "<uuid4 hex>", "run": "<run id>", "src": "<producer name>",
     "seq": <int>, "ts_ns": <int>, "body": "<padding text>"}

or, for a message that must fail processing on purpose, with ``"fail": true`` added.

- ``mqlab`` is the format version, always 1.
- ``id`` is unique per message (32 lowercase hex digits); receipts are keyed on it. Nothing
  else is promised of it: :func:`make` gives a random (version 4) UUID; a producer's
  :class:`Stamper` gives 64 random bits of its own followed by a 64-bit counter, which is as
  unique and costs no system call per message.
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

import functools
import itertools
import json
import os
import re
import time
from json.encoder import encode_basestring_ascii as _quote  # the escaper json.dumps uses
from typing import NamedTuple

VERSION = 1
# Both are used with fullmatch: "$" would also accept a trailing newline.
_ID_RE = re.compile(r"[0-9a-f]{32}")
# Run ids and producer names become file names and TSV columns on the host.
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_PAD = "."
# A random (version 4) UUID from 128 random bits: the version nibble 4, the variant bits 10.
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_id() -> str:
    """A fresh uuid4 as 32 lowercase hex digits (what ``uuid.uuid4().hex`` gives, in half the time)."""
    return "%032x" % (int.from_bytes(os.urandom(16), "big") & _V4_CLEAR | _V4_SET)


@functools.lru_cache(maxsize=4096)
def _valid_name(name: str) -> bool:
    # A producer sends thousands of messages per name: check each name once.
    return bool(_NAME_RE.fullmatch(name))


class Envelope(NamedTuple):
    """One message's envelope (immutable; a named tuple because services make and read one per message)."""

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
        return _encoded(_quote(self.id), _names(self.run, self.src), self.seq, self.ts_ns, _quote(self.body),
                        self.fail, size)


def _names(run: str, src: str) -> str:
    return f',"run":{_quote(run)},"src":{_quote(src)}'


def _encoded(quoted_id: str, names: str, seq: int, ts_ns: int, quoted_body: str, fail: bool, size: int) -> bytes:
    # The bytes of json.dumps(..., separators=(",", ":"), ensure_ascii=True) for the keys in
    # this order, written directly: it is the producer's hottest path.
    head = f'{{"mqlab":{VERSION},"id":{quoted_id}{names},"seq":{int(seq)},"ts_ns":{int(ts_ns)},"body":{quoted_body}'
    tail = ',"fail":true}' if fail else "}"
    missing = size - len(head) - len(tail)
    if missing > 0:
        # The padding is ASCII, so one character is one byte inside the JSON string.
        head = head[:-1] + _PAD * missing + '"'
    return (head + tail).encode("ascii")


class Stamper:
    """The messages of one producer in one run, padded to one size: ``stamp(seq, ts_ns)`` gives a
    new id and the encoded envelope (the bytes of ``make(...).encode(size)``) without making an
    Envelope or checking the names again.

    Its ids are 16 hex digits drawn once from the system's random source, then a 16-digit
    counter: two stampers share a prefix with odds of 2**-64 a pair, and one stamper never
    repeats an id. Drawing 128 bits per message instead was a sixth of the producer's time."""

    def __init__(self, run: str, src: str, size: int):
        _check_names(run, src)
        self.run, self.src, self.size = run, src, size
        self._names = _names(run, src)
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()
        self._pads: dict[int, bytes] = {}  # the padding of each length seen: a few lengths per run
        # _encoded's head as one %-format, everything but the counter, seq and ts_ns filled in
        # once (%d formats a number as int() does); the id sits at a fixed place in it.
        opening = f'{{"mqlab":{VERSION},"id":"'
        self._head = (opening + self._prefix).replace("%", "%%") + '%016x"' + self._names.replace("%", "%%") + \
            ',"seq":%d,"ts_ns":%d,"body":"'
        self._id_at = len(opening)

    def stamp(self, seq: int, ts_ns: int, fail: bool = False) -> tuple[str, bytes]:
        head = self._head % (next(self._counter), seq, ts_ns)
        msg_id = head[self._id_at:self._id_at + 32]
        if fail:
            return msg_id, _encoded(f'"{msg_id}"', self._names, seq, ts_ns, '""', fail, self.size)
        # _encoded's bytes, built as bytes around a padding made once per length: no copy of the
        # body in str, none in the ASCII encoding (a tenth of the confluent-kafka producer's time).
        missing = self.size - len(head) - 2  # the body's closing quote and the closing brace
        pad = self._pads.get(missing)
        if pad is None:
            pad = self._pads[missing] = _PAD.encode("ascii") * max(missing, 0)
        return msg_id, b"".join((head.encode("ascii"), pad, b'"}'))


def make(run: str, src: str, seq: int, ts_ns: int | None = None, msg_id: str | None = None,
         fail: bool = False) -> Envelope:
    """A new envelope with a fresh uuid4 id, stamped now unless ``ts_ns`` is given."""
    _check_names(run, src)
    return Envelope(
        id=msg_id or new_id(),
        run=run,
        src=src,
        seq=seq,
        ts_ns=time.time_ns() if ts_ns is None else ts_ns,
        fail=bool(fail),
    )


def _check_names(run: str, src: str) -> None:
    if not _valid_name(run):
        raise ValueError(f"run id must be letters, digits, '.', '_' or '-', got {run!r}")
    if not _valid_name(src):
        raise ValueError(f"producer name must be letters, digits, '.', '_' or '-', got {src!r}")


#: The run id of a stack's own producer service (one that runs without a --count).
STEADY_RUN = "steady"


def valid_run_id(run: str) -> bool:
    return isinstance(run, str) and _valid_name(run)


# The exact bytes Envelope.encode writes for a body of padding (or nothing): read without a JSON
# parser, which would spend most of its time scanning the padding. Anything else takes the
# general path; both give the same answer for these bytes (tests/unit/test_envelope.py).
_CANONICAL_HEAD = re.compile(
    rb'\{"mqlab":1,"id":"([0-9a-f]{32})","run":"([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",'
    rb'"src":"([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})","seq":(0|[1-9][0-9]{0,18}),"ts_ns":(0|[1-9][0-9]{0,19}),'
    rb'"body":"')
_TAILS = ((b'"}', False), (b'","fail":true}', True))
_PADDING = _PAD.encode() * 65536


def decode(data: bytes) -> Envelope | None:
    """The envelope in ``data``, or None for anything that is not one. Never raises."""
    m = _CANONICAL_HEAD.match(data) if isinstance(data, bytes) else None
    if m:
        for tail, fail in _TAILS:
            end = len(data) - len(tail)
            # The tail opens with the body's closing quote, which must not be its opening one
            # (m.end() - 1): a message cut short after '"body":"' is not an envelope.
            if end >= m.end() and data.endswith(tail):
                body = data[m.end():end]
                if body == _PADDING[:len(body)] or body.count(b".") == len(body):  # padding only
                    msg_id, run, src, seq, ts_ns = m.groups()
                    return Envelope(id=msg_id.decode(), run=run.decode(), src=src.decode(), seq=int(seq),
                                    ts_ns=int(ts_ns), body=body.decode(), fail=fail)
    return _decode_json(data)


def _decode_json(data) -> Envelope | None:
    obj = _envelope_object(data)
    if obj is None:
        return None
    fields = (obj.get("id"), obj.get("run"), obj.get("src"), obj.get("seq"), obj.get("ts_ns"),
              obj.get("body", ""), obj.get("fail", False))
    return Envelope(*fields) if _valid_fields(*fields) else None


def _envelope_object(data) -> dict | None:
    """The JSON object in ``data`` if it says it is an envelope of this version."""
    try:
        obj = json.loads(data)
    except (ValueError, TypeError, RecursionError):  # not UTF-8 / not JSON / too deep
        return None
    if not isinstance(obj, dict) or obj.get("mqlab") != VERSION or isinstance(obj.get("mqlab"), bool):
        return None
    return obj


def _valid_fields(msg_id, run, src, seq, ts_ns, body, fail) -> bool:
    return (isinstance(msg_id, str) and bool(_ID_RE.fullmatch(msg_id)) and valid_run_id(run) and valid_run_id(src)
            and _is_count(seq) and _is_count(ts_ns) and isinstance(body, str) and isinstance(fail, bool))


def poison(seq: int, every: int) -> bool:
    """True for every ``every``-th message (seq ``every-1``, ``2*every-1``, ...); never when 0."""
    return every > 0 and (seq + 1) % every == 0


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
