#!/bin/sh
# Run a Kafka main class on the jars in ../libs, with the environment knobs of the
# distribution's launcher: KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS,
# KAFKA_LOG4J_OPTS, KAFKA_JMX_OPTS (+ JMX_PORT), KAFKA_OPTS, JAVA_HOME.
base_dir=$(cd "$(dirname "$0")/.." && pwd)
# The distribution's launcher flags; this one always runs in the foreground.
while [ $# -gt 0 ]; do
    case "$1" in
        -name) shift 2 ;;
        -loggc|-daemon) shift ;;
        *) break ;;
    esac
done
if [ $# -lt 1 ]; then
    echo "USAGE: $0 classname [opts]" >&2
    exit 1
fi
if [ -n "${JMX_PORT:-}" ]; then
    KAFKA_JMX_OPTS="${KAFKA_JMX_OPTS:-} -Dcom.sun.management.jmxremote.port=$JMX_PORT"
fi
: "${KAFKA_HEAP_OPTS:=-Xmx256M}"
: "${KAFKA_JVM_PERFORMANCE_OPTS:=-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=$base_dir/config/tools-log4j2.yaml}"
# As the distribution's launcher: file appenders write to LOG_DIR (default ../logs).
: "${LOG_DIR:=$base_dir/logs}"
mkdir -p "$LOG_DIR" 2>/dev/null || true
KAFKA_LOG4J_OPTS="-Dkafka.logs.dir=$LOG_DIR $KAFKA_LOG4J_OPTS"
java="java"
[ -n "${JAVA_HOME:-}" ] && java="$JAVA_HOME/bin/java"
# Word splitting of the *_OPTS variables is intended.
# shellcheck disable=SC2086
exec "$java" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS ${KAFKA_JMX_OPTS:-} $KAFKA_LOG4J_OPTS ${KAFKA_OPTS:-} \
    -cp "$base_dir/libs/*" "$@"
