"""The ``--metrics`` and ``--ui`` profiles of ``invoke up``: which stack offers what, and where each UI is.

Each is a compose profile of the stack's file (services from ``compose/profiles.yml``):

- ``metrics``: Prometheus on 127.0.0.1:PROMETHEUS_PORT, the broker's exporter where there is one
  (RabbitMQ's own plugin, redis_exporter), and a ``/metrics`` endpoint in every producer and
  consumer (MQLAB_METRICS_PORT, kept for ``scale`` and ``produce`` like the mode);
- ``ui``: the broker's web UI on a loopback port; RabbitMQ's management UI is always there.

    extras = profiles.select(stack, metrics=True, ui=False, offline=config.offline)
    extras.names, extras.ports, extras.images, extras.settings
    for line in profiles.addresses(config, stack, extras): print(line)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import LabConfig
from ..errors import UsageError
from ..stacks import Stack

#: Where the services serve /metrics under --metrics (compose/config/prometheus/services.yml scrapes it).
METRICS_PORT = "9100"


@dataclass(frozen=True)
class UI:
    """A web UI on a loopback port."""

    name: str
    port_key: str  # .env key of its host port
    port: int  # the default of that key
    service: str = ""  # its compose service; "" when the broker itself serves it
    image_key: str = ""  # .env key of its image
    online_only: str = ""  # why the images built from packages cannot run it; "" when they can

    def url(self, config: LabConfig) -> str:
        return f"http://127.0.0.1:{config.integer(self.port_key, self.port, 1, 65535)}/"


PROMETHEUS = UI("Prometheus", "PROMETHEUS_PORT", 9090, "prometheus", "PROMETHEUS_IMAGE")
MANAGEMENT = UI("RabbitMQ management UI", "RABBITMQ_UI_PORT", 15672)
REDIS_COMMANDER = UI("redis-commander", "REDIS_UI_PORT", 8081, "redis-commander", "REDIS_COMMANDER_IMAGE")
KAFKA_UI = UI("kafka-ui", "KAFKA_UI_PORT", 8080, "kafka-ui", "KAFKA_UI_IMAGE",
              online_only="kafbat/kafka-ui is published only as an image, not as a package that the images "
                          "built from packages could be made of")


@dataclass(frozen=True)
class Offer:
    """What one stack offers: the exporters of --metrics (compose services, with the .env keys of
    their images), or None for no --metrics; the UI of --ui, or None."""

    exporters: tuple[tuple[str, str], ...] | None = None
    ui: UI | None = None


OFFERS: dict[str, Offer] = {
    # RabbitMQ's exporter is its own rabbitmq_prometheus plugin, on in both images.
    "rabbitmq": Offer(exporters=(), ui=MANAGEMENT),
    "rabbitmq-cluster": Offer(exporters=(), ui=MANAGEMENT),
    "redis": Offer(exporters=(("redis-exporter", "REDIS_EXPORTER_IMAGE"),), ui=REDIS_COMMANDER),
    "redis-sentinel": Offer(exporters=(("redis-exporter", "REDIS_EXPORTER_IMAGE"),), ui=REDIS_COMMANDER),
    # No JMX exporter in the Kafka images: Kafka is seen through its clients (consumer lag).
    "kafka": Offer(exporters=(), ui=KAFKA_UI),
    "kafka-cluster": Offer(exporters=(), ui=KAFKA_UI),
    "kafka-zookeeper": Offer(exporters=(), ui=KAFKA_UI),
}


@dataclass(frozen=True)
class Profiles:
    """The profiles chosen for one ``invoke up``."""

    names: tuple[str, ...] = ()  # compose profiles to enable
    uis: tuple[UI, ...] = ()  # what they serve on loopback ports
    services: tuple[str, ...] = ()  # the compose services they add
    images: tuple[str, ...] = ()  # .env keys of those services' images
    settings: tuple[tuple[str, str], ...] = ()  # the services' settings (STACK_SETTINGS)

    @property
    def ports(self) -> tuple[tuple[str, int], ...]:
        """(.env key, default) of the host ports they publish."""
        return tuple((ui.port_key, ui.port) for ui in self.uis if ui.service)


def offering(what: str, has) -> str:
    return ", ".join(name for name, offer in OFFERS.items() if has(offer)) + f" offer {what}"


def select(stack: Stack, metrics: bool = False, ui: bool = False, offline: bool = False) -> Profiles:
    """The profiles for ``--metrics`` and ``--ui`` on ``stack``; a one-line UsageError for what it lacks."""
    offer = OFFERS.get(stack.name, Offer())
    if metrics and offer.exporters is None:
        raise UsageError(f"{stack.name} has no --metrics: "
                         + offering("it", lambda o: o.exporters is not None))
    if ui and offer.ui is None:
        raise UsageError(f"{stack.name} has no --ui: " + offering("one", lambda o: o.ui is not None))
    if ui and offline and offer.ui.online_only:
        raise UsageError(f"--ui on {stack.name} needs a registry: {offer.ui.online_only}; "
                         "leave out --ui, or --offline and MQLAB_OFFLINE")
    names, uis, services, images, settings = [], [], [], [], []
    if metrics:
        names.append("metrics")
        uis.append(PROMETHEUS)
        services += [PROMETHEUS.service, *(service for service, _ in offer.exporters)]
        images += [PROMETHEUS.image_key, *(image for _, image in offer.exporters)]
        settings.append(("MQLAB_METRICS_PORT", METRICS_PORT))
    if ui and offer.ui.service:
        names.append("ui")
        services.append(offer.ui.service)
        images.append(offer.ui.image_key)
    if offer.ui is not None and (ui or not offer.ui.service):
        uis.append(offer.ui)  # a UI the broker serves is always up: always shown
    return Profiles(tuple(names), tuple(uis), tuple(services), tuple(images), tuple(settings))


def addresses(config: LabConfig, profiles: Profiles) -> list[str]:
    """One line per UI that is up, with its loopback address."""
    return [f"{ui.name}: {ui.url(config)}" for ui in profiles.uis]

