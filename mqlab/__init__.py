"""mqlab: host-side orchestration of the message-broker lab.

The packages here do the work; ``tasks.py`` only parses flags and calls their front doors.
Floors, each importing only from the ones above it (docs/ARCHITECTURE.md):

- shared modules: :mod:`mqlab.errors` (one-line errors), :mod:`mqlab.config` (the .env
  settings), :mod:`mqlab.stacks` (the stack registry), :mod:`mqlab.modes` (the delivery modes),
  :mod:`mqlab.tables` (terminal and Markdown tables), :mod:`mqlab.wait` (polling to a deadline)
- :mod:`mqlab.brokers`  one module per broker: probes, dead letters, its own benchmark tool
- :mod:`mqlab.images`   building every image from packages, without a registry
- :mod:`mqlab.ledger`   the proof by receipts: reading a run and accounting for every message
- :mod:`mqlab.stack`    running stacks: up, down, scale, ps, logs, stats, dlq, produce, verify
- :mod:`mqlab.faults`   chaos on purpose, and the proof that a cluster keeps what it acked
- :mod:`mqlab.bench`    the lab's clients measured beside each broker's own tool
"""

__version__ = "0.1.0"
