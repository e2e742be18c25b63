"""Names and ids are matched whole: a trailing newline never reaches a receipt line or a file name."""

from __future__ import annotations

import json

import pytest

from mqlab_services import envelope, producer
from mqlab_services.settings import Settings, SettingsError

ID = "ab" * 16


def json_envelope(**changes) -> bytes:
    obj = {"mqlab": 1, "id": ID, "run": "r1", "src": "p1", "seq": 1, "ts_ns": 1, **changes}
    return json.dumps(obj).encode()


def test_the_names_and_ids_used_below_are_valid_without_the_newline():
    assert envelope.valid_run_id("r1") and envelope.decode(json_envelope()) is not None
    assert Settings.from_env({"MQLAB_BROKER": "redis"}, hostname="host-1").name == "host-1"


@pytest.mark.parametrize("field", ["id", "run", "src"])
def test_an_envelope_whose_id_or_name_ends_in_a_newline_is_foreign(field):
    value = {"id": ID, "run": "r1", "src": "p1"}[field] + "\n"
    assert envelope.decode(json_envelope(**{field: value})) is None


def test_make_and_stamper_refuse_a_name_with_a_trailing_newline():
    with pytest.raises(ValueError, match="run id"):
        envelope.make("r1\n", "p1", 1)
    with pytest.raises(ValueError, match="producer name"):
        envelope.make("r1", "p1\n", 1)
    with pytest.raises(ValueError, match="producer name"):
        envelope.Stamper("r1", "p1\n", 100)


def test_a_run_id_with_a_trailing_newline_is_refused(capsys):
    assert not envelope.valid_run_id("r1\n")
    with pytest.raises(SystemExit):
        producer.build_parser().parse_args(["--run-id", "r1\n"])
    assert "--run-id" in capsys.readouterr().err


def test_a_service_name_with_a_trailing_newline_is_refused():
    # MQLAB_NAME is stripped; its default, the hostname, is not.
    with pytest.raises(SettingsError, match="MQLAB_NAME"):
        Settings.from_env({"MQLAB_BROKER": "redis"}, hostname="host-1\n")
