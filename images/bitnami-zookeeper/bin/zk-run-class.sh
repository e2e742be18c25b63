#!/bin/sh
# Run a ZooKeeper main class on the jars in ../lib with ../conf on the class path.
# Knobs: JVMFLAGS, CLIENT_JVMFLAGS (clients), SERVER_JVMFLAGS, JAVA_HOME.
base_dir=$(cd "$(dirname "$0")/.." && pwd)
java="java"
[ -n "${JAVA_HOME:-}" ] && java="$JAVA_HOME/bin/java"
# shellcheck disable=SC2086
exec "$java" -Dzookeeper.log.dir="$base_dir/logs" -Dlogback.configurationFile="$base_dir/conf/logback.xml" \
    ${JVMFLAGS:-} ${ZK_EXTRA_JVMFLAGS:-} -cp "$base_dir/lib/*:$base_dir/conf" "$@"
