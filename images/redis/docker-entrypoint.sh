#!/bin/sh
# Entry point with the official redis image's contract:
# - `docker run IMAGE --flag` or `IMAGE file.conf` runs redis-server with those arguments;
# - started as root: give /data to the redis user, then re-exec as redis;
# - umask 0077 unless one was chosen;
# - a server (not a sentinel) loads every module in /usr/local/lib/redis/modules/, as the
#   official 8.x entry point does with the modules it bundles. Here that is one stand-in
#   module (modules/mqlabstub.c), so a config file that already names it fails the same way.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec gosu redis "$0" "$@"
fi

if [ "$(umask)" = '0022' ]; then
    umask 0077
fi

is_sentinel() {
    [ "$1" = 'redis-sentinel' ] && return 0
    for arg in "$@"; do [ "$arg" = '--sentinel' ] && return 0; done
    return 1
}

if [ "$1" = 'redis-server' ] && ! is_sentinel "$@"; then
    for module in /usr/local/lib/redis/modules/*.so; do
        if [ -f "$module" ] && [ -s "$module" ] && [ -r "$module" ] && [ -x "$module" ]; then
            set -- "$@" --loadmodule "$module"
        fi
    done
fi

exec "$@"
