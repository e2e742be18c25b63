import pytest

from mqlab import config
from mqlab.errors import UsageError
from mqlab.faults import chaos
from mqlab.stack import expose, lifecycle
from mqlab.stacks import get_stack


def cfg(tmp_path, **values):
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return config.load(tmp_path, False, {})


def test_unknown_fault_lists_the_faults():
    with pytest.raises(UsageError) as err:
        chaos.check_fault("unplug")
    for fault in ("kill-broker", "pause-broker", "partition", "slow-network"):
        assert fault in str(err.value)


@pytest.mark.parametrize("value", [-1, 601])
def test_duration_is_bounded(value):
    with pytest.raises(UsageError, match="--duration must be from 0 to 600"):
        chaos.check_duration(value, "pause-broker")


def test_default_durations_come_from_the_fault():
    assert chaos.check_duration(None, "pause-broker") > 10  # longer than the services' heartbeat


def test_expose_refused_with_guest(tmp_path):
    with pytest.raises(UsageError, match="default guest credentials"):
        expose.check_expose(cfg(tmp_path, RABBITMQ_USER="guest", RABBITMQ_PASSWORD="x"), get_stack("rabbitmq"))


def test_expose_refused_without_redis_password_and_for_kafka(tmp_path):
    with pytest.raises(UsageError, match="no password"):
        expose.check_expose(cfg(tmp_path, REDIS_PASSWORD=""), get_stack("redis"))
    with pytest.raises(UsageError, match="no authentication"):
        expose.check_expose(cfg(tmp_path), get_stack("kafka-zookeeper"))


def test_expose_binds_where_configured(tmp_path):
    c = cfg(tmp_path, REDIS_PASSWORD="pw", MQLAB_EXPOSE_BIND="127.0.0.2")
    assert expose.check_expose(c, get_stack("redis")) == {"MQLAB_BIND": "127.0.0.2"}
    c = cfg(tmp_path, RABBITMQ_USER="lab", RABBITMQ_PASSWORD="pw")
    assert expose.check_expose(c, get_stack("rabbitmq")) == {"MQLAB_BIND": "0.0.0.0"}


def test_unknown_mode_lists_the_modes():
    with pytest.raises(UsageError, match="unknown mode 'x' for kafka: choose one of group, fanout, keyed, autocommit"):
        lifecycle.check_mode(get_stack("kafka"), "x")
