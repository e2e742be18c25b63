#!/bin/sh
# Entry point with the official redis image's contract:
# - `docker run IMAGE --flag` or `IMAGE file.conf` runs redis-server with those arguments;
# - started as root: give /data to the redis user, then re-exec as redis;
# - umask 0077 unless one was chosen.
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

exec "$@"
