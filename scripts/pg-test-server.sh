#!/usr/bin/env bash
# Start, inspect and remove a throwaway PostgreSQL server for the cxflow
# PostgreSQL tests. Used by developers and by .ci/run.
#
# Usage:
#   eval "$(scripts/pg-test-server.sh start [DIR])"
#       Create a fresh cluster in DIR (default: a new `mktemp -d` directory;
#       a given DIR must be missing or empty), start it on a free TCP port on
#       127.0.0.1 and create the database `cxflow_test`. Prints ONLY these
#       lines on stdout (everything else goes to stderr):
#           export CXFLOW_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/cxflow_test
#           export CXFLOW_PG_DATA=DIR
#   scripts/pg-test-server.sh status [DIR]
#       Report whether the server in DIR is running (exit 0) or not (exit 3).
#   scripts/pg-test-server.sh stop [DIR]
#       Stop the server in DIR and delete DIR. Stopping a server that is not
#       running, or a DIR that no longer exists, is not an error.
#   DIR defaults to $CXFLOW_PG_DATA for status and stop.
#
# Server binaries: the newest /usr/lib/postgresql/*/bin with initdb and pg_ctl
# (Debian/Ubuntu layout), else initdb/pg_ctl on PATH. If none are found, the
# script installs Debian's `postgresql` package with apt-get (root needed)
# without starting the system service. The Debian-managed cluster (port 5432,
# pg_ctlcluster, systemd) is never used.
#
# Run as root, the cluster belongs to the `postgres` OS user (PostgreSQL
# refuses to run as root) and the server commands run through `runuser`. Run
# as any other user, the cluster belongs to that user. Either way the database
# superuser is `postgres` and authentication is `trust`: only for local tests.
set -euo pipefail

readonly database=cxflow_test
readonly marker_file=.cxflow-pg-test-server

# Libpq settings from the caller's environment (PGHOST, PGSSLMODE, ...) must
# not leak into the commands below.
while IFS= read -r var; do
    unset "$var"
done < <(compgen -e | grep '^PG' || true)

log() {
    printf 'pg-test-server: %s\n' "$*" >&2
}

die() {
    printf 'pg-test-server: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
}

is_root() {
    [[ "$(id -u)" -eq 0 ]]
}

# Run a command as the cluster owner: the postgres user when we are root,
# ourselves otherwise. `cd /` avoids warnings about an unreadable cwd.
as_owner() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Close every file descriptor above 2 in the current (sub)shell. The server
# would otherwise inherit them, and a caller reading our stdout through a pipe
# (`eval "$(... start)"`) would wait for the server to exit.
close_extra_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd="${fd##*/}"
        if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then
            eval "exec $fd>&-"
        fi
    done
}

# Print the directory holding initdb and pg_ctl, or nothing.
find_bindir() {
    local dir
    while IFS= read -r dir; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -t/ -k4,4 -V -r)
    if command -v initdb > /dev/null && command -v pg_ctl > /dev/null; then
        dirname "$(command -v pg_ctl)"
    fi
}

install_postgresql() {
    is_root || die "no PostgreSQL server binaries found (looked for initdb and pg_ctl in /usr/lib/postgresql/*/bin and on PATH).
Install them, e.g. 'sudo apt-get install postgresql', or rerun this script as root so it can install them."
    command -v apt-get > /dev/null || die "no PostgreSQL server binaries found and apt-get is not available; install PostgreSQL manually"
    log "no PostgreSQL server binaries found; installing Debian's postgresql package"
    (
        # Keep the package from starting the Debian-managed cluster: a
        # policy-rc.d that exits 101 tells invoke-rc.d / deb-systemd-invoke
        # not to start services. Only added (and removed again) if absent.
        policy=/usr/sbin/policy-rc.d
        if [[ ! -e "$policy" ]]; then
            trap 'rm -f "$policy"' EXIT
            printf '#!/bin/sh\n# temporary, from cxflow scripts/pg-test-server.sh\nexit 101\n' > "$policy"
            chmod 755 "$policy"
        fi
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
    ) >&2
}

# Print a TCP port on 127.0.0.1 that is free right now.
free_port() {
    if command -v python3 > /dev/null; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    local port tries
    for ((tries = 0; tries < 200; tries++)); do
        port=$((55432 + RANDOM % 10000))
        if ! (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
            printf '%s\n' "$port"
            return
        fi
    done
    die "could not find a free TCP port"
}

# Resolve the DIR argument (or $CXFLOW_PG_DATA) to an absolute path.
resolve_dir() {
    local dir="${1:-${CXFLOW_PG_DATA:-}}"
    [[ -n "$dir" ]] || die "no data directory given and CXFLOW_PG_DATA is not set"
    realpath -m -- "$dir"
}

# Refuse to act on a directory this script did not create (for example a real
# cluster such as /var/lib/postgresql/15/main).
check_ours() {
    local dir="$1"
    [[ -f "$dir/$marker_file" ]] ||
        die "$dir was not created by $(basename "$0") (no $marker_file file); refusing to touch it"
}

server_port() {
    # Line 4 of postmaster.pid is the port.
    sed -n '4p' "$1/postmaster.pid" 2> /dev/null || true
}

cmd_start() {
    [[ $# -le 1 ]] || die "usage: $0 start [DIR]"
    # Only the export lines go to stdout (fd 3); everything else to stderr.
    exec 3>&1 1>&2

    local bindir
    bindir="$(find_bindir)"
    if [[ -z "$bindir" ]]; then
        install_postgresql
        bindir="$(find_bindir)"
        [[ -n "$bindir" ]] || die "installed postgresql, but still no initdb/pg_ctl in /usr/lib/postgresql/*/bin"
    fi
    log "using $("$bindir/postgres" --version 2> /dev/null || echo "$bindir")"

    if is_root; then
        getent passwd postgres > /dev/null ||
            die "running as root but the 'postgres' OS user does not exist (the Debian postgresql package creates it)"
        command -v runuser > /dev/null || die "running as root but runuser is not available"
    fi

    local dir created=0
    if [[ $# -eq 1 ]]; then
        dir="$(realpath -m -- "$1")"
        if [[ -e "$dir" ]]; then
            [[ -d "$dir" ]] || die "$dir exists and is not a directory"
            [[ -z "$(ls -A "$dir")" ]] || die "$dir is not empty"
        else
            mkdir -p "$dir"
            created=1
        fi
    else
        dir="$(mktemp -d "${TMPDIR:-/tmp}/cxflow-pg.XXXXXXXX")"
        created=1
    fi
    # The path goes into the pg_ctl -o string (parsed by a shell) and becomes
    # the Unix socket directory (socket paths are limited to ~107 bytes).
    if [[ ! "$dir" =~ ^[A-Za-z0-9._/+-]+$ ]] || ((${#dir} > 80)); then
        if [[ $created -eq 1 ]]; then rmdir "$dir"; fi
        die "unsuitable data directory '$dir': use a path of at most 80 characters from [A-Za-z0-9._/+-]"
    fi

    # Until the server is up, undo everything on failure.
    # shellcheck disable=SC2064  # expand $dir/$bindir now
    trap "as_owner '$bindir/pg_ctl' -D '$dir' -m immediate stop > /dev/null 2>&1 || true
          if [[ $created -eq 1 ]]; then rm -rf '$dir'; else find '$dir' -mindepth 1 -delete 2> /dev/null || true; fi" EXIT

    chmod 700 "$dir"
    if is_root; then
        chown postgres: "$dir"
        as_owner test -w "$dir" ||
            die "the postgres user cannot reach $dir (a parent directory is not traversable); pick a directory under /tmp"
    fi

    local locale=C.UTF-8
    if ! locale -a 2> /dev/null | grep -qix 'c\.utf-\{0,1\}8'; then
        log "locale C.UTF-8 is not available; using C"
        locale=C
    fi
    log "initdb in $dir"
    as_owner "$bindir/initdb" -D "$dir" --auth=trust --username=postgres \
        --encoding=UTF8 --locale="$locale" > /dev/null
    as_owner touch "$dir/$marker_file"

    # fsync, synchronous_commit and full_page_writes are off: this is a
    # throwaway test cluster, so durability after a crash does not matter and
    # speed does.
    local port attempt started=0
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        log "starting server on 127.0.0.1:$port (attempt $attempt)"
        if (
            close_extra_fds
            as_owner "$bindir/pg_ctl" -D "$dir" \
                -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
                -l "$dir/server.log" -w start > /dev/null
        ); then
            started=1
            break
        fi
        # Another process may have grabbed the port in the meantime: retry.
        grep -q 'could not bind\|Address already in use' "$dir/server.log" 2> /dev/null || break
    done
    if [[ $started -ne 1 ]]; then
        log "server log ($dir/server.log):"
        cat "$dir/server.log" >&2 2> /dev/null || true
        die "could not start PostgreSQL"
    fi

    as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$database"
    trap - EXIT

    log "PostgreSQL is running on 127.0.0.1:$port, data in $dir"
    log "stop it with: $0 stop $dir"
    printf 'export CXFLOW_TEST_POSTGRES_URL=%q\n' \
        "postgresql+psycopg://postgres@127.0.0.1:$port/$database" >&3
    printf 'export CXFLOW_PG_DATA=%q\n' "$dir" >&3
}

cmd_stop() {
    [[ $# -le 1 ]] || die "usage: $0 stop [DIR]"
    local dir
    dir="$(resolve_dir "${1:-}")"
    if [[ ! -e "$dir" ]]; then
        log "$dir does not exist; nothing to stop"
        return 0
    fi
    check_ours "$dir"
    if [[ -f "$dir/postmaster.pid" ]]; then
        local bindir
        bindir="$(find_bindir)"
        [[ -n "$bindir" ]] || die "no pg_ctl found to stop the server in $dir"
        log "stopping server in $dir"
        if ! as_owner "$bindir/pg_ctl" -D "$dir" -m fast -w stop > /dev/null 2>&1; then
            # Stale postmaster.pid (server crashed or was killed): nothing to stop.
            if as_owner "$bindir/pg_ctl" -D "$dir" status > /dev/null 2>&1; then
                die "could not stop the server in $dir"
            fi
        fi
    else
        log "no server running in $dir"
    fi
    rm -rf -- "$dir"
    log "removed $dir"
}

cmd_status() {
    [[ $# -le 1 ]] || die "usage: $0 status [DIR]"
    local dir bindir port
    dir="$(resolve_dir "${1:-}")"
    if [[ ! -d "$dir" ]]; then
        printf 'no server: %s does not exist\n' "$dir"
        return 3
    fi
    check_ours "$dir"
    bindir="$(find_bindir)"
    [[ -n "$bindir" ]] || die "no pg_ctl found"
    if as_owner "$bindir/pg_ctl" -D "$dir" status > /dev/null 2>&1; then
        port="$(server_port "$dir")"
        printf 'running: postgresql+psycopg://postgres@127.0.0.1:%s/%s (data %s)\n' "$port" "$database" "$dir"
    else
        printf 'not running: %s\n' "$dir"
        return 3
    fi
}

case "${1:-}" in
    start | stop | status)
        cmd="$1"
        shift
        "cmd_$cmd" "$@"
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        usage
        exit 2
        ;;
esac
