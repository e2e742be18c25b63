#!/bin/sh
# Start a Kafka broker/controller in the foreground: kafka-server-start.sh server.properties [--override k=v]...
base_dir=$(dirname "$0")
if [ $# -lt 1 ]; then
    echo "USAGE: $0 [-daemon] server.properties [--override property=value]*" >&2
    exit 1
fi
[ "$1" = "-daemon" ] && shift
export KAFKA_LOG4J_OPTS="${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$base_dir/../config/log4j2.yaml}"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}"
exec "$base_dir/kafka-run-class.sh" kafka.Kafka "$@"
