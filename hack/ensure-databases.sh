#!/usr/bin/env bash
# Makes sure the PostgreSQL (127.0.0.1:5432, superuser postgres over trust) and MariaDB
# (127.0.0.1:3306, root without a password) servers the rotation tests use are running: starts
# them when they are installed but stopped, and installs them from Debian's packages (as root)
# when they are missing. Exits non-zero, saying which, when one cannot be brought up.
set -euo pipefail

log() { echo "ensure-databases: $*" >&2; }

wait_for() {
  local what="$1"; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "${what} did not come up on 127.0.0.1"
  return 1
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
maria_up() { { (command -v mariadb-admin && mariadb-admin -h 127.0.0.1 -P 3306 -uroot ping) || (command -v mysqladmin && mysqladmin -h 127.0.0.1 -P 3306 -uroot ping); } >/dev/null 2>&1; }

apt_updated=""
apt_install() {
  if [[ "$(id -u)" != 0 ]]; then log "installing $* needs root"; return 1; fi
  [[ -n "${apt_updated}" ]] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v pg_isready >/dev/null || ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null; then
    log "installing PostgreSQL"
    apt_install postgresql
    ver="$(ls /etc/postgresql | sort -V | tail -1)"
    # Trust loopback connections as the project's machines do; the tests add a password rule for
    # their own users ahead of it.
    sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(host\s+all\s+all\s+::1\/128\s+)\S+/\1trust/' "/etc/postgresql/${ver}/main/pg_hba.conf"
  fi
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  wait_for PostgreSQL pg_up
fi

if ! maria_up; then
  if ! command -v mariadbd >/dev/null && [[ ! -x /usr/sbin/mariadbd ]]; then
    log "installing MariaDB"
    apt_install mariadb-server mariadb-client
    fresh=1
  fi
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_for MariaDB test -S /run/mysqld/mysqld.sock
  if [[ -n "${fresh:-}" ]]; then
    mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;"
  fi
  wait_for MariaDB maria_up
fi
# Up is not enough: the tests log in as the superusers over TCP, so check exactly that (a server
# that answers ping but refuses the login would make every database test fail later, less clearly).
if ! psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
  log "PostgreSQL is up but 'psql -h 127.0.0.1 -U postgres' cannot log in: the tests need trust for postgres on 127.0.0.1 (pg_hba.conf)"
  exit 1
fi
if ! { command -v mariadb >/dev/null && mariadb -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1' >/dev/null 2>&1; } &&
   ! { command -v mysql >/dev/null && mysql -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1' >/dev/null 2>&1; }; then
  log "MariaDB is up but root cannot log in over TCP without a password: the tests need that"
  exit 1
fi
log "PostgreSQL and MariaDB are up and the tests can log in"
