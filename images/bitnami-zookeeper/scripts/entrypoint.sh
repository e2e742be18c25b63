#!/bin/bash
# Entry point with the contract of bitnami/zookeeper: set up from the environment when
# the command is the default run script, then exec the command.
set -o errexit -o nounset -o pipefail
. /opt/bitnami/scripts/zookeeper-env.sh

if [[ "$*" = *"/opt/bitnami/scripts/zookeeper/run.sh"* ]]; then
    zoo_log INFO "** Starting ZooKeeper setup (mqlab offline image, ZooKeeper 3.9.3) **"
    /opt/bitnami/scripts/zookeeper/setup.sh
    zoo_log INFO "** ZooKeeper setup finished! **"
fi
echo ""
exec "$@"
