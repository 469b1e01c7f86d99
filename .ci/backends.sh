# Throwaway PostgreSQL and Redis servers for the backend tests (sourced by .ci/run).
#
#   source .ci/backends.sh && backends_start   # installs (as root) and starts both,
#                                              # exports RECOPS_TEST_POSTGRES_URL and
#                                              # RECOPS_TEST_REDIS_URL
#   backends_stop                              # stops both and removes their data
#
# Debian's `postgresql` and `redis-server` packages; a cluster of its own (initdb in a
# temporary folder, run as the `postgres` user) and free ports of its own, so a
# server already running on the machine is left alone. Where a server cannot be had (not
# root, no package), the URL stays unset and the backend tests skip, saying why.

BACKENDS_DIR=""

_backends_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_backends_install() {
    local missing=()
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "backends: ${missing[*]} missing and not root: backend tests will skip" >&2
        return 1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

_backends_start_postgres() {
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    [ -x "$bin/initdb" ] || return 1
    local run=(env)
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$BACKENDS_DIR"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$BACKENDS_DIR/pg" -U postgres -A trust -E UTF8 >/dev/null &&
        "${run[@]}" "$bin/pg_ctl" -D "$BACKENDS_DIR/pg" -l "$BACKENDS_DIR/pg.log" -w -t 60 \
            -o "-p $BACKENDS_PG_PORT -k $BACKENDS_DIR -c listen_addresses=127.0.0.1" \
            start >/dev/null &&
        "${run[@]}" "$bin/createdb" -h 127.0.0.1 -p "$BACKENDS_PG_PORT" -U postgres recops_test &&
        export RECOPS_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$BACKENDS_PG_PORT/recops_test"
}

_backends_start_redis() {
    redis-server --daemonize yes --port "$BACKENDS_REDIS_PORT" --bind 127.0.0.1 \
        --dir "$BACKENDS_DIR" --pidfile "$BACKENDS_DIR/redis.pid" \
        --logfile "$BACKENDS_DIR/redis.log" --save "" --appendonly no &&
        for _ in $(seq 50); do
            redis-cli -p "$BACKENDS_REDIS_PORT" ping >/dev/null 2>&1 && break
            sleep 0.1
        done &&
        export RECOPS_TEST_REDIS_URL="redis://127.0.0.1:$BACKENDS_REDIS_PORT/0"
}

backends_start() {
    _backends_install || return 0
    BACKENDS_PG_PORT="${BACKENDS_PG_PORT:-$(_backends_free_port)}"
    BACKENDS_REDIS_PORT="${BACKENDS_REDIS_PORT:-$(_backends_free_port)}"
    BACKENDS_DIR="$(mktemp -d /tmp/recops-backends.XXXXXX)"
    chmod 755 "$BACKENDS_DIR"
    _backends_start_postgres || echo "backends: PostgreSQL did not start (see $BACKENDS_DIR/pg.log)" >&2
    _backends_start_redis || echo "backends: Redis did not start (see $BACKENDS_DIR/redis.log)" >&2
    echo "backends: RECOPS_TEST_POSTGRES_URL=${RECOPS_TEST_POSTGRES_URL:-unset}" \
        "RECOPS_TEST_REDIS_URL=${RECOPS_TEST_REDIS_URL:-unset}"
}

backends_stop() {
    [ -n "$BACKENDS_DIR" ] || return 0
    if [ -f "$BACKENDS_DIR/redis.pid" ]; then
        redis-cli -p "$BACKENDS_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    if [ -f "$BACKENDS_DIR/pg/postmaster.pid" ]; then
        local bin run=(env)
        bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
        [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
        "${run[@]}" "$bin/pg_ctl" -D "$BACKENDS_DIR/pg" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$BACKENDS_DIR"
    BACKENDS_DIR=""
}
