#!/usr/bin/env bash
# Entry point with the official rabbitmq image's contract:
# - started as root with a rabbitmq* command: fix data ownership, then re-exec as rabbitmq;
# - use long node names only when the short and long hostnames differ;
# - exec the command, so the Erlang VM is PID 1 and stops cleanly on SIGTERM.
set -euo pipefail

if [[ "$1" == rabbitmq* ]] && [ "$(id -u)" = '0' ]; then
    if [ "$1" = 'rabbitmq-server' ]; then
        find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq '{}' +
    fi
    exec gosu rabbitmq "$BASH_SOURCE" "$@"
fi

if [ -z "${RABBITMQ_USE_LONGNAME:-}" ] && [ "$(hostname)" != "$(hostname -s)" ]; then
    export RABBITMQ_USE_LONGNAME=true
fi

exec "$@"
