"""Running stacks: start, stop and scale them, look inside them, and send and verify runs.

- :mod:`.lifecycle`  ``up``, ``down``, ``scale``; the mode a stack runs in; waiting for consumers
- :mod:`.compose`    ``docker compose`` command lines, and the runners that run them
- :mod:`.preflight`  checks before anything starts: engine, Compose, ports, input
- :mod:`.containers` the lab's containers as Docker sees them: ``ps``, ``logs``
- :mod:`.expose`     publishing a stack beyond loopback, once it has real credentials
- :mod:`.stats`      per consumer counts and rates, and the broker's backlog
- :mod:`.top`        ``watch`` (`invoke top`): the same, live, with rate history, the current run and events as they happen
- :mod:`.dlq`        what is in the dead-letter destination, and why
- :mod:`.inspect`    the front doors of ``dlq`` and ``stats``: :func:`show_dlq`, :func:`show_stats`
- :mod:`.runs`       ``produce`` (a one-shot producer) and ``verify`` (the ledger's account of a run),
                     ``plot`` (its timeline)
- :mod:`.reread`     ``replay``: a log read again, checked against the ledger (queues cannot)

    from mqlab import stack as lab_stack

    lab_stack.up(config, "rabbitmq", 2, lab_stack.InvokeRunner(c), print)
    report, text = lab_stack.verify(config, "rabbitmq", None, settle=10, timeout=120)
"""

from __future__ import annotations

from .compose import InvokeRunner, Runner
from .containers import logs, ps, render_ps, running_stack
from .inspect import show_dlq, show_stats
from .lifecycle import check_mode, current_mode, down, scale, up
from .preflight import docker_client, parse_float, parse_int
from .reread import replay
from .runs import plot, produce, verify
from .top import watch

__all__ = ["InvokeRunner", "Runner", "check_mode", "current_mode", "docker_client", "down", "logs", "parse_float",
           "parse_int", "produce", "ps", "render_ps", "replay", "running_stack", "scale", "show_dlq", "show_stats", "up",
           "verify", "plot", "watch"]
