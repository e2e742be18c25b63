#!/bin/bash
# Run ZooKeeper in the foreground as PID 1 (clean shutdown on SIGTERM).
set -o errexit -o nounset -o pipefail
. /opt/bitnami/scripts/zookeeper-env.sh
zoo_log INFO "** Starting ZooKeeper **"
export JVMFLAGS="-Dzookeeper.console.threshold=${ZOO_LOG_LEVEL} ${JVMFLAGS}"
exec "${ZOO_BASE_DIR}/bin/zkServer.sh" start-foreground "$ZOO_CONF_FILE"
