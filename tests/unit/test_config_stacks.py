import pytest

from mqlab import config
from mqlab.errors import UsageError
from mqlab.stack import compose, preflight
from mqlab.stacks import STACKS, get_stack, stack_of_project


def make_root(tmp_path, env_text="A=1\n", offline_text=None):
    (tmp_path / ".env").write_text(env_text)
    if offline_text is not None:
        (tmp_path / "images").mkdir()
        (tmp_path / "images" / "offline.env").write_text(offline_text)
    return tmp_path


def test_unknown_stack_lists_valid_ones():
    with pytest.raises(UsageError) as err:
        get_stack("rabbit")
    assert "unknown stack 'rabbit'" in str(err.value)
    for name in STACKS:
        assert name in str(err.value)


def test_stack_of_project():
    assert stack_of_project("mqlab-kafka-zookeeper").name == "kafka-zookeeper"
    assert stack_of_project("other-kafka") is None


def test_env_file_parsing_quotes_comments_and_errors(tmp_path):
    path = tmp_path / "x.env"
    path.write_text("# c\nA=1\nB='two words'\n\nC=\"q\"\n")
    assert config.parse_env_file(path) == {"A": "1", "B": "two words", "C": "q"}
    path.write_text("oops\n")
    with pytest.raises(UsageError, match="x.env:1: expected KEY=VALUE"):
        config.parse_env_file(path)


def test_env_file_is_read_as_compose_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MQLAB_TEST_HOST_VALUE", "from-host")
    path = tmp_path / "x.env"
    path.write_text("export A=1\n"
                    "B=two  # an inline comment\n"
                    "C='single # not a comment'\n"
                    "D=${A}-${MISSING:-fallback}\n"
                    "E=${MQLAB_TEST_HOST_VALUE}\n"
                    "F=\n")
    assert config.parse_env_file(path) == {"A": "1", "B": "two", "C": "single # not a comment",
                                           "D": "1-fallback", "E": "from-host", "F": ""}


def test_environment_overrides_and_offline_layer(tmp_path):
    root = make_root(tmp_path, "IMG=official\nPORT=1\n", "IMG=built\n")
    assert config.load(root, False, {}).get("IMG") == "official"
    assert config.load(root, True, {}).get("IMG") == "built"
    assert config.load(root, True, {"IMG": "mine"}).get("IMG") == "mine"


def test_integer_setting_that_is_not_a_number(tmp_path):
    cfg = config.load(make_root(tmp_path, "RABBITMQ_PORT=fivek\n"), False, {})
    with pytest.raises(UsageError, match="RABBITMQ_PORT='fivek' is not a number"):
        cfg.integer("RABBITMQ_PORT", 5672)
    cfg = config.load(make_root(tmp_path, "RABBITMQ_PORT=70000\n"), False, {})
    with pytest.raises(UsageError, match="out of range"):
        cfg.integer("RABBITMQ_PORT", 5672, 1, 65535)


def test_offline_default_from_environment():
    assert config.offline_default({"MQLAB_OFFLINE": "1"})
    assert config.offline_default({"MQLAB_OFFLINE": "true"})
    assert not config.offline_default({})


def test_compose_argv_uses_env_files_and_stack_file(tmp_path):
    root = make_root(tmp_path, "A=1\n", "B=2\n")
    cfg = config.load(root, True, {})
    argv = compose.up_argv(cfg, get_stack("kafka"), 3)
    assert argv[:3] == ["docker", "compose", "--env-file"]
    assert argv.count("--env-file") == 2 and str(root / "images/offline.env") in argv
    assert argv[argv.index("-f") + 1] == str(root / "compose/kafka.yml")
    assert "--no-build" in argv and argv[-2:] == ["--scale", "consumer=3"]
    online = compose.up_argv(config.load(root, False, {}), get_stack("kafka"), 1)
    assert "--build" in online and str(root / "images/offline.env") not in online


def test_produce_argv_passes_flags_as_separate_words(tmp_path):
    cfg = config.load(make_root(tmp_path), False, {})
    argv = compose.produce_argv(cfg, get_stack("redis"), 10, 300, "run; rm -rf /")
    assert argv[-6:] == ["--count", "10", "--size", "300", "--run-id", "run; rm -rf /"]


@pytest.mark.parametrize("count", [0, -1, 10_000_001])
def test_bad_counts(count):
    with pytest.raises(UsageError, match="--count must be"):
        preflight.check_count(count)


@pytest.mark.parametrize("size", [10, 100_000_000])
def test_bad_sizes(size):
    with pytest.raises(UsageError, match="--size must be"):
        preflight.check_size(size)


def test_parse_int_rejects_words():
    with pytest.raises(UsageError, match="--count must be a number, got 'ten'"):
        preflight.parse_int("ten", "count")


def test_busy_port_is_refused(tmp_path):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg = config.load(make_root(tmp_path, f"REDIS_PORT={port}\n"), False, {})
        with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is in use"):
            preflight.check_ports(cfg, get_stack("redis"))


def test_missing_docker_cli_is_one_line(monkeypatch, tmp_path):
    from mqlab.errors import EngineError

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no docker here
    with pytest.raises(EngineError, match="the docker CLI is not on PATH"):
        preflight.check_compose()
