#!/usr/bin/env bash
# Entry point with the official rabbitmq image's contract:
# - started as root with a rabbitmq* command: fix data ownership, then re-exec as rabbitmq;
# - use long node names only when the short and long hostnames differ;
# - exec the command, so the Erlang VM is PID 1 and stops cleanly on SIGTERM.
# One addition imitates RabbitMQ 4.3 on this 4.0: its defaults for deprecated features.
set -euo pipefail

if [[ "$1" == rabbitmq* ]] && [ "$(id -u)" = '0' ]; then
    if [ "$1" = 'rabbitmq-server' ]; then
        find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq '{}' +
    fi
    exec gosu rabbitmq "$BASH_SOURCE" "$@"
fi

# 4.3 denies these features unless a configuration file permits them. 4.0 permits them,
# and a conf.d file overrides rabbitmq.conf, so deny only what no file mentions.
deny_deprecated_features() {
    local list=/usr/local/share/rabbitmq/deprecated-features-denied-by-default.txt
    local out=/etc/rabbitmq/conf.d/00-deprecated-features.conf
    local main="${RABBITMQ_CONFIG_FILE:-/etc/rabbitmq/rabbitmq.conf}"
    local -a files=("${main%.conf}.conf")
    local file feature
    for file in /etc/rabbitmq/conf.d/*.conf; do
        [ "$file" = "$out" ] || files+=("$file")
    done
    {
        echo "## Written by docker-entrypoint.sh: RabbitMQ 4.3's defaults ($list)."
        sed -e 's/#.*//' "$list" | while read -r feature; do
            [ -n "$feature" ] || continue
            grep -qsE "^[[:space:]]*deprecated_features\.permit\.${feature}[[:space:]]*=" "${files[@]}" \
                || echo "deprecated_features.permit.${feature} = false"
        done
    } > "$out.tmp" && mv "$out.tmp" "$out" \
        || echo "docker-entrypoint.sh: cannot write $out; deprecated features keep 4.0's defaults" >&2
}
if [ "$1" = 'rabbitmq-server' ]; then
    deny_deprecated_features
fi

if [ -z "${RABBITMQ_USE_LONGNAME:-}" ] && [ "$(hostname)" != "$(hostname -s)" ]; then
    export RABBITMQ_USE_LONGNAME=true
fi

exec "$@"
