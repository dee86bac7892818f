#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the test suites and prints the
# database URL on its last line. Installs Debian's `postgresql` package when
# no server binaries are present. The cluster lives in $1 (default
# target/pg), runs as the `postgres` user when started by root, listens on
# 127.0.0.1 and a free port, and keeps nothing durable (fsync off).
# Stop it with: pg_ctl -D <dir>/data stop -m immediate
set -euo pipefail
dir="$(realpath -m "${1:-target/pg}")"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    echo "installing Debian's postgresql package" >&2
    $sudo_cmd apt-get install -y postgresql >/dev/null 2>&1 \
        || { $sudo_cmd apt-get update >/dev/null 2>&1 && $sudo_cmd apt-get install -y postgresql >/dev/null; }
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
as=()
if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi
if [ -d "$dir/data" ]; then
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$dir"
fi
mkdir -p "$dir"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 -c shared_buffers=256MB" \
    >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
echo "postgres://postgres@127.0.0.1:$port/postgres"
