"""The delivery modes on the host side: the services' one table, and topic matching.

Every mode is defined once, in ``mqlab_services.modes`` (the services run the modes;
``verify``, ``bench`` and the README judge them by the same rows).
"""

from __future__ import annotations

import functools

from mqlab_services.modes import BROKERS, KINDS, MODES, Mode, default_mode, mode_info, modes_of, names_of

__all__ = ["BROKERS", "KINDS", "MODES", "Mode", "default_mode", "mode_info", "modes_of", "names_of",
           "topic_matches"]


@functools.lru_cache(maxsize=256)
def _topic_automaton(pattern: str) -> tuple[tuple[str, ...], tuple[frozenset[int], ...]]:
    """A pattern's words, and for each place in them the places reached from it when each
    '#' there matches no word (itself included): built once a pattern, not once a key."""
    words = tuple(pattern.split("."))
    reach = []
    for i in range(len(words) + 1):
        end = i
        while end < len(words) and words[end] == "#":
            end += 1
        reach.append(frozenset(range(i, end + 1)))
    return words, tuple(reach)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: words split on '.', '*' is one word, '#' is zero or more.

    The pattern runs as an automaton over the key's words, keeping the set of places in the
    pattern matched so far: time linear in the key's words (at most the pattern's words squared
    a word). Trying every split of the key at each '#' instead took exponential time (0.6 s for
    22 words and seven '#'), and the Python ledger engine asks once a message."""
    words, reach = _topic_automaton(pattern)
    states = reach[0]
    for word in key.split(".") if key else ():
        after: set[int] = set()
        for i in states:
            if i == len(words):
                continue
            if words[i] == "#":  # it takes this word too
                after |= reach[i]
            elif words[i] == "*" or words[i] == word:
                after |= reach[i + 1]
        if not after:
            return False
        states = after
    return len(words) in states
