#!/usr/bin/env bash
# Bring up PostgreSQL and Redis for Beacon's integration tests (and local development).
#
# Works as root in a container without systemd (Debian 12 / PostgreSQL 15):
#   - installs postgresql and redis-server with apt-get when they are missing,
#   - starts the PostgreSQL cluster (pg_ctlcluster, or pg_ctl as user postgres) and a daemonized
#     redis-server on port 6379,
#   - waits until both answer, creates the role and database beacon/beacon (password beacon,
#     CREATEDB so tests can create throwaway databases), idempotently,
#   - prints the environment lines the test suites read.
# Exits non-zero when a service does not come up.
#
# Usage: eval "$(scripts/services.sh | grep '^export ')"
set -euo pipefail

PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
WAIT_SECONDS="${WAIT_SECONDS:-30}"

log() { echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }

as_postgres() {
    if [ "$(id -un)" = "postgres" ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

install_missing() {
    local pkgs=()
    if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        pkgs+=(postgresql)
    fi
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        pkgs+=(redis-server)
    fi
    if [ "${#pkgs[@]}" -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || die "missing ${pkgs[*]} and not root; install them first"
        log "installing ${pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update >&2
        apt-get install -y "${pkgs[@]}" >&2
    fi
}

pg_version() {
    # Newest installed major version.
    ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1
}

start_postgres() {
    local ver
    ver="$(pg_version)"
    [ -n "$ver" ] || die "no PostgreSQL installation found under /usr/lib/postgresql"
    if pg_isready -h 127.0.0.1 -p "$PG_PORT" -q; then
        log "postgresql already answering on port $PG_PORT"
        return
    fi
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$ver main"; then
            log "creating cluster $ver/main"
            pg_createcluster "$ver" main --port "$PG_PORT" >&2
        fi
        # Parallel test suites each open a few connections to their own database.
        local conf_d="/etc/postgresql/$ver/main/conf.d"
        if [ -d "$conf_d" ] && [ ! -f "$conf_d/beacon-tests.conf" ]; then
            printf "max_connections = 300\nlisten_addresses = '127.0.0.1'\n" >"$conf_d/beacon-tests.conf"
        fi
        log "starting postgresql $ver/main"
        pg_ctlcluster "$ver" main start >&2 || true
    else
        local bin="/usr/lib/postgresql/$ver/bin"
        local data="${PGDATA:-/var/lib/postgresql/$ver/main}"
        if [ ! -f "$data/PG_VERSION" ]; then
            log "initialising $data"
            mkdir -p "$data"
            chown postgres:postgres "$data"
            as_postgres "$bin/initdb" -D "$data" --auth-local=peer --auth-host=scram-sha-256 >&2
        fi
        log "starting postgresql from $data"
        as_postgres "$bin/pg_ctl" -D "$data" -l /tmp/beacon-postgresql.log \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c max_connections=300" start >&2 || true
    fi
}

start_redis() {
    if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
        log "redis already answering on port $REDIS_PORT"
        return
    fi
    log "starting redis-server on port $REDIS_PORT"
    redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save '' --appendonly no --logfile /tmp/beacon-redis.log >&2
}

wait_for() {
    local name="$1"; shift
    local i
    for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
        if "$@" >/dev/null 2>&1; then
            log "$name is up"
            return 0
        fi
        sleep 0.5
    done
    die "$name did not come up within ${WAIT_SECONDS}s"
}

redis_ping() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }

provision_postgres() {
    as_postgres psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -qAt -d postgres >&2 <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'beacon') THEN
        CREATE ROLE beacon LOGIN CREATEDB PASSWORD 'beacon';
    ELSE
        ALTER ROLE beacon LOGIN CREATEDB PASSWORD 'beacon';
    END IF;
END
$$;
-- Tests drop their throwaway databases WITH (FORCE); an autovacuum worker in one of them is a
-- superuser backend, which only members of pg_signal_backend may terminate.
GRANT pg_signal_backend TO beacon;
SQL
    if [ "$(as_postgres psql -p "$PG_PORT" -qAt -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'beacon'")" != "1" ]; then
        as_postgres psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -q -d postgres -c "CREATE DATABASE beacon OWNER beacon" >&2
    fi
    # Check the credentials the tests use, over TCP.
    PGPASSWORD=beacon psql -h 127.0.0.1 -p "$PG_PORT" -U beacon -d beacon -qAt -c 'SELECT 1' >/dev/null \
        || die "cannot log in as beacon over TCP"
}

install_missing
start_postgres
wait_for postgresql pg_isready -h 127.0.0.1 -p "$PG_PORT" -q
provision_postgres
start_redis
wait_for redis redis_ping

echo "export BEACON_TEST_POSTGRES_URL=postgres://beacon:beacon@127.0.0.1:${PG_PORT}/beacon"
echo "export BEACON_TEST_REDIS_URL=redis://127.0.0.1:${REDIS_PORT}"
