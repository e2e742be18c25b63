"""A local multi-node Docker Swarm on one machine: ``invoke hosts up N`` / ``status`` / ``down``.

Each of the N worker nodes is a second dockerd in a network namespace of its own
(``mqlab-node-K``), on a host bridge (``mqlab-br0``) through a veth pair, at .(10+K) of one private
subnet (``MQLAB_HOSTS_SUBNET``, default 10.213.0.0/24). The local engine is the swarm manager, at
.1 on the bridge. Nothing is routed off the machine: the namespaces have no default route, and
the host forwards nothing (the bridge works at layer 2).

- :mod:`.plan`   names, addresses, paths and the refusals, worked out before anything is made
- :mod:`.state`  ``/run/mqlab-nodes/rig.json``: what was made, so that ``down`` undoes exactly that
- :mod:`.rig`    :func:`up`, :func:`down`, :func:`status`

    from mqlab import hosts

    hosts.up(root, 3, "10.213.0.0/24", None, print)
    print(hosts.status())
    hosts.down(print)
"""

from __future__ import annotations

from .plan import DEFAULT_SUBNET, MAX_NODES, SUBNET_KEY
from .rig import down, status, up

__all__ = ["DEFAULT_SUBNET", "MAX_NODES", "SUBNET_KEY", "down", "status", "up"]
