"""The delivery modes on the host side: the services' one table, and topic matching.

Every mode is defined once, in ``mqlab_services.modes`` (the services run the modes;
``verify``, ``bench`` and the README judge them by the same rows).
"""

from __future__ import annotations

from mqlab_services.modes import BROKERS, KINDS, MODES, Mode, default_mode, mode_info, modes_of, names_of

__all__ = ["BROKERS", "KINDS", "MODES", "Mode", "default_mode", "mode_info", "modes_of", "names_of",
           "topic_matches"]


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: words split on '.', '*' is one word, '#' is zero or more."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        head, rest = p[0], p[1:]
        if head == "#":
            return any(match(rest, k[i:]) for i in range(len(k) + 1))
        return bool(k) and (head == "*" or head == k[0]) and match(rest, k[1:])

    return match(pattern.split("."), key.split(".") if key else [])
