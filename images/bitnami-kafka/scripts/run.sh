#!/bin/bash
# Run the broker in the foreground as PID 1 (clean shutdown on SIGTERM).
set -o errexit -o nounset -o pipefail
. /opt/bitnami/scripts/kafka-env.sh
kafka_log INFO "** Starting Kafka **"
exec "${KAFKA_BASE_DIR}/bin/kafka-server-start.sh" "$KAFKA_CONF_FILE"
