"""The envelope: round trip, exact sizes, and foreign messages that never raise."""

from __future__ import annotations

import json

import pytest

from mqlab_services import envelope
from mqlab_services.envelope import Envelope


def sample(**changes) -> Envelope:
    fields = dict(run="r1", src="p1", seq=7, ts_ns=1_700_000_000_000_000_000, msg_id="ab" * 16)
    fields.update(changes)
    return envelope.make(**fields)


def test_make_fills_in_a_uuid4_hex_id_and_the_time():
    env = envelope.make("r1", "p1", 1)
    assert len(env.id) == 32 and int(env.id, 16) >= 0
    assert env.id != envelope.make("r1", "p1", 1).id
    assert env.ts_ns > 1_600_000_000 * 10**9


def test_the_encoding_is_the_documented_json():
    obj = json.loads(sample().encode())
    assert obj == {"mqlab": 1, "id": "ab" * 16, "run": "r1", "src": "p1", "seq": 7,
                   "ts_ns": 1_700_000_000_000_000_000, "body": ""}


def test_round_trip():
    env = sample()
    assert envelope.decode(env.encode()) == env


@pytest.mark.parametrize("size", [150, 151, 256, 1000, 65536])
def test_encode_pads_to_the_exact_size(size):
    data = sample().encode(size)
    assert len(data) == size
    decoded = envelope.decode(data)
    assert decoded is not None and decoded.id == "ab" * 16 and decoded.seq == 7


def test_a_size_below_the_bare_envelope_sends_it_unpadded():
    bare = sample().encode()
    assert sample().encode(10) == bare
    assert sample().encode(len(bare)) == bare


@pytest.mark.parametrize("data", [
    b"hello",
    b"",
    b"\xff\xfe\x00binary\x80",
    b"{not json",
    b"42",
    b'"text"',
    b"[1, 2]",
    b'{"mqlab": 2, "id": "' + b"a" * 32 + b'", "run": "r", "src": "p", "seq": 1, "ts_ns": 1}',
    b'{"mqlab": true, "id": "' + b"a" * 32 + b'", "run": "r", "src": "p", "seq": 1, "ts_ns": 1}',
    b'{"mqlab": 1, "id": "short", "run": "r", "src": "p", "seq": 1, "ts_ns": 1}',
    b'{"mqlab": 1, "id": "' + b"a" * 32 + b'", "run": "../x", "src": "p", "seq": 1, "ts_ns": 1}',
    b'{"mqlab": 1, "id": "' + b"a" * 32 + b'", "run": "r", "src": "p\\tq", "seq": 1, "ts_ns": 1}',
    b'{"mqlab": 1, "id": "' + b"a" * 32 + b'", "run": "r", "src": "p", "seq": "1", "ts_ns": 1}',
    b'{"mqlab": 1, "id": "' + b"a" * 32 + b'", "run": "r", "src": "p", "seq": 1.5, "ts_ns": 1}',
    b'{"mqlab": 1, "id": "' + b"a" * 32 + b'", "run": "r", "src": "p", "seq": -1, "ts_ns": 1}',
    b'{"mqlab": 1, "id": "' + b"a" * 32 + b'", "run": "r", "src": "p", "seq": 1}',
    b'{"mqlab": 1, "id": "' + b"a" * 32 + b'", "run": "r", "src": "p", "seq": 1, "ts_ns": 1, "body": 5}',
    b"[" * 100_000,
])
def test_foreign_messages_decode_to_none(data):
    assert envelope.decode(data) is None


def test_unknown_extra_keys_are_ignored():
    obj = json.loads(sample().encode())
    obj["trace"] = "x"
    assert envelope.decode(json.dumps(obj).encode()) == sample()


def test_make_refuses_names_that_cannot_be_file_names():
    with pytest.raises(ValueError, match="run id"):
        envelope.make("a/b", "p1", 1)
    with pytest.raises(ValueError, match="producer name"):
        envelope.make("r1", "p 1", 1)


def test_a_poison_envelope_carries_fail_true_and_round_trips():
    data = sample(fail=True).encode(300)
    assert len(data) == 300
    assert json.loads(data)["fail"] is True
    assert envelope.decode(data).fail is True
    assert "fail" not in json.loads(sample().encode())  # left out when false
    assert envelope.decode(sample().encode()).fail is False


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_a_fail_that_is_not_a_boolean_makes_the_message_foreign(value):
    obj = json.loads(sample().encode())
    obj["fail"] = value
    assert envelope.decode(json.dumps(obj).encode()) is None


@pytest.mark.parametrize("every, poisoned", [(0, []), (1, list(range(10))), (5, [4, 9]), (3, [2, 5, 8])])
def test_poison_marks_every_kth_message(every, poisoned):
    assert [seq for seq in range(10) if envelope.poison(seq, every)] == poisoned


def reference_encoding(env: Envelope, size: int) -> bytes:
    """What json.dumps gives for the envelope, padded the way the format says."""
    def dump(body: str) -> bytes:
        obj = {"mqlab": 1, "id": env.id, "run": env.run, "src": env.src, "seq": env.seq, "ts_ns": env.ts_ns,
               "body": body}
        if env.fail:
            obj["fail"] = True
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    data = dump(env.body)
    return dump(env.body + "." * (size - len(data))) if size > len(data) else data


@pytest.mark.parametrize("body", ["", "hello", 'quote " and backslash \\', "tab\tnew\nline", "ünïcødé ☃", "\x00\x1f"])
@pytest.mark.parametrize("size", [0, 60, 150, 151, 1024])
@pytest.mark.parametrize("fail", [False, True])
def test_encoding_is_byte_for_byte_what_json_dumps_gives(body, size, fail):
    env = Envelope(id="0f" * 16, run="run-1.a_b", src="producer-2", seq=123456, ts_ns=1_764_625_000_123_456_789,
                   body=body, fail=fail)
    assert env.encode(size) == reference_encoding(env, size)
    assert envelope.decode(env.encode(size)).body.startswith(body)


def test_new_ids_are_random_version_4_uuids():
    import uuid

    ids = {envelope.new_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for text in list(ids)[:200]:
        parsed = uuid.UUID(hex=text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and parsed.hex == text


def _variants() -> list[bytes]:
    """Canonical envelopes and near misses: each must decode as json.loads would read it."""
    base = Envelope(id="0a" * 16, run="run-1", src="p.1", seq=42, ts_ns=1_764_625_000_123_456_789)
    out = [base.encode(size) for size in (0, 150, 1024, 70_000)]
    out += [base._replace(fail=True).encode(300), base._replace(seq=0, ts_ns=0).encode(200),
            base._replace(body="not padding").encode(300), base._replace(body="..x..").encode(),
            base._replace(body='.."').encode()]
    # Cut short right after '"body":"': the tail would reuse the body's opening quote.
    out += [base.encode().replace(b'"body":""}', b'"body":"}'),
            base._replace(fail=True).encode().replace(b'"body":"","fail":true}', b'"body":","fail":true}')]
    canonical = base.encode(300)
    for old, new in ((b'"seq":42', b'"seq":042'), (b'"seq":42', b'"seq":-42'), (b'"mqlab":1', b'"mqlab":2'),
                     (b'"mqlab":1', b'"mqlab":true'), (b'"id":"0a', b'"id":"0A'), (b'"run":"run-1"', b'"run":".run"'),
                     (b'"}', b'","fail":false}'), (b'"}', b'","fail":1}'), (b'"}', b'","x":1}'), (b'"}', b'" }'),
                     (b'"}', b'"}\n'), (b'"}', b'"'), (b'....', b'..\\u002e..'), (b'....', b'..\x01..'),
                     (b'"ts_ns":1764', b'"ts_ns":1.764'), (b'{"mqlab"', b' {"mqlab"')):
        out.append(canonical.replace(old, new, 1))
    return out


@pytest.mark.parametrize("data", _variants())
def test_the_fast_reading_of_canonical_envelopes_agrees_with_json(data):
    assert envelope.decode(data) == envelope._decode_json(data)


@pytest.mark.parametrize("data", [
    b'{"mqlab":1,"id":"' + b"0a" * 16 + b'","run":"run-1","src":"p.1","seq":42,"ts_ns":1,"body":"}',
    b'{"mqlab":1,"id":"' + b"0a" * 16 + b'","run":"run-1","src":"p.1","seq":42,"ts_ns":1,"body":","fail":true}'])
def test_an_envelope_cut_short_after_the_bodys_opening_quote_is_foreign(data):
    assert envelope.decode(data) is None


@pytest.mark.parametrize("size", [0, 100, 1024])
@pytest.mark.parametrize("fail", [False, True])
def test_a_stamper_writes_what_make_and_encode_write(size, fail):
    stamper = envelope.Stamper("run-7", "producer-1", size)
    msg_id, data = stamper.stamp(5, 1_764_625_000_000_000_001, fail)
    env = envelope.make("run-7", "producer-1", 5, ts_ns=1_764_625_000_000_000_001, msg_id=msg_id, fail=fail)
    assert data == env.encode(size) and envelope.decode(data) == env._replace(body=envelope.decode(data).body)
    assert stamper.stamp(5, 1)[0] != stamper.stamp(5, 1)[0]
    with pytest.raises(ValueError, match="producer name"):
        envelope.Stamper("run-7", "../x", size)


def test_a_stampers_ids_are_unique_and_two_stampers_do_not_share_them():
    first, second = envelope.Stamper("run-7", "producer-1", 0), envelope.Stamper("run-7", "producer-1", 0)
    ids = [first.stamp(i, 1)[0] for i in range(5000)] + [second.stamp(i, 1)[0] for i in range(5000)]
    assert len(set(ids)) == 10_000
    assert all(envelope._ID_RE.fullmatch(i) for i in ids)
    assert ids[0][:16] != ids[5000][:16]  # each stamper draws its own prefix
    assert int(ids[4999][16:], 16) - int(ids[0][16:], 16) == 4999  # then counts


def test_a_stamper_pads_exactly_around_the_size_of_an_unpadded_envelope():
    """Sizes just below, at and above the envelope's own length, as its seq grows a digit."""
    for seq in (9, 10, 99_999, 100_000):
        natural = len(envelope.make("run-7", "p-1", seq, ts_ns=1, msg_id="0" * 32).encode(0))
        for size in range(natural - 2, natural + 3):
            stamper = envelope.Stamper("run-7", "p-1", size)
            msg_id, data = stamper.stamp(seq, 1)
            assert data == envelope.make("run-7", "p-1", seq, ts_ns=1, msg_id=msg_id).encode(size), (seq, size)
            assert len(data) == max(size, natural)
