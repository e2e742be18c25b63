#!/bin/bash
# Entry point with the contract of bitnami/kafka: set up from the environment when the
# command is the default run script, then exec the command.
set -o errexit -o nounset -o pipefail
. /opt/bitnami/scripts/kafka-env.sh

if [[ "$*" = *"/opt/bitnami/scripts/kafka/run.sh"* ]]; then
    kafka_log INFO "** Starting Kafka setup (mqlab offline image, Kafka 3.9.0) **"
    /opt/bitnami/scripts/kafka/setup.sh
    kafka_log INFO "** Kafka setup finished! **"
fi
echo ""
exec "$@"
