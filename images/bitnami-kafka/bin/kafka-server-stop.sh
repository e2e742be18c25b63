#!/bin/sh
# Ask the running Kafka server to shut down cleanly (SIGTERM).
pids=$(pgrep -f 'kafka\.Kafka ')
[ -n "$pids" ] || { echo "No kafka server to stop" >&2; exit 1; }
kill -s TERM $pids
