#!/bin/bash
# Configure Kafka the way bitnami/kafka 3.9 does:
#  - ZooKeeper mode when KAFKA_CFG_ZOOKEEPER_CONNECT is set, KRaft mode when
#    KAFKA_CFG_PROCESS_ROLES is set (both only with ZooKeeper migration enabled);
#  - legacy KAFKA_<NAME> variables are aliases of KAFKA_CFG_<NAME> for the usual names;
#  - a mounted ${KAFKA_MOUNTED_CONF_DIR}/server.properties is used as is; otherwise the
#    stock defaults minus mode-specific settings, log.dirs=/bitnami/kafka/data, then every
#    KAFKA_CFG_FOO_BAR=v as foo.bar=v;
#  - KRaft storage is formatted on first start (KAFKA_KRAFT_CLUSTER_ID or a random id).
# SASL/TLS listeners are not implemented in this image and are refused with a message.
set -o errexit -o nounset -o pipefail
. /opt/bitnami/scripts/kafka-env.sh

conf_set() {
    local file="$1" key="$2" value="$3"
    local key_re="${key//./\\.}"
    if grep -qE "^[#[:space:]]*${key_re}[[:space:]]*=" "$file"; then
        local tmp
        tmp="$(mktemp)"
        awk -v k="$key" -v line="${key}=${value}" '
            BEGIN { done = 0 }
            {
                probe = $0
                sub(/^[#[:space:]]*/, "", probe)
                split(probe, kv, "=")
                name = kv[1]; gsub(/[[:space:]]+$/, "", name)
                if (!done && name == k) { print line; done = 1 } else { print }
            }' "$file" >"$tmp"
        cat "$tmp" >"$file"
        rm -f "$tmp"
    else
        printf '\n%s=%s' "$key" "$value" >>"$file"
    fi
}

# Legacy names accepted by the Bitnami image as aliases of KAFKA_CFG_<NAME>.
for name in ADVERTISED_LISTENERS BROKER_ID NODE_ID CONTROLLER_QUORUM_VOTERS PROCESS_ROLES \
    DEFAULT_REPLICATION_FACTOR DELETE_TOPIC_ENABLE INTER_BROKER_LISTENER_NAME LISTENERS \
    LISTENER_SECURITY_PROTOCOL_MAP LOG_DIRS LOG_RETENTION_BYTES LOG_RETENTION_HOURS \
    LOG_SEGMENT_BYTES MESSAGE_MAX_BYTES NUM_PARTITIONS OFFSETS_TOPIC_REPLICATION_FACTOR \
    TRANSACTION_STATE_LOG_MIN_ISR TRANSACTION_STATE_LOG_REPLICATION_FACTOR \
    ZOOKEEPER_CONNECT ZOOKEEPER_CONNECTION_TIMEOUT_MS AUTO_CREATE_TOPICS_ENABLE; do
    legacy="KAFKA_${name}"
    if [[ -n "${!legacy+set}" ]]; then
        export "KAFKA_CFG_${name}=${!legacy}"
    fi
done

# Validation
errors=0
fail() { kafka_log ERROR "$*"; errors=1; }
roles="${KAFKA_CFG_PROCESS_ROLES:-}"
zk="${KAFKA_CFG_ZOOKEEPER_CONNECT:-}"
if [[ -z "$roles" && -z "$zk" ]]; then
    fail "Kafka haven't been configured to work in either Raft or Zookeper mode. Please make sure at least one of the modes is configured."
fi
if [[ -n "$roles" ]]; then
    if [[ -n "$zk" ]] && ! is_yes "${KAFKA_CFG_ZOOKEEPER_METADATA_MIGRATION_ENABLE:-no}"; then
        fail "Both KRaft mode and Zookeeper modes are configured, but KAFKA_CFG_ZOOKEEPER_METADATA_MIGRATION_ENABLE is not enabled"
    fi
    [[ -n "${KAFKA_CFG_NODE_ID:-}" ]] || fail "KRaft mode requires an unique node.id, please set the environment variable KAFKA_CFG_NODE_ID"
    [[ -n "${KAFKA_CFG_CONTROLLER_QUORUM_VOTERS:-}" ]] || fail "KRaft mode requires KAFKA_CFG_CONTROLLER_QUORUM_VOTERS to be set"
    if [[ "$roles" == *controller* && -z "${KAFKA_CFG_CONTROLLER_LISTENER_NAMES:-}" ]]; then
        fail "Role 'controller' enabled but environment variable KAFKA_CFG_CONTROLLER_LISTENER_NAMES was not provided."
    fi
fi
security="${KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP:-} ${KAFKA_CFG_LISTENERS:-}"
if [[ "$security" == *SSL* || "$security" == *SASL* ]]; then
    fail "SASL and TLS listeners are not supported by this offline image; use PLAINTEXT listeners."
fi
if [[ "$security" == *PLAINTEXT* || -z "${KAFKA_CFG_LISTENERS:-}" ]]; then
    kafka_log WARN "Kafka has been configured with a PLAINTEXT listener, this setting is not recommended for production environments."
fi
[[ "$errors" -eq 0 ]] || exit 1

mkdir -p "$KAFKA_DATA_DIR"

kafka_log INFO "Initializing Kafka..."
if [[ -f "${KAFKA_MOUNTED_CONF_DIR}/server.properties" ]]; then
    kafka_log INFO "Detected mounted server.properties file at ${KAFKA_MOUNTED_CONF_DIR}/server.properties. Skipping configuration based on env variables"
    cp -L "${KAFKA_MOUNTED_CONF_DIR}"/* "$KAFKA_CONF_DIR"/
else
    kafka_log INFO "No injected configuration files found, creating default config files"
    # Mode-specific stock settings are commented out, so either mode starts from the same file.
    sed -E \
        -e 's/^(zookeeper\.|group\.initial|broker\.|node\.|process\.|listeners=|listener\.|controller\.|inter\.broker|advertised\.listeners)/#\1/' \
        "${KAFKA_CONF_DIR}/server.properties.original" >"$KAFKA_CONF_FILE"
    conf_set "$KAFKA_CONF_FILE" log.dirs "$KAFKA_DATA_DIR"
    for var in "${!KAFKA_CFG_@}"; do
        key="${var#KAFKA_CFG_}"
        key="${key//_/.}"
        key="${key,,}"
        [[ "$var" == "KAFKA_CFG_ZOOKEEPER_CLIENTCNXNSOCKET" ]] && key="zookeeper.clientCnxnSocket"
        key="${key//sasl.ssl/sasl_ssl}"
        key="${key//sasl.plaintext/sasl_plaintext}"
        conf_set "$KAFKA_CONF_FILE" "$key" "${!var}"
    done
fi

if [[ -n "$roles" ]] && ! is_yes "$KAFKA_SKIP_KRAFT_STORAGE_INIT"; then
    kafka_log INFO "Initializing KRaft storage metadata"
    cluster_id="$KAFKA_KRAFT_CLUSTER_ID"
    if [[ -f "${KAFKA_DATA_DIR}/meta.properties" ]]; then
        cluster_id="$(sed -n 's/^cluster\.id=//p' "${KAFKA_DATA_DIR}/meta.properties")"
    fi
    if [[ -z "$cluster_id" ]]; then
        kafka_log WARN "KAFKA_KRAFT_CLUSTER_ID not set - If using multiple nodes then you must use the same Cluster ID for each one"
        cluster_id="$("${KAFKA_BASE_DIR}/bin/kafka-storage.sh" random-uuid)"
        kafka_log INFO "Generated Kafka cluster ID '${cluster_id}'"
    fi
    kafka_log INFO "Formatting storage directories to add metadata..."
    "${KAFKA_BASE_DIR}/bin/kafka-storage.sh" format --config "$KAFKA_CONF_FILE" --ignore-formatted "--cluster-id=${cluster_id}"
fi
