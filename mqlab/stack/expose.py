"""Exposing a stack beyond loopback: refused while it has no real credentials.

Each broker's module says what it needs (``Broker.check_expose``); this is the one place
that turns a granted exposure into the compose variable that publishes the ports.
"""

from __future__ import annotations

from .. import brokers
from ..config import LabConfig
from ..stacks import Stack


def check_expose(config: LabConfig, stack: Stack) -> dict[str, str]:
    """Exposing a stack beyond loopback needs real credentials; returns the compose variables for it."""
    brokers.of(stack).check_expose(config)
    return {"MQLAB_BIND": config.get("MQLAB_EXPOSE_BIND", "0.0.0.0") or "0.0.0.0"}


def warning(stack: Stack, exposure: dict[str, str]) -> str:
    return (f"exposing {stack.name} on {exposure['MQLAB_BIND']}: anyone who can reach this machine can connect "
            "with the credentials")
