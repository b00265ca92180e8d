# shellcheck shell=bash
# Throwaway PostgreSQL clusters for scripts/demo (and anyone's shell).
#
#   source scripts/lib-pg.sh
#   pg_ensure_installed                   # apt-get install postgresql if no initdb
#   pg_cluster_start DIR PASSWORD         # initdb DIR (if new) and start it; sets PG_PORT
#   pg_url DIR DBNAME                     # postgresql://postgres:PASSWORD@127.0.0.1:PORT/DBNAME
#   pg_cluster_stop DIR                   # fast shutdown
#
# The server listens on 127.0.0.1 on a free port (and on a unix socket in DIR).
# TCP connections need the password (scram-sha-256); local ones are trusted.
# PostgreSQL refuses to run as root: as root, initdb and postgres run as the
# 'postgres' OS user if it exists, else as 'dbsync-test' (created here).

PG_SUPERUSER=postgres

# Print the bin directory of the newest PostgreSQL: the highest
# /usr/lib/postgresql/N/bin holding initdb, else the (resolved) directory of the
# initdb on PATH. Fails when there is none.
pg_bindir() {
    local best="" v
    for v in $(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sed -n 's|^/usr/lib/postgresql/\([0-9.]*\)/bin/initdb$|\1|p' | sort -V); do
        [[ -x /usr/lib/postgresql/$v/bin/initdb ]] && best=/usr/lib/postgresql/$v/bin
    done
    if [[ -z $best ]] && command -v initdb >/dev/null 2>&1; then
        best=$(dirname "$(readlink -f "$(command -v initdb)")")
    fi
    [[ -n $best ]] || return 1
    echo "$best"
}

# apt-get install ARGS... as root, or through sudo: Debian's packages for what a script needs.
apt_install() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "need root or sudo to install $*" >&2; return 1; }
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# Install PostgreSQL from Debian's packages when no server binaries are found.
pg_ensure_installed() {
    if pg_bindir >/dev/null; then
        return 0
    fi
    echo "PostgreSQL server binaries not found: installing Debian's postgresql package" >&2
    apt_install postgresql || return 1
    pg_bindir >/dev/null || { echo "postgresql installed, but no initdb found" >&2; return 1; }
}

# The test suite's other real servers: OpenSSH's sshd (the launcher's tests log in to a real
# one on loopback). moto's S3 server comes from PyPI with the dev extra.
sshd_ensure_installed() {
    [[ -x /usr/sbin/sshd ]] && return 0
    echo "OpenSSH server not found: installing Debian's openssh-server package" >&2
    apt_install --no-install-recommends openssh-server
}

# zstd's command line: the README's restore of a backup by hand, which the tests run too.
zstd_ensure_installed() {
    command -v zstd >/dev/null && return 0
    echo "zstd not found: installing Debian's zstd package" >&2
    apt_install --no-install-recommends zstd
}

# The OS user that runs the server: empty when we are not root.
pg_os_user() {
    [[ $(id -u) -eq 0 ]] || return 0
    if id -u postgres >/dev/null 2>&1; then
        echo postgres
        return 0
    fi
    if ! id -u dbsync-test >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --shell /usr/sbin/nologin dbsync-test
    fi
    echo dbsync-test
}

# Run a command as the server's OS user.
pg_as_user() {
    local user
    user=$(pg_os_user)
    if [[ -n $user ]]; then
        runuser -u "$user" -- "$@"
    else
        "$@"
    fi
}

pg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# pg_cluster_start DIR PASSWORD: initdb DIR/data unless it exists, start the
# server on a free port and wait for it. Sets PG_PORT and writes DIR/port.
pg_cluster_start() {
    local dir=$1 password=$2 bindir user _
    bindir=$(pg_bindir) || { echo "no PostgreSQL server binaries" >&2; return 1; }
    user=$(pg_os_user)
    mkdir -p "$dir"
    [[ -n $user ]] && chown "$user:" "$dir"
    if [[ ! -f $dir/data/PG_VERSION ]]; then
        printf '%s\n' "$password" >"$dir/pwfile"
        [[ -n $user ]] && chown "$user:" "$dir/pwfile"
        (cd "$dir" && pg_as_user env LC_ALL=C "$bindir/initdb" -D "$dir/data" -U "$PG_SUPERUSER" \
            --pwfile="$dir/pwfile" --auth-local=trust --auth-host=scram-sha-256 \
            -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1) || {
            cat "$dir/initdb.log" >&2
            rm -f "$dir/pwfile"
            return 1
        }
        rm -f "$dir/pwfile"
    fi
    for _ in 1 2 3 4 5; do
        PG_PORT=$(pg_free_port)
        if (cd "$dir" && pg_as_user env LC_ALL=C "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
                -w -t 60 -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
                start >/dev/null); then
            echo "$PG_PORT" >"$dir/port"
            return 0
        fi
        if ! grep -q "could not bind\|Address already in use" "$dir/postgres.log" 2>/dev/null; then
            break
        fi
    done
    echo "could not start PostgreSQL in $dir:" >&2
    tail -n 20 "$dir/postgres.log" >&2 2>/dev/null
    return 1
}

# pg_url DIR DBNAME [PASSWORD]: the URL of a database of the cluster in DIR.
pg_url() {
    local dir=$1 db=$2 password=${3:-${PG_PASSWORD:-}}
    local auth=$PG_SUPERUSER
    [[ -n $password ]] && auth="$PG_SUPERUSER:$password"
    echo "postgresql://$auth@127.0.0.1:$(cat "$dir/port")/$db"
}

# pg_cluster_stop DIR: fast shutdown (immediate if that does not finish).
pg_cluster_stop() {
    local dir=$1 bindir
    [[ -f $dir/data/postmaster.pid ]] || return 0
    bindir=$(pg_bindir) || return 1
    (cd "$dir" && pg_as_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1) ||
        (cd "$dir" && pg_as_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1) ||
        true
}

# pg_psql URL ARGS...: psql without ~/.psqlrc, stopping at the first error.
pg_psql() {
    local url=$1 bindir
    shift
    bindir=$(pg_bindir)
    "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$url" "$@"
}
