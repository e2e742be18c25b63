#!/bin/bash
# Paths and defaults of the bitnami/kafka 3.9 image, sourced by the other scripts.
export KAFKA_BASE_DIR="/opt/bitnami/kafka"
export KAFKA_HOME="$KAFKA_BASE_DIR"
export KAFKA_VOLUME_DIR="/bitnami/kafka"
export KAFKA_DATA_DIR="${KAFKA_VOLUME_DIR}/data"
export KAFKA_CONF_DIR="${KAFKA_BASE_DIR}/config"
export KAFKA_CONF_FILE="${KAFKA_CONF_DIR}/server.properties"
export KAFKA_MOUNTED_CONF_DIR="${KAFKA_MOUNTED_CONF_DIR:-${KAFKA_VOLUME_DIR}/config}"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1024m -Xms1024m}"
export KAFKA_KRAFT_CLUSTER_ID="${KAFKA_KRAFT_CLUSTER_ID:-}"
export KAFKA_SKIP_KRAFT_STORAGE_INIT="${KAFKA_SKIP_KRAFT_STORAGE_INIT:-false}"

kafka_log() {
    local level="$1"; shift
    printf 'kafka %s %-5s ==> %s\n' "$(date '+%H:%M:%S.%2N')" "$level" "$*" >&2
}

is_yes() {
    [[ "${1,,}" =~ ^(yes|true|1)$ ]]
}
