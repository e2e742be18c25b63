"""Polling until a deadline: one helper for every loop that waits for a condition."""

from __future__ import annotations

import time
from typing import Callable


def poll_until(condition: Callable[[], bool], timeout: float, interval: float = 0.5,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Call ``condition`` until it is true (then True) or ``timeout`` seconds passed (then False).
    It is always called at least once, and once more at the deadline."""
    deadline = clock() + timeout
    while True:
        if condition():
            return True
        if clock() >= deadline:
            return False
        sleep(max(0.0, min(interval, deadline - clock())))
