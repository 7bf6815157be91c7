#!/usr/bin/env bash
# Entrypoint compatible with the official postgres image's interface:
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE,
#   POSTGRES_DB (default: $POSTGRES_USER), POSTGRES_INITDB_ARGS,
#   /docker-entrypoint-initdb.d/*.sql|*.sh run once after initdb.
# If $PGDATA has no cluster yet, it is created; an existing cluster is never touched.
# Unix sockets live in /tmp (PGHOST=/tmp), so a read-only root + tmpfs /tmp is enough.
set -euo pipefail

# initdb and postgres refuse to run for a uid without a passwd entry; give any
# arbitrary uid one through nss_wrapper (files in /tmp, the root stays read-only).
if ! getent passwd "$(id -u)" > /dev/null; then
    export NSS_WRAPPER_PASSWD=/tmp/nss_passwd NSS_WRAPPER_GROUP=/tmp/nss_group
    { cat /etc/passwd; echo "postgres:x:$(id -u):$(id -g):PostgreSQL:$PGDATA:/bin/false"; } > "$NSS_WRAPPER_PASSWD"
    { cat /etc/group; echo "postgres:x:$(id -g):"; } > "$NSS_WRAPPER_GROUP"
    export LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so
fi

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

read_password() {
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        cat "$POSTGRES_PASSWORD_FILE"
    else
        printf '%s' "${POSTGRES_PASSWORD:-}"
    fi
}

init_cluster() {
    local user="${POSTGRES_USER:-postgres}" db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
    local password pwfile
    password="$(read_password)"
    if [ -z "$password" ]; then
        echo "docker-entrypoint: POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required" >&2
        exit 1
    fi
    pwfile="$(mktemp /tmp/pwfile.XXXXXX)"
    printf '%s\n' "$password" > "$pwfile"
    # C collation by default: Synapse refuses any other (override via POSTGRES_INITDB_ARGS).
    # shellcheck disable=SC2086
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        ${POSTGRES_INITDB_ARGS:---encoding=UTF8 --locale=C}
    rm -f "$pwfile"
    {
        echo "listen_addresses = '*'"
        echo "unix_socket_directories = '/tmp'"
    } >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"

    # A temporary server on the socket only, to create the database and run init scripts.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    if [ "$db" != postgres ]; then
        # Through stdin: psql expands :"db" (safe identifier quoting) only there, not in -c.
        psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres --set db="$db" \
            <<< 'CREATE DATABASE :"db";'
    fi
    local f
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "docker-entrypoint: running $f"; . "$f" ;;
            *.sql) echo "docker-entrypoint: running $f"; psql -v ON_ERROR_STOP=1 --username "$user" --dbname "$db" -f "$f" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "docker-entrypoint: cluster initialised in $PGDATA"
}

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    init_cluster
fi
exec "$@"
