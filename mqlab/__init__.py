"""mqlab: host-side orchestration of the message-broker lab.

The modules here do the work; ``tasks.py`` only parses flags and calls them.

- :mod:`mqlab.stacks`   the stack registry (names, compose files, ports, images)
- :mod:`mqlab.compose`  building and running ``docker compose`` command lines
- :mod:`mqlab.preflight` checks before a stack starts: engine, Compose, ports, input
- :mod:`mqlab.ledger`   reading the receipt files and verifying delivery
- :mod:`mqlab.images`   building every image from packages, without a registry
"""

__version__ = "0.1.0"
