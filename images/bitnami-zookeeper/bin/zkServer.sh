#!/bin/bash
# zkServer.sh start-foreground [zoo.cfg] | status | version
# (the subset of ZooKeeper's script that makes sense in a container).
base_dir=$(cd "$(dirname "$0")/.." && pwd)
cfg="${2:-$base_dir/conf/zoo.cfg}"
client_port() {
    sed -n 's/^clientPort=//p' "$cfg" | tail -n 1
}
case "${1:-}" in
    start-foreground)
        heap="${ZOO_HEAP_SIZE:-1024}"
        ZK_EXTRA_JVMFLAGS="-Xmx${heap}m -Xms${heap}m ${SERVER_JVMFLAGS:-}" \
            exec "$base_dir/bin/zk-run-class.sh" org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"
        ;;
    status)
        port="$(client_port)"
        if reply=$( { exec 3<>"/dev/tcp/127.0.0.1/${port:-2181}" && echo srvr >&3 && cat <&3; } 2>/dev/null ) \
            && grep -q '^Mode:' <<<"$reply"; then
            echo "Client port found: ${port:-2181}. Client address: localhost."
            grep '^Mode:' <<<"$reply"
        else
            echo "Error contacting service. It is probably not running." >&2
            exit 1
        fi
        ;;
    version)
        exec "$base_dir/bin/zk-run-class.sh" org.apache.zookeeper.version.VersionInfoMain
        ;;
    *)
        echo "Usage: $0 {start-foreground|status|version} [zoo.cfg]" >&2
        exit 1
        ;;
esac
