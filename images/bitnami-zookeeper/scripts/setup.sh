#!/bin/bash
# Configure ZooKeeper from ZOO_* variables the way bitnami/zookeeper 3.9 does:
# anonymous access must be allowed explicitly (ALLOW_ANONYMOUS_LOGIN=yes), a mounted
# zoo.cfg is kept as is, otherwise zoo.cfg is written from the environment.
# SASL authentication and TLS are not implemented in this image and are refused.
set -o errexit -o nounset -o pipefail
. /opt/bitnami/scripts/zookeeper-env.sh

if is_yes "$ZOO_ENABLE_AUTH"; then
    zoo_log ERROR "ZOO_ENABLE_AUTH is not supported by this offline image; use ALLOW_ANONYMOUS_LOGIN=yes."
    exit 1
fi
if ! is_yes "$ALLOW_ANONYMOUS_LOGIN"; then
    zoo_log ERROR "The ZOO_ENABLE_AUTH environment variable does not configure authentication. Set the environment variable ALLOW_ANONYMOUS_LOGIN=yes to allow unauthenticated users to connect to ZooKeeper."
    exit 1
fi
zoo_log WARN "You have set the environment variable ALLOW_ANONYMOUS_LOGIN=yes. For safety reasons, do not use this flag in a production environment."

mkdir -p "$ZOO_DATA_DIR"
[[ -n "$ZOO_DATA_LOG_DIR" ]] && mkdir -p "$ZOO_DATA_LOG_DIR"

if [[ -f "$ZOO_CONF_FILE" ]]; then
    zoo_log INFO "Using the existing configuration file ${ZOO_CONF_FILE}"
else
    zoo_log INFO "Creating ${ZOO_CONF_FILE} from the environment"
    yes_no() { is_yes "$1" && echo true || echo false; }
    {
        echo "tickTime=${ZOO_TICK_TIME}"
        echo "initLimit=${ZOO_INIT_LIMIT}"
        echo "syncLimit=${ZOO_SYNC_LIMIT}"
        echo "dataDir=${ZOO_DATA_DIR}"
        [[ -n "$ZOO_DATA_LOG_DIR" ]] && echo "dataLogDir=${ZOO_DATA_LOG_DIR}"
        echo "clientPort=${ZOO_PORT_NUMBER}"
        echo "maxCnxns=${ZOO_MAX_CNXNS}"
        echo "maxClientCnxns=${ZOO_MAX_CLIENT_CNXNS}"
        echo "maxSessionTimeout=${ZOO_MAX_SESSION_TIMEOUT}"
        echo "autopurge.snapRetainCount=${ZOO_AUTOPURGE_RETAIN_COUNT}"
        echo "autopurge.purgeInterval=${ZOO_AUTOPURGE_INTERVAL}"
        echo "4lw.commands.whitelist=${ZOO_4LW_COMMANDS_WHITELIST}"
        echo "preAllocSize=${ZOO_PRE_ALLOC_SIZE}"
        echo "snapCount=${ZOO_SNAPCOUNT}"
        echo "reconfigEnabled=$(yes_no "$ZOO_RECONFIG_ENABLED")"
        echo "quorumListenOnAllIPs=$(yes_no "$ZOO_LISTEN_ALLIPS_ENABLED")"
        echo "admin.enableServer=$(yes_no "$ZOO_ENABLE_ADMIN_SERVER")"
        echo "admin.serverAddress=${ZOO_ADMIN_SERVER_ADDRESS}"
        echo "admin.serverPort=${ZOO_ADMIN_SERVER_PORT_NUMBER}"
        # ZOO_SERVERS: "host:2888:3888,host2:2888:3888" (ids 1..n) or "host::1,..." style with ids.
        if [[ -n "$ZOO_SERVERS" ]]; then
            i=0
            IFS=', ' read -r -a servers <<<"$ZOO_SERVERS"
            for server in "${servers[@]}"; do
                [[ -z "$server" ]] && continue
                i=$((i + 1))
                if [[ "$server" == *::* ]]; then
                    echo "server.${server##*::}=${server%%::*}"
                else
                    echo "server.${i}=${server}"
                fi
            done
        fi
    } >"$ZOO_CONF_FILE"
fi

echo "$ZOO_SERVER_ID" >"${ZOO_DATA_DIR}/myid"
