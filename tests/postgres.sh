#!/usr/bin/env bash
# A private, throw-away PostgreSQL for the tests and the local cluster (source this file, then call
# postgres_start; postgres_stop runs from the caller's EXIT trap). Installs PostgreSQL with apt when its binaries are
# missing (root only), initialises a cluster in a temp folder, runs it as a non-root user on a free port of
# 127.0.0.1, and exports its connection string as SELFPLAY_TEST_POSTGRES. It is stopped by its own pid.

postgres_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return 0; }; done
  return 1
}

postgres_install() {
  postgres_bin >/dev/null && return 0
  if [ "$(id -u)" -ne 0 ]; then echo "postgres: not installed and not root, cannot apt-get install postgresql" >&2; return 1; fi
  echo "postgres: installing PostgreSQL with apt-get (not installed)" >&2
  local try
  # Another process may hold the apt/dpkg lock: wait for it, then retry a few times.
  for try in 1 2 3 4 5; do
    if apt-get -o DPkg::Lock::Timeout=120 update -qq >/dev/null &&
       DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq postgresql >/dev/null; then
      postgres_bin >/dev/null && return 0
    fi
    echo "postgres: apt-get failed (try $try), retrying in 10 s" >&2
    sleep 10
  done
  return 1
}

postgres_free_port() {
  local port
  for port in $(shuf -i 20000-40000 -n 50); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
  done
  return 1
}

# As the postgres user when we are root (initdb refuses to run as root), else as ourselves.
postgres_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_start() {
  postgres_install || return 1
  local bin; bin=$(postgres_bin) || return 1
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then useradd --system --no-create-home postgres || return 1; fi
  POSTGRES_DIR=$(mktemp -d /tmp/selfplay-pg.XXXXXX) || return 1
  [ "$(id -u)" -eq 0 ] && chown postgres "$POSTGRES_DIR"
  chmod 700 "$POSTGRES_DIR"
  POSTGRES_PORT=$(postgres_free_port) || return 1
  postgres_as_owner "$bin/initdb" -D "$POSTGRES_DIR/data" -A trust -U postgres >"$POSTGRES_DIR/initdb.log" 2>&1 ||
    { echo "postgres: initdb failed:" >&2; tail -5 "$POSTGRES_DIR/initdb.log" >&2; return 1; }
  postgres_as_owner "$bin/pg_ctl" -D "$POSTGRES_DIR/data" -l "$POSTGRES_DIR/server.log" \
    -o "-h 127.0.0.1 -p $POSTGRES_PORT -k $POSTGRES_DIR -c fsync=off -c max_connections=200" -w start >/dev/null ||
    { echo "postgres: start failed:" >&2; tail -5 "$POSTGRES_DIR/server.log" >&2; return 1; }
  POSTGRES_PID=$(head -1 "$POSTGRES_DIR/data/postmaster.pid")
  POSTGRES_BIN=$bin
  export POSTGRES_DIR POSTGRES_PORT POSTGRES_PID POSTGRES_BIN
  export SELFPLAY_TEST_POSTGRES="Host=127.0.0.1;Port=$POSTGRES_PORT;Database=postgres;Username=postgres"
  echo "postgres: private server pid $POSTGRES_PID on 127.0.0.1:$POSTGRES_PORT ($POSTGRES_DIR)" >&2
}

# Stops the server this shell started (by pid: SIGINT = fast shutdown, SIGKILL after 10 s) and removes its folder.
postgres_stop() {
  [ -n "${POSTGRES_PID:-}" ] || return 0
  # A test may have stopped and restarted the server (an outage): the current pid is in the pid file.
  [ -f "$POSTGRES_DIR/data/postmaster.pid" ] && POSTGRES_PID=$(head -1 "$POSTGRES_DIR/data/postmaster.pid")
  if kill -0 "$POSTGRES_PID" 2>/dev/null; then
    kill -INT "$POSTGRES_PID" 2>/dev/null
    local i
    for i in $(seq 1 100); do kill -0 "$POSTGRES_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$POSTGRES_PID" 2>/dev/null && kill -KILL "$POSTGRES_PID" 2>/dev/null
  fi
  echo "postgres: stopped pid $POSTGRES_PID" >&2
  [ -n "${POSTGRES_DIR:-}" ] && rm -rf "$POSTGRES_DIR"
  POSTGRES_PID=""
}
