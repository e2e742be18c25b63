"""More hosts: the lab's stacks on Docker Swarm.

- :mod:`.stackfile` the compose-to-stack rewrite: a Swarm stack file generated from a stack's
  own compose file (``docker compose config``), never kept by hand
"""
