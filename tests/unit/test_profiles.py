"""`invoke up --metrics` and `--ui`: which stack offers what, the refusals, the compose lines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import re

import pytest

from mqlab import config as lab_config
from mqlab.errors import UsageError
from mqlab.stack import compose, profiles
from mqlab.stack.lifecycle import STACK_SETTINGS
from mqlab.stacks import STACKS, get_stack
from tests.conftest import ROOT


def test_metrics_on_redis_adds_prometheus_the_exporter_and_the_services_port():
    chosen = profiles.select(get_stack("redis"), metrics=True)
    assert chosen.names == ("metrics",)
    assert chosen.services == ("prometheus", "redis-exporter")
    assert chosen.images == ("PROMETHEUS_IMAGE", "REDIS_EXPORTER_IMAGE")
    assert chosen.ports == (("PROMETHEUS_PORT", 9090),)
    assert dict(chosen.settings) == {"MQLAB_METRICS_PORT": "9100"}
    assert "MQLAB_METRICS_PORT" in STACK_SETTINGS  # so `scale` and `produce` keep it


def test_rabbitmq_needs_no_exporter_and_its_management_ui_is_always_shown():
    plain = profiles.select(get_stack("rabbitmq"))
    assert plain.names == () and [ui.name for ui in plain.uis] == ["RabbitMQ management UI"]
    both = profiles.select(get_stack("rabbitmq"), metrics=True, ui=True)
    assert both.names == ("metrics",) and both.services == ("prometheus",) and both.ports == (("PROMETHEUS_PORT", 9090),)
    assert [ui.name for ui in both.uis] == ["Prometheus", "RabbitMQ management UI"]


def test_without_the_flags_nothing_changes():
    for name in STACKS:
        chosen = profiles.select(get_stack(name))
        assert (chosen.names, chosen.services, chosen.images, chosen.settings) == ((), (), (), ())


def test_ui_on_redis_and_sentinel_is_redis_commander_on_a_loopback_port():
    for name in ("redis", "redis-sentinel"):
        chosen = profiles.select(get_stack(name), ui=True, offline=True)
        assert chosen.names == ("ui",) and chosen.services == ("redis-commander",)
        assert chosen.ports == (("REDIS_UI_PORT", 8081),)
    cfg = lab_config.load(ROOT, False, environ={"REDIS_UI_PORT": "18081"})
    assert profiles.addresses(cfg, chosen) == ["redis-commander: http://127.0.0.1:18081/"]


def test_kafka_ui_is_refused_offline_in_one_line_naming_why():
    assert profiles.select(get_stack("kafka"), ui=True).services == ("kafka-ui",)
    with pytest.raises(UsageError, match=r"^--ui on kafka needs a registry: kafbat/kafka-ui is published only "
                                         r"as an image") as refused:
        profiles.select(get_stack("kafka"), ui=True, offline=True)
    assert "\n" not in str(refused.value)
    # --metrics on Kafka offline is fine: Prometheus is built from packages.
    assert profiles.select(get_stack("kafka"), metrics=True, offline=True).names == ("metrics",)


def test_every_stack_offers_both_profiles():
    for name in STACKS:
        assert profiles.select(get_stack(name), metrics=True).names == ("metrics",)
        assert profiles.select(get_stack(name), ui=True).uis


@pytest.mark.parametrize("flags, message", [
    ({"metrics": True}, "lab-x has no --metrics: rabbitmq, "),
    ({"ui": True}, "lab-x has no --ui: rabbitmq, "),
])
def test_a_stack_without_the_profile_is_refused_in_one_line(flags, message):
    unknown = dataclasses.replace(get_stack("redis"), name="lab-x")
    with pytest.raises(UsageError, match="^" + message):
        profiles.select(unknown, **flags)


def test_every_offer_names_a_stack_and_every_profile_service_is_in_its_compose_file():
    assert set(profiles.OFFERS) <= set(STACKS)
    for name in profiles.OFFERS:
        for flags in ({"metrics": True}, {"ui": True}):
            try:
                chosen = profiles.select(get_stack(name), **flags)
            except UsageError:
                continue
            text = (ROOT / f"compose/{name}.yml").read_text()
            for service in chosen.services:
                block = re.search(rf"^  {service}:\n((?:    .*\n|\n)*)", text, re.M)
                assert block and f'profiles: ["{chosen.names[0]}"]' in block.group(1), (name, service)
            for key, _default in chosen.ports:
                assert key in (ROOT / ".env").read_text()


def test_compose_lines_enable_the_profiles_up_and_all_of_them_down(tmp_path: Path):
    cfg = lab_config.load(ROOT, False)
    stack = get_stack("redis")
    up = compose.up_argv(cfg, stack, 2, ("metrics", "ui"))
    assert up[up.index("up") - 4:up.index("up")] == ["--profile", "metrics", "--profile", "ui"]
    assert "--profile" not in compose.up_argv(cfg, stack, 2)
    down = compose.down_argv(cfg, stack, True)
    assert down[down.index("down") - 2:down.index("down")] == ["--profile", "*"]
    assert "--use-aliases" in compose.produce_argv(cfg, stack, 10, 256, "r1")


def test_every_stack_with_metrics_has_a_prometheus_config_with_the_services_and_the_rules():
    for name, offer in profiles.OFFERS.items():
        if offer.exporters is None:
            continue
        scrape = (ROOT / f"compose/config/prometheus/{name}.yml").read_text()
        assert "\nscrape_config_files: [/etc/prometheus/services.yml]\n" in scrape
        assert "\nrule_files: [/etc/prometheus/rules.yml]\n" in scrape
    services = (ROOT / "compose/config/prometheus/services.yml").read_text()
    assert "- names: [producer, consumer]\n" in services
    assert f"port: {profiles.METRICS_PORT}\n" in services
